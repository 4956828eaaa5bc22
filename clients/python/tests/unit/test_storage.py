"""client.storage against the stdlib fake sidecar of tests/fake_sidecar.py: the answers' shapes,
every error code, callers, the client's own checks, the token source's refresh at the margin (a
fake clock), uploads and downloads with signed URLs against the fake's Cloud Storage routes,
google-auth wiring with a stand-in module (google-auth itself is never needed), and hostile
answers."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
import types
import unittest
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple, Type
from unittest import mock

import warden_client as wc
from tests.fake_sidecar import FakeSidecar, _rfc3339
from warden_client.storage import ACCESS_KINDS, _opener

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)


class StorageTestCase(unittest.TestCase):
    def setUp(self) -> None:
        self.fake = FakeSidecar()
        self.addCleanup(self.fake.close)
        self.w = wc.Client(self.fake.url, caller="user-ds-1", timeout=5)
        self.st = self.w.storage

    def posts(self, path: str) -> List[Dict[str, Any]]:
        return [{"headers": h, "body": json.loads(b)} for m, p, h, b in self.fake.requests if m == "POST" and p == path]

    def gcs_requests(self) -> List[Any]:
        return [r for r in self.fake.requests if r[1].startswith("/gcs/")]


class ShapesTest(StorageTestCase):
    def test_credentials(self) -> None:
        c = self.st.credentials("org1", "loadingzone", "upload")
        self.assertEqual((c.org, c.space, c.access, c.bucket, c.prefix), ("org1", "loadingzone", "upload", "org1-landing", "incoming/"))
        self.assertEqual(c.token, "ya29.fake-1")
        self.assertEqual(c.token_type, "Bearer")
        self.assertIsNotNone(c.expires_at.tzinfo, "an aware datetime")
        self.assertAlmostEqual(c.seconds_left(), 1800, delta=5)
        self.assertFalse(c.expired())
        self.assertTrue(c.expired(dt.timedelta(minutes=31)))
        self.assertFalse(c.expired(dt.timedelta(minutes=29)))
        self.assertTrue(c.expired(now=c.expires_at), "expired at its expiry")
        self.assertEqual(c.authorization_header(), {"Authorization": "Bearer ya29.fake-1"})
        self.assertEqual(c.url, "gs://org1-landing/incoming/")
        self.assertNotIn("ya29", repr(c), "a notebook cell never prints the token")
        [req] = self.posts("/v1/storage/credentials")
        self.assertEqual(req["body"], {"org": "org1", "space": "loadingzone", "access": "upload"}, "no caller in the body")
        self.assertEqual(req["headers"]["x-warden-caller"], "user-ds-1")
        self.assertEqual(req["headers"]["content-type"], "application/json")
        self.assertEqual(self.st.credentials("org1", "curated").access, "read", "read by default")

    def test_upload_main(self) -> None:
        # The seed's upload/main: straight into a main space; plain upload only into the
        # loading zone. The sidecar decides; the client passes the kind and the refusal on.
        c = self.st.credentials("org1", "archive", "upload/main")
        self.assertEqual((c.access, c.bucket, c.prefix), ("upload/main", "org1-data", "archive/"))
        [req] = self.posts("/v1/storage/credentials")
        self.assertEqual(req["body"], {"org": "org1", "space": "archive", "access": "upload/main"})
        self.assertIsNotNone(self.st.token_source("org1", "archive", "upload/main").token())
        with self.assertRaises(wc.Forbidden) as cm:
            self.st.credentials("org1", "archive", "upload")
        self.assertIn("uploads go through the loading zone", cm.exception.message)
        with self.assertRaises(wc.Forbidden) as cm:
            self.st.credentials("org1", "loadingzone", "upload/main")
        self.assertIn("which takes upload", cm.exception.message)
        self.assertIn("upload/main", ACCESS_KINDS)

    def test_callers(self) -> None:
        self.st.credentials("org1", "curated", caller="user-ds-2")
        self.st.credentials("org1", "curated", caller=None)
        wc.Client(self.fake.url, token=lambda: "jwt.for.ann").storage.credentials("org1", "curated")
        self.w.as_caller("user-ds-3").storage.signed_url("org1", "curated", "a.csv")
        reqs = self.posts("/v1/storage/credentials")
        self.assertEqual(reqs[0]["headers"]["x-warden-caller"], "user-ds-2")
        self.assertNotIn("x-warden-caller", reqs[1]["headers"], "caller=None acts for the owner")
        self.assertNotIn("authorization", reqs[1]["headers"])
        self.assertEqual(reqs[2]["headers"]["authorization"], "Bearer jwt.for.ann")
        self.assertNotIn("x-warden-caller", reqs[2]["headers"])
        [signed] = self.posts("/v1/storage/signed-url")
        self.assertEqual(signed["headers"]["x-warden-caller"], "user-ds-3")
        for r in reqs + [signed]:
            self.assertNotIn("caller", r["body"])
        with self.assertRaises(ValueError):
            self.st.credentials("org1", "curated", caller="user-ds-1", token="jwt")

    def test_signed_url(self) -> None:
        u = self.st.signed_url("org1", "loadingzone", "batch-7/a.csv", "put")
        self.assertEqual((u.method, u.bucket, u.object), ("PUT", "org1-landing", "incoming/batch-7/a.csv"))
        self.assertTrue(u.url.startswith(self.fake.url + "/gcs/org1-landing/incoming/batch-7/a.csv?"))
        self.assertEqual(u.gs_url, "gs://org1-landing/incoming/batch-7/a.csv")
        self.assertIsNotNone(u.expires_at.tzinfo)
        self.assertFalse(u.expired())
        self.assertNotIn("secret-signature", repr(u), "the URL is a credential: not in the repr")
        [req] = self.posts("/v1/storage/signed-url")
        self.assertEqual(req["body"], {"org": "org1", "space": "loadingzone", "object": "batch-7/a.csv", "method": "PUT"})
        self.assertEqual(self.st.signed_url("org1", "curated", "x/y.parquet").method, "GET", "GET by default")

    def test_commit(self) -> None:
        self.fake.objects["org1-landing/incoming/batch-7/a.csv"] = ("text/csv", b"id\n1\n")
        self.fake.objects["org1-landing/incoming/batch-7/sub/b.csv"] = ("text/csv", b"id\n2\n3\n")
        self.fake.objects["org1-landing/incoming/batch-70/other.csv"] = ("text/csv", b"not in the batch")
        c = self.st.commit("org1", "loadingzone", "batch-7/")
        self.assertEqual((c.org, c.space, c.bucket, c.root_dir), ("org1", "loadingzone", "org1-landing", "incoming/batch-7/"))
        self.assertEqual(c.names, ["incoming/batch-7/a.csv", "incoming/batch-7/sub/b.csv"])
        self.assertEqual(len(c), 2)
        self.assertEqual([o.size for o in c], [5, 7])
        self.assertEqual(c.total_size, 12)
        a = c.objects[0]
        self.assertIsInstance(a, wc.StoredObject)
        self.assertEqual(a.md5_hex(), hashlib.md5(b"id\n1\n").hexdigest())
        self.assertEqual(a.crc32c, "AAAAAA==")
        self.assertGreater(a.generation, 0)
        self.assertIsNotNone(a.updated and a.updated.tzinfo)
        self.assertEqual((c.topic, c.message_id), ("projects/my-project/topics/org1-commits", "4711"))
        self.assertEqual(c.committed_by, "serviceAccount:apps/svc-prod-app-1 for user-ds-1")
        self.assertIsNotNone(c.committed_at and c.committed_at.tzinfo)
        [req] = self.posts("/v1/storage/commit")
        self.assertEqual(req["body"], {"org": "org1", "space": "loadingzone", "root_dir": "batch-7/"})
        self.assertEqual(self.st.commit("org1", "loadingzone", "batch-7").names, c.names, "the trailing '/' is optional")
        with self.assertRaises(wc.Conflict) as cm:
            self.st.commit("org1", "loadingzone", "empty-batch/")
        self.assertIn("nothing to commit", cm.exception.message)
        with self.assertRaises(wc.BadRequest):
            self.st.commit("org1", "curated", "batch-7/")


class ErrorsTest(StorageTestCase):
    CASES = [
        (400, "bad_request", "bad storage request: access \"write\" is not read, upload, upload/main or delete", wc.BadRequest),
        (401, "unauthorized", "bad caller token: token is expired", wc.Unauthorized),
        (403, "forbidden", "access denied: caller user:x needs role supplier in space org1/loadingzone (has none)", wc.Forbidden),
        (404, "not_found", "no such space: org \"org1\" has no space \"nope\"", wc.NotFound),
        (409, "conflict", "nothing to commit: no object under gs://org1-landing/incoming/b/", wc.Conflict),
        (413, "payload_too_large", "too many objects for one commit: more than 10000", wc.PayloadTooLarge),
        (501, "not_implemented", "Cloud Storage credentials need the Warden broker: this sidecar runs in local mode", wc.NotEnabled),
        (502, "gcp_denied", "a Google API refused Warden's call: IAM Credentials: permission denied", wc.GCPDenied),
        (503, "unavailable", "a Google API Warden needs is unavailable: STS: connection refused", wc.Unavailable),
        (503, "timeout", "the broker did not answer in time", wc.RequestTimeout),
        (500, "internal", "boom", wc.InternalError),
    ]

    def test_every_code_on_every_endpoint(self) -> None:
        calls: Dict[str, Callable[[], Any]] = {
            "/v1/storage/credentials": lambda: self.st.credentials("org1", "loadingzone", "upload"),
            "/v1/storage/signed-url": lambda: self.st.signed_url("org1", "loadingzone", "a.csv", "PUT"),
            "/v1/storage/commit": lambda: self.st.commit("org1", "loadingzone", "b/"),
        }
        exc: Type[wc.APIError]
        for status, code, message, exc in self.CASES:
            for path, call in calls.items():
                with self.subTest(code=code, path=path):
                    self.fake.on("POST", path, FakeSidecar._json(status, {"error": message, "code": code}))
                    with self.assertRaises(exc) as cm:
                        call()
                    e = cm.exception
                    self.assertEqual((e.status, e.code, e.message), (status, code, message))
                    self.assertIsInstance(e, wc.APIError)
        self.assertFalse(issubclass(wc.GCPDenied, wc.IAMDenied), "a storage refusal by Google, not an IAM change")
        self.assertFalse(issubclass(wc.GCPDenied, wc.Unavailable), "not worth retrying")

    def test_upload_file_raises_the_sidecars_refusal_before_any_transfer(self) -> None:
        self.fake.on("POST", "/v1/storage/signed-url", FakeSidecar._json(403, {
            "error": "access denied: caller user:user-ds-2 needs role supplier in space org1/loadingzone (has none)", "code": "forbidden"}))
        with self.assertRaises(wc.Forbidden) as cm:
            self.st.upload_file("org1", "loadingzone", "a.csv", b"x")
        self.assertIn("supplier", cm.exception.message)
        self.assertEqual(self.gcs_requests(), [])

    def test_real_fake_answers(self) -> None:
        with self.assertRaises(wc.NotFound):
            self.st.credentials("org1", "nope")
        with self.assertRaises(wc.NotFound):
            self.st.credentials("org9", "curated")


class ClientChecksTest(StorageTestCase):
    def test_refused_before_sending(self) -> None:
        bad_objects = ["", "..", "../x", "a/../b", "a/./b", "./a", "a//b", "a/", "/etc/passwd", "\\\\host\\share",
                       "a\\b", "nul\0byte", "line\nbreak", "tab\there", "del\x7f"]
        for bad in bad_objects:
            with self.subTest(object=bad):
                with self.assertRaises(wc.BadRequest) as cm:
                    self.st.signed_url("org1", "loadingzone", bad, "PUT")
                self.assertEqual((cm.exception.status, cm.exception.code), (400, "bad_request"))
                self.assertIn("refused by the client", cm.exception.message)
                with self.assertRaises(wc.BadRequest):
                    self.st.upload_file("org1", "loadingzone", bad, b"data")
                with self.assertRaises(wc.BadRequest):
                    self.st.download("org1", "loadingzone", bad)
        for bad in ["", "/", "..", "../", "/abs/", "a/../../b/", "x//", "a\0/"]:
            with self.subTest(root_dir=bad), self.assertRaises(wc.BadRequest):
                self.st.commit("org1", "loadingzone", bad)
        for access in ["write", "READ", "", "admin", "read "]:
            with self.subTest(access=access), self.assertRaises(wc.BadRequest):
                self.st.credentials("org1", "curated", access)
            with self.assertRaises(wc.BadRequest):
                self.st.token_source("org1", "curated", access)
        for method in ["POST", "PATCH", "", "GET "]:
            with self.subTest(method=method), self.assertRaises(wc.BadRequest):
                self.st.signed_url("org1", "curated", "a.csv", method)
        self.assertEqual(self.fake.requests, [], "nothing reached the sidecar")
        with self.assertRaises(TypeError):
            self.st.credentials("org1", 7)  # type: ignore[arg-type]
        with self.assertRaises(TypeError):
            self.st.signed_url("org1", "curated", Path("a.csv"))  # type: ignore[arg-type]
        with self.assertRaises(TypeError):
            self.st.commit(None, "loadingzone", "x")  # type: ignore[arg-type]
        with self.assertRaises(ValueError):
            self.st.token_source("org1", "curated", refresh_margin=dt.timedelta(seconds=-1))

    def test_valid_names_pass(self) -> None:
        for ok in ["a.csv", "batch-7/sub/part-0000.parquet", "name with spaces.txt", "ünïcode/ß.csv", ".hidden", "a..b", "x" * 900]:
            with self.subTest(object=ok[:20]):
                self.assertEqual(self.st.signed_url("org1", "curated", ok).object, "curated/" + ok)


class FakeClock:
    def __init__(self, t: dt.datetime = T0) -> None:
        self.t = t

    def __call__(self) -> dt.datetime:
        return self.t

    def advance(self, **kw: float) -> None:
        self.t += dt.timedelta(**kw)


class TokenSourceTest(StorageTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.clock = FakeClock()
        self.fake.now = self.clock
        self.st._now = self.clock

    def requests(self) -> int:
        return len(self.posts("/v1/storage/credentials"))

    def test_refresh_at_the_margin(self) -> None:
        src = self.st.token_source("org1", "loadingzone", "upload")
        self.assertEqual(self.requests(), 0, "nothing is asked before the first use")
        self.assertEqual(src.token(), "ya29.fake-1")
        self.assertEqual(src.credential().expires_at, T0 + dt.timedelta(minutes=30))
        self.clock.advance(minutes=24, seconds=59)  # 5 min 1 s left: from memory
        self.assertEqual(src.token(), "ya29.fake-1")
        self.assertEqual(self.requests(), 1)
        self.clock.advance(seconds=2)  # 4 min 59 s left: asked again
        self.assertEqual(src.token(), "ya29.fake-2")
        self.assertEqual(self.requests(), 2)
        self.assertEqual(src.token(), "ya29.fake-2")
        self.assertEqual((src.fetches, self.requests()), (2, 2))
        body = self.posts("/v1/storage/credentials")[-1]
        self.assertEqual(body["body"], {"org": "org1", "space": "loadingzone", "access": "upload"})
        self.assertEqual(body["headers"]["x-warden-caller"], "user-ds-1", "the caller the source was made for")
        src.invalidate()
        self.assertEqual(src.token(), "ya29.fake-3")
        self.assertIn("upload", repr(src))
        self.assertNotIn("ya29", repr(src))

    def test_custom_margin_and_caller(self) -> None:
        src = self.st.token_source("org1", "curated", caller="user-ds-2", refresh_margin=dt.timedelta(minutes=20))
        src.token()
        self.clock.advance(minutes=9)
        src.token()
        self.assertEqual(self.requests(), 1)
        self.clock.advance(minutes=2)  # 19 min left
        src.token()
        self.assertEqual(self.requests(), 2)
        self.assertTrue(all(r["headers"]["x-warden-caller"] == "user-ds-2" for r in self.posts("/v1/storage/credentials")))

    def test_a_token_handed_out_inside_the_margin_is_rechecked_at_most_every_30_s(self) -> None:
        # The broker hands out its cached token until its own buffer is left: with a longer
        # margin here, the answer comes back already inside it.
        self.fake.lifetime = dt.timedelta(minutes=3)
        src = self.st.token_source("org1", "curated")
        self.assertEqual(src.token(), "ya29.fake-1")
        self.clock.advance(seconds=29)
        self.assertEqual(src.token(), "ya29.fake-1")
        self.assertEqual(self.requests(), 1)
        self.clock.advance(seconds=2)
        self.assertEqual(src.token(), "ya29.fake-2")
        self.assertEqual(self.requests(), 2)
        # Close to expiry it always asks.
        self.fake.lifetime = dt.timedelta(seconds=5)
        self.clock.advance(minutes=10)
        src.token()
        src.token()
        self.assertEqual(self.requests(), 4)

    def test_errors_are_raised_and_not_cached(self) -> None:
        src = self.st.token_source("org1", "loadingzone", "upload")
        self.fake.on("POST", "/v1/storage/credentials",
                     FakeSidecar._json(503, {"error": "STS unavailable", "code": "unavailable"}))
        with self.assertRaises(wc.Unavailable):
            src.token()
        self.assertEqual(src.token(), "ya29.fake-1")
        self.clock.advance(minutes=26)
        self.fake.on("POST", "/v1/storage/credentials",
                     FakeSidecar._json(403, {"error": "caller user:user-ds-1 needs role supplier", "code": "forbidden"}))
        with self.assertRaises(wc.Forbidden):
            src.token()

    def test_refresh_handler_for_google_auth(self) -> None:
        src = self.st.token_source("org1", "curated", refresh_margin=dt.timedelta(minutes=1))
        token, expiry = src.refresh_handler(object(), ["https://www.googleapis.com/auth/devstorage.read_only"])
        self.assertEqual(token, "ya29.fake-1")
        self.assertIsNone(expiry.tzinfo, "google-auth keeps naive UTC expiries")
        self.assertEqual(expiry, (T0 + dt.timedelta(minutes=30)).replace(tzinfo=None))
        # google-auth refreshes with 3 min 45 s left and refuses a token inside that: the hook
        # asks again below 4 minutes even though the source's own margin is 1 minute.
        self.clock.advance(minutes=26, seconds=30)
        self.assertEqual(src.token(), "ya29.fake-1")
        self.assertEqual(src.refresh_handler()[0], "ya29.fake-2")

    def test_thread_safe_single_fetch(self) -> None:
        src = self.st.token_source("org1", "curated")
        tokens: List[str] = []
        threads = [threading.Thread(target=lambda: tokens.append(src.token())) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(set(tokens), {"ya29.fake-1"})
        self.assertEqual(self.requests(), 1)


class GoogleAuthTest(StorageTestCase):
    def test_without_google_auth(self) -> None:
        cred = self.st.credentials("org1", "curated")
        src = self.st.token_source("org1", "curated")
        blocked = {"google": None, "google.oauth2": None, "google.oauth2.credentials": None}
        with mock.patch.dict(sys.modules, blocked):
            for f in (cred.google_credentials, src.google_credentials):
                with self.assertRaises(ImportError) as cm:
                    f()
                self.assertIn("pip install google-auth", str(cm.exception))
                self.assertIn("upload_file", str(cm.exception), "points at signed URLs")
        # The package never imports google by itself.
        probe = "import sys, warden_client as wc; wc.Client('http://127.0.0.1:1').storage; print(sorted(m for m in sys.modules if m.startswith('google')))"
        out = subprocess.run([sys.executable, "-c", probe], cwd=str(Path(__file__).resolve().parent.parent),
                             capture_output=True, text=True, check=True).stdout
        self.assertEqual(out.strip(), "[]")

    def stand_in(self, refresh_handler: bool = True) -> Dict[str, Any]:
        made: Dict[str, Any] = {}

        class Credentials:
            if refresh_handler:
                def __init__(self, token: Optional[str], expiry: Optional[dt.datetime] = None,
                             refresh_handler: Any = None) -> None:
                    made.update(token=token, expiry=expiry, refresh_handler=refresh_handler)
            else:
                def __init__(self, token: Optional[str], expiry: Optional[dt.datetime] = None) -> None:  # type: ignore[misc]
                    made.update(token=token, expiry=expiry)

        google = types.ModuleType("google")
        oauth2 = types.ModuleType("google.oauth2")
        creds = types.ModuleType("google.oauth2.credentials")
        creds.Credentials = Credentials  # type: ignore[attr-defined]
        google.oauth2 = oauth2  # type: ignore[attr-defined]
        oauth2.credentials = creds  # type: ignore[attr-defined]
        self.modules = {"google": google, "google.oauth2": oauth2, "google.oauth2.credentials": creds}
        return made

    def test_wiring_with_a_stand_in_module(self) -> None:
        made = self.stand_in()
        cred = self.st.credentials("org1", "curated")
        src = self.st.token_source("org1", "curated")
        with mock.patch.dict(sys.modules, self.modules):
            cred.google_credentials()
            self.assertEqual(made["token"], cred.token)
            self.assertEqual(made["expiry"], cred.expires_at.astimezone(UTC).replace(tzinfo=None))
            self.assertIsNone(made["refresh_handler"])
            src.google_credentials()
            self.assertEqual(made["token"], "ya29.fake-2")
            self.assertIsNone(made["expiry"].tzinfo)
            self.assertEqual(made["refresh_handler"], src.refresh_handler)
        old = self.stand_in(refresh_handler=False)
        with mock.patch.dict(sys.modules, self.modules):
            with self.assertRaises(ImportError) as cm:
                src.google_credentials()
            self.assertIn("2.x", str(cm.exception))
            cred.google_credentials()
            self.assertEqual(old["token"], cred.token)


class TransferTest(StorageTestCase):
    def test_upload_and_download(self) -> None:
        u = self.st.upload_file("org1", "loadingzone", "batch-7/a.csv", b"id,v\n1,2\n")
        self.assertEqual((u.bucket, u.object, u.method), ("org1-landing", "incoming/batch-7/a.csv", "PUT"))
        self.assertEqual(self.fake.objects["org1-landing/incoming/batch-7/a.csv"], ("text/csv", b"id,v\n1,2\n"))
        self.assertEqual(self.st.download("org1", "loadingzone", "batch-7/a.csv"), b"id,v\n1,2\n")
        # Nothing of the sidecar's reaches Cloud Storage: no caller, no token.
        for m, path, headers, _ in self.gcs_requests():
            self.assertNotIn("x-warden-caller", headers)
            self.assertNotIn("authorization", headers)
            self.assertTrue(headers["user-agent"].startswith("warden-client-python/"))
        put = [r for r in self.gcs_requests() if r[0] == "PUT"][0]
        self.assertEqual(put[2]["content-length"], "9")
        signed = self.posts("/v1/storage/signed-url")
        self.assertEqual([r["body"]["method"] for r in signed], ["PUT", "GET"])
        self.assertTrue(all(r["headers"]["x-warden-caller"] == "user-ds-1" for r in signed))

    def test_upload_a_file_streamed(self) -> None:
        data = os.urandom(3 << 20) + b"tail"
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "big.bin"
            p.write_bytes(data)
            self.st.upload_file("org1", "loadingzone", "batch-8/big.bin", p)
            self.st.upload_file("org1", "loadingzone", "batch-8/big-from-str", str(p), content_type="application/x-test")
            with open(p, "rb") as fh:
                fh.seek(len(data) - 4)
                self.st.upload_file("org1", "loadingzone", "batch-8/tail.txt", fh)
            self.assertEqual(self.fake.objects["org1-landing/incoming/batch-8/big.bin"], ("application/octet-stream", data))
            self.assertEqual(self.fake.objects["org1-landing/incoming/batch-8/big-from-str"], ("application/x-test", data))
            self.assertEqual(self.fake.objects["org1-landing/incoming/batch-8/tail.txt"], ("text/plain", b"tail"))
            self.st.upload_file("org1", "loadingzone", "batch-8/mv", memoryview(b"mv"))
            self.st.upload_file("org1", "loadingzone", "batch-8/empty.csv", b"")
            self.assertEqual(self.fake.objects["org1-landing/incoming/batch-8/empty.csv"][1], b"")
            # Downloads: to a path, into a folder, and whole files only.
            out = self.st.download_file("org1", "loadingzone", "batch-8/big.bin", Path(d) / "copy.bin")
            self.assertEqual(out.read_bytes(), data)
            into = self.st.download_file("org1", "loadingzone", "batch-8/tail.txt", d)
            self.assertEqual((into, into.read_bytes()), (Path(d) / "tail.txt", b"tail"))
            before = sorted(os.listdir(d))
            with self.assertRaises(wc.TransferError) as cm:
                self.st.download_file("org1", "loadingzone", "batch-8/missing.bin", Path(d) / "missing.bin")
            self.assertEqual(cm.exception.status, 404)
            self.assertEqual(sorted(os.listdir(d)), before, "no partial file left behind")
            commit = self.st.commit("org1", "loadingzone", "batch-8")
            self.assertEqual(len(commit), 5)
            with self.assertRaises(TypeError):
                with open(p, "r", encoding="latin-1") as text:
                    self.st.upload_file("org1", "loadingzone", "batch-8/t", text)  # type: ignore[arg-type]
            with self.assertRaises(TypeError):
                self.st.upload_file("org1", "loadingzone", "batch-8/n", 42)  # type: ignore[arg-type]
            with self.assertRaises(FileNotFoundError):
                self.st.upload_file("org1", "loadingzone", "batch-8/n", Path(d) / "no-such-file")

    def test_cloud_storage_refusals(self) -> None:
        # An expired or tampered signature: Cloud Storage's XML error, without the signature.
        self.fake.on("PUT", "/gcs/org1-landing/incoming/a.csv", (403, {"Content-Type": "application/xml"},
                     b"<Error><Code>SignatureDoesNotMatch</Code><Message>Access denied.</Message></Error>"))
        with self.assertRaises(wc.TransferError) as cm:
            self.st.upload_file("org1", "loadingzone", "a.csv", b"x")
        e = cm.exception
        self.assertEqual((e.status, e.method), (403, "PUT"))
        self.assertIn("SignatureDoesNotMatch", str(e))
        self.assertIn("SignatureDoesNotMatch", e.body)
        self.assertNotIn("secret-signature", str(e), "the signature is a credential")
        self.assertNotIn("secret-signature", e.url)
        self.assertTrue(e.url.startswith(self.fake.url + "/gcs/org1-landing/incoming/a.csv"))
        self.assertIsInstance(e, wc.WardenError)
        with self.assertRaises(wc.TransferError) as cm:
            self.st.download("org1", "loadingzone", "missing.csv")
        self.assertEqual(cm.exception.status, 404)
        self.assertIn("NoSuchKey", str(cm.exception))
        # Redirects are reported, not followed.
        self.fake.on("GET", "/gcs/org1-landing/incoming/r.csv", (302, {"Location": "http://evil.example/x?sig=1"}, b""))
        with self.assertRaises(wc.TransferError) as cm:
            self.st.download("org1", "loadingzone", "r.csv")
        self.assertEqual(cm.exception.status, 302)
        self.assertIn("not followed", str(cm.exception))
        self.assertNotIn("sig=1", str(cm.exception))
        # A dropped connection.
        self.fake.on("GET", "/gcs/org1-landing/incoming/d.csv", "drop")
        with self.assertRaises(wc.TransferError) as cm:
            self.st.download("org1", "loadingzone", "d.csv")
        self.assertEqual(cm.exception.status, 0)
        # A slow one.
        self.fake.objects["org1-landing/incoming/slow.csv"] = ("text/csv", b"x")
        self.fake.on("GET", "/gcs/org1-landing/incoming/slow.csv", ("sleep", 1.5))
        with self.assertRaises(wc.WardenTimeout):
            self.st.download("org1", "loadingzone", "slow.csv", timeout=0.3)

    def test_a_source_that_shrinks(self) -> None:
        class Shrinking(io.BytesIO):
            def seek(self, pos: int, whence: int = 0) -> int:
                return 100 if whence == os.SEEK_END else super().seek(pos, whence)

        with self.assertRaises(wc.TransferError) as cm:
            self.st.upload_file("org1", "loadingzone", "s.bin", Shrinking(b"only ten b"))
        self.assertIn("shrank", str(cm.exception))

    def test_no_proxy_for_loopback(self) -> None:
        dead = "http://127.0.0.1:9"
        env = {"http_proxy": dead, "HTTP_PROXY": dead, "https_proxy": dead, "no_proxy": "", "NO_PROXY": ""}
        with mock.patch.dict(os.environ, env):
            self.st.upload_file("org1", "loadingzone", "p.csv", b"through no proxy")
            self.assertEqual(self.st.download("org1", "loadingzone", "p.csv"), b"through no proxy")
            handlers: List[Any] = getattr(_opener("storage.googleapis.com"), "handlers")
            proxies = [h for h in handlers if type(h).__name__ == "ProxyHandler"]
            self.assertEqual(getattr(proxies[0], "proxies", {}).get("https"), dead, "Cloud Storage: the environment's proxy")


class HostileAnswersTest(StorageTestCase):
    GOOD_CRED: Dict[str, Any] = {"access_token": "ya29.x", "token_type": "Bearer", "expires_at": "2026-11-26T10:30:00Z",
                 "org": "org1", "space": "curated", "access": "read", "bucket": "org1-data", "prefix": "curated/"}

    def cred_answer(self, **change: Any) -> Any:
        d = {**self.GOOD_CRED, **change}
        return FakeSidecar._json(200, {k: v for k, v in d.items() if v is not ...})

    def test_credentials(self) -> None:
        cases = [
            ((200, {}, b"{not json"), "not JSON"),
            ((200, {}, b""), "empty"),
            ((200, {}, b"[]"), "JSON object"),
            (self.cred_answer(access_token=...), "'access_token'"),
            (self.cred_answer(access_token=7), "'access_token'"),
            (self.cred_answer(access_token=""), "empty"),
            (self.cred_answer(access_token="a b\nc"), "whitespace"),
            (self.cred_answer(token_type="MAC"), "Bearer"),
            (self.cred_answer(expires_at="soon"), "RFC 3339"),
            (self.cred_answer(expires_at="0001-01-01T00:00:00Z"), "no expires_at"),
            (self.cred_answer(expires_at=...), "'expires_at'"),
            (self.cred_answer(bucket=None), "'bucket'"),
            (self.cred_answer(prefix=["x"]), "'prefix'"),
        ]
        for answer, text in cases:
            with self.subTest(text=text):
                self.fake.on("POST", "/v1/storage/credentials", answer)
                with self.assertRaises(wc.ProtocolError) as cm:
                    self.st.credentials("org1", "curated")
                self.assertIn(text, str(cm.exception))
        self.fake.on("POST", "/v1/storage/credentials", self.cred_answer(token_type="bearer"))
        self.assertEqual(self.st.credentials("org1", "curated").token_type, "Bearer")

    def test_oversized(self) -> None:
        small = wc.Client(self.fake.url, max_answer_bytes=2000).storage
        calls: List[Tuple[str, Callable[[], Any]]] = [
            ("/v1/storage/credentials", lambda: small.credentials("org1", "curated")),
            ("/v1/storage/commit", lambda: small.commit("org1", "loadingzone", "b")),
        ]
        for path, call in calls:
            self.fake.on("POST", path, FakeSidecar._json(200, {**self.GOOD_CRED, "access_token": "t" * 5000}))
            with self.subTest(path=path), self.assertRaises(wc.ProtocolError) as cm:
                call()
            self.assertIn("2000-byte limit", str(cm.exception))

    def test_signed_urls(self) -> None:
        good: Dict[str, Any] = {"url": "https://storage.googleapis.com/b/o?X-Goog-Signature=s", "method": "GET",
                "expires_at": _rfc3339(T0), "bucket": "b", "object": "o"}
        for url in ["file:///etc/passwd", "ftp://example.com/x", "data:text/plain,hi", "javascript:alert(1)", "http://", "/relative"]:
            with self.subTest(url=url):
                self.fake.on("POST", "/v1/storage/signed-url", FakeSidecar._json(200, {**good, "url": url}))
                with self.assertRaises(wc.ProtocolError):
                    self.st.download("org1", "curated", "o")
        self.fake.on("POST", "/v1/storage/signed-url", FakeSidecar._json(200, {**good, "method": "PUT"}))
        with self.assertRaises(wc.ProtocolError) as cm:
            self.st.signed_url("org1", "curated", "o")
        self.assertIn("asked for GET", str(cm.exception))
        self.fake.on("POST", "/v1/storage/signed-url", FakeSidecar._json(200, {**good, "url": 5}))
        with self.assertRaises(wc.ProtocolError):
            self.st.signed_url("org1", "curated", "o")
        self.assertEqual(self.gcs_requests(), [])

    def test_commits(self) -> None:
        good: Dict[str, Any] = {"org": "org1", "space": "loadingzone", "bucket": "b", "root_dir": "incoming/x/", "objects": None,
                "topic": "projects/p/topics/t", "message_id": "1", "committed_at": _rfc3339(T0), "committed_by": "me"}
        self.fake.on("POST", "/v1/storage/commit", FakeSidecar._json(200, good))
        self.assertEqual(self.st.commit("org1", "loadingzone", "x").objects, [], "Go's null slice")
        obj: Dict[str, Any] = {"name": "incoming/x/a", "size": 1, "md5": base64.b64encode(b"0" * 16).decode(), "generation": 1,
               "updated": _rfc3339(T0)}
        cases: List[Tuple[Dict[str, Any], str]] = [
            ({"objects": "a,b"}, "'objects'"),
            ({"objects": ["a"]}, "JSON object"),
            ({"objects": [{**obj, "size": "1"}]}, "'size'"),
            ({"objects": [{**obj, "size": True}]}, "'size'"),
            ({"objects": [{**obj, "md5": 5}]}, "md5"),
            ({"objects": [{**obj, "updated": "later"}]}, "RFC 3339"),
            ({"message_id": 4711}, "'message_id'"),
            ({"committed_at": "yesterday"}, "RFC 3339"),
        ]
        for bad, text in cases:
            with self.subTest(text=text):
                self.fake.on("POST", "/v1/storage/commit", FakeSidecar._json(200, {**good, **bad}))
                with self.assertRaises(wc.ProtocolError) as cm:
                    self.st.commit("org1", "loadingzone", "x")
                self.assertIn(text, str(cm.exception))
        self.fake.on("POST", "/v1/storage/commit", FakeSidecar._json(200, {**good, "objects": [{**obj, "md5": "!!"}]}))
        self.assertEqual(self.st.commit("org1", "loadingzone", "x").objects[0].md5_hex(), "", "undecodable md5")


if __name__ == "__main__":
    unittest.main()
