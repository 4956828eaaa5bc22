"""Cloud Storage through the sidecar (``client.storage``): downscoped credentials for one space
and one access kind, a token source that asks again before expiry, V4 signed URLs and
uploads/downloads with them (urllib, no Google library), and commits of uploads to the loading
zone.

    cred = w.storage.credentials("org1", "loadingzone", "upload")
    cred.bucket, cred.prefix                       # ('org1-landing', 'incoming/')
    gcs = google.cloud.storage.Client(project="my-project", credentials=cred.google_credentials())

    w.storage.upload_file("org1", "loadingzone", "batch-7/a.csv", "a.csv")   # a signed PUT
    w.storage.commit("org1", "loadingzone", "batch-7/")                      # list + announce
"""

from __future__ import annotations

import datetime as _dt
import http.client
import ipaddress
import mimetypes
import os
import socket
import tempfile
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO, Callable, Dict, List, Optional, Protocol, Tuple, Union
from urllib.parse import urlsplit, urlunsplit

from ._common import UNSET, Token
from ._http import USER_AGENT
from .errors import BadRequest, ProtocolError, TransferError, WardenTimeout
from .models import Commit, SignedURL, StorageCredential, _google_credentials_class, _naive_utc, _utc_now

if TYPE_CHECKING:  # pragma: no cover
    from .client import Client

__all__ = ["Storage", "TokenSource", "ACCESS_KINDS", "SIGNED_URL_METHODS"]

#: The seed's access kinds: upload only into the org's loading zone, upload/main straight into a
#: main space (for holders of the delete right there), delete also deletes.
ACCESS_KINDS = ("read", "upload", "upload/main", "delete")
SIGNED_URL_METHODS = ("GET", "HEAD", "PUT", "DELETE")

PATH_CREDENTIALS = "/v1/storage/credentials"
PATH_SIGNED_URL = "/v1/storage/signed-url"
PATH_COMMIT = "/v1/storage/commit"

#: What an upload reads from a file per write, and a download per read.
_CHUNK = 1 << 20
#: google-auth refreshes a token when less than this is left (google.auth._helpers
#: REFRESH_THRESHOLD, 3 min 45 s in google-auth 2.x) and refuses a refresh that returns one
#: inside it: the refresh hook hands out tokens with more than this left.
_GOOGLE_REFRESH_THRESHOLD = _dt.timedelta(minutes=4)
#: A credential that comes back already inside the refresh margin (the broker hands out its
#: cached token until only its --storage-cache-buffer is left) is asked for again at most this
#: often, so a margin longer than the broker's buffer costs one request per interval, not one
#: per token() call.
_RECHECK = _dt.timedelta(seconds=30)
#: Until this close to expiry, a credential is always asked for again.
_HARD_MARGIN = _dt.timedelta(seconds=10)

Who = Tuple[Optional[str], Optional[Token]]
#: What upload_file sends: a path (str or os.PathLike), bytes, or a binary file open for reading.
UploadSource = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, BinaryIO]


def _refuse(message: str) -> BadRequest:
    return BadRequest(400, "bad_request", message + " (refused by the client)")


def _name(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    return value


def check_object_name(name: object, what: str = "object name", *, directory: bool = False) -> str:
    """Refuse, before anything is sent, what the broker refuses: an empty name, an absolute
    one, '.', '..' or empty parts, NUL and other control characters, backslashes. A directory
    (a commit's root) may end in '/'. The broker checks again; this only fails early."""
    text = _name(name, what)
    body = text[:-1] if directory and text.endswith("/") else text
    if body == "":
        raise _refuse(f"{what} is empty")
    if body.startswith("/") or body.startswith("\\"):
        raise _refuse(f"{what} {name!r} must be relative to the space, not an absolute path")
    if any(ord(c) < 0x20 or ord(c) == 0x7F or c == "\\" for c in body):
        raise _refuse(f"{what} {name!r} contains a NUL or control character or a backslash")
    if any(part in ("", ".", "..") for part in body.split("/")):
        raise _refuse(f"{what} {name!r} must be a clean path without '.', '..' or empty parts")
    return text


def _access(access: Any) -> str:
    a = _name(access, "access")
    if a not in ACCESS_KINDS:
        raise _refuse(f"access {a!r} is not read, upload, upload/main or delete")
    return a


def _method(method: Any) -> str:
    m = _name(method, "method").upper()
    if m not in SIGNED_URL_METHODS:
        raise _refuse(f"method {method!r} is not GET, HEAD, PUT or DELETE")
    return m


class Storage:
    """Cloud Storage credentials (``client.storage``), for the spaces of the orgs the pod's
    owner and the caller both have a role in. Needs the sidecar in broker mode (local mode:
    NotEnabled) and the webhook with ``--storage``.

    Every call takes ``caller=``/``token=`` like the dataset calls (default: the client's).
    """

    def __init__(self, client: Client) -> None:
        self._c = client
        #: Socket timeout of uploads and downloads with signed URLs (seconds without progress).
        self.transfer_timeout = 300.0
        # For tests: the clock of token sources.
        self._now: Callable[[], _dt.datetime] = _utc_now
        # The URL opener of transfers, given the URL's host (proxies from the environment, none
        # for loopback hosts, no redirects).
        self._opener: Callable[[str], urllib.request.OpenerDirector] = _opener

    def _who(self, caller: Any, token: Any) -> Who:
        if caller is UNSET and token is UNSET:
            return self._c._caller, self._c._token
        return (None if caller is UNSET else caller, None if token is UNSET else token)

    def _post(self, path: str, body: Dict[str, str], who: Who, timeout: Optional[float] = None) -> Any:
        return self._c._call("POST", path, body=body, headers=self._c._headers(*who), timeout=timeout).json()

    # --- the sidecar's endpoints ------------------------------------------------------------

    def credentials(
        self,
        org: str,
        space: str,
        access: str = "read",
        *,
        caller: Optional[str] = UNSET,
        token: Optional[Token] = UNSET,
    ) -> StorageCredential:
        """A downscoped token for one space: ``read`` (list and read), ``upload`` (also create,
        in the org's loading zone only), ``upload/main`` (also create, straight into a main
        space: needs the trustee role there) or ``delete`` (also delete). It reaches
        ``gs://{bucket}/{prefix}`` only, until ``expires_at`` (by default 1 h for read, 30 min
        for both uploads, 10 min for delete).

        Forbidden names the role the owner or the caller lacks, or that the kind does not fit
        the space (upload into a main space, upload/main into the loading zone); NotFound: no
        such org or space."""
        return self._credentials(_name(org, "org"), _name(space, "space"), _access(access), self._who(caller, token))

    def _credentials(self, org: str, space: str, access: str, who: Who) -> StorageCredential:
        d = self._post(PATH_CREDENTIALS, {"org": org, "space": space, "access": access}, who)
        return StorageCredential.from_json(d)

    def token_source(
        self,
        org: str,
        space: str,
        access: str = "read",
        *,
        caller: Optional[str] = UNSET,
        token: Optional[Token] = UNSET,
        refresh_margin: _dt.timedelta = _dt.timedelta(minutes=5),
    ) -> TokenSource:
        """A cached source of credentials for one space and access kind: ``.token()`` answers
        from memory while more than ``refresh_margin`` is left and asks the sidecar again
        below that. ``.google_credentials()`` makes it a google-auth credential that refreshes
        itself through the sidecar. Nothing is asked until the first use."""
        org, space, access = _name(org, "org"), _name(space, "space"), _access(access)
        if not isinstance(refresh_margin, _dt.timedelta) or refresh_margin < _dt.timedelta(0):
            raise ValueError("refresh_margin must be a timedelta of zero or more")
        who = self._who(caller, token)
        return TokenSource(
            lambda: self._credentials(org, space, access, who),
            org=org, space=space, access=access, refresh_margin=refresh_margin, now=self._now,
        )

    def signed_url(
        self,
        org: str,
        space: str,
        object: str,
        method: str = "GET",
        *,
        caller: Optional[str] = UNSET,
        token: Optional[Token] = UNSET,
    ) -> SignedURL:
        """A V4 signed URL for one object (``object`` relative to the space's prefix; the
        answer's ``object`` is the full name). GET and HEAD need read access, PUT upload,
        DELETE delete. Use it with any HTTP client; no Google library, no token."""
        body = {
            "org": _name(org, "org"),
            "space": _name(space, "space"),
            "object": check_object_name(object),
            "method": _method(method),
        }
        u = SignedURL.from_json(self._post(PATH_SIGNED_URL, body, self._who(caller, token)))
        if u.method.upper() != body["method"]:
            raise ProtocolError(f"signed URL: asked for {body['method']}, the answer is for {u.method!r}")
        return u

    def commit(
        self,
        org: str,
        space: str,
        root_dir: str,
        *,
        caller: Optional[str] = UNSET,
        token: Optional[Token] = UNSET,
        timeout: Optional[float] = None,
    ) -> Commit:
        """Declare an upload under ``root_dir`` (relative to the loading zone's prefix) complete:
        the broker lists what is there and announces it on the org's Pub/Sub topic. Needs
        upload rights in the org's loading zone. Conflict when nothing is there (or the org
        has no topic), PayloadTooLarge when more objects are there than one commit takes
        (commit the subdirectories one by one)."""
        body = {
            "org": _name(org, "org"),
            "space": _name(space, "space"),
            "root_dir": check_object_name(root_dir, "root_dir", directory=True),
        }
        # The broker lists and publishes (up to ~30 s); give it longer than a plain call.
        t = timeout if timeout is not None else max(self._c._transport.timeout, 60.0)
        return Commit.from_json(self._post(PATH_COMMIT, body, self._who(caller, token), timeout=t))

    # --- transfers with signed URLs -----------------------------------------------------------

    def upload_file(
        self,
        org: str,
        space: str,
        object: str,
        data: UploadSource,
        *,
        content_type: Optional[str] = None,
        caller: Optional[str] = UNSET,
        token: Optional[Token] = UNSET,
        timeout: Optional[float] = None,
    ) -> SignedURL:
        """Upload ``data`` (a path, bytes, or a binary file open for reading, sent from its
        current position) to ``object`` in the space with a signed PUT URL: no Google library,
        no token in the app. Files are streamed, never read into memory whole. Returns the
        signed URL used (``.bucket`` and ``.object``, the full name). Into the loading zone
        this needs what ``upload`` needs, into a main space what ``upload/main`` needs (the
        trustee role). TransferError when Cloud Storage refuses the upload."""
        check_object_name(object)
        if content_type is None:
            content_type = mimetypes.guess_type(object)[0] or "application/octet-stream"
        if any(c in content_type for c in "\r\n\0"):
            raise ValueError("content_type holds a line break or NUL byte")
        with _Body.of(data) as body:
            u = self.signed_url(org, space, object, "PUT", caller=caller, token=token)
            self._transfer(u, body=body, headers={"Content-Type": content_type}, timeout=timeout)
        return u

    def download(
        self,
        org: str,
        space: str,
        object: str,
        *,
        caller: Optional[str] = UNSET,
        token: Optional[Token] = UNSET,
        timeout: Optional[float] = None,
    ) -> bytes:
        """The content of ``object`` in the space, read with a signed GET URL (in memory: use
        ``download_file`` for big objects)."""
        u = self.signed_url(org, space, object, "GET", caller=caller, token=token)
        sink = _BytesSink()
        self._transfer(u, sink=sink, timeout=timeout)
        return b"".join(sink.parts)

    def download_file(
        self,
        org: str,
        space: str,
        object: str,
        dest: Union[str, "os.PathLike[str]"],
        *,
        caller: Optional[str] = UNSET,
        token: Optional[Token] = UNSET,
        timeout: Optional[float] = None,
    ) -> Path:
        """Stream ``object`` into the file ``dest`` (into a folder: under the object's last
        name) with a signed GET URL; the file appears whole or not at all. Returns its path."""
        check_object_name(object)
        path = Path(dest)
        if path.is_dir():
            path = path / object.rsplit("/", 1)[-1]
        u = self.signed_url(org, space, object, "GET", caller=caller, token=token)
        fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".part", dir=str(path.parent))
        try:
            with os.fdopen(fd, "wb") as fh:
                self._transfer(u, sink=fh, timeout=timeout)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        return path

    def _transfer(
        self,
        u: SignedURL,
        *,
        body: Optional[_Body] = None,
        headers: Optional[Dict[str, str]] = None,
        sink: Optional[_Sink] = None,
        timeout: Optional[float] = None,
    ) -> int:
        """One request to Cloud Storage with a signed URL; the answer's body goes to sink.
        Returns the number of bytes received."""
        t = self.transfer_timeout if timeout is None else timeout
        shown = _redact(u.url)
        hdrs: Dict[str, str] = {"User-Agent": USER_AGENT}
        hdrs.update(headers or {})
        data: Any = None
        if body is not None:
            hdrs["Content-Length"] = str(body.length)
            data = body
        req = urllib.request.Request(u.url, data=data, method=u.method, headers=hdrs)
        host = urlsplit(u.url).hostname or ""
        try:
            with self._opener(host).open(req, timeout=t) as resp:
                received = 0
                if sink is not None:
                    while True:
                        chunk = resp.read(_CHUNK)
                        if not chunk:
                            break
                        sink.write(chunk)
                        received += len(chunk)
                return received
        except urllib.error.HTTPError as e:
            raw = b""
            try:
                raw = e.read(4096)
            except (OSError, http.client.HTTPException):
                pass
            text = raw.decode("utf-8", "replace").strip()
            where = f" (a redirect to {_redact(e.headers.get('Location') or '')!r}; not followed)" if 300 <= e.code < 400 else ""
            raise TransferError(
                f"{u.method} {shown}: Cloud Storage answered {e.code} {e.reason}{where}" + (f": {text[:500]}" if text else ""),
                status=e.code, method=u.method, url=shown, body=text,
            ) from None
        except urllib.error.URLError as e:
            if isinstance(e.reason, _SourceChanged):
                raise TransferError(f"{u.method} {shown}: {e.reason}", method=u.method, url=shown) from None
            if isinstance(e.reason, (socket.timeout, TimeoutError)):
                raise WardenTimeout(f"{u.method} {shown}: no answer from Cloud Storage within {t:g} s") from None
            raise TransferError(f"{u.method} {shown}: Cloud Storage is not reachable: {e.reason}", method=u.method, url=shown) from None
        except (socket.timeout, TimeoutError):
            raise WardenTimeout(f"{u.method} {shown}: no answer from Cloud Storage within {t:g} s") from None
        except _SourceChanged as e:
            raise TransferError(f"{u.method} {shown}: {e}", method=u.method, url=shown) from None
        except (OSError, http.client.HTTPException) as e:
            raise TransferError(
                f"{u.method} {shown}: the transfer broke ({type(e).__name__}: {e})", method=u.method, url=shown
            ) from None


class TokenSource:
    """Credentials for one space and access kind, cached in the app: ``token()`` answers from
    memory while more than ``refresh_margin`` is left, and asks the sidecar again below that
    (the broker caches too; this saves the round trip). Safe to share between threads.

    With google-auth (2.x), ``google_credentials()`` is a ``google.oauth2.credentials.Credentials``
    whose ``refresh_handler`` is this source, so Google's clients refresh through the sidecar::

        src = w.storage.token_source("org1", "curated", "read")
        gcs = google.cloud.storage.Client(project="my-project", credentials=src.google_credentials())

    or, for code that wants a credentials class of its own, a subclass::

        class WardenCredentials(google.auth.credentials.Credentials):
            def __init__(self, src):
                super().__init__()
                self._src = src
            def refresh(self, request):
                self.token, self.expiry = self._src.refresh_handler(request)
    """

    def __init__(
        self,
        fetch: Callable[[], StorageCredential],
        *,
        org: str,
        space: str,
        access: str,
        refresh_margin: _dt.timedelta,
        now: Callable[[], _dt.datetime] = _utc_now,
    ) -> None:
        self._fetch = fetch
        self.org, self.space, self.access = org, space, access
        self.refresh_margin = refresh_margin
        self._now = now
        self._lock = threading.Lock()
        self._cred: Optional[StorageCredential] = None
        self._fetched_at: Optional[_dt.datetime] = None
        #: How many times the sidecar was asked (for tests and curiosity).
        self.fetches = 0

    def __repr__(self) -> str:
        state = f"expires {self._cred.expires_at.isoformat(timespec='seconds')}" if self._cred else "nothing fetched"
        return f"TokenSource(org={self.org!r}, space={self.space!r}, access={self.access!r}, {state})"

    def _stale(self, c: StorageCredential, now: _dt.datetime, margin: _dt.timedelta) -> bool:
        if not c.expired(margin, now=now):
            return False
        if c.expired(_HARD_MARGIN, now=now) or self._fetched_at is None:
            return True
        return now - self._fetched_at >= _RECHECK

    def _get(self, margin: _dt.timedelta) -> StorageCredential:
        with self._lock:
            now = self._now()
            c = self._cred
            if c is None or self._stale(c, now, margin):
                c = self._fetch()
                self.fetches += 1
                self._cred, self._fetched_at = c, now
            return c

    def credential(self) -> StorageCredential:
        """The current credential: the cached one while more than the margin is left, else a
        new one from the sidecar (which raises what the sidecar answers: Forbidden, ...)."""
        return self._get(self.refresh_margin)

    def token(self) -> str:
        """The current access token (see ``credential``)."""
        return self.credential().token

    def invalidate(self) -> None:
        """Forget the cached credential: the next use asks the sidecar."""
        with self._lock:
            self._cred, self._fetched_at = None, None

    def refresh_handler(self, request: Any = None, scopes: Any = None) -> Tuple[str, _dt.datetime]:
        """google-auth's refresh hook: ``(token, expiry)`` with the expiry as a naive UTC
        datetime, as google-auth keeps them. ``request`` and ``scopes`` are ignored: the token's
        reach is the space's, whatever scopes a library asks for."""
        c = self._get(max(self.refresh_margin, _GOOGLE_REFRESH_THRESHOLD))
        return c.token, _naive_utc(c.expires_at)

    def google_credentials(self) -> Any:
        """A ``google.oauth2.credentials.Credentials`` that starts with the current token and
        refreshes through this source (``refresh_handler``, google-auth 2.x). Needs google-auth;
        ImportError with a clear message otherwise."""
        cls = _google_credentials_class()
        token, expiry = self.refresh_handler()
        try:
            return cls(token, expiry=expiry, refresh_handler=self.refresh_handler)
        except TypeError as e:  # google-auth 1.x has no refresh_handler
            raise ImportError(f"TokenSource.google_credentials() needs google-auth 2.x (refresh_handler): {e}") from e


# --- plumbing of transfers ----------------------------------------------------------------------


class _Sink(Protocol):
    def write(self, b: bytes, /) -> Any: ...


class _SourceChanged(OSError):
    """The file being uploaded shrank while it was read."""


class _Body:
    """What an upload sends: bytes, or a file read in 1 MiB blocks (http.client reads any object
    with .read), exactly ``length`` bytes from where it was positioned."""

    def __init__(self, data: Any, length: int, close: Optional[IO[bytes]] = None) -> None:
        self._data = data
        self.length = length
        self._left = length
        self._close = close

    @classmethod
    def of(cls, src: UploadSource) -> _Body:
        if isinstance(src, (bytes, bytearray, memoryview)):
            b = bytes(src)
            return cls(_BytesReader(b), len(b))
        if isinstance(src, (str, os.PathLike)):
            fh: IO[bytes] = open(src, "rb")
            try:
                size = os.fstat(fh.fileno()).st_size
            except BaseException:
                fh.close()
                raise
            return cls(fh, size, close=fh)
        if hasattr(src, "read"):
            if isinstance(getattr(src, "encoding", None), str):
                raise TypeError("upload_file needs a binary file (open(path, 'rb')), not a text one")
            try:
                pos = src.tell()
                end = src.seek(0, os.SEEK_END)
                src.seek(pos)
            except (OSError, AttributeError, ValueError) as e:
                raise TypeError(f"upload_file needs a seekable binary file (its size is sent first): {e}") from None
            return cls(src, end - pos)
        raise TypeError(f"upload_file takes a path, bytes or a binary file, not {type(src).__name__}")

    def read(self, n: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        want = self._left if n is None or n < 0 else min(max(n, _CHUNK), self._left)
        chunk = self._data.read(want)
        if not isinstance(chunk, (bytes, bytearray)):
            raise TypeError("upload_file needs a binary file (its read() returned text)")
        if not chunk:
            raise _SourceChanged(f"the source ended {self._left} bytes early: it shrank while it was uploaded")
        self._left -= len(chunk)
        return bytes(chunk)

    def __enter__(self) -> _Body:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._close is not None:
            self._close.close()


class _BytesReader:
    def __init__(self, data: bytes) -> None:
        self._data, self._pos = data, 0

    def read(self, n: int) -> bytes:
        chunk = self._data[self._pos:self._pos + n]
        self._pos += len(chunk)
        return chunk


class _BytesSink:
    def __init__(self) -> None:
        self.parts: List[bytes] = []

    def write(self, b: bytes) -> int:
        self.parts.append(b)
        return len(b)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Signed URLs are for one host: a redirect is reported, not followed."""

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> None:
        return None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _opener(host: str) -> urllib.request.OpenerDirector:
    """Proxies from the environment (HTTPS_PROXY, NO_PROXY) for Cloud Storage, as a cluster's
    egress may need them; never for loopback hosts (an emulator), as Go's clients do."""
    handlers: List[Any] = [_NoRedirect()]
    if _is_loopback(host):
        handlers.append(urllib.request.ProxyHandler({}))
    return urllib.request.build_opener(*handlers)


def _redact(url: str) -> str:
    """A signed URL without its query: the signature there is a credential."""
    try:
        p = urlsplit(url)
    except ValueError:
        return "<a malformed URL>"
    return urlunsplit((p.scheme, p.netloc, p.path, "…" if p.query else "", ""))

