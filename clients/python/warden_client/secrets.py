"""Secrets: the pod owner's secrets in Vault, through the sidecar (``client.secrets``), and an
owner's secrets from outside its pods, through the broker (``client.owner_secrets(owner)``),
with check-and-set writes; and ``SecretValues``, what ``get_all`` returns."""

from __future__ import annotations

import json
import re
from typing import Any, Dict, List, Mapping, Optional, Union

from ._common import name_str, seg
from ._core import Core
from ._decode import _list
from ._http import Answer
from .errors import Conflict, ProtocolError

__all__ = ["Secrets", "SecretValues", "OwnerSecretsMixin", "ETag"]

#: A secrets version: an ETag as answered ('"v3"') or the version number (3).
ETag = Union[str, int]


class OwnerSecretsMixin(Core):
    """``Client.owner_secrets``: the secrets API at the broker, for one owner."""

    def owner_secrets(self, owner: str) -> Secrets:
        """An owner's secrets ("namespace/name") from outside its pods: this client's base URL
        is the broker (https, ``ssl_context`` trusting its CA) and its ``token=`` your
        Kubernetes token (``kubectl create token``, an OIDC id token); RBAC on owners/secrets in
        warden.dev decides. The same API as ``client.secrets``."""
        ns, sep, name = name_str(owner, "owner").partition("/")
        if not sep or not ns or not name or "/" in name:
            raise ValueError(f"owner {owner!r} must be NAMESPACE/NAME")
        return Secrets(self, f"/v1/owners/{seg(ns, 'owner namespace')}/{seg(name, 'owner name')}/secrets")


class Secrets:
    """The owner's secrets in Vault, through the sidecar (``client.secrets``). They belong to
    the pod's owner (its service account), whoever the caller is. From outside any pod,
    ``Client(BROKER_URL, token=KUBERNETES_TOKEN, ssl_context=...).owner_secrets("ns/name")``
    is the same API at the broker, for people RBAC lets manage that owner's secrets.

    Values are any JSON value (str, int, float, bool, None, lists and dicts of them), as the
    proposal's DataJobSecrets allows; what was written comes back as it was.

    Every answer carries the KV version as an ETag (``'"v3"'``). Writes are check-and-set, as
    the sidecar implements them: against ``if_match=`` when given (an ETag, or the version
    number); else ``set``/``update`` write against the version they just read, ``set_all``
    against the version the sidecar last read, and ``delete`` against the current one. A write
    based on an old version raises Conflict instead of erasing another writer's change.
    ``etag`` is the last version this object saw."""

    def __init__(self, client: Core, path: str = "/v1/secrets") -> None:
        self._c = client
        self._path = path
        self.etag: Optional[str] = None

    def _note(self, a: Answer) -> Optional[str]:
        tag = a.header("ETag")
        if tag:
            self.etag = tag
        return tag

    def list(self) -> List[str]:
        """The secrets' names."""
        a = self._c._call("GET", self._path, headers=self._c._headers())
        self._note(a)
        return [str(k) for k in _list(a.json(), "keys", "secrets", optional=True)]

    def get(self, key: str) -> Any:
        """One secret's value, any JSON value (NotFound when there is no such key)."""
        a = self._c._call("GET", f"{self._path}/{seg(key, 'secret key')}", headers=self._c._headers())
        self._note(a)
        d = a.json()
        if not isinstance(d, dict) or "value" not in d:
            raise ProtocolError("secret: expected a JSON object with a value", status=a.status)
        return d["value"]

    def get_all(self) -> SecretValues:
        """Every secret, as a dict with ``.etag``, the version read."""
        a = self._c._call("GET", self._path, query={"all": "true"}, headers=self._c._headers())
        d = a.json()
        if not isinstance(d, dict):
            raise ProtocolError("secrets: expected a JSON object", status=a.status)
        return SecretValues(d, self._note(a))

    def set_all(self, values: Mapping[str, Any], *, if_match: Optional[ETag] = None) -> Optional[str]:
        """Replace all secrets with ``values`` (one KV version). With ``if_match`` (an ETag from
        ``get_all``) the write fails with Conflict if they changed since; without it, the sidecar
        checks against the version it last read. Returns the new ETag."""
        body = _check_values(values)
        a = self._c._call("PUT", self._path, body=body, headers=self._write_headers(if_match))
        return self._note(a)

    def set(self, key: str, value: Any, *, if_match: Optional[ETag] = None, retries: int = 1) -> Optional[str]:
        """Set one secret (any JSON value but None, which ``update`` takes as a deletion),
        keeping the others: read all, change one, write back against the version read (or
        ``if_match``). Returns the new ETag. See ``update`` for ``retries``."""
        if value is None:
            raise TypeError(f"secret {key!r}: None deletes; use delete() or update({{key: None}})")
        _check_values({key: value})
        return self.update({key: value}, if_match=if_match, retries=retries)

    def delete_all(self, *, if_match: Optional[ETag] = None) -> Optional[str]:
        """Delete every secret, as one new empty version (the proposal's --delete-all); with
        ``if_match``, only if nothing changed since. Returns the new ETag."""
        a = self._c._call("DELETE", self._path, headers=self._write_headers(if_match))
        return self._note(a)

    def update(
        self, changes: Mapping[str, Any], *, if_match: Optional[ETag] = None, retries: int = 1
    ) -> Optional[str]:
        """Set several secrets at once (a value of None deletes that key), as one check-and-set
        write. Returns the new ETag.

        Without ``if_match``, a Conflict (another writer came first, or the sidecar's cached copy
        was older than Vault's) re-reads and applies the same changes again, up to ``retries``
        times: the other writer's keys are kept, and only the keys named here are overwritten.
        With ``if_match`` a Conflict is raised as it is."""
        for k, v in changes.items():
            seg(k, "secret key")
        _check_values({k: v for k, v in changes.items() if v is not None})
        attempt = 0
        while True:
            current = self.get_all()
            merged: Dict[str, Any] = dict(current)
            for k, v in changes.items():
                if v is None:
                    merged.pop(k, None)
                else:
                    merged[k] = v
            try:
                return self.set_all(merged, if_match=if_match if if_match is not None else current.etag)
            except Conflict:
                if if_match is not None or attempt >= retries:
                    raise
                attempt += 1

    def delete(self, key: str, *, if_match: Optional[ETag] = None) -> Optional[str]:
        """Delete one secret (NotFound when there is no such key). Returns the new ETag."""
        a = self._c._call("DELETE", f"{self._path}/{seg(key, 'secret key')}", headers=self._write_headers(if_match))
        return self._note(a)

    def _write_headers(self, if_match: Optional[ETag]) -> Dict[str, str]:
        h = self._c._headers()
        if isinstance(if_match, bool):
            raise TypeError("if_match must be an ETag such as '\"v3\"' or a version number")
        if isinstance(if_match, int):
            if if_match < 0:
                raise ValueError("if_match must not be negative")
            if_match = f'"v{if_match}"'
        if if_match:
            h["If-Match"] = if_match
        return h


def _check_values(values: Mapping[str, Any]) -> Dict[str, Any]:
    """Secrets map str keys to JSON values; anything json cannot encode (or NaN and infinities,
    which are not JSON) is refused here, before anything is sent."""
    if not isinstance(values, Mapping):
        raise TypeError(f"secrets must be a mapping of str to JSON values, not {type(values).__name__}")
    out: Dict[str, Any] = {}
    for k, v in values.items():
        if not isinstance(k, str):
            raise TypeError(f"secret names must be str, not {type(k).__name__}")
        try:
            json.dumps(v, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise TypeError(f"secret {k!r}: not a JSON value: {e}") from None
        out[k] = v
    return out


class SecretValues(Dict[str, Any]):
    """All of the owner's secrets (a dict), with ``etag``: the version they were read at
    (``'"v3"'``), for a check-and-set write with ``Secrets.set_all(..., if_match=values.etag)``.

    The repr hides the values, so a notebook cell never prints them by accident."""

    def __init__(self, values: Mapping[str, Any], etag: Optional[str]) -> None:
        super().__init__(values)
        self.etag = etag

    @property
    def version(self) -> Optional[int]:
        """The KV version as a number (3 for ``'"v3"'``), or None."""
        return _version(self.etag)

    def __repr__(self) -> str:
        return f"SecretValues(keys={sorted(self)!r}, etag={self.etag!r})"

    __str__ = __repr__


def _version(etag: Optional[str]) -> Optional[int]:
    if not etag:
        return None
    m = re.fullmatch(r'(?:W/)?"?v?(\d+)"?', etag.strip())
    return int(m.group(1)) if m else None
