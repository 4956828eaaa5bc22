"""Cloud Storage transfers with signed URLs (``client.storage.upload_file``, ``download``,
``download_file``): what an upload sends, where a download goes, the URL opener (the
environment's proxies, none for loopback, no redirects) and what errors say (never the
signature)."""

from __future__ import annotations

import http.client
import ipaddress
import os
import socket
import urllib.error
import urllib.request
from typing import IO, Any, BinaryIO, Callable, Dict, List, Optional, Protocol, Union
from urllib.parse import urlsplit, urlunsplit

from ._http import USER_AGENT
from ._storage_models import SignedURL
from .errors import TransferError, WardenTimeout

__all__ = ["transfer", "UploadSource"]

#: What an upload reads from a file per write, and a download per read.
_CHUNK = 1 << 20

#: What upload_file sends: a path (str or os.PathLike), bytes, or a binary file open for reading.
UploadSource = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, BinaryIO]


def transfer(
    opener: Callable[[str], urllib.request.OpenerDirector],
    u: SignedURL,
    *,
    timeout: float,
    body: Optional[_Body] = None,
    headers: Optional[Dict[str, str]] = None,
    sink: Optional[_Sink] = None,
) -> int:
    """One request to Cloud Storage with a signed URL, through ``opener(host)``; the answer's
    body goes to sink. Returns the number of bytes received."""
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
        with opener(host).open(req, timeout=timeout) as resp:
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
            raise WardenTimeout(f"{u.method} {shown}: no answer from Cloud Storage within {timeout:g} s") from None
        raise TransferError(f"{u.method} {shown}: Cloud Storage is not reachable: {e.reason}", method=u.method, url=shown) from None
    except (socket.timeout, TimeoutError):
        raise WardenTimeout(f"{u.method} {shown}: no answer from Cloud Storage within {timeout:g} s") from None
    except _SourceChanged as e:
        raise TransferError(f"{u.method} {shown}: {e}", method=u.method, url=shown) from None
    except (OSError, http.client.HTTPException) as e:
        raise TransferError(
            f"{u.method} {shown}: the transfer broke ({type(e).__name__}: {e})", method=u.method, url=shown
        ) from None


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

