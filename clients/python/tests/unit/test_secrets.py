"""The client's secrets and identity logic, and its handling of broken answers, against the
stdlib fake sidecar of tests/fake_sidecar.py."""

from __future__ import annotations

import datetime as dt
import json
import unittest
from typing import Type

import warden_client as wc
from tests.fake_sidecar import FakeSidecar, binding
from warden_client.models import parse_time


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


class SecretsTest(FakeTestCase):
    def test_round_trip(self) -> None:
        self.assertEqual(self.s.list(), [])
        self.assertEqual(self.s.etag, '"v0"')
        tag = self.s.set_all({"db-user": "report", "db-password": "s3cr3t-Pa55"})
        self.assertEqual(tag, '"v1"')
        self.assertEqual(self.s.list(), ["db-password", "db-user"])
        self.assertEqual(self.s.get("db-password"), "s3cr3t-Pa55")
        values = self.s.get_all()
        self.assertEqual(values, {"db-user": "report", "db-password": "s3cr3t-Pa55"})
        self.assertEqual((values.etag, values.version), ('"v1"', 1))
        self.assertNotIn("s3cr3t", repr(values), "a notebook cell never prints the values")
        self.assertNotIn("s3cr3t", str(values))
        self.assertEqual(self.s.set("api-key", "k-1"), '"v2"')
        self.assertEqual(self.fake.data, {"db-user": "report", "db-password": "s3cr3t-Pa55", "api-key": "k-1"})
        self.assertEqual(self.last_request("PUT")["headers"]["if-match"], '"v1"', "written against the version read")
        self.assertEqual(self.s.update({"db-user": "etl", "db-password": None}), '"v3"')
        self.assertEqual(self.fake.data, {"db-user": "etl", "api-key": "k-1"})
        self.assertEqual(self.s.delete("api-key"), '"v4"')
        self.assertNotIn("if-match", self.last_request("DELETE")["headers"])
        self.assertEqual(self.s.list(), ["db-user"])
        self.assertEqual(self.s.etag, '"v4"')
        # Values that need escaping survive.
        odd = {"unicode": "päss wörd ✓", "json": '{"a": [1, "\\n"]}', "empty": "", "nl": "line1\nline2\r\n"}
        self.s.set_all(odd)
        self.assertEqual(dict(self.s.get_all()), odd)

    def test_not_found(self) -> None:
        with self.assertRaises(wc.NotFound) as cm:
            self.s.get("missing")
        self.assertEqual((cm.exception.status, cm.exception.code), (404, "not_found"))
        with self.assertRaises(wc.NotFound):
            self.s.delete("missing")

    def test_conflict_with_a_stale_etag(self) -> None:
        self.s.set_all({"token": "one"})
        read = self.s.get_all()
        self.fake.write_as_other({"token": "two"})
        # Without If-Match the sidecar checks against the version it last read: refused.
        with self.assertRaises(wc.Conflict):
            self.s.set_all({"token": "three"})
        with self.assertRaises(wc.Conflict) as cm:
            self.s.set_all({"token": "three"}, if_match=read.etag)
        self.assertEqual((cm.exception.status, cm.exception.code), (409, "conflict"))
        self.assertEqual(self.fake.data, {"token": "two"}, "the other writer's value survives")
        with self.assertRaises(wc.Conflict):
            self.s.set("token", "three", if_match=read.etag)
        with self.assertRaises(wc.Conflict):
            self.s.set_all({"token": "three"}, if_match=read.version)  # the number works too
        with self.assertRaises(wc.Conflict):
            self.s.delete("token", if_match=read.etag)
        self.assertEqual(self.fake.data, {"token": "two"})
        # Read again, and the write goes through.
        fresh = self.s.get_all()
        self.assertEqual(self.s.set_all({"token": "three"}, if_match=fresh.etag), '"v3"')

    def test_set_rereads_once_when_another_writer_came_first(self) -> None:
        self.s.set_all({"a": "1"})
        self.fake.before_put = lambda: self.fake.write_as_other({"a": "1", "b": "from-other-pod"})
        self.assertEqual(self.s.set("c", "3"), '"v3"')
        self.assertEqual(self.fake.data, {"a": "1", "b": "from-other-pod", "c": "3"}, "no write lost")
        puts = [r for r in self.fake.requests if r[0] == "PUT"]
        self.assertEqual([p[2]["if-match"] for p in puts[-2:]], ['"v1"', '"v2"'])
        # retries=0, or an explicit if_match: the conflict is the caller's to handle.
        self.fake.before_put = lambda: self.fake.write_as_other({"x": "y"})
        with self.assertRaises(wc.Conflict):
            self.s.set("c", "4", retries=0)
        self.assertEqual(self.fake.data, {"x": "y"})

    def test_json_values_and_delete_all(self) -> None:
        # Values of any JSON type (the proposal's DataJobSecrets), and the proposal's delete-all.
        values = {"port": 5432, "ratio": 0.25, "tls": {"verify": True, "ca": None}, "hosts": ["a", "b"], "user": "app"}
        self.s.set_all(values)
        self.assertEqual(dict(self.s.get_all()), values)
        self.assertEqual(self.s.get("tls"), {"verify": True, "ca": None})
        self.s.set("port", 6543)
        self.assertEqual(self.s.get("port"), 6543)
        read = self.s.get_all()
        self.s.set("user", "etl")
        with self.assertRaises(wc.Conflict):
            self.s.delete_all(if_match=read.etag)
        tag = self.s.delete_all()
        self.assertRegex(tag or "", r'^"v\d+"$')
        self.assertEqual(self.s.list(), [])

    def test_owner_secrets_path(self) -> None:
        o = self.w.owner_secrets("apps/svc-prod-app-1")
        self.assertEqual(o._path, "/v1/owners/apps/svc-prod-app-1/secrets")
        for bad in ["apps", "apps/", "/x", "a/b/c", "apps/../x"]:
            with self.subTest(owner=bad), self.assertRaises((ValueError, wc.BadRequest)):
                self.w.owner_secrets(bad)

    def test_bad_keys_and_values(self) -> None:
        for bad in ["bad key!", "-x", "a/b", "x" * 300, "é"]:
            with self.subTest(key=bad[:10]):
                with self.assertRaises(wc.BadRequest):
                    self.s.get(bad)
                with self.assertRaises(wc.BadRequest):
                    self.s.set_all({bad: "v"})
        for bad in ["..", "."]:
            with self.assertRaises(wc.BadRequest):
                self.s.get(bad)
        with self.assertRaises(TypeError):
            self.s.set_all({"k": object()})
        with self.assertRaises(TypeError):
            self.s.set_all({"k": float("nan")})  # not JSON
        with self.assertRaises(TypeError):
            self.s.set("k", None)
        with self.assertRaises(TypeError):
            self.s.set_all(["k", "v"])  # type: ignore[arg-type]
        with self.assertRaises(wc.BadRequest):
            self.s.set_all({"k": "v"}, if_match="vbogus")
        with self.assertRaises(ValueError):
            self.s.get("")

    def test_oversized_values(self) -> None:
        limit = self.MAX_BYTES
        # {"k":"<v>"} is 8 bytes of JSON around the value.
        self.s.set_all({"k": "x" * (limit - 8)})
        with self.assertRaises(wc.PayloadTooLarge) as cm:
            self.s.set_all({"k": "x" * (limit - 7)})
        self.assertEqual((cm.exception.status, cm.exception.code), (413, "payload_too_large"))
        with self.assertRaises(wc.PayloadTooLarge):
            self.s.set("huge", "y" * (3 << 20))
        self.assertEqual(len(self.s.get("k")), limit - 8)

    def test_bad_answers(self) -> None:
        cases = [
            ((200, {"Content-Type": "application/json"}, b"{not json"), wc.ProtocolError, "not JSON"),
            ((200, {}, b""), wc.ProtocolError, "empty"),
            ((200, {}, b"\xff\xfe\x00"), wc.ProtocolError, "not JSON"),
            ((200, {}, b'{"keys": "a,b"}'), wc.ProtocolError, "'keys'"),
            ((200, {}, b'["a"]'), wc.ProtocolError, "JSON object"),
            ((502, {"Content-Type": "text/html"}, b"<html>Bad Gateway</html>"), wc.Unavailable, "Bad Gateway"),
            ((500, {}, b'{"error": "boom", "code": "internal"}'), wc.InternalError, "boom"),
            ((418, {}, b'{"error": "teapot", "code": "teapot"}'), wc.APIError, "teapot"),
            ((400, {}, b'{"error": 7, "code": ["x"]}'), wc.BadRequest, "GET /v1/secrets"),
            ((503, {}, b'{"error": "vault unavailable", "code": "unavailable"}'), wc.Unavailable, "vault"),
            ((503, {}, b'{"error": "slow", "code": "timeout"}'), wc.RequestTimeout, "slow"),
            ((302, {"Location": "http://evil.example/"}, b""), wc.ProtocolError, "redirect"),
        ]
        exc: Type[wc.WardenError]
        for answer, exc, text in cases:
            with self.subTest(answer=answer[2][:20]):
                self.fake.on("GET", "/v1/secrets", answer)
                with self.assertRaises(exc) as cm_bad:
                    self.s.list()
                self.assertIn(text, str(cm_bad.exception))
                self.assertIsInstance(cm_bad.exception, wc.WardenError)
        self.fake.on("GET", "/v1/secrets", (200, {}, b'["a", 1]'))
        with self.assertRaises(wc.ProtocolError):
            self.s.get_all()
        self.fake.on("GET", "/v1/secrets/k", (200, {}, b'{"key": "k"}'))
        with self.assertRaises(wc.ProtocolError):
            self.s.get("k")

    def test_dropped_connection_and_slow_answer(self) -> None:
        self.fake.on("GET", "/v1/secrets", "drop")
        with self.assertRaises(wc.ConnectionFailed):
            self.s.list()
        slow = wc.Client(self.fake.url, timeout=0.3)
        self.fake.on("GET", "/v1/secrets", ("sleep", 1.5))
        with self.assertRaises(wc.WardenTimeout) as cm:
            slow.secrets.list()
        self.assertIsInstance(cm.exception, TimeoutError)
        self.assertIn("0.3 s", str(cm.exception))

    def test_oversized_answer(self) -> None:
        small = wc.Client(self.fake.url, max_answer_bytes=1000)
        self.fake.on("GET", "/v1/secrets", (200, {}, json.dumps({"keys": ["k" * 100] * 20}).encode()))
        with self.assertRaises(wc.ProtocolError) as cm:
            small.secrets.list()
        self.assertIn("1000-byte limit", str(cm.exception))

    def test_caller_and_token_headers(self) -> None:
        wc.Client(self.fake.url, caller="user-ds-1").secrets.list()
        self.assertEqual(self.last_request("GET")["headers"].get("x-warden-caller"), "user-ds-1")
        wc.Client(self.fake.url, token=lambda: "abc.def.ghi").secrets.list()
        h = self.last_request("GET")["headers"]
        self.assertEqual(h.get("authorization"), "Bearer abc.def.ghi")
        self.assertNotIn("x-warden-caller", h)
        self.assertTrue(h["user-agent"].startswith("warden-client-python/"))
        with self.assertRaises(ValueError):
            wc.Client(self.fake.url, token=lambda: " ").secrets.list()


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


class ParseTimeTest(unittest.TestCase):
    def test_go_times(self) -> None:
        utc = dt.timezone.utc
        self.assertEqual(parse_time("2026-11-26T10:00:00Z"), dt.datetime(2026, 11, 26, 10, tzinfo=utc))
        self.assertEqual(parse_time("2026-11-26T10:00:00.123456789Z"), dt.datetime(2026, 11, 26, 10, 0, 0, 123456, tzinfo=utc))
        t = parse_time("2026-11-26T11:30:00.5+01:30")
        self.assertEqual(t, dt.datetime(2026, 11, 26, 10, 0, 0, 500000, tzinfo=utc))
        self.assertIsNone(parse_time("0001-01-01T00:00:00Z"), "Go's zero time is 'not set'")
        self.assertIsNone(parse_time(None))
        for bad in ["yesterday", "2026-13-01T00:00:00Z", "2026-11-26", 17]:
            with self.subTest(bad=bad), self.assertRaises(wc.ProtocolError):
                parse_time(bad)


class ErrorsTest(unittest.TestCase):
    def test_hierarchy(self) -> None:
        from warden_client.errors import error_for

        self.assertIsInstance(error_for(409, "conflict", "x"), wc.Conflict)
        self.assertIsInstance(error_for(503, "timeout", "x"), wc.Unavailable)
        self.assertIsInstance(error_for(404, "", "x"), wc.NotFound, "by status when there is no code")
        self.assertIsInstance(error_for(403, "not_found", "x"), wc.NotFound, "the code wins")
        e = error_for(507, "insufficient_storage", "full", {"error": "full", "code": "insufficient_storage"})
        self.assertEqual((e.status, e.code, e.message, e.body["error"]), (507, "insufficient_storage", "full", "full"))
        self.assertEqual(str(e), "507 insufficient_storage: full")
        for cls in (wc.ConnectionFailed, wc.ProtocolError, wc.WardenTimeout, wc.ConfigurationError, wc.APIError):
            self.assertTrue(issubclass(cls, wc.WardenError))


if __name__ == "__main__":
    unittest.main()
