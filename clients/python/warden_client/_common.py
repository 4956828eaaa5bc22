"""Types shared by the client's namespaces (apart, so that those modules need not import each other)."""

from __future__ import annotations

from typing import Any, Callable, Union

__all__ = ["Token", "UNSET"]

#: A bearer token, or a function returning a fresh one (called before every request).
Token = Union[str, Callable[[], str]]


class _Unset:
    def __repr__(self) -> str:
        return "<unset>"


#: The default of per-call ``caller=``/``token=``: "as the client was made" (None means the owner).
UNSET: Any = _Unset()
