"""A fake sidecar on http.server: the secrets endpoints as docs/secrets.md and pkg/sidecar
implement them (KV versions as ETag "vN", check-and-set against If-Match or the version last
read, 409 on a stale version, 404, 400 for bad keys and bodies, 413 over the size limit), the
GCP identity endpoints with a scripted sequence of answers, and switches for broken answers
(not JSON, wrong shape, oversized, slow, connection dropped)."""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, unquote, urlsplit

KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,255}$")

# A scripted answer: (status, headers, body bytes), or a callable that handles the request.
Scripted = Tuple[int, Dict[str, str], bytes]


class FakeSidecar:
    def __init__(self, max_bytes: int = 1 << 20) -> None:
        self.lock = threading.Lock()
        self.data: Dict[str, str] = {}
        self.version = 0
        self.last_read: Optional[int] = None
        self.max_bytes = max_bytes
        self.requests: List[Tuple[str, str, Dict[str, str], bytes]] = []
        # (method, path) -> list of scripted answers, used first-in first-out before the real one.
        self.script: Dict[Tuple[str, str], List[Any]] = {}
        # Called between a client's read and its write: simulates another writer.
        self.before_put: Optional[Callable[[], None]] = None
        self.identity_answers: List[Any] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                fake.requests.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                u = urlsplit(self.path)
                key = (self.command, u.path)
                with fake.lock:
                    queue = fake.script.get(key)
                    scripted = queue.pop(0) if queue else None
                if scripted == "drop":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if isinstance(scripted, tuple) and scripted[0] == "sleep":
                    time.sleep(scripted[1])
                    scripted = None
                if scripted is not None:
                    status, headers, raw = scripted
                else:
                    status, headers, raw = fake.route(self.command, u.path, parse_qs(u.query), self.headers, body)
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    if raw:
                        self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client gave up (a timeout test)

            do_GET = do_PUT = do_POST = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- helpers -------------------------------------------------------------------------------

    def on(self, method: str, path: str, *answers: Any) -> None:
        with self.lock:
            self.script.setdefault((method, path), []).extend(answers)

    def write_as_other(self, data: Dict[str, str]) -> None:
        """Another pod's sidecar writes: a new version this fake's readers have not seen."""
        with self.lock:
            self.data, self.version = dict(data), self.version + 1

    @staticmethod
    def _json(status: int, v: Any, headers: Optional[Dict[str, str]] = None) -> Scripted:
        h = {"Content-Type": "application/json", "Cache-Control": "no-store", **(headers or {})}
        return status, h, (json.dumps(v) + "\n").encode()

    def _err(self, status: int, code: str, msg: str) -> Scripted:
        return self._json(status, {"error": msg, "code": code})

    def _etag(self) -> Dict[str, str]:
        return {"ETag": f'"v{self.version}"'}

    @staticmethod
    def _if_match(headers: Any) -> Tuple[Optional[int], bool]:
        h = (headers.get("If-Match") or "").strip()
        if not h:
            return None, True
        m = re.fullmatch(r"v?(\d+)", h.strip('"'))
        return (int(m.group(1)), True) if m else (None, False)

    # --- the API -------------------------------------------------------------------------------

    def route(self, method: str, path: str, query: Dict[str, List[str]], headers: Any, body: bytes) -> Scripted:
        with self.lock:
            if path == "/v1/secrets":
                if method == "GET":
                    return self._list(query)
                if method == "PUT":
                    return self._put(headers, body)
                return self._err(405, "method_not_allowed", f"{method} /v1/secrets is not supported; use GET or PUT")
            if path.startswith("/v1/secrets/"):
                key = unquote(path[len("/v1/secrets/"):])
                if not KEY_RE.match(key):
                    return self._err(400, "bad_request", f"bad secret key: {key!r} must be 1-256 letters, digits, '.', '_' or '-'")
                if method == "GET":
                    self.last_read = self.version
                    if key not in self.data:
                        return self._err(404, "not_found", f"secret not found: {key!r}")
                    return self._json(200, {"key": key, "value": self.data[key]}, self._etag())
                if method == "DELETE":
                    return self._delete(key, headers)
                return self._err(405, "method_not_allowed", "use GET or DELETE")
            if path == "/v1/identity/gcp" and method == "POST":
                answer = self.identity_answers.pop(0) if len(self.identity_answers) > 1 else self.identity_answers[0]
                return answer() if callable(answer) else answer
        return self._err(404, "not_found", f"no such endpoint: {method} {path}")

    def _list(self, query: Dict[str, List[str]]) -> Scripted:
        all_ = query.get("all", [""])[0]
        self.last_read = self.version
        if all_ in ("", "false"):
            return self._json(200, {"keys": sorted(self.data)}, self._etag())
        if all_ == "true":
            return self._json(200, self.data, self._etag())
        return self._err(400, "bad_request", "bad request body: all must be true or false")

    def _put(self, headers: Any, body: bytes) -> Scripted:
        ifv, ok = self._if_match(headers)
        if not ok:
            return self._err(400, "bad_request", f"bad request body: If-Match {headers.get('If-Match')!r} is not a version such as \"v3\"")
        if len(body) > self.max_bytes + 4096:
            return self._err(413, "payload_too_large", f"secrets too large: the request body is over the {self.max_bytes}-byte limit")
        try:
            data = json.loads(body)
        except ValueError as e:
            return self._err(400, "bad_request", f"bad request body: want a JSON object of string values: {e}")
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            return self._err(400, "bad_request", "bad request body: want a JSON object of string values")
        for k in data:
            if not KEY_RE.match(k):
                return self._err(400, "bad_request", f"bad secret key: {k!r}")
        size = len(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode())
        if size > self.max_bytes:
            return self._err(413, "payload_too_large", f"secrets too large: {size} bytes, the limit is {self.max_bytes}")
        if self.before_put is not None:
            hook, self.before_put = self.before_put, None
            self.lock.release()
            try:
                hook()
            finally:
                self.lock.acquire()
        cas = ifv if ifv is not None else (self.last_read if self.last_read is not None else self.version)
        if cas != self.version:
            return self._err(409, "conflict", f"secrets changed: check-and-set against version {cas}, {self.version} is current")
        self.data, self.version = dict(data), self.version + 1
        self.last_read = self.version
        return 204, self._etag(), b""

    def _delete(self, key: str, headers: Any) -> Scripted:
        ifv, ok = self._if_match(headers)
        if not ok:
            return self._err(400, "bad_request", "bad request body: If-Match is not a version")
        if ifv is not None and ifv != self.version:
            return self._err(409, "conflict", f"secrets changed: version {ifv} was read, {self.version} is current")
        if key not in self.data:
            return self._err(404, "not_found", f"secret not found: {key!r}")
        del self.data[key]
        self.version += 1
        self.last_read = self.version
        return 204, self._etag(), b""


def binding(state: str, org: str = "org1", bound_in: float = 0.0) -> Scripted:
    now = dt.datetime.now(dt.timezone.utc)
    return FakeSidecar._json(200, {
        "org": org, "gcp_service_account": f"{org}-svc@my-project.iam.gserviceaccount.com", "state": state,
        "written_at": now.strftime("%Y-%m-%dT%H:%M:%S.%f123Z"),
        "bound_at": (now + dt.timedelta(seconds=bound_in)).isoformat(),
    })
