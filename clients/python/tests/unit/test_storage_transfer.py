"""client.storage's uploads and downloads with signed URLs against the fake sidecar's Cloud
Storage routes (streamed files, refusals, redirects, drops, timeouts, proxies), and hostile
answers from the sidecar (credentials, signed URLs, commits)."""

from __future__ import annotations

import base64
import io
import os
import tempfile
import unittest
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple
from unittest import mock

import warden_client as wc
from tests.unit.cases import T0, StorageTestCase
from tests.unit.fake_sidecar import FakeSidecar, _rfc3339
from warden_client.storage import _opener


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
