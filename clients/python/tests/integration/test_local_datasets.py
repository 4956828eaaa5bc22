"""Datasets and staging against a real warden-sidecar in local mode (--policy): listing for
the owner and callers, access checks, folders, staging (with blocks, TTLs, snapshots, path
traversal, quota, who may delete), and a workspace sidecar."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import unittest
import warnings
from pathlib import Path

import warden_client as wc
from tests.integration.harness import SALES_CSV, SidecarTestCase


class DatasetsTest(SidecarTestCase):
    def setUp(self) -> None:
        self.w = wc.Client(self.sidecar.url)

    def test_list_for_owner_and_callers(self) -> None:
        self.assertEqual(
            [d.id for d in self.w.datasets()], ["prod-dataset-1", "prod-dataset-2"], "the owner reads 1 and 2"
        )
        ds = self.w.datasets(caller="user-ds-1")
        self.assertEqual(ds, [wc.Dataset(id="prod-dataset-1", snapshot="prod/dataset-1/rw")])
        self.assertEqual([d.id for d in self.w.as_caller("user-ds-2").datasets()], ["prod-dataset-1", "prod-dataset-2"])
        self.assertEqual(self.w.datasets(caller="stranger"), [])

    def test_access(self) -> None:
        a = self.w.access("prod-dataset-1", caller="user-ds-1")
        self.assertTrue(a.allowed)
        self.assertTrue(a)
        self.assertEqual(a.owner, wc.Party("apps/svc-prod-app-1", True))
        self.assertEqual(a.caller, wc.Party("user-ds-1", True))
        # A refusal is an answer, not an exception.
        a = self.w.access("prod-dataset-2", caller="user-ds-1")
        self.assertFalse(a.allowed)
        self.assertTrue(a.owner.can_read)
        self.assertFalse(a.caller.can_read)
        a = self.w.access("prod-dataset-3", caller="user-ds-1")
        self.assertFalse(a.allowed, "the caller may read 3, the owner may not")
        self.assertFalse(a.owner.can_read)
        self.assertFalse(self.w.access("no-such-dataset").allowed)

    def test_hostile_dataset_ids(self) -> None:
        for bad in ["../../v1/secrets", "..", "a/b", "x" * 5000, "-leading", "sp ace", "nul\0byte", "é"]:
            with self.subTest(bad=bad[:20]):
                with self.assertRaises(wc.BadRequest) as cm:
                    self.w.access(bad)
                self.assertEqual(cm.exception.status, 400)
                self.assertEqual(cm.exception.code, "bad_request")
                with self.assertRaises(wc.BadRequest):
                    self.w.stage(bad, "sales.csv")
        with self.assertRaises(ValueError):
            self.w.access("")

    def test_files(self) -> None:
        top = self.w.files("prod-dataset-1")
        self.assertFalse(top.truncated)
        names = {e.name: e for e in top}
        self.assertEqual(sorted(names), ["2026", "blob.bin", "sales.csv"], "the symlink that leads out is not listed")
        self.assertTrue(names["2026"].dir)
        self.assertEqual(names["sales.csv"].size, len(SALES_CSV))
        self.assertIsInstance(names["sales.csv"].mod_time, dt.datetime)
        self.assertIsNotNone(names["sales.csv"].mod_time.tzinfo)  # type: ignore[union-attr]
        self.assertEqual([e.name for e in self.w.files("prod-dataset-1", "2026/10")], ["part-0.csv"])
        self.assertEqual([e.name for e in top.dirs], ["2026"])
        snap = self.w.files("prod-dataset-1", snapshot="2026-10-01")
        self.assertEqual([e.name for e in snap], ["sales.csv"])
        with self.assertRaises(wc.NotFound):
            self.w.files("prod-dataset-1", "missing")
        with self.assertRaises(wc.NotFound):
            self.w.files("prod-dataset-1", snapshot="1999-01-01")
        for bad in ["../..", "/etc", "2026/../..", "a\\b"]:
            with self.subTest(path=bad), self.assertRaises(wc.BadRequest):
                self.w.files("prod-dataset-1", bad)
        with self.assertRaises(wc.Forbidden) as cm:
            self.w.files("prod-dataset-2", caller="user-ds-1")
        self.assertEqual(cm.exception.status, 403)
        self.assertIn("may not read", cm.exception.message)


class StageTest(SidecarTestCase):
    SIDECAR_ARGS = ["--quota-bytes", str(4 << 20)]

    def setUp(self) -> None:
        self.w = wc.Client(self.sidecar.url, caller="user-ds-1")

    def test_stage_read_and_delete_on_exit(self) -> None:
        before = dt.datetime.now(dt.timezone.utc)
        with self.w.stage("prod-dataset-1", "sales.csv", ttl=120) as f:
            self.assertIsInstance(f.path, Path)
            self.assertTrue(f.path.is_file())
            self.assertTrue(str(f.path).startswith(str(self.sidecar.data_dir / "user=user-ds-1")), f.path)
            self.assertEqual(f.size, len(SALES_CSV))
            self.assertEqual(f.sha256, hashlib.sha256(SALES_CSV.encode()).hexdigest())
            self.assertTrue(f.verify())
            self.assertEqual(f.dataset_id, "prod-dataset-1")
            self.assertEqual(f.source, "sales.csv")
            self.assertGreater(f.expires_at, before + dt.timedelta(seconds=100))
            self.assertLess(f.expires_at, before + dt.timedelta(seconds=140))
            self.assertFalse(f.expired)
            self.assertGreater(f.seconds_left, 100)
            with f.open(newline="") as fh:
                rows = list(csv.DictReader(fh))
            self.assertEqual(rows[1], {"region": "south", "month": "2026-09", "amount": "32"})
            self.assertEqual(sum(float(r["amount"]) for r in rows), 49.75)
            with f.open("rb") as fh:
                self.assertEqual(fh.read(), SALES_CSV.encode())
            with open(f, newline="") as fh:  # os.PathLike
                self.assertEqual(fh.readline(), "region,month,amount\n")
            self.assertEqual(f.read_text(), SALES_CSV)
            with self.assertRaises(ValueError):
                f.open("w")
            with self.assertRaises(ValueError):
                f.open("r+")
            path = f.path
        self.assertTrue(f.deleted)
        self.assertFalse(path.exists(), "the copy is gone when the with block ends")
        self.assertFalse(f.delete(), "deleting twice is a no-op")
        actions = [(a["action"], a["outcome"]) for a in self.sidecar.audit_lines() if a.get("target", "").endswith(f.name)]
        self.assertIn(("delete", "allowed"), actions)

    def test_deleted_when_the_block_raises(self) -> None:
        with self.assertRaises(KeyError):
            with self.w.stage("prod-dataset-1", "blob.bin") as f:
                self.assertEqual(f.read_bytes(), bytes(range(256)) * 64)
                raise KeyError("boom")
        self.assertTrue(f.deleted)
        self.assertFalse(f.path.exists())

    def test_ttl_forms_and_cap(self) -> None:
        now = dt.datetime.now(dt.timezone.utc)
        for ttl, low, high in [(None, 280, 320), (dt.timedelta(minutes=10), 580, 620), (0.2, 0, 5), (7200, 3590, 3610)]:
            with self.subTest(ttl=ttl), self.w.stage("prod-dataset-1", "sales.csv", ttl=ttl) as f:
                left = (f.expires_at - now).total_seconds()
                self.assertGreaterEqual(left, low)
                self.assertLessEqual(left, high, "the sidecar caps at --max-ttl (1h here)")
        with self.assertRaises(wc.BadRequest):
            self.w.stage("prod-dataset-1", "sales.csv", ttl=-5)
        with self.assertRaises(TypeError):
            self.w.stage("prod-dataset-1", "sales.csv", ttl="10")  # type: ignore[arg-type]
        with self.assertRaises(ValueError):
            self.w.stage("prod-dataset-1", "sales.csv", ttl=float("inf"))

    def test_snapshot(self) -> None:
        with self.w.stage("prod-dataset-1", "sales.csv", snapshot="2026-10-01") as f:
            self.assertEqual(f.read_text(), "region,month,amount\nnorth,2026-09,10.5\n")
            self.assertEqual(f.snapshot, "2026-10-01")
        with self.assertRaises(wc.NotFound):
            self.w.stage("prod-dataset-1", "sales.csv", snapshot="2020-01-01")

    def test_path_traversal_and_bad_paths(self) -> None:
        cases = {
            "../../../../etc/passwd": "'..'",
            "/etc/passwd": "absolute",
            "2026/../../x": "'..'",
            "a\\..\\b": "backslash",
            "sales.csv\0.txt": "NUL",
            "2026//10/part-0.csv": "empty",
            "./sales.csv": "'.'",
            "escape": "outside",
            "2026": "directory",
            "": "empty",
            "x" * 5000: "longer",
        }
        for path, why in cases.items():
            with self.subTest(path=path[:30]):
                with self.assertRaises(wc.BadRequest) as cm:
                    self.w.stage("prod-dataset-1", path)
                self.assertIn(why, cm.exception.message)
        with self.assertRaises(wc.NotFound):
            self.w.stage("prod-dataset-1", "nope.csv")
        with self.assertRaises(TypeError):
            self.w.stage("prod-dataset-1", Path("sales.csv"))  # type: ignore[arg-type]
        self.assertEqual(list((self.sidecar.staging).rglob("*.csv")), [], "nothing was staged")

    def test_forbidden_caller(self) -> None:
        with self.assertRaises(wc.Forbidden) as cm:
            self.w.stage("prod-dataset-2", "big.bin")
        self.assertEqual((cm.exception.status, cm.exception.code), (403, "forbidden"))
        with self.assertRaises(wc.BadRequest):
            self.w.stage("prod-dataset-1", "sales.csv", caller="../../root")

    def test_only_the_caller_it_was_staged_for_may_delete(self) -> None:
        f = self.w.stage("prod-dataset-1", "sales.csv")
        other = self.w.as_caller("user-ds-2")
        with self.assertRaises(wc.NotFound):
            other.delete_staged(f.name)
        with self.assertRaises(wc.NotFound):
            self.w.as_caller().delete_staged(f.name)
        self.assertTrue(f.path.exists())
        self.w.delete_staged(f.name)
        self.assertFalse(f.path.exists())
        self.assertFalse(f.delete(), "already gone: not an error")
        with self.assertRaises(wc.BadRequest):
            self.w.delete_staged("../../state/x")

    def test_quota(self) -> None:
        owner = self.w.as_caller()
        with owner.stage("prod-dataset-2", "big.bin"):
            with self.assertRaises(wc.InsufficientStorage) as cm:
                owner.stage("prod-dataset-2", "big.bin")
            self.assertEqual((cm.exception.status, cm.exception.code), (507, "insufficient_storage"))
        with owner.stage("prod-dataset-2", "big.bin") as f:  # the quota is free again
            self.assertEqual(f.size, 3 << 20)

    def test_exit_error_does_not_hide_the_blocks_error(self) -> None:
        f = self.w.stage("prod-dataset-1", "sales.csv")
        self.sidecar.stop()
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                with self.assertRaises(ZeroDivisionError):
                    with f:
                        1 / 0
            self.assertTrue(any("could not delete" in str(w.message) for w in caught))
            with self.assertRaises(wc.ConnectionFailed):
                f.delete()
        finally:
            self.sidecar.start()
        self.assertTrue(f.delete())


class WorkspaceTest(SidecarTestCase):
    WORKLOAD = "workspace"

    def test_acts_only_for_its_owner(self) -> None:
        w = wc.Client(self.sidecar.url)
        with w.stage("prod-dataset-1", "sales.csv") as f:
            self.assertEqual(f.path.parent, self.sidecar.data_dir)
            self.assertEqual(f.read_text(), SALES_CSV)
        with self.assertRaises(wc.Forbidden) as cm:
            w.datasets(caller="user-ds-1")
        self.assertIn("workspace", cm.exception.message)


if __name__ == "__main__":
    unittest.main()
