"""A fake sidecar on http.server: the secrets endpoints as docs/secrets.md and pkg/sidecar
implement them (KV versions as ETag "vN", check-and-set against If-Match or the version last
read, 409 on a stale version, 404, 400 for bad keys and bodies, 413 over the size limit), the
GCP identity endpoints with a scripted sequence of answers, the storage endpoints as
docs/cloud-storage.md describes them (credentials, signed URLs that point back at this server's
/gcs/ routes, which play Cloud Storage's XML API for PUT and GET, and commits that list what
was uploaded there), and switches for broken answers (not JSON, wrong shape, oversized, slow,
connection dropped)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, quote, unquote, urlsplit

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
        # Storage: spaces (org, space) -> (bucket, prefix, loading zone); the objects uploaded
        # through signed URLs, "bucket/name" -> (content type, bytes); the clock expiries are
        # computed from; how long credentials live.
        self.spaces: Dict[Tuple[str, str], Tuple[str, str, bool]] = {
            ("org1", "loadingzone"): ("org1-landing", "incoming/", True),
            ("org1", "curated"): ("org1-data", "curated/", False),
            ("org1", "archive"): ("org1-data", "archive/", False),
        }
        self.objects: Dict[str, Tuple[str, bytes]] = {}
        self.now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc)
        self.lifetime = dt.timedelta(minutes=30)
        self.minted = 0
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

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

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
            if path.startswith("/gcs/"):
                return self._gcs(method, unquote(path[len("/gcs/"):]), query, headers, body)
            if path.startswith("/v1/storage/") and method == "POST":
                return self._storage(path[len("/v1/storage/"):], headers, body)
            if path == "/v1/secrets":
                if method == "GET":
                    return self._list(query)
                if method == "PUT":
                    return self._put(headers, body)
                if method == "DELETE":
                    return self._delete_all(headers)
                return self._err(405, "method_not_allowed", f"{method} /v1/secrets is not supported; use GET, PUT or DELETE")
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

    def _delete_all(self, headers: Any) -> Scripted:
        ifv, ok = self._if_match(headers)
        if not ok:
            return self._err(400, "bad_request", f"bad secret value: If-Match {headers.get('If-Match')!r} is not a version such as \"v3\"")
        if ifv is not None and ifv != self.version:
            return self._err(409, "conflict", f"secrets changed: version {ifv} was read, {self.version} is current")
        self.data = {}
        self.version += 1
        return (204, self._etag(), b"")

    def _put(self, headers: Any, body: bytes) -> Scripted:
        ifv, ok = self._if_match(headers)
        if not ok:
            return self._err(400, "bad_request", f"bad request body: If-Match {headers.get('If-Match')!r} is not a version such as \"v3\"")
        if len(body) > self.max_bytes + 4096:
            return self._err(413, "payload_too_large", f"secrets too large: the request body is over the {self.max_bytes}-byte limit")
        try:
            data = json.loads(body)
        except ValueError as e:
            return self._err(400, "bad_request", f"bad secret value: want a JSON object of secrets: {e}")
        if not isinstance(data, dict):
            return self._err(400, "bad_request", "bad secret value: want a JSON object of secrets")
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

    # --- storage -------------------------------------------------------------------------------

    def _storage(self, op: str, headers: Any, body: bytes) -> Scripted:
        try:
            req = json.loads(body)
        except ValueError as e:
            return self._err(400, "bad_request", f"bad request body: {e}")
        if not isinstance(req, dict):
            return self._err(400, "bad_request", "bad request body: want a JSON object")
        if "caller" in req:
            return self._err(400, "bad_request", "bad caller: the caller comes from X-Warden-Caller or the bearer token, not from the body")
        want = {"credentials": {"org", "space", "access"}, "signed-url": {"org", "space", "object", "method"}, "commit": {"org", "space", "root_dir"}}
        if op not in want:
            return self._err(404, "not_found", f"no such endpoint: POST /v1/storage/{op}")
        if set(req) - want[op] or not all(isinstance(v, str) for v in req.values()):
            return self._err(400, "bad_request", f"bad request body: fields {sorted(req)}")
        space = self.spaces.get((req.get("org", ""), req.get("space", "")))
        if space is None:
            return self._err(404, "not_found", f"no such space: org {req.get('org')!r} has no space {req.get('space')!r}")
        bucket, prefix, loading_zone = space
        now = self.now()
        caller = headers.get("X-Warden-Caller") or ""
        if op == "credentials":
            if req.get("access") not in ("read", "upload", "upload/main", "delete"):
                return self._err(400, "bad_request", f"bad storage request: access {req.get('access')!r} is not read, upload, upload/main or delete")
            where = f"{req['org']}/{req['space']}"
            if req["access"] == "upload" and not loading_zone:
                return self._err(403, "forbidden", f"access denied: uploads go through the loading zone: {where} is a main space, which takes upload/main (needs role trustee)")
            if req["access"] == "upload/main" and loading_zone:
                return self._err(403, "forbidden", f"access denied: upload/main is for main spaces: {where} is the loading zone, which takes upload")
            self.minted += 1
            return self._json(200, {
                "access_token": f"ya29.fake-{self.minted}", "token_type": "Bearer",
                "expires_at": _rfc3339(now + self.lifetime),
                "org": req["org"], "space": req["space"], "access": req["access"], "bucket": bucket, "prefix": prefix,
            })
        if op == "signed-url":
            method, obj = req.get("method", ""), req.get("object", "")
            if method not in ("GET", "HEAD", "PUT", "DELETE"):
                return self._err(400, "bad_request", f"bad storage request: method {method!r} is not GET, HEAD, PUT or DELETE")
            if not obj or obj.startswith("/") or any(p in ("", ".", "..") for p in obj.split("/")):
                return self._err(400, "bad_request", f"bad storage request: object name {obj!r} must be a clean path")
            self.minted += 1
            expires = now + self.lifetime
            name = prefix + obj
            url = (f"{self.url}/gcs/{bucket}/{quote(name)}?X-Goog-Algorithm=GOOG4-RSA-SHA256"
                   f"&X-Goog-Expires=1800&X-Goog-Signature=secret-signature-{self.minted}")
            return self._json(200, {"url": url, "method": method, "expires_at": _rfc3339(expires), "bucket": bucket, "object": name})
        root = req.get("root_dir", "").rstrip("/")
        if not loading_zone:
            return self._err(400, "bad_request", f"bad storage request: space {req['org']}/{req['space']} is not the org's loading zone")
        full = prefix + root + "/"
        found = sorted((k, v) for k, v in self.objects.items() if k.startswith(bucket + "/" + full))
        if not found:
            return self._err(409, "conflict", f"nothing to commit: no object under gs://{bucket}/{full}")
        objects = [{
            "name": k[len(bucket) + 1:], "size": len(data),
            "md5": base64.b64encode(hashlib.md5(data).digest()).decode(), "crc32c": "AAAAAA==",
            "generation": 1700000000000000 + i, "updated": _rfc3339(now),
        } for i, (k, (_, data)) in enumerate(found)]
        by = "serviceAccount:apps/svc-prod-app-1" + (f" for {caller}" if caller else "")
        return self._json(200, {
            "org": req["org"], "space": req["space"], "bucket": bucket, "root_dir": full, "objects": objects,
            "topic": "projects/my-project/topics/org1-commits", "message_id": "4711",
            "committed_at": _rfc3339(now), "committed_by": by,
        })

    def _gcs(self, method: str, key: str, query: Dict[str, List[str]], headers: Any, body: bytes) -> Scripted:
        """Cloud Storage's XML API, as far as signed URLs need it."""
        def xml(status: int, code: str, msg: str) -> Scripted:
            return status, {"Content-Type": "application/xml"}, (
                f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{msg}</Message></Error>"
            ).encode()

        if not query.get("X-Goog-Signature"):
            return xml(403, "AccessDenied", "Anonymous caller does not have storage.objects.get access.")
        if method == "PUT":
            self.objects[key] = (headers.get("Content-Type") or "", body)
            return 200, {"ETag": '"' + hashlib.md5(body).hexdigest() + '"'}, b""
        if method in ("GET", "HEAD"):
            if key not in self.objects:
                return xml(404, "NoSuchKey", "The specified key does not exist.")
            ctype, data = self.objects[key]
            return 200, {"Content-Type": ctype or "application/octet-stream"}, data if method == "GET" else b""
        if method == "DELETE":
            self.objects.pop(key, None)
            return 204, {}, b""
        return xml(405, "MethodNotAllowed", method)


def _rfc3339(t: dt.datetime) -> str:
    """As Go encodes a time.Time: nanoseconds, 'Z'."""
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"


def binding(state: str, org: str = "org1", bound_in: float = 0.0) -> Scripted:
    now = dt.datetime.now(dt.timezone.utc)
    return FakeSidecar._json(200, {
        "org": org, "gcp_service_account": f"{org}-svc@my-project.iam.gserviceaccount.com", "state": state,
        "written_at": now.strftime("%Y-%m-%dT%H:%M:%S.%f123Z"),
        "bound_at": (now + dt.timedelta(seconds=bound_in)).isoformat(),
    })
