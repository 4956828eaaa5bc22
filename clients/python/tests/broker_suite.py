"""Broker-mode tests of the Python client: run by the Go e2e suite (test/e2e/python_test.go)
against sidecars that get their grants from the real webhook's broker, keep secrets in the
suite's real Vault and bind GCP identities through the broker (with the suite's fake IAM).

Not collected by `python3 -m unittest discover` (the file name does not start with "test");
run alone it fails at once, because it has nothing to run against:

    WARDEN_TEST_URL=... WARDEN_TEST_URL_2=... WARDEN_TEST_SNAPSHOT_ROOT=... \\
        python3 -m unittest -v tests.broker_suite

WARDEN_TEST_URL and WARDEN_TEST_URL_2 are two sidecars of the same owner (apps/svc-prod-app-1,
prod), the first with WARDEN_TEST_SNAPSHOT_ROOT as its snapshot share and its staging folder as
its --data-dir. The policy is the e2e suite's file (other e2e tests add policy objects, so the
assertions hold for any extra datasets and orgs): prod-dataset-1 is readable by the owner and
user-ds-1, not user-ds-2; the owner is a member of org1 and org2, not org3; IAM propagation
is 2 s.
"""

from __future__ import annotations

import csv
import os
import unittest
from pathlib import Path

import warden_client as wc

URL = os.environ.get("WARDEN_TEST_URL", "")
URL_2 = os.environ.get("WARDEN_TEST_URL_2", "")
SNAPSHOT_ROOT = os.environ.get("WARDEN_TEST_SNAPSHOT_ROOT", "")

CSV = "id,score\n1,0.5\n2,0.75\n3,1.0\n"


def setUpModule() -> None:
    missing = [n for n, v in [("WARDEN_TEST_URL", URL), ("WARDEN_TEST_URL_2", URL_2), ("WARDEN_TEST_SNAPSHOT_ROOT", SNAPSHOT_ROOT)] if not v]
    if missing:
        raise RuntimeError(
            f"{', '.join(missing)} not set: the broker-mode tests run inside the Go e2e suite "
            "(make e2e, test/e2e/python_test.go), which starts the sidecars they need"
        )
    head = Path(SNAPSHOT_ROOT) / "prod/dataset-1/rw"
    (head / "scores").mkdir(parents=True, exist_ok=True)
    (head / "scores/2026-11.csv").write_text(CSV)


class BrokerDatasetsTest(unittest.TestCase):
    def setUp(self) -> None:
        self.w = wc.Client(URL, caller="user-ds-1")

    def test_grants_from_the_broker(self) -> None:
        self.assertTrue(self.w.ready())
        # Other e2e tests add datasets and orgs as policy objects: assert on the file's ones.
        self.assertIn("prod-dataset-1", [d.id for d in self.w.datasets()])
        self.assertTrue(self.w.access("prod-dataset-1").allowed)
        denied = self.w.access("prod-dataset-1", caller="user-ds-2")
        self.assertFalse(denied.allowed)
        self.assertTrue(denied.owner.can_read)
        self.assertNotIn("prod-dataset-1", [d.id for d in self.w.datasets(caller="user-ds-2")])
        self.assertEqual([e.name for e in self.w.files("prod-dataset-1", "scores")], ["2026-11.csv"])

    def test_stage_read_delete(self) -> None:
        with self.w.stage("prod-dataset-1", "scores/2026-11.csv", ttl=60) as f:
            self.assertTrue(f.verify())
            with f.open(newline="") as fh:
                rows = list(csv.DictReader(fh))
            self.assertEqual(sum(float(r["score"]) for r in rows), 2.25)
            self.assertIn("user=user-ds-1", str(f.path))
        self.assertFalse(f.path.exists())
        with self.assertRaises(wc.Forbidden):
            self.w.stage("prod-dataset-1", "scores/2026-11.csv", caller="user-ds-2")
        with self.assertRaises(wc.BadRequest):
            self.w.stage("prod-dataset-1", "../../../../token")
        with self.assertRaises(wc.NotFound):
            self.w.stage("prod-dataset-1", "scores/missing.csv")


class BrokerSecretsTest(unittest.TestCase):
    """Secrets in the real Vault, through two sidecars of the same owner."""

    def setUp(self) -> None:
        self.a = wc.Client(URL).secrets
        self.b = wc.Client(URL_2).secrets
        self.a.set_all({}, if_match=self.a.get_all().etag)

    def tearDown(self) -> None:
        self.a.update({k: None for k in self.a.list()})

    def test_round_trip(self) -> None:
        tag = self.a.set_all({"db-user": "report", "db-password": "s3cr3t-Pa55"})
        self.assertRegex(tag or "", r'^"v\d+"$')
        self.assertEqual(self.a.list(), ["db-password", "db-user"])
        self.assertEqual(self.a.get("db-password"), "s3cr3t-Pa55")
        values = self.a.get_all()
        self.assertEqual(values, {"db-user": "report", "db-password": "s3cr3t-Pa55"})
        self.assertEqual(values.etag, tag)
        self.a.set("api-key", "k-123")
        self.a.update({"db-user": "etl", "db-password": None})
        self.assertEqual(dict(self.a.get_all()), {"db-user": "etl", "api-key": "k-123"})
        self.a.delete("api-key")
        self.assertEqual(self.a.list(), ["db-user"])
        with self.assertRaises(wc.NotFound):
            self.a.get("api-key")
        with self.assertRaises(wc.NotFound):
            self.a.delete("api-key")
        with self.assertRaises(wc.BadRequest):
            self.a.get("bad key!")

    def test_check_and_set_across_sidecars(self) -> None:
        self.a.set_all({"token": "one"})
        read = self.a.get_all()  # a's sidecar caches this version
        self.b.set("token", "two")  # b reads Vault, writes a new version
        with self.assertRaises(wc.Conflict) as cm:
            self.a.set_all({"token": "three"}, if_match=read.etag)
        self.assertEqual((cm.exception.status, cm.exception.code), (409, "conflict"))
        with self.assertRaises(wc.Conflict):
            self.a.delete("token", if_match=read.etag)
        self.assertEqual(self.b.get("token"), "two", "the other writer's value survives")
        # set() re-reads once on a conflict: b's key is kept, a's added.
        self.b.set("from-b", "x")
        self.a.set("from-a", "y")
        # (a's sidecar re-read Vault for the retry and cached its own write; b's serves its
        # cached copy for up to --vault-cache-ttl, so read through a.)
        self.assertEqual(dict(self.a.get_all()), {"token": "two", "from-b": "x", "from-a": "y"})

    def test_size_limit(self) -> None:
        self.a.set_all({"k": "x" * ((1 << 20) - 8)})  # exactly 1 MiB of JSON
        with self.assertRaises(wc.PayloadTooLarge):
            self.a.set_all({"k": "x" * ((1 << 20) - 7)})
        with self.assertRaises(wc.PayloadTooLarge):
            self.a.set("k2", "y" * (2 << 20))
        self.assertEqual(len(self.a.get("k")), (1 << 20) - 8)


class BrokerIdentityTest(unittest.TestCase):
    def setUp(self) -> None:
        self.i = wc.Client(URL).identity

    def tearDown(self) -> None:
        self.i.reset()

    def test_bind_wait_reset(self) -> None:
        names = [o.name for o in self.i.orgs()]
        self.assertIn("org1", names)
        self.assertIn("org2", names)
        self.assertNotIn("org3", names)
        b = self.i.bind("org1")
        self.assertEqual((b.org, b.gcp_service_account), ("org1", "aes1-svc@my-project.iam.gserviceaccount.com"))
        self.assertEqual(b.state, "pending")
        self.assertIsNotNone(b.written_at)
        self.assertIsNotNone(b.bound_at)
        bound = self.i.wait_bound("org1", timeout=60, poll=0.5)
        self.assertTrue(bound.bound)
        self.assertEqual(bound.org, "org1")
        self.assertEqual(self.i.wait_bound(timeout=5).org, "org1", "the org used last")
        with self.assertRaises(wc.Forbidden):
            self.i.bind("org3")
        with self.assertRaises(wc.NotFound):
            self.i.bind("no-such-org")
        self.i.reset()
        self.i.reset()  # idempotent


if __name__ == "__main__":
    unittest.main()
