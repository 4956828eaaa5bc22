"""The Warden sidecar API as Python calls. See the package docstring for an overview."""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import re
import ssl
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Union
from urllib.parse import quote

from ._common import UNSET, Token
from ._http import DEFAULT_MAX_ANSWER_BYTES, Answer, Transport
from .errors import BadRequest, ConfigurationError, Conflict, Forbidden, ProtocolError, Unavailable, WardenError, WardenTimeout
from .models import Access, Binding, Dataset, Listing, Org, SecretValues, StagedFile, _field, _list
from .storage import Storage

__all__ = ["Client", "Secrets", "Identity", "CALLER_HEADER", "DEFAULT_PORT"]

CALLER_HEADER = "X-Warden-Caller"
DEFAULT_PORT = 8787  # what the webhook sets WARDEN_PORT to

#: A secrets version: an ETag as answered ('"v3"') or the version number (3).
ETag = Union[str, int]
#: A staging lifetime: seconds, or a timedelta.
TTL = Union[int, float, _dt.timedelta]


_UNSET: Any = UNSET


def _seg(value: str, what: str) -> str:
    """One URL path segment. Everything is escaped ('/' included), so a hostile value reaches
    the sidecar as one segment and is refused there with 400, never re-routed."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    if value == "":
        raise ValueError(f"{what} must not be empty")
    if value in (".", ".."):
        # HTTP path cleaning would turn these into another endpoint before the sidecar could
        # refuse them: refused here, with the exception the sidecar would raise.
        raise BadRequest(400, "bad_request", f"{what} {value!r} is not valid (refused by the client)")
    return quote(value, safe="")


def _ttl_seconds(ttl: Optional[TTL]) -> int:
    if ttl is None:
        return 0  # the sidecar's --default-ttl
    if isinstance(ttl, bool):
        raise TypeError("ttl must be seconds or a timedelta, not a bool")
    if isinstance(ttl, _dt.timedelta):
        secs = ttl.total_seconds()
    elif isinstance(ttl, (int, float)):
        secs = float(ttl)
    else:
        raise TypeError(f"ttl must be seconds or a timedelta, not {type(ttl).__name__}")
    if math.isnan(secs) or math.isinf(secs):
        raise ValueError("ttl must be finite")
    # Round up: a copy asked for 0.5 s lives 1 s, not the default. Negative values go to the
    # sidecar as they are, and it refuses them (400).
    return int(math.ceil(secs)) if secs > 0 else int(secs)


class Client:
    """A client of the Warden sidecar of this pod.

    ``Client()`` finds the sidecar from ``WARDEN_PORT`` (set by Warden in every app container);
    ``Client("http://127.0.0.1:8787")`` names it. The caller the requests act for (the person
    the app works for) is ``caller=`` (sent as ``X-Warden-Caller``, when the app vouches for
    its users) or ``token=`` (a JWT from the platform's identity provider, sent as
    ``Authorization: Bearer``, when the sidecar runs with ``--caller-jwks``); with neither, the
    app acts for its owner. Every method takes ``caller=``/``token=`` too, for one call.
    """

    def __init__(
        self,
        base_url: Optional[str] = None,
        *,
        caller: Optional[str] = None,
        token: Optional[Token] = None,
        timeout: float = 30.0,
        stage_timeout: float = 600.0,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
        ssl_context: Optional[ssl.SSLContext] = None,
    ) -> None:
        if base_url is None:
            port = os.environ.get("WARDEN_PORT", "")
            if not port:
                raise ConfigurationError(
                    "WARDEN_PORT is not set: run this inside a pod Warden injected, or pass the "
                    "sidecar's URL, e.g. Client('http://127.0.0.1:8787')"
                )
            if not re.fullmatch(r"[0-9]{1,5}", port.strip()) or not 0 < int(port) < 65536:
                raise ConfigurationError(f"WARDEN_PORT={port!r} is not a port number")
            base_url = f"http://127.0.0.1:{int(port)}"
        _check_identity(caller, token)
        self._transport = Transport(base_url, timeout=timeout, max_answer_bytes=max_answer_bytes, ssl_context=ssl_context)
        self._caller = caller
        self._token = token
        self.stage_timeout = stage_timeout
        self.secrets = Secrets(self)
        self.identity = Identity(self)
        self.storage = Storage(self)

    @property
    def base_url(self) -> str:
        return self._transport.base_url

    @property
    def caller(self) -> Optional[str]:
        return self._caller

    def __repr__(self) -> str:
        who = f"caller={self._caller!r}" if self._caller else ("token=<set>" if self._token else "as owner")
        return f"Client({self.base_url!r}, {who})"

    def as_caller(self, caller: Optional[str] = None, *, token: Optional[Token] = None) -> Client:
        """A client sharing this one's connection settings that acts for another caller (or,
        with no arguments, for the owner)."""
        c = Client.__new__(Client)
        _check_identity(caller, token)
        c._transport, c._caller, c._token, c.stage_timeout = self._transport, caller, token, self.stage_timeout
        c.secrets, c.identity, c.storage = Secrets(c), Identity(c), Storage(c)
        return c

    def owner_secrets(self, owner: str) -> Secrets:
        """An owner's secrets ("namespace/name") from outside its pods: this client's base URL
        is the broker (https, ``ssl_context`` trusting its CA) and its ``token=`` your
        Kubernetes token (``kubectl create token``, an OIDC id token); RBAC on owners/secrets in
        warden.dev decides. The same API as ``client.secrets``."""
        ns, sep, name = _name_str(owner, "owner").partition("/")
        if not sep or not ns or not name or "/" in name:
            raise ValueError(f"owner {owner!r} must be NAMESPACE/NAME")
        return Secrets(self, f"/v1/owners/{_seg(ns, 'owner namespace')}/{_seg(name, 'owner name')}/secrets")

    def my_access(self, permission: Optional[str] = None, *, user: Optional[str] = None) -> Dict[str, Any]:
        """What may I do: ``{"subjects", "datasets", "orgs", "spaces"}``, each entry with its
        ``permissions`` (spaces with the weakest ``role`` held), only what needs ``permission``
        (read, upload, upload/main, delete, assume) when given. Through the sidecar it is for
        the owner and the caller together; at the broker (token=) for you, or with ``user=``,
        for an admin, for someone else."""
        query: Dict[str, str] = {}
        if permission is not None:
            query["permission"] = _name_str(permission, "permission")
        if user is not None:
            query["user"] = _name_str(user, "user")
        d = self._call("GET", "/v1/access", query=query or None, headers=self._headers()).json()
        if not isinstance(d, dict) or not all(isinstance(d.get(k), list) for k in ("datasets", "orgs", "spaces")):
            raise ProtocolError("access: expected datasets, orgs and spaces")
        return d

    # --- plumbing ---------------------------------------------------------------------------

    def _headers(self, caller: Any = _UNSET, token: Any = _UNSET) -> Dict[str, str]:
        if caller is _UNSET and token is _UNSET:
            caller, token = self._caller, self._token
        else:
            caller = None if caller is _UNSET else caller
            token = None if token is _UNSET else token
            _check_identity(caller, token)
        h: Dict[str, str] = {}
        if caller:
            h[CALLER_HEADER] = caller
        if token:
            tok = token() if callable(token) else token
            if not isinstance(tok, str) or not tok.strip():
                raise ValueError("the caller token is empty")
            tok = tok.strip()
            if tok.lower().startswith("bearer "):
                tok = tok[7:].strip()
            h["Authorization"] = "Bearer " + tok
        return h

    def _call(
        self,
        method: str,
        path: str,
        *,
        query: Optional[Mapping[str, str]] = None,
        body: Any = None,
        headers: Optional[Mapping[str, str]] = None,
        timeout: Optional[float] = None,
    ) -> Answer:
        return self._transport.request(method, path, query=query, body=body, headers=headers, timeout=timeout)

    # --- health -----------------------------------------------------------------------------

    def ready(self) -> bool:
        """True when the sidecar answers /readyz with 200; False when it is not ready or not
        reachable at all."""
        try:
            self._call("GET", "/readyz", headers={"Accept": "text/plain"}, timeout=min(5.0, self._transport.timeout))
            return True
        except WardenError:
            return False

    def wait_ready(self, timeout: float = 30.0, poll: float = 0.1) -> None:
        """Wait until the sidecar is ready (at pod start, app containers can run first)."""
        deadline = time.monotonic() + timeout
        while not self.ready():
            if time.monotonic() >= deadline:
                raise WardenTimeout(f"the Warden sidecar at {self.base_url} was not ready within {timeout:g} s")
            time.sleep(poll)

    # --- datasets ---------------------------------------------------------------------------

    def datasets(self, *, caller: Optional[str] = _UNSET, token: Optional[Token] = _UNSET) -> List[Dataset]:
        """The datasets both the owner and the caller may read."""
        d = self._call("GET", "/v1/datasets", headers=self._headers(caller, token)).json()
        return [Dataset.from_json(x) for x in _list(d, "datasets", "datasets", optional=True)]

    def access(self, dataset_id: str, *, caller: Optional[str] = _UNSET, token: Optional[Token] = _UNSET) -> Access:
        """Whether the owner and the caller may read a dataset. A refusal is an answer here
        (``Access.allowed`` False), not an exception; a malformed id raises BadRequest."""
        path = f"/v1/datasets/{_seg(dataset_id, 'dataset id')}/access"
        try:
            return Access.from_json(self._call("GET", path, headers=self._headers(caller, token)).json())
        except Forbidden as e:
            if "dataset_id" in e.body and "owner" in e.body:
                return Access.from_json(e.body)
            raise

    def files(
        self,
        dataset_id: str,
        path: str = "",
        *,
        snapshot: Optional[str] = None,
        caller: Optional[str] = _UNSET,
        token: Optional[Token] = _UNSET,
    ) -> Listing:
        """One folder of a dataset (``path`` relative to the dataset; "" is its top)."""
        q: Dict[str, str] = {}
        if path:
            q["path"] = path
        if snapshot:
            q["snapshot"] = snapshot
        d = self._call(
            "GET", f"/v1/datasets/{_seg(dataset_id, 'dataset id')}/files", query=q, headers=self._headers(caller, token)
        ).json()
        return Listing.from_json(dataset_id, path, d)

    def stage(
        self,
        dataset_id: str,
        path: str,
        *,
        ttl: Optional[TTL] = None,
        snapshot: Optional[str] = None,
        caller: Optional[str] = _UNSET,
        token: Optional[Token] = _UNSET,
    ) -> StagedFile:
        """Copy one file of a dataset into the pod's read-only data folder and return it.

        ``ttl`` (seconds or a timedelta; default the sidecar's, 5 minutes, capped by its
        ``--max-ttl``) is how long the copy lives; ``snapshot`` names one of the dataset's
        snapshots (default: the head). Use the result in a ``with`` block to delete the copy
        when done."""
        if not isinstance(path, str):
            raise TypeError(f"path must be a str, not {type(path).__name__}")
        body: Dict[str, Any] = {"path": path, "ttl_seconds": _ttl_seconds(ttl)}
        if snapshot:
            body["snapshot"] = snapshot
        # The copy belongs to the caller it was staged for: it is deleted as that caller, with
        # headers made afresh then (a token provider may have a newer token by that time).
        if caller is _UNSET and token is _UNSET:
            who = (self._caller, self._token)
        else:
            who = (None if caller is _UNSET else caller, None if token is _UNSET else token)
        d = self._call(
            "POST",
            f"/v1/datasets/{_seg(dataset_id, 'dataset id')}/stage",
            body=body,
            headers=self._headers(*who),
            timeout=max(self.stage_timeout, self._transport.timeout),
        ).json()

        def delete(name: str) -> None:
            self._call("DELETE", f"/v1/staged/{_seg(name, 'staged name')}", headers=self._headers(*who))

        return StagedFile.from_json(d, dataset_id=dataset_id, source=path, snapshot=snapshot, delete=delete)

    def delete_staged(
        self, name: Union[str, StagedFile], *, caller: Optional[str] = _UNSET, token: Optional[Token] = _UNSET
    ) -> None:
        """Delete a staged copy by its name (only the caller it was staged for may)."""
        if isinstance(name, StagedFile):
            name.delete()
            return
        self._call("DELETE", f"/v1/staged/{_seg(name, 'staged name')}", headers=self._headers(caller, token))


def _name_str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    return value


def _check_identity(caller: Optional[str], token: Optional[Token]) -> None:
    if caller is not None and not isinstance(caller, str):
        raise TypeError(f"caller must be a str, not {type(caller).__name__}")
    if caller and token:
        raise ValueError(
            "give caller= or token=, not both: a sidecar with JWT callers refuses X-Warden-Caller, "
            "and one without them ignores the token"
        )


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

    def __init__(self, client: Client, path: str = "/v1/secrets") -> None:
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
        a = self._c._call("GET", f"{self._path}/{_seg(key, 'secret key')}", headers=self._c._headers())
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
            _seg(k, "secret key")
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
        a = self._c._call("DELETE", f"{self._path}/{_seg(key, 'secret key')}", headers=self._write_headers(if_match))
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


class Identity:
    """GCP workload identity (``client.identity``): act as an org's GCP service account. Needs
    the sidecar in broker mode (in local mode every call raises NotEnabled)."""

    def __init__(self, client: Client) -> None:
        self._c = client
        # For tests: the clock and the sleep of wait_bound.
        self._clock: Callable[[], float] = time.monotonic
        self._sleep: Callable[[float], None] = time.sleep

    def orgs(self) -> List[Org]:
        """The orgs the owner belongs to."""
        d = self._c._call("GET", "/v1/identity/orgs", headers=self._c._headers()).json()
        return [Org.from_json(o) for o in _list(d, "orgs", "orgs", optional=True)]

    def bind(self, org: str = "") -> Binding:
        """Bind the owner to ``org``'s GCP service account ("" for the org used last). The
        answer is ``pending`` until IAM has propagated the change (minutes), then ``bound``;
        binding again is cheap and writes nothing."""
        if not isinstance(org, str):
            raise TypeError(f"org must be a str, not {type(org).__name__}")
        d = self._c._call("POST", "/v1/identity/gcp", body={"org": org}, headers=self._c._headers()).json()
        return Binding.from_json(d)

    def wait_bound(self, org: str = "", *, timeout: float = 600.0, poll: float = 5.0) -> Binding:
        """Bind and wait until the state is ``bound`` (IAM takes 2-7 minutes). Polls every
        ``poll`` seconds (sooner when ``bound_at`` is nearer) and retries while the broker or
        IAM is unavailable; WardenTimeout after ``timeout`` seconds."""
        deadline = self._clock() + timeout
        last: Optional[Binding] = None
        last_err: Optional[Unavailable] = None
        while True:
            try:
                last = self.bind(last.org if last else org)
                last_err = None
                if last.bound:
                    return last
            except Unavailable as e:
                last_err = e
            left = deadline - self._clock()
            if left <= 0:
                if last_err is not None:
                    raise WardenTimeout(f"GCP identity still unavailable after {timeout:g} s: {last_err}") from last_err
                assert last is not None
                raise WardenTimeout(
                    f"GCP identity for org {last.org!r} still {last.state} after {timeout:g} s (bound_at {last.bound_at})"
                )
            wait = min(poll, left)
            if last is not None and last.bound_at is not None and last_err is None:
                until = (last.bound_at - _dt.datetime.now(_dt.timezone.utc)).total_seconds()
                wait = min(wait, max(until, 0.05))
            self._sleep(max(wait, 0.0))

    def reset(self) -> None:
        """Remove the binding and the service account annotation (idempotent)."""
        self._c._call("DELETE", "/v1/identity/gcp", headers=self._c._headers())
