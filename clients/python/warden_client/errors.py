"""Exceptions raised by the Warden client.

Every error answer of the sidecar is ``{"error": "...", "code": "..."}`` with an HTTP status.
The client raises the :class:`APIError` subclass that matches the ``code`` (or, for an answer
without one, the status), so code can catch exactly what it expects::

    try:
        staged = w.stage("prod-dataset-1", "sales.csv")
    except warden_client.Forbidden:
        ...                       # this caller may not read the dataset
    except warden_client.WardenError as e:
        ...                       # anything else Warden-related

Errors that happen before an answer exists (the sidecar is down, the answer is not JSON) are
:class:`ConnectionFailed` and :class:`ProtocolError`; both share the :class:`WardenError` base.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Type


class WardenError(Exception):
    """Base class of every exception this package raises on purpose."""


class ConfigurationError(WardenError):
    """The client cannot tell where the sidecar is (no ``WARDEN_PORT``, a malformed URL)."""


class ConnectionFailed(WardenError, ConnectionError):
    """The sidecar could not be reached, or the connection broke before a full answer.

    Inside a Warden pod this usually means the sidecar is not running (yet); outside one, that
    ``WARDEN_PORT`` or the base URL points at nothing.
    """

    def __init__(self, message: str, *, url: str = "") -> None:
        super().__init__(message)
        self.url = url


class ProtocolError(WardenError):
    """The sidecar answered something this client cannot read: not JSON, the wrong shape, or
    bigger than the client's limit. ``status`` is the HTTP status of that answer."""

    def __init__(self, message: str, *, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class WardenTimeout(WardenError, TimeoutError):
    """A wait (for example :meth:`Identity.wait_bound`) ran out of time."""


class TransferError(WardenError):
    """An upload or download with a signed URL failed: Cloud Storage (not the sidecar) refused it
    or answered something unexpected, or the connection broke. ``status`` is Cloud Storage's HTTP
    status (0 without an answer), ``method`` the HTTP method, ``url`` the URL without its query
    (the signature in the query is a credential and never appears in messages), ``body`` the
    start of the answer (Cloud Storage's XML error, e.g. ``<Code>AccessDenied</Code>``)."""

    def __init__(self, message: str, *, status: int = 0, method: str = "", url: str = "", body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.method = method
        self.url = url
        self.body = body


class APIError(WardenError):
    """The sidecar refused or failed a request.

    ``status`` is the HTTP status, ``code`` the API's stable error code (``"forbidden"``,
    ``"not_found"``, ...), ``message`` the sidecar's explanation for people, and ``body`` the
    decoded answer (empty when it was not JSON).
    """

    #: The code this class stands for (informational; the base class matches every code).
    CODE: str = ""

    def __init__(self, status: int, code: str, message: str, body: Optional[Mapping[str, Any]] = None) -> None:
        super().__init__(f"{status} {code or 'error'}: {message}" if message else f"{status} {code or 'error'}")
        self.status = status
        self.code = code
        self.message = message
        self.body: Dict[str, Any] = dict(body or {})


class BadRequest(APIError):
    """400 ``bad_request``: a malformed request, a path with ``..``, a bad key or caller name."""

    CODE = "bad_request"


class Unauthorized(APIError):
    """401 ``unauthorized``: the caller's bearer token was rejected."""

    CODE = "unauthorized"


class Forbidden(APIError):
    """403 ``forbidden``: the owner or the caller may not do this (read the dataset, join the
    org, act for another caller from a workspace, reach the secrets)."""

    CODE = "forbidden"


class NotFound(APIError):
    """404 ``not_found``: no such dataset, file, snapshot, staged copy, secret or org."""

    CODE = "not_found"


class MethodNotAllowed(APIError):
    """405 ``method_not_allowed``: a client/sidecar version mismatch."""

    CODE = "method_not_allowed"


class Conflict(APIError):
    """409 ``conflict``: someone else changed the secrets since the version this write was
    based on (re-read and try again), or a file changed while it was being staged."""

    CODE = "conflict"


class PayloadTooLarge(APIError):
    """413 ``payload_too_large``: the secrets together are over the sidecar's limit (1 MiB by
    default), or a request body is too big."""

    CODE = "payload_too_large"


class InsufficientStorage(APIError):
    """507 ``insufficient_storage``: the owner's staging quota or the disk is full. Delete staged
    copies you no longer need (leave the ``with`` block, or ``StagedFile.delete()``)."""

    CODE = "insufficient_storage"


class NotEnabled(APIError):
    """501 ``not_implemented``: the sidecar runs without this feature (secrets without
    ``--vault-addr``; GCP identity in local mode, or on a broker without ``--gcp-identity``)."""

    CODE = "not_implemented"


class Unavailable(APIError):
    """503 ``unavailable``: a dependency (the broker, Vault, IAM, the API server) is down; retry
    later."""

    CODE = "unavailable"


class RequestTimeout(Unavailable):
    """503 ``timeout``: the sidecar gave up on the request (``--request-timeout``)."""

    CODE = "timeout"


class IAMDenied(APIError):
    """502 ``iam_denied``: GCP IAM refused the broker's change (its own permissions)."""

    CODE = "iam_denied"


class GCPDenied(APIError):
    """502 ``gcp_denied``: a Google API refused Warden's own call for Cloud Storage credentials
    (the broker may not impersonate the org's account, or the account may not reach the bucket
    or topic). Not the caller's fault: the platform's GCP permissions need fixing."""

    CODE = "gcp_denied"


class VaultDenied(APIError):
    """502 ``vault_denied``: Vault refused the broker's own login or policy when it served an
    owner's secrets to a person outside its pods. The platform's Vault setup needs fixing
    (manifests/vault/configure-vault.sh, BROKER_SERVICE_ACCOUNT)."""

    CODE = "vault_denied"


class InvalidPolicy(APIError):
    """422 ``invalid_policy``: the Warden policy cannot answer this (an org mapping that would
    make it invalid, no ``gcp.project`` for workload identity)."""

    CODE = "invalid_policy"


class InternalError(APIError):
    """500 ``internal``: a bug in the sidecar; its log says more."""

    CODE = "internal"


_BY_CODE: Dict[str, Type[APIError]] = {
    cls.CODE: cls
    for cls in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        Conflict,
        PayloadTooLarge,
        InsufficientStorage,
        NotEnabled,
        Unavailable,
        RequestTimeout,
        IAMDenied,
        GCPDenied,
        VaultDenied,
        InvalidPolicy,
        InternalError,
    )
}

_BY_STATUS: Dict[int, Type[APIError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    413: PayloadTooLarge,
    422: InvalidPolicy,
    500: InternalError,
    501: NotEnabled,
    502: Unavailable,
    503: Unavailable,
    504: Unavailable,
    507: InsufficientStorage,
}


def error_for(status: int, code: str, message: str, body: Optional[Mapping[str, Any]] = None) -> APIError:
    """The exception for an error answer: by its code when the code is known, else by status."""
    cls = _BY_CODE.get(code) or _BY_STATUS.get(status) or APIError
    return cls(status, code, message, body)
