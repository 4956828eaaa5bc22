"""An in-tree PEP 517 / PEP 660 build backend, standard library only.

pip builds a package in an isolated environment into which it installs the backend's
``requires`` from an index; with setuptools that means PyPI, which many clusters (and this
project's CI) cannot reach. This backend needs nothing (``requires = []``): it reads the
``[project]`` table of pyproject.toml and writes the wheel with ``zipfile`` and the sdist with
``tarfile``, so ``pip install ./clients/python`` works offline.

It builds exactly one pure-Python package (``tool.warden-build.package``, default the project
name with ``_``), with its ``py.typed`` marker, into a ``py3-none-any`` wheel. Archives are
reproducible: entries are sorted, timestamps come from ``SOURCE_DATE_EPOCH`` (default
1980-01-01), modes are fixed.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import importlib
import io
import os
import re
import tarfile
import time
import zipfile
from pathlib import Path
from typing import IO, Any, Dict, Iterable, List, Mapping, Optional, Tuple, cast

__all__ = [
    "get_requires_for_build_wheel",
    "get_requires_for_build_sdist",
    "get_requires_for_build_editable",
    "prepare_metadata_for_build_wheel",
    "prepare_metadata_for_build_editable",
    "build_wheel",
    "build_sdist",
    "build_editable",
]

GENERATOR = "warden_build 1"

# ---------------------------------------------------------------------------------------------
# pyproject.toml. Python 3.11+ has tomllib; before that, a reader for the subset this project's
# pyproject.toml uses (tables, strings, string arrays, inline tables of strings, arrays of them).
# The test suite holds the two to the same answer.


class TomlSubsetError(ValueError):
    pass


_KEY = r"[A-Za-z0-9_-]+"
_BASIC_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "\\": "\\"}


def _parse_string(s: str, i: int) -> Tuple[str, int]:
    if s.startswith("'", i):
        j = s.index("'", i + 1)
        return s[i + 1 : j], j + 1
    if not s.startswith('"', i):
        raise TomlSubsetError(f"expected a string at {s[i:i + 20]!r}")
    out: List[str] = []
    j = i + 1
    while j < len(s):
        c = s[j]
        if c == '"':
            return "".join(out), j + 1
        if c == "\\":
            n = s[j + 1]
            if n in _BASIC_ESCAPES:
                out.append(_BASIC_ESCAPES[n])
                j += 2
            elif n == "u":
                out.append(chr(int(s[j + 2 : j + 6], 16)))
                j += 6
            elif n == "U":
                out.append(chr(int(s[j + 2 : j + 10], 16)))
                j += 10
            else:
                raise TomlSubsetError(f"unsupported escape \\{n}")
            continue
        if c == "\n":
            raise TomlSubsetError("newline in a string")
        out.append(c)
        j += 1
    raise TomlSubsetError("unterminated string")


def _skip(s: str, i: int) -> int:
    """Skip whitespace, newlines and comments."""
    while i < len(s):
        if s[i] in " \t\r\n":
            i += 1
        elif s[i] == "#":
            while i < len(s) and s[i] != "\n":
                i += 1
        else:
            break
    return i


def _parse_value(s: str, i: int) -> Tuple[Any, int]:
    i = _skip(s, i)
    if s.startswith(('"', "'"), i):
        return _parse_string(s, i)
    if s.startswith("[", i):
        items: List[Any] = []
        i += 1
        while True:
            i = _skip(s, i)
            if s.startswith("]", i):
                return items, i + 1
            v, i = _parse_value(s, i)
            items.append(v)
            i = _skip(s, i)
            if s.startswith(",", i):
                i += 1
            elif not s.startswith("]", i):
                raise TomlSubsetError(f"expected , or ] at {s[i:i + 20]!r}")
    if s.startswith("{", i):
        table: Dict[str, Any] = {}
        i += 1
        while True:
            while i < len(s) and s[i] in " \t":
                i += 1
            if s.startswith("}", i):
                return table, i + 1
            m = re.compile(_KEY).match(s, i)
            if not m:
                raise TomlSubsetError(f"expected a key at {s[i:i + 20]!r}")
            i = m.end()
            while i < len(s) and s[i] in " \t":
                i += 1
            if not s.startswith("=", i):
                raise TomlSubsetError("expected =")
            v, i = _parse_value(s, i + 1)
            table[m.group(0)] = v
            while i < len(s) and s[i] in " \t":
                i += 1
            if s.startswith(",", i):
                i += 1
            elif not s.startswith("}", i):
                raise TomlSubsetError(f"expected , or }} at {s[i:i + 20]!r}")
    for word, val in (("true", True), ("false", False)):
        if s.startswith(word, i):
            return val, i + len(word)
    m = re.compile(r"[+-]?\d+").match(s, i)
    if m:
        return int(m.group(0)), m.end()
    raise TomlSubsetError(f"unsupported value at {s[i:i + 20]!r}")


def parse_toml_subset(text: str) -> Dict[str, Any]:
    doc: Dict[str, Any] = {}
    current = doc
    i = 0
    header = re.compile(r"\[(" + _KEY + r"(?:\." + _KEY + r")*)\][ \t]*(?:#[^\n]*)?(?:\n|$)")
    keyline = re.compile(r"(" + _KEY + r"(?:\." + _KEY + r")*)[ \t]*=[ \t]*")
    while True:
        i = _skip(text, i)
        if i >= len(text):
            return doc
        m = header.match(text, i)
        if m:
            current = doc
            for part in m.group(1).split("."):
                current = current.setdefault(part, {})
                if not isinstance(current, dict):
                    raise TomlSubsetError(f"[{m.group(1)}] redefines a value")
            i = m.end()
            continue
        m = keyline.match(text, i)
        if not m:
            raise TomlSubsetError(f"cannot read line at {text[i:i + 30]!r}")
        value, i = _parse_value(text, m.end())
        *path, last = m.group(1).split(".")
        target = current
        for part in path:
            target = target.setdefault(part, {})
        if last in target:
            raise TomlSubsetError(f"{m.group(1)} defined twice")
        target[last] = value
        while i < len(text) and text[i] in " \t":
            i += 1
        if i < len(text) and text[i] == "#":
            while i < len(text) and text[i] != "\n":
                i += 1
        if i < len(text) and text[i] not in "\r\n":
            raise TomlSubsetError(f"trailing data at {text[i:i + 20]!r}")


def load_pyproject(root: Path) -> Dict[str, Any]:
    text = (root / "pyproject.toml").read_text(encoding="utf-8")
    try:
        tomllib = importlib.import_module("tomllib")  # Python 3.11+
    except ImportError:
        return parse_toml_subset(text)
    return dict(tomllib.loads(text))


# ---------------------------------------------------------------------------------------------
# Metadata


class Project:
    def __init__(self, root: Path) -> None:
        self.root = root
        doc = load_pyproject(root)
        p = doc.get("project")
        if not isinstance(p, dict):
            raise ValueError("pyproject.toml has no [project] table")
        if p.get("dynamic"):
            raise ValueError("this backend takes no dynamic metadata")
        self.project: Dict[str, Any] = p
        self.name: str = p["name"]
        self.version: str = p["version"]
        if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?", self.name):
            raise ValueError(f"project name {self.name!r} is not valid")
        if not re.fullmatch(r"\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?", self.version):
            raise ValueError(f"version {self.version!r} is not a plain PEP 440 version")
        tool = doc.get("tool", {}).get("warden-build", {})
        self.dist = re.sub(r"[-_.]+", "_", self.name).lower()  # file names (PEP 427, PEP 625)
        self.package: str = tool.get("package", self.dist)
        self.sdist_include: List[str] = list(tool.get("sdist-include", []))
        pkg = root / self.package
        if not (pkg / "__init__.py").is_file():
            raise ValueError(f"package {self.package!r} not found in {root}")

    @property
    def dist_info(self) -> str:
        return f"{self.dist}-{self.version}.dist-info"

    def metadata(self) -> str:
        p = self.project
        lines = [
            "Metadata-Version: 2.1",
            f"Name: {self.name}",
            f"Version: {self.version}",
        ]
        if p.get("description"):
            lines.append(f"Summary: {p['description']}")
        for a in p.get("authors", []):
            if a.get("email"):
                lines.append(f"Author-email: {a.get('name', '')} <{a['email']}>".replace(":  <", ": <"))
            elif a.get("name"):
                lines.append(f"Author: {a['name']}")
        lic = p.get("license")
        if isinstance(lic, dict) and lic.get("text"):
            lines.append(f"License: {lic['text']}")
        elif isinstance(lic, str):
            lines.append(f"License-Expression: {lic}")
        if p.get("keywords"):
            lines.append("Keywords: " + ",".join(p["keywords"]))
        for c in p.get("classifiers", []):
            lines.append(f"Classifier: {c}")
        for label, url in p.get("urls", {}).items():
            lines.append(f"Project-URL: {label}, {url}")
        if p.get("requires-python"):
            lines.append(f"Requires-Python: {p['requires-python']}")
        for dep in p.get("dependencies", []):
            lines.append(f"Requires-Dist: {dep}")
        body = ""
        readme = p.get("readme")
        if isinstance(readme, str):
            path = self.root / readme
            if path.is_file():
                body = path.read_text(encoding="utf-8")
                ctype = "text/markdown" if readme.endswith(".md") else "text/plain"
                lines.append(f"Description-Content-Type: {ctype}; charset=UTF-8")
        return "\n".join(lines) + "\n\n" + body

    def wheel_file(self, tag: str = "py3-none-any") -> str:
        return f"Wheel-Version: 1.0\nGenerator: {GENERATOR}\nRoot-Is-Purelib: true\nTag: {tag}\n"

    def package_files(self) -> List[Tuple[str, Path]]:
        """(archive name, file) of the package: sources and data, no caches."""
        out = []
        base = self.root / self.package
        for path in sorted(base.rglob("*")):
            rel = path.relative_to(self.root)
            if not path.is_file() or "__pycache__" in rel.parts or path.suffix in (".pyc", ".pyo"):
                continue
            out.append((rel.as_posix(), path))
        return out


def _root() -> Path:
    # PEP 517: hooks run with the source tree as the working directory.
    return Path(os.getcwd()).resolve()


def _epoch() -> int:
    return max(int(os.environ.get("SOURCE_DATE_EPOCH", "315532800")), 315532800)


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode("ascii")


class _WheelWriter:
    def __init__(self, path: Path) -> None:
        self.zip = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED)
        self.records: List[Tuple[str, str, str]] = []
        self.date = time.gmtime(_epoch())[:6]

    def add(self, name: str, data: bytes) -> None:
        info = zipfile.ZipInfo(name, date_time=self.date)
        info.external_attr = (0o100644 & 0xFFFF) << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        self.zip.writestr(info, data)
        self.records.append((name, _record_hash(data), str(len(data))))

    def close(self, record_name: str) -> None:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        for r in self.records:
            w.writerow(r)
        w.writerow((record_name, "", ""))
        info = zipfile.ZipInfo(record_name, date_time=self.date)
        info.external_attr = (0o100644 & 0xFFFF) << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        self.zip.writestr(info, buf.getvalue().encode("utf-8"))
        self.zip.close()


def _write_metadata_dir(project: Project, metadata_directory: str) -> str:
    d = Path(metadata_directory) / project.dist_info
    d.mkdir(parents=True, exist_ok=True)
    (d / "METADATA").write_text(project.metadata(), encoding="utf-8")
    (d / "WHEEL").write_text(project.wheel_file(), encoding="utf-8")
    (d / "top_level.txt").write_text(project.package + "\n", encoding="utf-8")
    return project.dist_info


def _build(wheel_directory: str, files: Iterable[Tuple[str, bytes]], project: Project) -> str:
    name = f"{project.dist}-{project.version}-py3-none-any.whl"
    out = Path(wheel_directory)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / (name + ".tmp")
    w = _WheelWriter(tmp)
    try:
        for arcname, data in files:
            w.add(arcname, data)
        w.add(f"{project.dist_info}/METADATA", project.metadata().encode("utf-8"))
        w.add(f"{project.dist_info}/WHEEL", project.wheel_file().encode("utf-8"))
        w.add(f"{project.dist_info}/top_level.txt", (project.package + "\n").encode("utf-8"))
        w.close(f"{project.dist_info}/RECORD")
    except BaseException:
        w.zip.close()
        tmp.unlink()
        raise
    os.replace(tmp, out / name)
    return name


# ---------------------------------------------------------------------------------------------
# PEP 517 hooks


def get_requires_for_build_wheel(config_settings: Optional[Mapping[str, Any]] = None) -> List[str]:
    return []


def get_requires_for_build_sdist(config_settings: Optional[Mapping[str, Any]] = None) -> List[str]:
    return []


def get_requires_for_build_editable(config_settings: Optional[Mapping[str, Any]] = None) -> List[str]:
    return []


def prepare_metadata_for_build_wheel(metadata_directory: str, config_settings: Optional[Mapping[str, Any]] = None) -> str:
    return _write_metadata_dir(Project(_root()), metadata_directory)


def prepare_metadata_for_build_editable(metadata_directory: str, config_settings: Optional[Mapping[str, Any]] = None) -> str:
    return _write_metadata_dir(Project(_root()), metadata_directory)


def build_wheel(
    wheel_directory: str,
    config_settings: Optional[Mapping[str, Any]] = None,
    metadata_directory: Optional[str] = None,
) -> str:
    project = Project(_root())
    return _build(wheel_directory, ((a, p.read_bytes()) for a, p in project.package_files()), project)


def build_editable(
    wheel_directory: str,
    config_settings: Optional[Mapping[str, Any]] = None,
    metadata_directory: Optional[str] = None,
) -> str:
    """PEP 660: a wheel holding a .pth file that puts the source tree on sys.path."""
    project = Project(_root())
    pth = (str(project.root) + "\n").encode("utf-8")
    return _build(wheel_directory, [(f"__editable__.{project.dist}.pth", pth)], project)


def build_sdist(sdist_directory: str, config_settings: Optional[Mapping[str, Any]] = None) -> str:
    project = Project(_root())
    base = f"{project.dist}-{project.version}"
    out = Path(sdist_directory)
    out.mkdir(parents=True, exist_ok=True)
    name = base + ".tar.gz"
    files: Dict[str, bytes] = {}
    for rel in ["pyproject.toml", *project.sdist_include]:
        path = project.root / rel
        if path.is_dir():
            for f in sorted(path.rglob("*")):
                r = f.relative_to(project.root)
                if f.is_file() and "__pycache__" not in r.parts and f.suffix not in (".pyc", ".pyo"):
                    files[r.as_posix()] = f.read_bytes()
        elif path.is_file():
            files[rel] = path.read_bytes()
    readme = project.project.get("readme")
    if isinstance(readme, str) and (project.root / readme).is_file():
        files[readme] = (project.root / readme).read_bytes()
    for arcname, path in project.package_files():
        files[arcname] = path.read_bytes()
    files["PKG-INFO"] = project.metadata().encode("utf-8")
    tmp = out / (name + ".tmp")
    mtime = _epoch()
    # gzip's own header timestamp too, so the archive is byte-for-byte reproducible.
    import gzip

    with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=mtime) as gz:
        with tarfile.open(fileobj=cast(IO[bytes], gz), mode="w", format=tarfile.PAX_FORMAT) as tar:
            for arcname in sorted(files):
                data = files[arcname]
                info = tarfile.TarInfo(f"{base}/{arcname}")
                info.size, info.mtime, info.mode = len(data), mtime, 0o644
                info.uname = info.gname = ""
                tar.addfile(info, io.BytesIO(data))
    os.replace(tmp, out / name)
    return name
