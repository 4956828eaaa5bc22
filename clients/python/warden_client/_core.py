"""What every API area's calls share: the transport to the sidecar, whom the client acts for,
and the headers that say so. ``Client`` is a ``Core``; the areas' mixins (datasets, access,
owner secrets) extend it, and the area objects (``client.secrets``, ``.identity``,
``.storage``) hold one."""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

from ._common import UNSET, Token, Who, check_identity
from ._http import Answer, Transport

__all__ = ["Core", "CALLER_HEADER"]

CALLER_HEADER = "X-Warden-Caller"


class Core:
    """The plumbing of a client: set up by ``Client.__init__`` and ``Client.as_caller``."""

    _transport: Transport
    _caller: Optional[str]
    _token: Optional[Token]
    stage_timeout: float

    def _who(self, caller: Any = UNSET, token: Any = UNSET) -> Who:
        """Whom one call acts for: the client's caller or token, unless the call names its own
        (then an unnamed one is None: ``caller="x"`` alone sends no token)."""
        if caller is UNSET and token is UNSET:
            return self._caller, self._token
        return (None if caller is UNSET else caller, None if token is UNSET else token)

    def _headers(self, caller: Any = UNSET, token: Any = UNSET) -> Dict[str, str]:
        if caller is UNSET and token is UNSET:
            caller, token = self._caller, self._token
        else:
            caller, token = self._who(caller, token)
            check_identity(caller, token)
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
