"""client.my_access against scripted answers of the stdlib fake sidecar: the query it sends,
whom it asks for, the answer's shape checked."""

from __future__ import annotations

import unittest
from typing import Any, Dict, List
from urllib.parse import parse_qs, urlsplit

import warden_client as wc
from tests.unit.cases import FakeTestCase
from tests.unit.fake_sidecar import FakeSidecar

ANSWER: Dict[str, Any] = {
    "subjects": ["serviceAccount:apps/svc-prod-app-1", "user:user-ds-1"],
    "datasets": [{"id": "prod-dataset-1", "permissions": ["read"]}],
    "orgs": [{"name": "org1", "permissions": ["assume"]}],
    "spaces": [{"org": "org1", "space": "loadingzone", "role": "supplier", "permissions": ["read", "upload"]}],
}


class MyAccessTest(FakeTestCase):
    def query(self) -> Dict[str, Any]:
        _, path, headers, _ = self.fake.requests[-1]
        return {"path": urlsplit(path).path, "query": parse_qs(urlsplit(path).query), "headers": headers}

    def test_answer_and_query(self) -> None:
        self.fake.on("GET", "/v1/access", FakeSidecar._json(200, ANSWER), FakeSidecar._json(200, ANSWER))
        w = wc.Client(self.fake.url, caller="user-ds-1")
        self.assertEqual(w.my_access(), ANSWER)
        got = self.query()
        self.assertEqual((got["path"], got["query"]), ("/v1/access", {}))
        self.assertEqual(got["headers"]["x-warden-caller"], "user-ds-1")
        w.my_access("upload/main", user="user-ds-2")
        self.assertEqual(self.query()["query"], {"permission": ["upload/main"], "user": ["user-ds-2"]})

    def test_as_the_owner_and_with_a_token(self) -> None:
        self.fake.on("GET", "/v1/access", FakeSidecar._json(200, ANSWER), FakeSidecar._json(200, ANSWER))
        self.w.my_access()
        self.assertNotIn("x-warden-caller", self.query()["headers"])
        wc.Client(self.fake.url, token="jwt.for.pyla").my_access()
        self.assertEqual(self.query()["headers"]["authorization"], "Bearer jwt.for.pyla")

    def test_bad_shapes_and_arguments(self) -> None:
        bads: List[Any] = [[], {"datasets": [], "orgs": []}, {"datasets": None, "orgs": [], "spaces": []}, {**ANSWER, "spaces": {}}]
        for bad in bads:
            with self.subTest(answer=bad):
                self.fake.on("GET", "/v1/access", FakeSidecar._json(200, bad))
                with self.assertRaises(wc.ProtocolError):
                    self.w.my_access()
        self.fake.on("GET", "/v1/access", FakeSidecar._json(400, {"error": 'unknown permission "everything"', "code": "bad_request"}))
        with self.assertRaises(wc.BadRequest):
            self.w.my_access("everything")
        n = len(self.fake.requests)
        with self.assertRaises(TypeError):
            self.w.my_access(7)  # type: ignore[arg-type]
        with self.assertRaises(TypeError):
            self.w.my_access(user=["x"])  # type: ignore[arg-type]
        self.assertEqual(len(self.fake.requests), n, "nothing was sent")


if __name__ == "__main__":
    unittest.main()
