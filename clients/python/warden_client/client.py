"""The Warden sidecar API as Python calls: ``Client``, made of one part per API area. See the
package docstring for an overview.

    datasets.py   datasets and staging     client.datasets(), .access(), .files(), .stage(), .delete_staged()
    secrets.py    Vault secrets            client.secrets, client.owner_secrets(owner)
    identity.py   GKE workload identity    client.identity
    storage.py    Cloud Storage            client.storage
    access.py     what may I do            client.my_access()

The calls on the client itself come from the areas' mixins; ``secrets``, ``identity`` and
``storage`` are area objects holding the client. Connection, caller and health are here."""

from __future__ import annotations

import os
import re
import ssl
import time
from typing import Optional

from ._common import Token, check_identity
from ._core import CALLER_HEADER, Core
from ._http import DEFAULT_MAX_ANSWER_BYTES, Transport
from .access import AccessMixin
from .datasets import DatasetsMixin
from .errors import ConfigurationError, WardenError, WardenTimeout
from .identity import Identity
from .secrets import OwnerSecretsMixin, Secrets
from .storage import Storage

__all__ = ["Client", "Secrets", "Identity", "CALLER_HEADER", "DEFAULT_PORT"]

DEFAULT_PORT = 8787  # what the webhook sets WARDEN_PORT to


class Client(DatasetsMixin, AccessMixin, OwnerSecretsMixin, Core):
    """A client of the Warden sidecar of this pod.

    ``Client()`` finds the sidecar from ``WARDEN_PORT`` (set by Warden in every app container);
    ``Client("http://127.0.0.1:8787")`` names it. The caller the requests act for (the person
    the app works for) is ``caller=`` (sent as ``X-Warden-Caller``, when the app vouches for
    its users) or ``token=`` (a JWT from the platform's identity provider, sent as
    ``Authorization: Bearer``, when the sidecar runs with ``--caller-jwks``); with neither, the
    app acts for its owner. Every method takes ``caller=``/``token=`` too, for one call.
    """

    secrets: Secrets
    identity: Identity
    storage: Storage

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
        check_identity(caller, token)
        self._transport = Transport(base_url, timeout=timeout, max_answer_bytes=max_answer_bytes, ssl_context=ssl_context)
        self._caller = caller
        self._token = token
        self.stage_timeout = stage_timeout
        self._attach_areas()

    def _attach_areas(self) -> None:
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
        check_identity(caller, token)
        c._transport, c._caller, c._token, c.stage_timeout = self._transport, caller, token, self.stage_timeout
        c._attach_areas()
        return c

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
