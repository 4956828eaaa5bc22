"""Datasets and staging: the datasets the owner and the caller may read, their folders, and
read-only copies of their files staged into the pod (``client.datasets()``, ``.access``,
``.files``, ``.stage``, ``.delete_staged``), and the values those calls return."""

from __future__ import annotations

import datetime as _dt
import hashlib
import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Union

from ._common import UNSET, Token, seg
from ._core import Core
from ._decode import _field, _list, parse_time
from .errors import Forbidden, NotFound, ProtocolError

if TYPE_CHECKING:  # pragma: no cover
    from types import TracebackType
    from typing import Type

__all__ = ["DatasetsMixin", "Dataset", "Party", "Access", "FileEntry", "Listing", "StagedFile", "TTL"]

#: A staging lifetime: seconds, or a timedelta.
TTL = Union[int, float, _dt.timedelta]


def _ttl_seconds(ttl: Optional[TTL]) -> int:
    if ttl is None:
        return 0  # the sidecar's --default-ttl
    if isinstance(ttl, bool):
        raise TypeError("ttl must be seconds or a timedelta, not a bool")
    if isinstance(ttl, _dt.timedelta):
        secs = ttl.total_seconds()
    elif isinstance(ttl, (int, float)):
        secs = float(ttl)
    else:
        raise TypeError(f"ttl must be seconds or a timedelta, not {type(ttl).__name__}")
    if math.isnan(secs) or math.isinf(secs):
        raise ValueError("ttl must be finite")
    # Round up: a copy asked for 0.5 s lives 1 s, not the default. Negative values go to the
    # sidecar as they are, and it refuses them (400).
    return int(math.ceil(secs)) if secs > 0 else int(secs)


class DatasetsMixin(Core):
    """The dataset calls of ``Client``."""

    def datasets(self, *, caller: Optional[str] = UNSET, token: Optional[Token] = UNSET) -> List[Dataset]:
        """The datasets both the owner and the caller may read."""
        d = self._call("GET", "/v1/datasets", headers=self._headers(caller, token)).json()
        return [Dataset.from_json(x) for x in _list(d, "datasets", "datasets", optional=True)]

    def access(self, dataset_id: str, *, caller: Optional[str] = UNSET, token: Optional[Token] = UNSET) -> Access:
        """Whether the owner and the caller may read a dataset. A refusal is an answer here
        (``Access.allowed`` False), not an exception; a malformed id raises BadRequest."""
        path = f"/v1/datasets/{seg(dataset_id, 'dataset id')}/access"
        try:
            return Access.from_json(self._call("GET", path, headers=self._headers(caller, token)).json())
        except Forbidden as e:
            if "dataset_id" in e.body and "owner" in e.body:
                return Access.from_json(e.body)
            raise

    def files(
        self,
        dataset_id: str,
        path: str = "",
        *,
        snapshot: Optional[str] = None,
        caller: Optional[str] = UNSET,
        token: Optional[Token] = UNSET,
    ) -> Listing:
        """One folder of a dataset (``path`` relative to the dataset; "" is its top)."""
        q: Dict[str, str] = {}
        if path:
            q["path"] = path
        if snapshot:
            q["snapshot"] = snapshot
        d = self._call(
            "GET", f"/v1/datasets/{seg(dataset_id, 'dataset id')}/files", query=q, headers=self._headers(caller, token)
        ).json()
        return Listing.from_json(dataset_id, path, d)

    def stage(
        self,
        dataset_id: str,
        path: str,
        *,
        ttl: Optional[TTL] = None,
        snapshot: Optional[str] = None,
        caller: Optional[str] = UNSET,
        token: Optional[Token] = UNSET,
    ) -> StagedFile:
        """Copy one file of a dataset into the pod's read-only data folder and return it.

        ``ttl`` (seconds or a timedelta; default the sidecar's, 5 minutes, capped by its
        ``--max-ttl``) is how long the copy lives; ``snapshot`` names one of the dataset's
        snapshots (default: the head). Use the result in a ``with`` block to delete the copy
        when done."""
        if not isinstance(path, str):
            raise TypeError(f"path must be a str, not {type(path).__name__}")
        body: Dict[str, Any] = {"path": path, "ttl_seconds": _ttl_seconds(ttl)}
        if snapshot:
            body["snapshot"] = snapshot
        # The copy belongs to the caller it was staged for: it is deleted as that caller, with
        # headers made afresh then (a token provider may have a newer token by that time).
        who = self._who(caller, token)
        d = self._call(
            "POST",
            f"/v1/datasets/{seg(dataset_id, 'dataset id')}/stage",
            body=body,
            headers=self._headers(*who),
            timeout=max(self.stage_timeout, self._transport.timeout),
        ).json()

        def delete(name: str) -> None:
            self._call("DELETE", f"/v1/staged/{seg(name, 'staged name')}", headers=self._headers(*who))

        return StagedFile.from_json(d, dataset_id=dataset_id, source=path, snapshot=snapshot, delete=delete)

    def delete_staged(
        self, name: Union[str, StagedFile], *, caller: Optional[str] = UNSET, token: Optional[Token] = UNSET
    ) -> None:
        """Delete a staged copy by its name (only the caller it was staged for may)."""
        if isinstance(name, StagedFile):
            name.delete()
            return
        self._call("DELETE", f"/v1/staged/{seg(name, 'staged name')}", headers=self._headers(caller, token))


# --- what the calls return ----------------------------------------------------------------------


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
