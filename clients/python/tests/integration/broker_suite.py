"""Broker-mode tests of the Python client: run by the Go e2e suite (test/e2e/python_test.go)
against sidecars that get their grants from the real webhook's broker, keep secrets in the
suite's real Vault and bind GCP identities through the broker (with the suite's fake IAM).

Not collected by `python3 -m unittest discover` (the file name does not start with "test");
the Go test runs it as `tests.integration.broker_suite`.
Run alone it fails at once, because it has nothing to run against:

    WARDEN_TEST_URL=... WARDEN_TEST_URL_2=... WARDEN_TEST_SNAPSHOT_ROOT=... \\
        python3 -m unittest -v tests.integration.broker_suite

WARDEN_TEST_URL and WARDEN_TEST_URL_2 are two sidecars of the same owner (apps/svc-prod-app-1,
prod), the first with WARDEN_TEST_SNAPSHOT_ROOT as its snapshot share and its staging folder as
its --data-dir. The policy is the e2e suite's file (other e2e tests add policy objects, so the
assertions hold for any extra datasets and orgs): prod-dataset-1 is readable by the owner and
user-ds-1, not user-ds-2; the owner is a member of org1 and org2, not org3; IAM propagation
is 2 s. Storage: org1's loadingzone (bucket org1-landing, prefix incoming/, suppliers the owner
and user-ds-1) and curated (org1-data, curated/, users the owner and user-ds-2), topic
org1-commits; the Go test creates the buckets, the topic and curated/python/hello.csv, gives
fake-gcs-server's JSON API as WARDEN_TEST_GCS, and reads the commit this suite writes to
WARDEN_TEST_OUT/commit.json to find its Pub/Sub message.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import os
import ssl
import tempfile
import unittest
import urllib.request
from pathlib import Path
from urllib.parse import quote

import warden_client as wc

URL = os.environ.get("WARDEN_TEST_URL", "")
URL_2 = os.environ.get("WARDEN_TEST_URL_2", "")
SNAPSHOT_ROOT = os.environ.get("WARDEN_TEST_SNAPSHOT_ROOT", "")
GCS = os.environ.get("WARDEN_TEST_GCS", "")
OUT = os.environ.get("WARDEN_TEST_OUT", "")
BROKER_URL = os.environ.get("WARDEN_TEST_BROKER_URL", "")
BROKER_CA = os.environ.get("WARDEN_TEST_BROKER_CA", "")
PERSON_TOKEN = os.environ.get("WARDEN_TEST_PERSON_TOKEN", "")

CSV = "id,score\n1,0.5\n2,0.75\n3,1.0\n"


def setUpModule() -> None:
    need = [("WARDEN_TEST_URL", URL), ("WARDEN_TEST_URL_2", URL_2), ("WARDEN_TEST_SNAPSHOT_ROOT", SNAPSHOT_ROOT),
            ("WARDEN_TEST_GCS", GCS), ("WARDEN_TEST_OUT", OUT), ("WARDEN_TEST_BROKER_URL", BROKER_URL),
            ("WARDEN_TEST_BROKER_CA", BROKER_CA), ("WARDEN_TEST_PERSON_TOKEN", PERSON_TOKEN)]
    missing = [n for n, v in need if not v]
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

    def test_json_values_delete_all_and_from_outside(self) -> None:
        # Values of any JSON type round-trip; a person outside any pod (their Kubernetes token,
        # RBAC on owners/secrets) manages the same entry through the broker; delete-all.
        self.a.set_all({"port": 5432, "tls": {"verify": True}, "hosts": ["a", "b"]})
        self.assertEqual(self.a.get("port"), 5432)
        ctx = ssl.create_default_context(cafile=BROKER_CA)
        outside = wc.Client(BROKER_URL, token=PERSON_TOKEN, ssl_context=ctx).owner_secrets("apps/svc-prod-app-1")
        self.assertEqual(dict(outside.get_all()), {"port": 5432, "tls": {"verify": True}, "hosts": ["a", "b"]})
        outside.set("db-password", "from-a-laptop")
        self.assertEqual(outside.get("db-password"), "from-a-laptop")
        # (The job's sidecars serve their cached copy for --vault-cache-ttl; test/e2e's
        # TestSecretsFromOutsideAPod reads the person's write through an uncached one.)
        with self.assertRaises(wc.Forbidden):
            wc.Client(BROKER_URL, token=PERSON_TOKEN, ssl_context=ctx).owner_secrets("ws/user-ds-1").list()
        outside.delete_all()
        self.assertEqual(outside.list(), [])

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

    def test_what_may_i_do(self) -> None:
        # The Nebari seed's permission listing, for the owner and the caller together.
        a = wc.Client(URL, caller="user-ds-1").my_access()
        self.assertEqual(a["subjects"], ["serviceAccount:apps/svc-prod-app-1", "user:user-ds-1"])
        self.assertIn("prod-dataset-1", [d["id"] for d in a["datasets"]])
        self.assertEqual([o["name"] for o in a["orgs"]], ["org1"])
        spaces = {(s["org"], s["space"]): s for s in a["spaces"]}
        self.assertEqual(spaces[("org1", "archive")]["permissions"], ["read", "upload/main", "delete"])
        d = wc.Client(URL, caller="user-ds-1").my_access("delete")
        self.assertEqual(d["datasets"], [])
        self.assertEqual(sorted(s["space"] for s in d["spaces"]), ["archive", "loadingzone"])
        with self.assertRaises(wc.BadRequest):
            wc.Client(URL).my_access("everything")
        ctx = ssl.create_default_context(cafile=BROKER_CA)
        me = wc.Client(BROKER_URL, token=PERSON_TOKEN, ssl_context=ctx).my_access()
        self.assertEqual(me["subjects"], ["serviceAccount:people/pyla"])
        with self.assertRaises(wc.Forbidden):
            wc.Client(BROKER_URL, token=PERSON_TOKEN, ssl_context=ctx).my_access(user="user-ds-2")

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


class BrokerStorageTest(unittest.TestCase):
    """Cloud Storage credentials through the broker, against the suite's fakes of IAM
    Credentials, STS, Cloud Storage and Pub/Sub. The batch goes to a root directory no other
    e2e test uses."""

    ROOT = "python-batch/"
    A = "id,value\n1,north\n2,south\n"
    B = b"id,value\n3,east\n"

    def setUp(self) -> None:
        self.w = wc.Client(URL, caller="user-ds-1")
        self.st = self.w.storage

    def test_upload_commit_and_read(self) -> None:
        now = dt.datetime.now(dt.timezone.utc)
        cred = self.st.credentials("org1", "loadingzone", "upload")
        self.assertEqual((cred.org, cred.space, cred.access), ("org1", "loadingzone", "upload"))
        self.assertEqual((cred.bucket, cred.prefix), ("org1-landing", "incoming/"))
        self.assertTrue(cred.token)
        self.assertEqual(cred.authorization_header(), {"Authorization": "Bearer " + cred.token})
        self.assertGreater(cred.expires_at, now + dt.timedelta(minutes=20), "upload credentials live 30 minutes")
        self.assertFalse(cred.expired(dt.timedelta(minutes=5)))
        src = self.st.token_source("org1", "loadingzone", "upload")
        self.assertEqual(src.token(), cred.token, "the broker's cache: the same token")
        self.assertEqual(src.token(), cred.token)
        self.assertEqual(src.fetches, 1)

        # Two files with signed URLs: one streamed from a file, one from bytes.
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "a.csv"
            p.write_text(self.A)
            a = self.st.upload_file("org1", "loadingzone", self.ROOT + "a.csv", p)
        b = self.st.upload_file("org1", "loadingzone", self.ROOT + "sub/b.csv", self.B)
        self.assertEqual((a.bucket, a.object, a.method), ("org1-landing", "incoming/python-batch/a.csv", "PUT"))
        self.assertEqual(b.object, "incoming/python-batch/sub/b.csv")
        # Suppliers read what they uploaded.
        self.assertEqual(self.st.download("org1", "loadingzone", self.ROOT + "sub/b.csv"), self.B)

        commit = self.st.commit("org1", "loadingzone", self.ROOT)
        self.assertEqual((commit.org, commit.space, commit.bucket), ("org1", "loadingzone", "org1-landing"))
        self.assertEqual(commit.root_dir, "incoming/python-batch/")
        self.assertEqual(sorted(commit.names), ["incoming/python-batch/a.csv", "incoming/python-batch/sub/b.csv"])
        by_name = {o.name: o for o in commit}
        self.assertEqual(by_name["incoming/python-batch/a.csv"].size, len(self.A))
        self.assertEqual(by_name["incoming/python-batch/sub/b.csv"].md5_hex(), hashlib.md5(self.B).hexdigest())
        self.assertEqual(commit.topic, "projects/my-project/topics/org1-commits")
        self.assertTrue(commit.message_id)
        self.assertEqual(commit.committed_by, "serviceAccount:apps/svc-prod-app-1 for user-ds-1")
        self.assertIsNotNone(commit.committed_at)
        with open(os.path.join(OUT, "commit.json"), "w") as fh:
            json.dump({"message_id": commit.message_id, "root_dir": commit.root_dir, "objects": commit.names}, fh)

        # Reading: user-ds-2 is a user of curated. A signed GET, and the token with Cloud
        # Storage's JSON API (what google-cloud-storage does with cred.google_credentials()).
        self.assertEqual(self.st.download("org1", "curated", "python/hello.csv", caller="user-ds-2"),
                         b"greeting\nhello from curated\n")
        read = self.st.credentials("org1", "curated", "read", caller="user-ds-2")
        self.assertEqual((read.bucket, read.prefix, read.access), ("org1-data", "curated/", "read"))
        self.assertGreater(read.expires_at, now + dt.timedelta(minutes=50), "read credentials live an hour")
        req = urllib.request.Request(f"{GCS}b/{read.bucket}/o?prefix={quote(read.prefix)}python/",
                                     headers=read.authorization_header())
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(req, timeout=10) as resp:
            listing = json.load(resp)
        self.assertEqual([o["name"] for o in listing.get("items", [])], ["curated/python/hello.csv"])

    def test_upload_main(self) -> None:
        # The seed's upload/main: user-ds-1 and the owner are trustees of archive, a main space.
        cred = self.st.credentials("org1", "archive", "upload/main")
        self.assertEqual((cred.access, cred.bucket, cred.prefix), ("upload/main", "org1-data", "archive/"))
        u = self.st.upload_file("org1", "archive", "python/direct.csv", b"id\n9\n")
        self.assertEqual((u.bucket, u.object), ("org1-data", "archive/python/direct.csv"))
        self.assertEqual(self.st.download("org1", "archive", "python/direct.csv"), b"id\n9\n")

    def test_refusals(self) -> None:
        with self.assertRaises(wc.Forbidden) as cm:
            self.st.credentials("org1", "loadingzone", "upload", caller="user-ds-2")
        e = cm.exception
        self.assertEqual((e.status, e.code), (403, "forbidden"))
        self.assertIn("supplier", e.message)
        self.assertIn("user:user-ds-2", e.message)
        with self.assertRaises(wc.Forbidden) as cm:
            self.st.upload_file("org1", "loadingzone", self.ROOT + "not-mine.csv", b"x", caller="user-ds-2")
        self.assertIn("supplier", cm.exception.message)
        with self.assertRaises(wc.Forbidden) as cm:
            self.st.commit("org1", "loadingzone", self.ROOT, caller="user-ds-2")
        self.assertIn("supplier", cm.exception.message)
        with self.assertRaises(wc.Forbidden) as cm:
            self.st.credentials("org1", "curated", "upload/main", caller=None)
        self.assertIn("owner serviceAccount:apps/svc-prod-app-1 needs role trustee", cm.exception.message)
        with self.assertRaises(wc.Forbidden) as cm:
            self.st.credentials("org1", "archive", "upload")
        self.assertIn("uploads go through the loading zone", cm.exception.message)
        with self.assertRaises(wc.Forbidden) as cm:
            self.st.upload_file("org1", "archive", "python/no.csv", b"x", caller="user-ds-2")
        self.assertIn("needs role trustee in space org1/archive", cm.exception.message)
        with self.assertRaises(wc.NotFound):
            self.st.credentials("org1", "no-such-space")
        with self.assertRaises(wc.BadRequest):
            self.st.credentials("Org 1!", "curated")  # the broker checks names
        with self.assertRaises(wc.BadRequest):
            self.st.signed_url("org1", "loadingzone", "../curated/x", "GET")  # the client checks first
        with self.assertRaises(wc.Conflict) as cm2:
            self.st.commit("org1", "loadingzone", "python-empty/")
        self.assertIn("nothing to commit", cm2.exception.message)


if __name__ == "__main__":
    unittest.main()
