"""warden_client: the Warden sidecar API for Python notebooks and apps (standard library only).

    import warden_client
    w = warden_client.Client(caller="user-ds-1")       # finds the sidecar from WARDEN_PORT
    w.datasets()                                       # [Dataset(id='prod-dataset-1', ...)]
    with w.stage("prod-dataset-1", "sales.csv", ttl=600) as f:
        with f.open(newline="") as fh:
            ...                                        # the copy is deleted on leaving the block
    w.secrets.set("db-password", "...")                # check-and-set against the version read
    w.identity.wait_bound("org1", timeout=600)         # GCP workload identity, once IAM caught up
    cred = w.storage.credentials("org1", "curated")    # a token for one Cloud Storage space

Errors are exceptions carrying the API's ``code`` and HTTP ``status``; see ``warden_client.errors``.
"""

from ._version import __version__
from .client import CALLER_HEADER, DEFAULT_PORT, Client
from .datasets import Access, Dataset, FileEntry, Listing, Party, StagedFile
from .errors import (
    APIError,
    BadRequest,
    ConfigurationError,
    Conflict,
    ConnectionFailed,
    Forbidden,
    GCPDenied,
    IAMDenied,
    InvalidPolicy,
    VaultDenied,
    InsufficientStorage,
    InternalError,
    MethodNotAllowed,
    NotEnabled,
    NotFound,
    PayloadTooLarge,
    ProtocolError,
    RequestTimeout,
    TransferError,
    Unauthorized,
    Unavailable,
    WardenError,
    WardenTimeout,
)
from .identity import Binding, Identity, Org
from .secrets import Secrets, SecretValues
from .storage import Commit, SignedURL, Storage, StorageCredential, StoredObject, TokenSource

__all__ = [
    "__version__",
    "Client",
    "Secrets",
    "Identity",
    "Storage",
    "TokenSource",
    "CALLER_HEADER",
    "DEFAULT_PORT",
    "Access",
    "Binding",
    "Dataset",
    "FileEntry",
    "Listing",
    "Org",
    "Party",
    "SecretValues",
    "StagedFile",
    "StorageCredential",
    "SignedURL",
    "StoredObject",
    "Commit",
    "WardenError",
    "ConfigurationError",
    "ConnectionFailed",
    "ProtocolError",
    "WardenTimeout",
    "APIError",
    "BadRequest",
    "Unauthorized",
    "Forbidden",
    "NotFound",
    "MethodNotAllowed",
    "Conflict",
    "PayloadTooLarge",
    "InsufficientStorage",
    "NotEnabled",
    "Unavailable",
    "RequestTimeout",
    "IAMDenied",
    "GCPDenied",
    "InvalidPolicy",
    "VaultDenied",
    "TransferError",
    "InternalError",
]
