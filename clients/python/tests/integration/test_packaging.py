"""Packaging: the in-tree build backend, and `pip install ./clients/python` into a fresh venv
without any package index (the build needs nothing but the standard library)."""

from __future__ import annotations

import base64
import csv
import hashlib
import importlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import unittest
import zipfile
from pathlib import Path
from typing import Dict

from tests.integration.harness import PROJECT

sys.path.insert(0, str(PROJECT / "build_backend"))
import warden_build  # type: ignore[import]  # noqa: E402

import warden_client  # noqa: E402


def _backend(hook: str, out: Path) -> str:
    """Run a backend hook the way pip does: in a fresh interpreter, in the source tree."""
    code = (
        "import sys; sys.path.insert(0, 'build_backend'); import warden_build; "
        f"print(warden_build.{hook}({str(out)!r}))"
    )
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    r = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True, env=env, check=True)
    return r.stdout.strip().splitlines()[-1]


class TomlSubsetTest(unittest.TestCase):
    def test_reads_pyproject_like_tomllib(self) -> None:
        text = (PROJECT / "pyproject.toml").read_text()
        mine = warden_build.parse_toml_subset(text)
        try:
            tomllib = importlib.import_module("tomllib")
        except ImportError:  # Python < 3.11: hold the subset reader to what the file says
            self.assertEqual(mine["build-system"], {"requires": [], "build-backend": "warden_build", "backend-path": ["build_backend"]})
        else:
            self.assertEqual(mine, tomllib.loads(text))
        self.assertEqual(mine["project"]["version"], warden_client.__version__, "pyproject.toml and _version.py agree")
        self.assertEqual(mine["project"]["requires-python"], ">=3.9")
        self.assertEqual(mine["project"]["dependencies"], [], "standard library only")

    def test_subset(self) -> None:
        doc = warden_build.parse_toml_subset(
            '# c\n[a]\nx = "q\\"\\u00e9" # c\ny = [\n  "1", \'2\',\n]\n[a.b]\nz = {k = "v", n = 3}\nt = true\n'
        )
        self.assertEqual(doc, {"a": {"x": 'q"é', "y": ["1", "2"], "b": {"z": {"k": "v", "n": 3}, "t": True}}})
        for bad in ['x = "unterminated', "x = 1.5e3 garbage", 'x = "a"\nx = "b"', "[a\n", 'x = "a" y']:
            with self.subTest(bad=bad), self.assertRaises(warden_build.TomlSubsetError):
                warden_build.parse_toml_subset(bad)


class BuildTest(unittest.TestCase):
    def setUp(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="warden-build-"))
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", str(self.tmp)]))

    def test_wheel(self) -> None:
        name = _backend("build_wheel", self.tmp / "a")
        self.assertEqual(name, f"warden_client-{warden_client.__version__}-py3-none-any.whl")
        whl = self.tmp / "a" / name
        with zipfile.ZipFile(whl) as z:
            names = z.namelist()
            dist_info = f"warden_client-{warden_client.__version__}.dist-info"
            self.assertIn("warden_client/py.typed", names)
            for module in ["client", "datasets", "secrets", "identity", "storage", "access", "models", "errors"]:
                self.assertIn(f"warden_client/{module}.py", names)
            self.assertFalse([n for n in names if "__pycache__" in n or n.endswith(".pyc") or n.startswith("tests/")])
            record = list(csv.reader(io.StringIO(z.read(f"{dist_info}/RECORD").decode())))
            listed = {r[0] for r in record}
            self.assertEqual(listed, set(names), "RECORD lists every file")
            for path, digest, size in record:
                if path.endswith("RECORD"):
                    self.assertEqual((digest, size), ("", ""))
                    continue
                data = z.read(path)
                want = "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
                self.assertEqual((digest, int(size)), (want, len(data)), path)
            meta = z.read(f"{dist_info}/METADATA").decode()
            self.assertIn("Name: warden-client\n", meta)
            self.assertIn(f"Version: {warden_client.__version__}\n", meta)
            self.assertIn("Requires-Python: >=3.9\n", meta)
            self.assertNotIn("Requires-Dist", meta)
            self.assertIn("Classifier: Typing :: Typed\n", meta)
            self.assertIn("# warden-client", meta, "the README is the long description")
            self.assertIn("Root-Is-Purelib: true", z.read(f"{dist_info}/WHEEL").decode())
        again = _backend("build_wheel", self.tmp / "b")
        self.assertEqual(whl.read_bytes(), (self.tmp / "b" / again).read_bytes(), "reproducible")

    def test_sdist(self) -> None:
        name = _backend("build_sdist", self.tmp)
        self.assertEqual(name, f"warden_client-{warden_client.__version__}.tar.gz")
        base = f"warden_client-{warden_client.__version__}/"
        with tarfile.open(self.tmp / name) as t:
            names = set(t.getnames())
        for want in ["pyproject.toml", "PKG-INFO", "README.md", "build_backend/warden_build.py",
                     "warden_client/py.typed", "warden_client/__init__.py", "tests/unit/fake_sidecar.py",
                     "tests/integration/harness.py", "tests/integration/broker_suite.py"]:
            self.assertIn(base + want, names)
        self.assertFalse([n for n in names if "__pycache__" in n])


class PipInstallTest(unittest.TestCase):
    """`pip install ./clients/python` into a fresh venv, with no index at all."""

    def test_offline_install(self) -> None:
        tmp = Path(tempfile.mkdtemp(prefix="warden-venv-"))
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", str(tmp)]))
        venv = tmp / "venv"
        r = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True)
        if r.returncode != 0:
            self.fail(f"python3 -m venv failed (on Debian: apt-get install python3-venv): {r.stderr}")
        py = str(venv / "bin" / "python")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHONPATH", "WARDEN_"))}
        env.update(PIP_NO_INPUT="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_CACHE_DIR="1")

        def pip(*args: str) -> None:
            r = subprocess.run([py, "-m", "pip", *args], capture_output=True, text=True, env=env, cwd=tmp)
            self.assertEqual(r.returncode, 0, f"pip {' '.join(args)}:\n{r.stdout}\n{r.stderr}")

        def probe() -> Dict[str, str]:
            code = (
                "import importlib.metadata as m, pathlib, warden_client as w; "
                "p = pathlib.Path(w.__file__).parent; "
                "print(w.__version__, m.version('warden-client'), (p / 'py.typed').exists(), p, sep='\\n')"
            )
            r = subprocess.run([py, "-c", code], capture_output=True, text=True, env=env, cwd=tmp, check=True)
            version, dist_version, typed, where = r.stdout.split("\n")[:4]
            return {"version": version, "dist": dist_version, "typed": typed, "where": where}

        pip("install", "--no-index", str(PROJECT))
        got = probe()
        self.assertEqual((got["version"], got["dist"], got["typed"]), (warden_client.__version__,) * 2 + ("True",))
        self.assertIn("site-packages", got["where"])
        self.assertFalse(list(PROJECT.glob("*.egg-info")) + list(PROJECT.glob("build")), "the build wrote nothing into the tree")

        sdist = _backend("build_sdist", tmp / "dist")
        pip("install", "--no-index", "--force-reinstall", str(tmp / "dist" / sdist))
        self.assertIn("site-packages", probe()["where"])

        pip("uninstall", "-y", "warden-client")
        pip("install", "--no-index", "-e", str(PROJECT))
        self.assertEqual(Path(probe()["where"]), PROJECT / "warden_client", "editable: the source tree itself")


if __name__ == "__main__":
    unittest.main()
