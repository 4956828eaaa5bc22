"""The dataset calls against scripted answers of the stdlib fake sidecar: what they send (paths
escaped, TTLs in whole seconds, the caller), refusals as answers, the staged copy deleted as the
caller it was staged for, and answers of the wrong shape. Against a real sidecar:
tests/integration/test_local_datasets.py."""

from __future__ import annotations

import datetime as dt
import json
import unittest
from typing import Any, Dict, List, Tuple

import warden_client as wc
from tests.unit.cases import FakeTestCase
from tests.unit.fake_sidecar import FakeSidecar

STAGED: Dict[str, Any] = {
    "path": "/secure/datasets/data/user=user-ds-1/sales.csv",
    "name": "stage-1",
    "size": 12,
    "sha256": "0" * 64,
    "expires_at": "2026-11-26T10:05:00Z",
}


class DatasetsTest(FakeTestCase):
    def last(self, method: str) -> Dict[str, Any]:
        r = self.last_request(method)
        r["json"] = json.loads(r["body"]) if r["body"] else None
        return r

    def test_list_and_files(self) -> None:
        self.fake.on("GET", "/v1/datasets", FakeSidecar._json(200, {"datasets": None}),
                     FakeSidecar._json(200, {"datasets": [{"id": "d1", "snapshot": "prod/d1/rw"}]}))
        self.assertEqual(self.w.datasets(), [], "Go's null slice")
        self.assertEqual(self.w.datasets(caller="user-ds-1"), [wc.Dataset("d1", "prod/d1/rw")])
        self.assertEqual(self.last("GET")["headers"]["x-warden-caller"], "user-ds-1")
        self.fake.on("GET", "/v1/datasets/d1/files", FakeSidecar._json(200, {"entries": [
            {"name": "a.csv", "size": 3, "dir": False, "mod_time": "2026-11-26T10:00:00Z"},
            {"name": "sub", "size": 0, "dir": True, "mod_time": "0001-01-01T00:00:00Z"}], "truncated": True}))
        listing = self.w.files("d1", "2026/10", snapshot="2026-10-01")
        self.assertEqual(([e.name for e in listing.files], [e.name for e in listing.dirs], listing.truncated),
                         (["a.csv"], ["sub"], True))
        self.assertIsNone(listing.dirs[0].mod_time, "Go's zero time")
        self.assertIn("path=2026%2F10", self.last("GET")["path"])
        self.assertIn("snapshot=2026-10-01", self.last("GET")["path"])

    def test_access_refusal_is_an_answer(self) -> None:
        refusal = {"dataset_id": "d2", "owner": {"name": "apps/svc", "can_read": True},
                   "caller": {"name": "user-ds-1", "can_read": False}, "error": "may not read", "code": "forbidden"}
        self.fake.on("GET", "/v1/datasets/d2/access", FakeSidecar._json(403, refusal),
                     FakeSidecar._json(403, {"error": "workspace sidecars act for their owner", "code": "forbidden"}))
        a = self.w.access("d2")
        self.assertFalse(a)
        self.assertEqual((a.owner, a.caller), (wc.Party("apps/svc", True), wc.Party("user-ds-1", False)))
        with self.assertRaises(wc.Forbidden):
            self.w.access("d2")  # a refusal of the request itself stays an exception

    def test_ids_are_one_path_segment(self) -> None:
        with self.assertRaises(wc.NotFound):  # the fake has no dataset routes: what matters is the path
            self.w.access("a/b?c")
        self.assertEqual(self.fake.requests[-1][1], "/v1/datasets/a%2Fb%3Fc/access")
        for bad in ["..", "."]:
            with self.assertRaises(wc.BadRequest):
                self.w.access(bad)
        with self.assertRaises(ValueError):
            self.w.files("")
        with self.assertRaises(TypeError):
            self.w.delete_staged(7)  # type: ignore[arg-type]

    def test_stage_sends_whole_seconds_and_deletes_as_its_caller(self) -> None:
        self.fake.on("POST", "/v1/datasets/d1/stage", *[FakeSidecar._json(200, STAGED)] * 4)
        self.fake.on("DELETE", "/v1/staged/stage-1", (204, {}, b""))
        for ttl, want in [(None, 0), (0.2, 1), (dt.timedelta(minutes=2), 120), (-5, -5)]:
            with self.subTest(ttl=ttl):
                self.w.stage("d1", "sales.csv", ttl=ttl, caller="user-ds-1")
                self.assertEqual(self.last("POST")["json"], {"path": "sales.csv", "ttl_seconds": want})
        self.fake.on("POST", "/v1/datasets/d1/stage", FakeSidecar._json(200, STAGED))
        with self.w.stage("d1", "sales.csv", snapshot="2026-10-01", caller="user-ds-1") as staged:
            self.assertEqual(self.last("POST")["json"]["snapshot"], "2026-10-01")
            self.assertEqual((staged.name, staged.dataset_id, staged.source), ("stage-1", "d1", "sales.csv"))
        self.assertTrue(staged.deleted)
        self.assertEqual(self.last("DELETE")["headers"]["x-warden-caller"], "user-ds-1", "deleted as its caller")
        self.assertFalse(staged.delete(), "deleting twice is a no-op")
        for bad in [True, "10", float("nan")]:
            with self.subTest(ttl=bad), self.assertRaises((TypeError, ValueError)):
                self.w.stage("d1", "sales.csv", ttl=bad)  # type: ignore[arg-type]

    def test_bad_stage_answers(self) -> None:
        cases: List[Tuple[Dict[str, Any], str]] = [
            ({"sha256": "abc"}, "64 hex"), ({"expires_at": "0001-01-01T00:00:00Z"}, "no expiry"),
            ({"size": "12"}, "'size'"), ({"path": None}, "'path'"),
        ]
        for change, text in cases:
            with self.subTest(text=text):
                self.fake.on("POST", "/v1/datasets/d1/stage", FakeSidecar._json(200, {**STAGED, **change}))
                with self.assertRaises(wc.ProtocolError) as cm:
                    self.w.stage("d1", "sales.csv")
                self.assertIn(text, str(cm.exception))


if __name__ == "__main__":
    unittest.main()
