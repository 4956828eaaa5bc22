"""What every API area's calls share, without a sidecar process: broken answers from the fake
sidecar (not JSON, wrong shape, error bodies, redirects, dropped, slow, oversized), the caller
and token headers, finding the sidecar from WARDEN_PORT, header injection, the exception for
each status and code, and Go's times."""

from __future__ import annotations

import datetime as dt
import json
import os
import unittest
from typing import Type
from unittest import mock

import warden_client as wc
from tests.unit.cases import FakeTestCase
from warden_client.models import parse_time


class AnswersTest(FakeTestCase):
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


class DiscoveryTest(unittest.TestCase):
    def test_warden_port(self) -> None:
        with mock.patch.dict(os.environ, {"WARDEN_PORT": "8787"}):
            self.assertEqual(wc.Client().base_url, "http://127.0.0.1:8787")
        with mock.patch.dict(os.environ, {"WARDEN_PORT": ""}):
            with self.assertRaises(wc.ConfigurationError) as cm:
                wc.Client()
            self.assertIn("WARDEN_PORT", str(cm.exception))
        for bad in ["abc", "0", "70000", "80; rm -rf /", "-1"]:
            with self.subTest(port=bad), mock.patch.dict(os.environ, {"WARDEN_PORT": bad}):
                with self.assertRaises(wc.ConfigurationError):
                    wc.Client()
        for bad in ["127.0.0.1:8787", "ftp://x", "http://", "http://u:p@127.0.0.1:1", "http://127.0.0.1:99999"]:
            with self.subTest(url=bad), self.assertRaises(wc.ConfigurationError):
                wc.Client(bad)

    def test_header_injection_refused(self) -> None:
        w = wc.Client("http://127.0.0.1:9")
        with self.assertRaises(ValueError):
            w.datasets(caller="user\r\nX-Evil: 1")
        with self.assertRaises(ValueError):
            w.datasets(token="abc\ndef")


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
