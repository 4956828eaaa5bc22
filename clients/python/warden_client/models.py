"""The values the client returns: plain, typed, immutable where it makes sense."""

from __future__ import annotations

import datetime as _dt
import hashlib
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Mapping, Optional

from .errors import NotFound, ProtocolError

if TYPE_CHECKING:  # pragma: no cover
    from types import TracebackType
    from typing import Type

__all__ = [
    "Dataset",
    "Party",
    "Access",
    "FileEntry",
    "Listing",
    "StagedFile",
    "Org",
    "Binding",
    "SecretValues",
    "parse_time",
]

# Go's time.Time in JSON: RFC 3339 with up to nine fractional digits, "Z" or an offset.
_TIME_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$"
)


def parse_time(value: Any, what: str = "time") -> Optional[_dt.datetime]:
    """A timezone-aware datetime from an RFC 3339 string; None for Go's zero time, null or "".

    Works on Python 3.9, whose ``datetime.fromisoformat`` takes neither ``Z`` nor nanoseconds.
    """
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ProtocolError(f"{what}: expected an RFC 3339 string, got {type(value).__name__}")
    m = _TIME_RE.match(value)
    if not m:
        raise ProtocolError(f"{what}: {value!r} is not an RFC 3339 time")
    year, month, day, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
    frac = (m.group(7) or "").ljust(6, "0")[:6]
    if m.group(8):
        tz = _dt.timezone.utc
    else:
        sign = 1 if m.group(9) == "+" else -1
        tz = _dt.timezone(sign * _dt.timedelta(hours=int(m.group(10)), minutes=int(m.group(11))))
    if year == 1 and month == 1 and day == 1:  # Go's zero time.Time: "not set"
        return None
    try:
        return _dt.datetime(year, month, day, hour, minute, second, int(frac), tzinfo=tz)
    except ValueError as e:
        raise ProtocolError(f"{what}: {value!r}: {e}") from None


def _field(obj: Mapping[str, Any], name: str, kind: Any, what: str) -> Any:
    """obj[name], checked to be of kind (bool is not accepted as an int)."""
    if not isinstance(obj, dict):
        raise ProtocolError(f"{what}: expected a JSON object, got {type(obj).__name__}")
    if name not in obj:
        raise ProtocolError(f"{what}: the answer has no {name!r}")
    v = obj[name]
    if kind is int and isinstance(v, bool):
        raise ProtocolError(f"{what}: {name!r} is not a number")
    if not isinstance(v, kind):
        raise ProtocolError(f"{what}: {name!r} is {type(v).__name__}, not {getattr(kind, '__name__', kind)}")
    return v


def _list(obj: Mapping[str, Any], name: str, what: str, optional: bool = False) -> List[Any]:
    if optional and isinstance(obj, dict) and obj.get(name) is None:
        return []  # Go encodes an empty slice as null
    return list(_field(obj, name, list, what))


@dataclass(frozen=True)
class Dataset:
    """A dataset both the owner and the caller may read, and its head snapshot."""

    id: str
    snapshot: str

    @classmethod
    def from_json(cls, d: Any) -> Dataset:
        return cls(id=_field(d, "id", str, "dataset"), snapshot=_field(d, "snapshot", str, "dataset"))


@dataclass(frozen=True)
class Party:
    """One side of an access check: the owner (the pod's service account) or the caller."""

    name: str
    can_read: bool

    @classmethod
    def from_json(cls, d: Any, what: str) -> Party:
        return cls(name=_field(d, "name", str, what), can_read=_field(d, "can_read", bool, what))


@dataclass(frozen=True)
class Access:
    """The answer of an access check. ``allowed`` only when both owner and caller may read."""

    dataset_id: str
    owner: Party
    caller: Party

    @property
    def allowed(self) -> bool:
        return self.owner.can_read and self.caller.can_read

    def __bool__(self) -> bool:
        return self.allowed

    @classmethod
    def from_json(cls, d: Any) -> Access:
        return cls(
            dataset_id=_field(d, "dataset_id", str, "access"),
            owner=Party.from_json(_field(d, "owner", dict, "access"), "access owner"),
            caller=Party.from_json(_field(d, "caller", dict, "access"), "access caller"),
        )


@dataclass(frozen=True)
class FileEntry:
    """One entry of a dataset folder."""

    name: str
    size: int
    dir: bool
    mod_time: Optional[_dt.datetime]

    @classmethod
    def from_json(cls, d: Any) -> FileEntry:
        return cls(
            name=_field(d, "name", str, "file entry"),
            size=_field(d, "size", int, "file entry"),
            dir=_field(d, "dir", bool, "file entry"),
            mod_time=parse_time(d.get("mod_time"), "file entry mod_time"),
        )


@dataclass(frozen=True)
class Listing:
    """A folder of a dataset. Iterating yields the entries; ``truncated`` is True when the
    folder holds more entries than the sidecar lists (10,000)."""

    dataset_id: str
    path: str
    entries: List[FileEntry]
    truncated: bool

    def __iter__(self) -> Iterator[FileEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def files(self) -> List[FileEntry]:
        return [e for e in self.entries if not e.dir]

    @property
    def dirs(self) -> List[FileEntry]:
        return [e for e in self.entries if e.dir]

    @classmethod
    def from_json(cls, dataset_id: str, path: str, d: Any) -> Listing:
        return cls(
            dataset_id=dataset_id,
            path=path,
            entries=[FileEntry.from_json(e) for e in _list(d, "entries", "listing", optional=True)],
            truncated=bool(d.get("truncated", False)),
        )


_READ_MODES = {"r", "rt", "rb", "tr", "br"}


@dataclass
class StagedFile:
    """A read-only copy of a dataset file, staged for one caller until ``expires_at``.

    Use it as a context manager to delete the copy when done (it expires by itself otherwise)::

        with w.stage("prod-dataset-1", "sales.csv") as f:
            with f.open(newline="") as fh:
                rows = list(csv.DictReader(fh))

    It is also path-like: ``open(f)``, ``pandas.read_csv(f)`` and ``os.stat(f)`` take it.
    """

    path: Path
    name: str
    size: int
    sha256: str
    expires_at: _dt.datetime
    dataset_id: str = ""
    source: str = ""
    snapshot: Optional[str] = None
    deleted: bool = False
    _delete: Optional[Callable[[str], None]] = field(default=None, repr=False, compare=False)

    @classmethod
    def from_json(
        cls,
        d: Any,
        *,
        dataset_id: str = "",
        source: str = "",
        snapshot: Optional[str] = None,
        delete: Optional[Callable[[str], None]] = None,
    ) -> StagedFile:
        sha = _field(d, "sha256", str, "stage")
        if not re.fullmatch(r"[0-9a-f]{64}", sha):
            raise ProtocolError(f"stage: sha256 {sha!r} is not 64 hex digits")
        expires = parse_time(_field(d, "expires_at", str, "stage"), "stage expires_at")
        if expires is None:
            raise ProtocolError("stage: the answer has no expiry")
        return cls(
            path=Path(_field(d, "path", str, "stage")),
            name=_field(d, "name", str, "stage"),
            size=_field(d, "size", int, "stage"),
            sha256=sha,
            expires_at=expires,
            dataset_id=dataset_id,
            source=source,
            snapshot=snapshot,
            _delete=delete,
        )

    # os.PathLike
    def __fspath__(self) -> str:
        return str(self.path)

    @property
    def expired(self) -> bool:
        return _dt.datetime.now(_dt.timezone.utc) >= self.expires_at

    @property
    def seconds_left(self) -> float:
        """Seconds until the sidecar removes the copy (negative once expired)."""
        return (self.expires_at - _dt.datetime.now(_dt.timezone.utc)).total_seconds()

    def open(self, mode: str = "r", **kwargs: Any) -> IO[Any]:
        """Open the staged copy for reading (``"r"`` text, the default, or ``"rb"``). Other
        arguments go to the built-in ``open``; pass ``newline=""`` for the csv module."""
        if mode not in _READ_MODES:
            raise ValueError(f"staged copies are read-only: mode {mode!r} is not one of r, rt, rb")
        return open(self.path, mode, **kwargs)

    def read_bytes(self) -> bytes:
        return self.path.read_bytes()

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.path.read_text(encoding=encoding)

    def verify(self) -> bool:
        """Hash the copy and compare with the SHA-256 the sidecar computed while staging."""
        h = hashlib.sha256()
        with open(self.path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest() == self.sha256

    def delete(self) -> bool:
        """Delete the copy now (DELETE /v1/staged/{name}, as the caller it was staged for).

        Returns False when it was already gone (deleted before, or expired and removed by the
        sidecar's janitor)."""
        if self.deleted:
            return False
        if self._delete is None:
            raise RuntimeError("this StagedFile is not attached to a client")
        try:
            self._delete(self.name)
        except NotFound:
            self.deleted = True
            return False
        self.deleted = True
        return True

    def __enter__(self) -> StagedFile:
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        if exc is None:
            self.delete()
            return
        # Never hide the error of the with block behind a failed clean-up.
        try:
            self.delete()
        except Exception as e:  # noqa: BLE001
            warnings.warn(f"warden: could not delete staged copy {self.name}: {e}", RuntimeWarning, stacklevel=2)


@dataclass(frozen=True)
class Org:
    """An org the owner belongs to, and the GCP service account the pod can act as."""

    name: str
    gcp_service_account: str

    @classmethod
    def from_json(cls, d: Any) -> Org:
        return cls(name=_field(d, "name", str, "org"), gcp_service_account=_field(d, "gcp_service_account", str, "org"))


@dataclass(frozen=True)
class Binding:
    """The owner's GCP workload identity binding. ``state`` is ``"pending"`` until IAM is
    expected to have propagated the change (``bound_at``), then ``"bound"``."""

    org: str
    gcp_service_account: str
    state: str
    written_at: Optional[_dt.datetime]
    bound_at: Optional[_dt.datetime]

    @property
    def bound(self) -> bool:
        return self.state == "bound"

    @classmethod
    def from_json(cls, d: Any) -> Binding:
        return cls(
            org=_field(d, "org", str, "binding"),
            gcp_service_account=_field(d, "gcp_service_account", str, "binding"),
            state=_field(d, "state", str, "binding"),
            written_at=parse_time(d.get("written_at"), "binding written_at"),
            bound_at=parse_time(d.get("bound_at"), "binding bound_at"),
        )


class SecretValues(Dict[str, str]):
    """All of the owner's secrets (a dict), with ``etag``: the version they were read at
    (``'"v3"'``), for a check-and-set write with ``Secrets.set_all(..., if_match=values.etag)``.

    The repr hides the values, so a notebook cell never prints them by accident."""

    def __init__(self, values: Mapping[str, str], etag: Optional[str]) -> None:
        super().__init__(values)
        self.etag = etag

    @property
    def version(self) -> Optional[int]:
        """The KV version as a number (3 for ``'"v3"'``), or None."""
        return _version(self.etag)

    def __repr__(self) -> str:
        return f"SecretValues(keys={sorted(self)!r}, etag={self.etag!r})"

    __str__ = __repr__


def _version(etag: Optional[str]) -> Optional[int]:
    if not etag:
        return None
    m = re.fullmatch(r'(?:W/)?"?v?(\d+)"?', etag.strip())
    return int(m.group(1)) if m else None
