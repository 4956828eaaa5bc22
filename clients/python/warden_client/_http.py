"""HTTP to the sidecar with http.client: no proxies (the sidecar is on loopback, and
HTTP_PROXY must never see a caller's token), no redirects, bounded answers."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple
from urllib.parse import urlencode, urlsplit

from ._version import __version__
from .errors import ConfigurationError, ConnectionFailed, ProtocolError, WardenTimeout, error_for

USER_AGENT = f"warden-client-python/{__version__}"

# Large enough for 1 MiB of secrets JSON-escaped and a 10,000-entry listing; small enough that a
# runaway answer cannot eat a notebook's memory.
DEFAULT_MAX_ANSWER_BYTES = 64 << 20


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    data: bytes

    def header(self, name: str) -> Optional[str]:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        if not self.data:
            raise ProtocolError(f"the sidecar answered {self.status} with an empty body where JSON was expected", status=self.status)
        try:
            return json.loads(self.data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise ProtocolError(
                f"the sidecar answered {self.status} with a body that is not JSON ({e}): {_preview(self.data)}",
                status=self.status,
            ) from None


def _preview(data: bytes, n: int = 200) -> str:
    text = data[:n].decode("utf-8", "replace")
    return repr(text + ("…" if len(data) > n else ""))


def parse_base_url(url: str) -> Tuple[str, str, int, str]:
    """scheme, host, port, path prefix of a base URL such as http://127.0.0.1:8787."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise ConfigurationError(f"base URL {url!r}: {e}") from None
    if parts.scheme not in ("http", "https"):
        raise ConfigurationError(f"base URL {url!r} must start with http:// or https://")
    if not parts.hostname:
        raise ConfigurationError(f"base URL {url!r} has no host")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigurationError(f"base URL {url!r} must not carry credentials, a query or a fragment")
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    host = parts.hostname
    return parts.scheme, host, port, parts.path.rstrip("/")


class Transport:
    """One request per connection: the sidecar is on loopback, so connections are cheap, and
    the client stays safe to share between threads."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
        ssl_context: Optional[ssl.SSLContext] = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.scheme, self.host, self.port, self.prefix = parse_base_url(base_url)
        self.timeout = timeout
        self.max_answer_bytes = max_answer_bytes
        self.ssl_context = ssl_context

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        if self.scheme == "https":
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=self.ssl_context)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Optional[Mapping[str, str]] = None,
        body: Any = None,
        headers: Optional[Mapping[str, str]] = None,
        timeout: Optional[float] = None,
    ) -> Answer:
        """Send one request; return the answer when it is 2xx, raise the matching APIError when
        it is not, ConnectionFailed/WardenTimeout when there is none."""
        target = self.prefix + path
        if query:
            target += "?" + urlencode({k: v for k, v in query.items() if v is not None})
        hdrs: Dict[str, str] = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        data: Optional[bytes] = None
        if body is not None:
            data = json.dumps(body, separators=(",", ":")).encode("utf-8")
            hdrs["Content-Type"] = "application/json"
        if headers:
            hdrs.update(headers)
        for k, v in hdrs.items():
            if any(c in v for c in "\r\n\0"):
                raise ValueError(f"header {k} holds a line break or NUL byte")
        t = self.timeout if timeout is None else timeout
        url = self.base_url + path
        conn = self._connection(t)
        try:
            try:
                conn.request(method, target, body=data, headers=hdrs)
                resp = conn.getresponse()
                raw = resp.read(self.max_answer_bytes + 1)
            except socket.timeout:
                raise WardenTimeout(f"the Warden sidecar at {self.base_url} did not answer {method} {path} within {t:g} s") from None
            except ssl.SSLError as e:
                raise ConnectionFailed(f"TLS with the Warden sidecar at {self.base_url} failed: {e}", url=url) from None
            except (OSError, http.client.HTTPException) as e:
                raise ConnectionFailed(
                    f"the Warden sidecar is not reachable at {self.base_url} ({type(e).__name__}: {e}); "
                    "is this running in a Warden pod, and is WARDEN_PORT right?",
                    url=url,
                ) from None
        finally:
            conn.close()
        if len(raw) > self.max_answer_bytes:
            raise ProtocolError(
                f"the answer to {method} {path} is over the client's {self.max_answer_bytes}-byte limit", status=resp.status
            )
        answer = Answer(status=resp.status, headers={k.lower(): v for k, v in resp.getheaders()}, data=raw)
        if 200 <= resp.status < 300:
            return answer
        if 300 <= resp.status < 400:
            raise ProtocolError(
                f"{method} {path}: the sidecar answered {resp.status} (a redirect to {answer.header('Location')!r}); "
                "the client does not follow redirects",
                status=resp.status,
            )
        raise _error(answer, method, path)


def _error(a: Answer, method: str, path: str) -> Exception:
    code, message, body = "", "", {}
    try:
        decoded = json.loads(a.data.decode("utf-8")) if a.data else None
    except (UnicodeDecodeError, ValueError):
        decoded = None
    if isinstance(decoded, dict):
        body = decoded
        if isinstance(decoded.get("code"), str):
            code = decoded["code"]
        if isinstance(decoded.get("error"), str):
            message = decoded["error"]
    if not message:
        # Not Warden's JSON (a proxy, a crash): say what came back instead.
        message = f"{method} {path}: " + (_preview(a.data) if a.data else "empty answer")
    return error_for(a.status, code, message, body)
