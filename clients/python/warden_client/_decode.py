"""Reading the sidecar's JSON answers into the areas' models: checked fields and Go's times.
Shared by every area's models."""

from __future__ import annotations

import datetime as _dt
import re
from typing import Any, List, Mapping, Optional

from .errors import ProtocolError

__all__ = ["parse_time"]

# Go's time.Time in JSON: RFC 3339 with up to nine fractional digits, "Z" or an offset.
_TIME_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$"
)


def parse_time(value: Any, what: str = "time") -> Optional[_dt.datetime]:
    """A timezone-aware datetime from an RFC 3339 string; None for Go's zero time, null or "".

    Works on Python 3.9, whose ``datetime.fromisoformat`` takes neither ``Z`` nor nanoseconds.
    """
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ProtocolError(f"{what}: expected an RFC 3339 string, got {type(value).__name__}")
    m = _TIME_RE.match(value)
    if not m:
        raise ProtocolError(f"{what}: {value!r} is not an RFC 3339 time")
    year, month, day, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
    frac = (m.group(7) or "").ljust(6, "0")[:6]
    if m.group(8):
        tz = _dt.timezone.utc
    else:
        sign = 1 if m.group(9) == "+" else -1
        tz = _dt.timezone(sign * _dt.timedelta(hours=int(m.group(10)), minutes=int(m.group(11))))
    if year == 1 and month == 1 and day == 1:  # Go's zero time.Time: "not set"
        return None
    try:
        return _dt.datetime(year, month, day, hour, minute, second, int(frac), tzinfo=tz)
    except ValueError as e:
        raise ProtocolError(f"{what}: {value!r}: {e}") from None


def _field(obj: Mapping[str, Any], name: str, kind: Any, what: str) -> Any:
    """obj[name], checked to be of kind (bool is not accepted as an int)."""
    if not isinstance(obj, dict):
        raise ProtocolError(f"{what}: expected a JSON object, got {type(obj).__name__}")
    if name not in obj:
        raise ProtocolError(f"{what}: the answer has no {name!r}")
    v = obj[name]
    if kind is int and isinstance(v, bool):
        raise ProtocolError(f"{what}: {name!r} is not a number")
    if not isinstance(v, kind):
        raise ProtocolError(f"{what}: {name!r} is {type(v).__name__}, not {getattr(kind, '__name__', kind)}")
    return v


def _list(obj: Mapping[str, Any], name: str, what: str, optional: bool = False) -> List[Any]:
    if optional and isinstance(obj, dict) and obj.get(name) is None:
        return []  # Go encodes an empty slice as null
    return list(_field(obj, name, list, what))


def _required_time(d: Any, name: str, what: str) -> _dt.datetime:
    t = parse_time(_field(d, name, str, what), f"{what} {name}")
    if t is None:
        raise ProtocolError(f"{what}: the answer has no {name}")
    return t
