"""What the unit tests share: the stdlib fake sidecar of fake_sidecar.py, started in-process
for each test, and a client on it."""

from __future__ import annotations

import datetime as dt
import json
import unittest
from pathlib import Path
from typing import Any, Dict, List

import warden_client as wc
from tests.unit.fake_sidecar import FakeSidecar

PROJECT = Path(__file__).resolve().parents[2]  # clients/python

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)


class FakeTestCase(unittest.TestCase):
    MAX_BYTES = 1 << 20

    def setUp(self) -> None:
        self.fake = FakeSidecar(max_bytes=self.MAX_BYTES)
        self.addCleanup(self.fake.close)
        self.w = wc.Client(self.fake.url, timeout=5)
        self.s = self.w.secrets

    def last_request(self, method: str) -> dict:
        for m, path, headers, body in reversed(self.fake.requests):
            if m == method:
                return {"path": path, "headers": headers, "body": body}
        raise AssertionError(f"no {method} request")


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
