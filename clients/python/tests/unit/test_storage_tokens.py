"""client.storage's token source against the stdlib fake sidecar: the refresh at the margin
(a fake clock), re-checks inside it, errors not cached, google-auth's refresh hook, one fetch
for many threads; and google-auth wiring with a stand-in module (google-auth itself is never
needed)."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading
import types
import unittest
from typing import Any, Dict, List, Optional
from unittest import mock

import warden_client as wc
from tests.unit.cases import PROJECT, T0, UTC, StorageTestCase
from tests.unit.fake_sidecar import FakeSidecar


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
        out = subprocess.run([sys.executable, "-c", probe], cwd=str(PROJECT),
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


if __name__ == "__main__":
    unittest.main()
