"""client.storage's calls to the sidecar against the stdlib fake sidecar: the answers' shapes,
every error code on every endpoint, callers, and the client's own checks of names, kinds and
methods before anything is sent."""

from __future__ import annotations

import datetime as dt
import hashlib
import unittest
from pathlib import Path
from typing import Any, Callable, Dict, Type

import warden_client as wc
from tests.unit.cases import StorageTestCase
from tests.unit.fake_sidecar import FakeSidecar
from warden_client.storage import ACCESS_KINDS


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


if __name__ == "__main__":
    unittest.main()
