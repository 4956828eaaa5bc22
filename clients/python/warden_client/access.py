"""Access: what may I do (``client.my_access()``): the subjects, datasets, orgs and spaces the
owner and the caller (through the sidecar) or you (at the broker) hold permissions on. Whether
one dataset may be read is ``client.access(dataset_id)``, with the datasets."""

from __future__ import annotations

from typing import Any, Dict, Optional

from ._common import name_str
from ._core import Core
from .errors import ProtocolError

__all__ = ["AccessMixin"]


class AccessMixin(Core):
    """``Client.my_access``."""

    def my_access(self, permission: Optional[str] = None, *, user: Optional[str] = None) -> Dict[str, Any]:
        """What may I do: ``{"subjects", "datasets", "orgs", "spaces"}``, each entry with its
        ``permissions`` (spaces with the weakest ``role`` held), only what needs ``permission``
        (read, upload, upload/main, delete, assume) when given. Through the sidecar it is for
        the owner and the caller together; at the broker (token=) for you, or with ``user=``,
        for an admin, for someone else."""
        query: Dict[str, str] = {}
        if permission is not None:
            query["permission"] = name_str(permission, "permission")
        if user is not None:
            query["user"] = name_str(user, "user")
        d = self._call("GET", "/v1/access", query=query or None, headers=self._headers()).json()
        if not isinstance(d, dict) or not all(isinstance(d.get(k), list) for k in ("datasets", "orgs", "spaces")):
            raise ProtocolError("access: expected datasets, orgs and spaces")
        return d
