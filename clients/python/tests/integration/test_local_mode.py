"""A real warden-sidecar in local mode beyond the datasets: secrets, identity and storage
answering 501 (NotEnabled), health, unknown endpoints, JWT callers with a pure-Python RSA
issuer, and the sidecar going away."""

from __future__ import annotations

import tempfile
import unittest
from pathlib import Path

import warden_client as wc
from tests.integration.harness import SALES_CSV, Issuer, Sidecar, SidecarTestCase


class LocalModeFeaturesTest(SidecarTestCase):
    """What local mode does not have answers 501, raised as NotEnabled."""

    def test_secrets_not_enabled(self) -> None:
        s = wc.Client(self.sidecar.url).secrets
        calls = {
            "list": s.list, "get": lambda: s.get("k"), "get_all": s.get_all,
            "set": lambda: s.set("k", "v"), "set_all": lambda: s.set_all({"k": "v"}),
            "delete": lambda: s.delete("k"), "update": lambda: s.update({"k": None}),
        }
        for name, call in calls.items():
            with self.subTest(call=name):
                with self.assertRaises(wc.NotEnabled) as cm:
                    call()
                e = cm.exception
                self.assertEqual((e.status, e.code), (501, "not_implemented"))
                self.assertIn("--vault-addr", e.message)
                self.assertIsInstance(e, wc.APIError)
                self.assertIsInstance(e, wc.WardenError)

    def test_identity_not_enabled(self) -> None:
        i = wc.Client(self.sidecar.url).identity
        for name, call in {"orgs": i.orgs, "bind": lambda: i.bind("org1"), "reset": i.reset,
                           "wait_bound": lambda: i.wait_bound("org1", timeout=1)}.items():
            with self.subTest(call=name):
                with self.assertRaises(wc.NotEnabled) as cm:
                    call()
                self.assertIn("--broker-url", cm.exception.message)

    def test_storage_not_enabled(self) -> None:
        for w in (wc.Client(self.sidecar.url), wc.Client(self.sidecar.url, caller="user-ds-1")):
            st = w.storage
            src = st.token_source("org1", "loadingzone", "upload")
            calls = {
                "credentials": lambda: st.credentials("org1", "loadingzone", "upload"),
                "token_source": src.token,
                "signed_url": lambda: st.signed_url("org1", "loadingzone", "batch-7/a.csv", "PUT"),
                "upload_file": lambda: st.upload_file("org1", "loadingzone", "batch-7/a.csv", b"id\n1\n"),
                "download": lambda: st.download("org1", "curated", "a.csv"),
                "commit": lambda: st.commit("org1", "loadingzone", "batch-7/"),
            }
            for name, call in calls.items():
                with self.subTest(call=name, caller=w.caller):
                    with self.assertRaises(wc.NotEnabled) as cm:
                        call()
                    e = cm.exception
                    self.assertEqual((e.status, e.code), (501, "not_implemented"))
                    self.assertIn("local mode", e.message)
                    self.assertIn("--broker-url", e.message)
        # The client's own checks come first: nothing is sent for a bad name.
        with self.assertRaises(wc.BadRequest):
            wc.Client(self.sidecar.url).storage.signed_url("org1", "loadingzone", "../../curated/x")
        # The caller is the header's; the sidecar refuses one in the body (the client never sends it).
        with self.assertRaises(wc.BadRequest) as cm2:
            wc.Client(self.sidecar.url)._call("POST", "/v1/storage/credentials",
                                              body={"org": "org1", "space": "curated", "access": "read", "caller": {"user": "x"}})
        self.assertIn("not from the body", cm2.exception.message)

    def test_health(self) -> None:
        w = wc.Client(self.sidecar.url)
        self.assertTrue(w.ready())
        w.wait_ready(timeout=1)

    def test_unknown_endpoint_is_not_found(self) -> None:
        w = wc.Client(self.sidecar.url)
        with self.assertRaises(wc.NotFound):
            w._call("GET", "/v1/nothing-here")
        with self.assertRaises(wc.MethodNotAllowed) as cm:
            w._call("PATCH", "/v1/datasets")
        self.assertEqual(cm.exception.status, 405)


class JWTCallersTest(unittest.TestCase):
    """With --caller-jwks the caller is proven by a bearer token; X-Warden-Caller is refused."""

    tmp: tempfile.TemporaryDirectory  # type: ignore[type-arg]
    issuer: Issuer
    sidecar: Sidecar

    @classmethod
    def setUpClass(cls) -> None:
        cls.tmp = tempfile.TemporaryDirectory()
        cls.issuer = Issuer(Path(cls.tmp.name))
        cls.sidecar = Sidecar(extra_args=cls.issuer.sidecar_args())

    @classmethod
    def tearDownClass(cls) -> None:
        cls.sidecar.close()
        cls.tmp.cleanup()

    def test_bearer_token_names_the_caller(self) -> None:
        w = wc.Client(self.sidecar.url, token=self.issuer.token("user-ds-1"))
        self.assertEqual([d.id for d in w.datasets()], ["prod-dataset-1"])
        self.assertEqual(w.access("prod-dataset-1").caller.name, "user-ds-1")
        with w.stage("prod-dataset-1", "sales.csv") as f:
            self.assertIn("user=user-ds-1", str(f.path))
            self.assertEqual(f.read_text(), SALES_CSV)
        self.assertFalse(f.path.exists(), "deleted with the same token")

    def test_token_provider_is_called_per_request(self) -> None:
        calls = []

        def provider() -> str:
            calls.append(1)
            return "Bearer " + self.issuer.token("user-ds-2")

        w = wc.Client(self.sidecar.url, token=provider)
        self.assertEqual([d.id for d in w.datasets()], ["prod-dataset-1", "prod-dataset-2"])
        w.datasets()
        self.assertEqual(len(calls), 2)
        with w.stage("prod-dataset-1", "sales.csv") as f:
            self.assertIn("user=user-ds-2", str(f.path))
        self.assertEqual(len(calls), 4, "the delete asked the provider for a fresh token")
        self.assertFalse(f.path.exists())

    def test_storage_establishes_the_caller_first(self) -> None:
        calls = []

        def provider() -> str:
            calls.append(1)
            return self.issuer.token("user-ds-1")

        st = wc.Client(self.sidecar.url, token=provider).storage
        with self.assertRaises(wc.NotEnabled):
            st.credentials("org1", "curated")
        with self.assertRaises(wc.NotEnabled):
            st.commit("org1", "loadingzone", "b/")
        self.assertEqual(len(calls), 2, "a fresh token per request")
        # A token that fails verification is refused before local mode says 501.
        with self.assertRaises(wc.Unauthorized) as cm:
            st.credentials("org1", "curated", token=self.issuer.token("user-ds-1", ttl=-60))
        self.assertEqual(cm.exception.status, 401)

    def test_per_call_token_and_owner(self) -> None:
        w = wc.Client(self.sidecar.url)
        self.assertEqual(w.access("prod-dataset-2").caller.name, "apps/svc-prod-app-1")
        self.assertFalse(w.access("prod-dataset-2", token=self.issuer.token("user-ds-1")).allowed)

    def test_refusals(self) -> None:
        w = wc.Client(self.sidecar.url)
        with self.assertRaises(wc.BadRequest) as cm:
            w.datasets(caller="user-ds-1")
        self.assertIn("signed token", cm.exception.message)
        for bad in ["not-a-jwt", self.issuer.token("user-ds-1", ttl=-3600), self.issuer.token("user-ds-1", aud="other"),
                    self.issuer.token("user-ds-1")[:-8] + "AAAAAAAA"]:
            with self.subTest(token=bad[:16]), self.assertRaises(wc.Unauthorized) as cm401:
                w.datasets(token=bad)
            self.assertEqual((cm401.exception.status, cm401.exception.code), (401, "unauthorized"))
        with self.assertRaises(ValueError):
            w.datasets(caller="user-ds-1", token="x")
        with self.assertRaises(ValueError):
            wc.Client(self.sidecar.url, caller="user-ds-1", token="x")


class SidecarGoneTest(unittest.TestCase):
    def test_sidecar_down_is_a_clear_connection_error(self) -> None:
        sc = Sidecar()
        url = sc.url
        w = wc.Client(url, caller="user-ds-1")
        self.assertEqual(len(w.datasets()), 1)
        sc.close()
        with self.assertRaises(wc.ConnectionFailed) as cm:
            w.datasets()
        self.assertIn("not reachable", str(cm.exception))
        self.assertIn(url, str(cm.exception))
        self.assertIsInstance(cm.exception, ConnectionError, "also an OSError ConnectionError")
        self.assertFalse(w.ready())
        with self.assertRaises(wc.WardenTimeout):
            w.wait_ready(timeout=0.3)


if __name__ == "__main__":
    unittest.main()
