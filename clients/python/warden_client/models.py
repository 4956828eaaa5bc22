"""Every value the client returns, in one place for ``from warden_client.models import ...``.
Each is defined with its API area: datasets.py (Dataset, Party, Access, FileEntry, Listing,
StagedFile), secrets.py (SecretValues), identity.py (Org, Binding), _storage_models.py for
storage.py (StorageCredential, SignedURL, StoredObject, Commit); parse_time, which they all
use, is in _decode.py."""

from __future__ import annotations

from ._decode import parse_time
from ._storage_models import Commit, SignedURL, StorageCredential, StoredObject
from .datasets import Access, Dataset, FileEntry, Listing, Party, StagedFile
from .identity import Binding, Org
from .secrets import SecretValues

__all__ = [
    "Dataset",
    "Party",
    "Access",
    "FileEntry",
    "Listing",
    "StagedFile",
    "Org",
    "Binding",
    "SecretValues",
    "StorageCredential",
    "SignedURL",
    "StoredObject",
    "Commit",
    "parse_time",
]
