"""client.secrets and client.owner_secrets against the stdlib fake sidecar: check-and-set
against the version read, conflicts and the re-read, JSON values, delete-all, the client's own
checks of keys and values, the size limit."""

from __future__ import annotations

import unittest

import warden_client as wc
from tests.unit.cases import FakeTestCase


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


if __name__ == "__main__":
    unittest.main()
