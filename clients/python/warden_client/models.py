"""The values the client returns: plain, typed, immutable where it makes sense."""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import hashlib
import importlib
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Mapping, Optional
from urllib.parse import urlsplit

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
    "StorageCredential",
    "SignedURL",
    "StoredObject",
    "Commit",
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


class SecretValues(Dict[str, Any]):
    """All of the owner's secrets (a dict), with ``etag``: the version they were read at
    (``'"v3"'``), for a check-and-set write with ``Secrets.set_all(..., if_match=values.etag)``.

    The repr hides the values, so a notebook cell never prints them by accident."""

    def __init__(self, values: Mapping[str, Any], etag: Optional[str]) -> None:
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


# --- Cloud Storage ------------------------------------------------------------------------------


def _utc_now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def _naive_utc(t: _dt.datetime) -> _dt.datetime:
    """google-auth keeps expiries as naive datetimes in UTC."""
    return t.astimezone(_dt.timezone.utc).replace(tzinfo=None)


def _google_credentials_class() -> Any:
    """google.oauth2.credentials.Credentials, imported only when asked for: google-auth is
    never a dependency of this package."""
    try:
        mod = importlib.import_module("google.oauth2.credentials")
    except ImportError as e:
        raise ImportError(
            "google_credentials() needs the google-auth package, which warden-client does not depend on: "
            "pip install google-auth (google-cloud-storage brings it along). Without any Google library, "
            "use signed URLs: client.storage.upload_file(...) / download(...)"
        ) from e
    return mod.Credentials


def _required_time(d: Any, name: str, what: str) -> _dt.datetime:
    t = parse_time(_field(d, name, str, what), f"{what} {name}")
    if t is None:
        raise ProtocolError(f"{what}: the answer has no {name}")
    return t


@dataclass(frozen=True)
class StorageCredential:
    """A downscoped OAuth access token for one space and one access kind (``read``, ``upload`` or
    ``delete``): it reaches only ``gs://{bucket}/{prefix}...`` until ``expires_at``. Cloud
    Storage itself refuses it anywhere else. The repr never shows the token.

    With google-cloud-storage::

        cred = w.storage.credentials("org1", "curated", "read")
        gcs = storage.Client(project="my-project", credentials=cred.google_credentials())
        for blob in gcs.list_blobs(cred.bucket, prefix=cred.prefix): ...

    For work that outlives the token, use ``w.storage.token_source(...)`` instead.
    """

    token: str = field(repr=False)
    expires_at: _dt.datetime
    org: str
    space: str
    access: str
    bucket: str
    prefix: str
    token_type: str = "Bearer"

    @classmethod
    def from_json(cls, d: Any) -> StorageCredential:
        what = "storage credentials"
        token = _field(d, "access_token", str, what)
        if not token or any(c.isspace() for c in token):
            raise ProtocolError(f"{what}: access_token is empty or holds whitespace")
        token_type = _field(d, "token_type", str, what)
        if token_type.lower() != "bearer":
            raise ProtocolError(f"{what}: token_type {token_type!r} is not Bearer")
        return cls(
            token=token,
            token_type="Bearer",
            expires_at=_required_time(d, "expires_at", what),
            org=_field(d, "org", str, what),
            space=_field(d, "space", str, what),
            access=_field(d, "access", str, what),
            bucket=_field(d, "bucket", str, what),
            prefix=_field(d, "prefix", str, what),
        )

    @property
    def url(self) -> str:
        """Where the token reaches: ``gs://bucket/prefix``."""
        return f"gs://{self.bucket}/{self.prefix}"

    def seconds_left(self, *, now: Optional[_dt.datetime] = None) -> float:
        """Seconds until the token expires (negative once it has)."""
        return (self.expires_at - (now or _utc_now())).total_seconds()

    def expired(self, margin: _dt.timedelta = _dt.timedelta(0), *, now: Optional[_dt.datetime] = None) -> bool:
        """True when less than ``margin`` is left (with no margin: once it has expired)."""
        return self.expires_at - (now or _utc_now()) <= margin

    def authorization_header(self) -> Dict[str, str]:
        """``{"Authorization": "Bearer ..."}``, for Cloud Storage's JSON or XML API with any
        HTTP library (``requests.get(url, headers=cred.authorization_header())``)."""
        return {"Authorization": "Bearer " + self.token}

    def google_credentials(self) -> Any:
        """A ``google.oauth2.credentials.Credentials`` holding this token and its expiry, for
        ``google.cloud.storage.Client(credentials=...)``. It cannot refresh itself: once the
        token expires, Google's libraries raise ``RefreshError``; a token source's
        ``google_credentials()`` asks the sidecar again instead. Needs google-auth (ImportError
        with a clear message otherwise)."""
        cls = _google_credentials_class()
        return cls(self.token, expiry=_naive_utc(self.expires_at))


@dataclass(frozen=True)
class SignedURL:
    """A V4 signed URL for one object (``object`` is its full name in ``bucket``, the space's
    prefix included), valid for one ``method`` until ``expires_at``. Anyone holding the URL may
    use it until then: it is kept out of the repr."""

    url: str = field(repr=False)
    method: str
    expires_at: _dt.datetime
    bucket: str
    object: str

    @classmethod
    def from_json(cls, d: Any) -> SignedURL:
        what = "signed URL"
        url = _field(d, "url", str, what)
        try:
            parts = urlsplit(url)
        except ValueError as e:
            raise ProtocolError(f"{what}: url is not a URL: {e}") from None
        # Never let an answer point urllib at file://, ftp:// or data: URLs.
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ProtocolError(f"{what}: url must be an http(s) URL, got scheme {parts.scheme!r}")
        return cls(
            url=url,
            method=_field(d, "method", str, what),
            expires_at=_required_time(d, "expires_at", what),
            bucket=_field(d, "bucket", str, what),
            object=_field(d, "object", str, what),
        )

    @property
    def gs_url(self) -> str:
        return f"gs://{self.bucket}/{self.object}"

    def expired(self, margin: _dt.timedelta = _dt.timedelta(0), *, now: Optional[_dt.datetime] = None) -> bool:
        return self.expires_at - (now or _utc_now()) <= margin


@dataclass(frozen=True)
class StoredObject:
    """One object a commit found. ``md5`` and ``crc32c`` are base64, as Cloud Storage reports
    them ("" when it did not)."""

    name: str
    size: int
    generation: int
    updated: Optional[_dt.datetime]
    md5: str = ""
    crc32c: str = ""

    @classmethod
    def from_json(cls, d: Any) -> StoredObject:
        what = "committed object"
        md5 = d.get("md5", "") if isinstance(d, dict) else ""
        crc = d.get("crc32c", "") if isinstance(d, dict) else ""
        if not isinstance(md5, str) or not isinstance(crc, str):
            raise ProtocolError(f"{what}: md5 and crc32c must be strings")
        return cls(
            name=_field(d, "name", str, what),
            size=_field(d, "size", int, what),
            generation=_field(d, "generation", int, what),
            updated=parse_time(d.get("updated"), f"{what} updated"),
            md5=md5,
            crc32c=crc,
        )

    def md5_hex(self) -> str:
        """The MD5 as hex digits, to compare with ``hashlib.md5(data).hexdigest()``."""
        try:
            return base64.b64decode(self.md5, validate=True).hex() if self.md5 else ""
        except binascii.Error:
            return ""


@dataclass(frozen=True)
class Commit:
    """A committed upload: the objects found under ``root_dir`` (the full prefix in ``bucket``,
    ending in '/') and the Pub/Sub message (``message_id`` on ``topic``) that announced them to
    processing. Iterating yields the objects."""

    org: str
    space: str
    bucket: str
    root_dir: str
    objects: List[StoredObject]
    topic: str
    message_id: str
    committed_at: Optional[_dt.datetime]
    committed_by: str

    def __iter__(self) -> Iterator[StoredObject]:
        return iter(self.objects)

    def __len__(self) -> int:
        return len(self.objects)

    @property
    def names(self) -> List[str]:
        return [o.name for o in self.objects]

    @property
    def total_size(self) -> int:
        return sum(o.size for o in self.objects)

    @classmethod
    def from_json(cls, d: Any) -> Commit:
        what = "commit"
        return cls(
            org=_field(d, "org", str, what),
            space=_field(d, "space", str, what),
            bucket=_field(d, "bucket", str, what),
            root_dir=_field(d, "root_dir", str, what),
            objects=[StoredObject.from_json(o) for o in _list(d, "objects", what, optional=True)],
            topic=_field(d, "topic", str, what),
            message_id=_field(d, "message_id", str, what),
            committed_at=parse_time(d.get("committed_at"), f"{what} committed_at"),
            committed_by=_field(d, "committed_by", str, what),
        )
