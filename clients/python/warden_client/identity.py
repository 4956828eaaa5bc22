"""Identity: GKE workload identity (``client.identity``): the orgs the pod's owner belongs to,
binding the owner to an org's GCP service account and waiting until IAM has caught up, and
resetting it; and ``Org`` and ``Binding``, what those calls return."""

from __future__ import annotations

import datetime as _dt
import time
from dataclasses import dataclass
from typing import Any, Callable, List, Optional

from ._core import Core
from ._decode import _field, _list, parse_time
from .errors import Unavailable, WardenTimeout

__all__ = ["Identity", "Org", "Binding"]


class Identity:
    """GCP workload identity (``client.identity``): act as an org's GCP service account. Needs
    the sidecar in broker mode (in local mode every call raises NotEnabled)."""

    def __init__(self, client: Core) -> None:
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


@dataclass(frozen=True)
class Org:
    """An org the owner belongs to, and the GCP service account the pod can act as."""

    name: str
    gcp_service_account: str

    @classmethod
    def from_json(cls, d: Any) -> Org:
        return cls(name=_field(d, "name", str, "org"), gcp_service_account=_field(d, "gcp_service_account", str, "org"))


@dataclass(frozen=True)
class Binding:
    """The owner's GCP workload identity binding. ``state`` is ``"pending"`` until IAM is
    expected to have propagated the change (``bound_at``), then ``"bound"``."""

    org: str
    gcp_service_account: str
    state: str
    written_at: Optional[_dt.datetime]
    bound_at: Optional[_dt.datetime]

    @property
    def bound(self) -> bool:
        return self.state == "bound"

    @classmethod
    def from_json(cls, d: Any) -> Binding:
        return cls(
            org=_field(d, "org", str, "binding"),
            gcp_service_account=_field(d, "gcp_service_account", str, "binding"),
            state=_field(d, "state", str, "binding"),
            written_at=parse_time(d.get("written_at"), "binding written_at"),
            bound_at=parse_time(d.get("bound_at"), "binding bound_at"),
        )
