"""Cloud Storage's token source (``client.storage.token_source(...)``): credentials for one
space and access kind, cached in the app and asked for again before they expire, and a
google-auth credential that refreshes itself through the sidecar."""

from __future__ import annotations

import datetime as _dt
import threading
from typing import Any, Callable, Optional, Tuple

from ._storage_models import StorageCredential, _google_credentials_class, _naive_utc, _utc_now

__all__ = ["TokenSource"]

#: google-auth refreshes a token when less than this is left (google.auth._helpers
#: REFRESH_THRESHOLD, 3 min 45 s in google-auth 2.x) and refuses a refresh that returns one
#: inside it: the refresh hook hands out tokens with more than this left.
_GOOGLE_REFRESH_THRESHOLD = _dt.timedelta(minutes=4)
#: A credential that comes back already inside the refresh margin (the broker hands out its
#: cached token until only its --storage-cache-buffer is left) is asked for again at most this
#: often, so a margin longer than the broker's buffer costs one request per interval, not one
#: per token() call.
_RECHECK = _dt.timedelta(seconds=30)
#: Until this close to expiry, a credential is always asked for again.
_HARD_MARGIN = _dt.timedelta(seconds=10)


class TokenSource:
    """Credentials for one space and access kind, cached in the app: ``token()`` answers from
    memory while more than ``refresh_margin`` is left, and asks the sidecar again below that
    (the broker caches too; this saves the round trip). Safe to share between threads.

    With google-auth (2.x), ``google_credentials()`` is a ``google.oauth2.credentials.Credentials``
    whose ``refresh_handler`` is this source, so Google's clients refresh through the sidecar::

        src = w.storage.token_source("org1", "curated", "read")
        gcs = google.cloud.storage.Client(project="my-project", credentials=src.google_credentials())

    or, for code that wants a credentials class of its own, a subclass::

        class WardenCredentials(google.auth.credentials.Credentials):
            def __init__(self, src):
                super().__init__()
                self._src = src
            def refresh(self, request):
                self.token, self.expiry = self._src.refresh_handler(request)
    """

    def __init__(
        self,
        fetch: Callable[[], StorageCredential],
        *,
        org: str,
        space: str,
        access: str,
        refresh_margin: _dt.timedelta,
        now: Callable[[], _dt.datetime] = _utc_now,
    ) -> None:
        self._fetch = fetch
        self.org, self.space, self.access = org, space, access
        self.refresh_margin = refresh_margin
        self._now = now
        self._lock = threading.Lock()
        self._cred: Optional[StorageCredential] = None
        self._fetched_at: Optional[_dt.datetime] = None
        #: How many times the sidecar was asked (for tests and curiosity).
        self.fetches = 0

    def __repr__(self) -> str:
        state = f"expires {self._cred.expires_at.isoformat(timespec='seconds')}" if self._cred else "nothing fetched"
        return f"TokenSource(org={self.org!r}, space={self.space!r}, access={self.access!r}, {state})"

    def _stale(self, c: StorageCredential, now: _dt.datetime, margin: _dt.timedelta) -> bool:
        if not c.expired(margin, now=now):
            return False
        if c.expired(_HARD_MARGIN, now=now) or self._fetched_at is None:
            return True
        return now - self._fetched_at >= _RECHECK

    def _get(self, margin: _dt.timedelta) -> StorageCredential:
        with self._lock:
            now = self._now()
            c = self._cred
            if c is None or self._stale(c, now, margin):
                c = self._fetch()
                self.fetches += 1
                self._cred, self._fetched_at = c, now
            return c

    def credential(self) -> StorageCredential:
        """The current credential: the cached one while more than the margin is left, else a
        new one from the sidecar (which raises what the sidecar answers: Forbidden, ...)."""
        return self._get(self.refresh_margin)

    def token(self) -> str:
        """The current access token (see ``credential``)."""
        return self.credential().token

    def invalidate(self) -> None:
        """Forget the cached credential: the next use asks the sidecar."""
        with self._lock:
            self._cred, self._fetched_at = None, None

    def refresh_handler(self, request: Any = None, scopes: Any = None) -> Tuple[str, _dt.datetime]:
        """google-auth's refresh hook: ``(token, expiry)`` with the expiry as a naive UTC
        datetime, as google-auth keeps them. ``request`` and ``scopes`` are ignored: the token's
        reach is the space's, whatever scopes a library asks for."""
        c = self._get(max(self.refresh_margin, _GOOGLE_REFRESH_THRESHOLD))
        return c.token, _naive_utc(c.expires_at)

    def google_credentials(self) -> Any:
        """A ``google.oauth2.credentials.Credentials`` that starts with the current token and
        refreshes through this source (``refresh_handler``, google-auth 2.x). Needs google-auth;
        ImportError with a clear message otherwise."""
        cls = _google_credentials_class()
        token, expiry = self.refresh_handler()
        try:
            return cls(token, expiry=expiry, refresh_handler=self.refresh_handler)
        except TypeError as e:  # google-auth 1.x has no refresh_handler
            raise ImportError(f"TokenSource.google_credentials() needs google-auth 2.x (refresh_handler): {e}") from e
