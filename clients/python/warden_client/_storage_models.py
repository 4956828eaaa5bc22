"""Cloud Storage's values: downscoped credentials, signed URLs, committed objects and commits
(what ``client.storage`` returns), and the optional google-auth wiring."""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import importlib
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional
from urllib.parse import urlsplit

from ._decode import _field, _list, _required_time, parse_time
from .errors import ProtocolError

__all__ = ["StorageCredential", "SignedURL", "StoredObject", "Commit"]


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
