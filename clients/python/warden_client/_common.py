"""Types and argument checks shared by the client's API areas (apart, so that those modules
need not import each other)."""

from __future__ import annotations

from typing import Any, Callable, Optional, Tuple, Union
from urllib.parse import quote

from .errors import BadRequest

__all__ = ["Token", "UNSET", "Who"]

#: A bearer token, or a function returning a fresh one (called before every request).
Token = Union[str, Callable[[], str]]

#: Whom a request acts for: (caller, token), at most one of them set; (None, None) is the owner.
Who = Tuple[Optional[str], Optional[Token]]


class _Unset:
    def __repr__(self) -> str:
        return "<unset>"


#: The default of per-call ``caller=``/``token=``: "as the client was made" (None means the owner).
UNSET: Any = _Unset()


def seg(value: str, what: str) -> str:
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


def name_str(value: Any, what: str) -> str:
    """value, which must be a str (TypeError otherwise)."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    return value


def check_identity(caller: Optional[str], token: Optional[Token]) -> None:
    if caller is not None and not isinstance(caller, str):
        raise TypeError(f"caller must be a str, not {type(caller).__name__}")
    if caller and token:
        raise ValueError(
            "give caller= or token=, not both: a sidecar with JWT callers refuses X-Warden-Caller, "
            "and one without them ignores the token"
        )
