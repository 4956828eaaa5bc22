"""client.identity against the stdlib fake sidecar: wait_bound's polling (a fake clock and
sleep), the org it sticks to, its timeout, retries while unavailable and none on refusals."""

from __future__ import annotations

import json
import unittest

import warden_client as wc
from tests.unit.cases import FakeTestCase
from tests.unit.fake_sidecar import FakeSidecar, binding


class IdentityWaitTest(FakeTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.slept: list = []
        self.clock = [0.0]
        i = self.w.identity
        i._clock = lambda: self.clock[0]

        def sleep(s: float) -> None:
            self.slept.append(s)
            self.clock[0] += s

        i._sleep = sleep

    def test_waits_for_bound(self) -> None:
        self.fake.identity_answers = [binding("pending", bound_in=30), binding("pending", bound_in=0.5), binding("bound")]
        b = self.w.identity.wait_bound("org1", timeout=60, poll=5)
        self.assertTrue(b.bound)
        self.assertEqual(b.org, "org1")
        self.assertEqual(b.gcp_service_account, "org1-svc@my-project.iam.gserviceaccount.com")
        self.assertEqual(self.slept[0], 5, "polls every 5 s while bound_at is far")
        self.assertLess(self.slept[1], 1, "sooner when bound_at is near")
        bodies = [json.loads(r[3]) for r in self.fake.requests if r[0] == "POST"]
        self.assertEqual(bodies, [{"org": "org1"}] * 3)

    def test_empty_org_sticks_to_the_org_answered(self) -> None:
        self.fake.identity_answers = [binding("pending", org="org2", bound_in=1), binding("bound", org="org2")]
        self.assertEqual(self.w.identity.wait_bound(timeout=10).org, "org2")
        bodies = [json.loads(r[3]) for r in self.fake.requests if r[0] == "POST"]
        self.assertEqual(bodies, [{"org": ""}, {"org": "org2"}])

    def test_timeout(self) -> None:
        self.fake.identity_answers = [binding("pending", bound_in=600)]
        with self.assertRaises(wc.WardenTimeout) as cm:
            self.w.identity.wait_bound("org1", timeout=12, poll=5)
        self.assertIn("still pending", str(cm.exception))
        self.assertAlmostEqual(sum(self.slept), 12)

    def test_retries_while_unavailable_but_not_on_refusals(self) -> None:
        down = FakeSidecar._json(503, {"error": "IAM unavailable", "code": "unavailable"})
        self.fake.identity_answers = [down, down, binding("bound")]
        self.assertTrue(self.w.identity.wait_bound("org1", timeout=60, poll=1).bound)
        self.fake.identity_answers = [down]
        with self.assertRaises(wc.WardenTimeout) as cm:
            self.w.identity.wait_bound("org1", timeout=3, poll=1)
        self.assertIsInstance(cm.exception.__cause__, wc.Unavailable)
        self.fake.identity_answers = [FakeSidecar._json(403, {"error": "not a member of org3", "code": "forbidden"})]
        with self.assertRaises(wc.Forbidden):
            self.w.identity.wait_bound("org3", timeout=60)
        self.fake.identity_answers = [FakeSidecar._json(502, {"error": "IAM refused", "code": "iam_denied"})]
        with self.assertRaises(wc.IAMDenied) as cm2:
            self.w.identity.bind("org1")
        self.assertEqual(cm2.exception.status, 502)


if __name__ == "__main__":
    unittest.main()
