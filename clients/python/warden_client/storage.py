"""Cloud Storage through the sidecar (``client.storage``): downscoped credentials for one space
and one access kind, a token source that asks again before expiry, V4 signed URLs and
uploads/downloads with them (urllib, no Google library), and commits of uploads to the loading
zone.

    cred = w.storage.credentials("org1", "loadingzone", "upload")
    cred.bucket, cred.prefix                       # ('org1-landing', 'incoming/')
    gcs = google.cloud.storage.Client(project="my-project", credentials=cred.google_credentials())

    w.storage.upload_file("org1", "loadingzone", "batch-7/a.csv", "a.csv")   # a signed PUT
    w.storage.commit("org1", "loadingzone", "batch-7/")                      # list + announce
"""

from __future__ import annotations

import datetime as _dt
import mimetypes
import os
import tempfile
import urllib.request
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Union

from ._common import UNSET, Token, Who, name_str
from ._core import Core
from ._storage_models import Commit, SignedURL, StorageCredential, StoredObject, _utc_now
from ._storage_tokens import TokenSource
from ._storage_transfer import UploadSource, _Body, _BytesSink, _opener, _Sink, transfer
from .errors import BadRequest, ProtocolError

__all__ = [
    "Storage",
    "TokenSource",
    "ACCESS_KINDS",
    "SIGNED_URL_METHODS",
    "StorageCredential",
    "SignedURL",
    "StoredObject",
    "Commit",
]

#: The seed's access kinds: upload only into the org's loading zone, upload/main straight into a
#: main space (for holders of the delete right there), delete also deletes.
ACCESS_KINDS = ("read", "upload", "upload/main", "delete")
SIGNED_URL_METHODS = ("GET", "HEAD", "PUT", "DELETE")

PATH_CREDENTIALS = "/v1/storage/credentials"
PATH_SIGNED_URL = "/v1/storage/signed-url"
PATH_COMMIT = "/v1/storage/commit"


def _refuse(message: str) -> BadRequest:
    return BadRequest(400, "bad_request", message + " (refused by the client)")


def check_object_name(name: object, what: str = "object name", *, directory: bool = False) -> str:
    """Refuse, before anything is sent, what the broker refuses: an empty name, an absolute
    one, '.', '..' or empty parts, NUL and other control characters, backslashes. A directory
    (a commit's root) may end in '/'. The broker checks again; this only fails early."""
    text = name_str(name, what)
    body = text[:-1] if directory and text.endswith("/") else text
    if body == "":
        raise _refuse(f"{what} is empty")
    if body.startswith("/") or body.startswith("\\"):
        raise _refuse(f"{what} {name!r} must be relative to the space, not an absolute path")
    if any(ord(c) < 0x20 or ord(c) == 0x7F or c == "\\" for c in body):
        raise _refuse(f"{what} {name!r} contains a NUL or control character or a backslash")
    if any(part in ("", ".", "..") for part in body.split("/")):
        raise _refuse(f"{what} {name!r} must be a clean path without '.', '..' or empty parts")
    return text


def _access(access: Any) -> str:
    a = name_str(access, "access")
    if a not in ACCESS_KINDS:
        raise _refuse(f"access {a!r} is not read, upload, upload/main or delete")
    return a


def _method(method: Any) -> str:
    m = name_str(method, "method").upper()
    if m not in SIGNED_URL_METHODS:
        raise _refuse(f"method {method!r} is not GET, HEAD, PUT or DELETE")
    return m


class Storage:
    """Cloud Storage credentials (``client.storage``), for the spaces of the orgs the pod's
    owner and the caller both have a role in. Needs the sidecar in broker mode (local mode:
    NotEnabled) and the webhook with ``--storage``.

    Every call takes ``caller=``/``token=`` like the dataset calls (default: the client's).
    """

    def __init__(self, client: Core) -> None:
        self._c = client
        #: Socket timeout of uploads and downloads with signed URLs (seconds without progress).
        self.transfer_timeout = 300.0
        # For tests: the clock of token sources.
        self._now: Callable[[], _dt.datetime] = _utc_now
        # The URL opener of transfers, given the URL's host (proxies from the environment, none
        # for loopback hosts, no redirects).
        self._opener: Callable[[str], urllib.request.OpenerDirector] = _opener

    def _who(self, caller: Any, token: Any) -> Who:
        return self._c._who(caller, token)

    def _post(self, path: str, body: Dict[str, str], who: Who, timeout: Optional[float] = None) -> Any:
        return self._c._call("POST", path, body=body, headers=self._c._headers(*who), timeout=timeout).json()

    # --- the sidecar's endpoints ------------------------------------------------------------

    def credentials(
        self,
        org: str,
        space: str,
        access: str = "read",
        *,
        caller: Optional[str] = UNSET,
        token: Optional[Token] = UNSET,
    ) -> StorageCredential:
        """A downscoped token for one space: ``read`` (list and read), ``upload`` (also create,
        in the org's loading zone only), ``upload/main`` (also create, straight into a main
        space: needs the trustee role there) or ``delete`` (also delete). It reaches
        ``gs://{bucket}/{prefix}`` only, until ``expires_at`` (by default 1 h for read, 30 min
        for both uploads, 10 min for delete).

        Forbidden names the role the owner or the caller lacks, or that the kind does not fit
        the space (upload into a main space, upload/main into the loading zone); NotFound: no
        such org or space."""
        return self._credentials(name_str(org, "org"), name_str(space, "space"), _access(access), self._who(caller, token))

    def _credentials(self, org: str, space: str, access: str, who: Who) -> StorageCredential:
        d = self._post(PATH_CREDENTIALS, {"org": org, "space": space, "access": access}, who)
        return StorageCredential.from_json(d)

    def token_source(
        self,
        org: str,
        space: str,
        access: str = "read",
        *,
        caller: Optional[str] = UNSET,
        token: Optional[Token] = UNSET,
        refresh_margin: _dt.timedelta = _dt.timedelta(minutes=5),
    ) -> TokenSource:
        """A cached source of credentials for one space and access kind: ``.token()`` answers
        from memory while more than ``refresh_margin`` is left and asks the sidecar again
        below that. ``.google_credentials()`` makes it a google-auth credential that refreshes
        itself through the sidecar. Nothing is asked until the first use."""
        org, space, access = name_str(org, "org"), name_str(space, "space"), _access(access)
        if not isinstance(refresh_margin, _dt.timedelta) or refresh_margin < _dt.timedelta(0):
            raise ValueError("refresh_margin must be a timedelta of zero or more")
        who = self._who(caller, token)
        return TokenSource(
            lambda: self._credentials(org, space, access, who),
            org=org, space=space, access=access, refresh_margin=refresh_margin, now=self._now,
        )

    def signed_url(
        self,
        org: str,
        space: str,
        object: str,
        method: str = "GET",
        *,
        caller: Optional[str] = UNSET,
        token: Optional[Token] = UNSET,
    ) -> SignedURL:
        """A V4 signed URL for one object (``object`` relative to the space's prefix; the
        answer's ``object`` is the full name). GET and HEAD need read access, PUT upload,
        DELETE delete. Use it with any HTTP client; no Google library, no token."""
        body = {
            "org": name_str(org, "org"),
            "space": name_str(space, "space"),
            "object": check_object_name(object),
            "method": _method(method),
        }
        u = SignedURL.from_json(self._post(PATH_SIGNED_URL, body, self._who(caller, token)))
        if u.method.upper() != body["method"]:
            raise ProtocolError(f"signed URL: asked for {body['method']}, the answer is for {u.method!r}")
        return u

    def commit(
        self,
        org: str,
        space: str,
        root_dir: str,
        *,
        caller: Optional[str] = UNSET,
        token: Optional[Token] = UNSET,
        timeout: Optional[float] = None,
    ) -> Commit:
        """Declare an upload under ``root_dir`` (relative to the loading zone's prefix) complete:
        the broker lists what is there and announces it on the org's Pub/Sub topic. Needs
        upload rights in the org's loading zone. Conflict when nothing is there (or the org
        has no topic), PayloadTooLarge when more objects are there than one commit takes
        (commit the subdirectories one by one)."""
        body = {
            "org": name_str(org, "org"),
            "space": name_str(space, "space"),
            "root_dir": check_object_name(root_dir, "root_dir", directory=True),
        }
        # The broker lists and publishes (up to ~30 s); give it longer than a plain call.
        t = timeout if timeout is not None else max(self._c._transport.timeout, 60.0)
        return Commit.from_json(self._post(PATH_COMMIT, body, self._who(caller, token), timeout=t))

    # --- transfers with signed URLs -----------------------------------------------------------

    def upload_file(
        self,
        org: str,
        space: str,
        object: str,
        data: UploadSource,
        *,
        content_type: Optional[str] = None,
        caller: Optional[str] = UNSET,
        token: Optional[Token] = UNSET,
        timeout: Optional[float] = None,
    ) -> SignedURL:
        """Upload ``data`` (a path, bytes, or a binary file open for reading, sent from its
        current position) to ``object`` in the space with a signed PUT URL: no Google library,
        no token in the app. Files are streamed, never read into memory whole. Returns the
        signed URL used (``.bucket`` and ``.object``, the full name). Into the loading zone
        this needs what ``upload`` needs, into a main space what ``upload/main`` needs (the
        trustee role). TransferError when Cloud Storage refuses the upload."""
        check_object_name(object)
        if content_type is None:
            content_type = mimetypes.guess_type(object)[0] or "application/octet-stream"
        if any(c in content_type for c in "\r\n\0"):
            raise ValueError("content_type holds a line break or NUL byte")
        with _Body.of(data) as body:
            u = self.signed_url(org, space, object, "PUT", caller=caller, token=token)
            self._transfer(u, body=body, headers={"Content-Type": content_type}, timeout=timeout)
        return u

    def download(
        self,
        org: str,
        space: str,
        object: str,
        *,
        caller: Optional[str] = UNSET,
        token: Optional[Token] = UNSET,
        timeout: Optional[float] = None,
    ) -> bytes:
        """The content of ``object`` in the space, read with a signed GET URL (in memory: use
        ``download_file`` for big objects)."""
        u = self.signed_url(org, space, object, "GET", caller=caller, token=token)
        sink = _BytesSink()
        self._transfer(u, sink=sink, timeout=timeout)
        return b"".join(sink.parts)

    def download_file(
        self,
        org: str,
        space: str,
        object: str,
        dest: Union[str, "os.PathLike[str]"],
        *,
        caller: Optional[str] = UNSET,
        token: Optional[Token] = UNSET,
        timeout: Optional[float] = None,
    ) -> Path:
        """Stream ``object`` into the file ``dest`` (into a folder: under the object's last
        name) with a signed GET URL; the file appears whole or not at all. Returns its path."""
        check_object_name(object)
        path = Path(dest)
        if path.is_dir():
            path = path / object.rsplit("/", 1)[-1]
        u = self.signed_url(org, space, object, "GET", caller=caller, token=token)
        fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".part", dir=str(path.parent))
        try:
            with os.fdopen(fd, "wb") as fh:
                self._transfer(u, sink=fh, timeout=timeout)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        return path

    def _transfer(
        self,
        u: SignedURL,
        *,
        body: Optional[_Body] = None,
        headers: Optional[Dict[str, str]] = None,
        sink: Optional[_Sink] = None,
        timeout: Optional[float] = None,
    ) -> int:
        """One request to Cloud Storage with a signed URL; the answer's body goes to sink.
        Returns the number of bytes received."""
        t = self.transfer_timeout if timeout is None else timeout
        return transfer(self._opener, u, body=body, headers=headers, sink=sink, timeout=t)
