"""Test harness: a real warden-sidecar process in local mode (a policy file, temporary snapshot,
staging and state folders, a loopback port the kernel picks), and a tiny RSA JWT issuer for
the JWT-caller tests. Standard library only."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
import unittest
from pathlib import Path
from typing import Any, Dict, List, Optional

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent.parent  # clients/python
REPO = PROJECT.parent.parent

OWNER = "apps/svc-prod-app-1"
OWNER_DIR = "apps.svc-prod-app-1"
ENVIRONMENT = "prod"

POLICY = """\
owners:
  - {serviceAccount: apps/svc-prod-app-1, environment: prod, user: integration-test}
groups:
  practitioners: [user-ds-1, user-ds-2]
datasets:
  - id: prod-dataset-1
    snapshot: prod/dataset-1/rw
    snapshots: {"2026-10-01": prod/dataset-1/snap-2026-10-01}
    environments: [prod]
    readers: [serviceAccount:apps/svc-prod-app-1, group:practitioners]
  - {id: prod-dataset-2, snapshot: prod/dataset-2/rw, environments: [prod], readers: [serviceAccount:apps/svc-prod-app-1, user:user-ds-2]}
  - {id: prod-dataset-3, snapshot: prod/dataset-3/rw, environments: [prod], readers: [user:user-ds-1]}
"""

SALES_CSV = "region,month,amount\nnorth,2026-09,10.5\nsouth,2026-09,32\nnorth,2026-10,7.25\n"

_built: Optional[str] = None
_build_lock = threading.Lock()


def sidecar_bin() -> str:
    """WARDEN_SIDECAR_BIN (make python sets it), else a sidecar built from this repository
    with `go build` once per test run. No sidecar is a failure, never a skip."""
    global _built
    env = os.environ.get("WARDEN_SIDECAR_BIN")
    if env:
        if not os.access(env, os.X_OK):
            raise RuntimeError(f"WARDEN_SIDECAR_BIN={env} is not an executable")
        return env
    with _build_lock:
        if _built is None:
            go = shutil.which("go")
            if go is None:
                raise RuntimeError("no sidecar: set WARDEN_SIDECAR_BIN or put Go on PATH (make python does both)")
            out = Path(tempfile.mkdtemp(prefix="warden-pytest-bin-")) / "warden-sidecar"
            subprocess.run([go, "build", "-o", str(out), "./cmd/sidecar"], cwd=REPO, check=True,
                           env={**os.environ, "CGO_ENABLED": "0"})
            _built = str(out)
    return _built


def write_fixtures(snapshot_root: Path) -> None:
    """The datasets' files: a CSV, a binary file, a sub-folder, a symlink that leads out."""
    head = snapshot_root / "prod/dataset-1/rw"
    (head / "2026/10").mkdir(parents=True, exist_ok=True)
    (head / "sales.csv").write_text(SALES_CSV)
    (head / "blob.bin").write_bytes(bytes(range(256)) * 64)
    (head / "2026/10/part-0.csv").write_text("a,b\n1,2\n")
    if not (head / "escape").is_symlink():
        os.symlink("/etc/hostname", head / "escape")
    snap = snapshot_root / "prod/dataset-1/snap-2026-10-01"
    snap.mkdir(parents=True, exist_ok=True)
    (snap / "sales.csv").write_text("region,month,amount\nnorth,2026-09,10.5\n")
    d2 = snapshot_root / "prod/dataset-2/rw"
    d2.mkdir(parents=True, exist_ok=True)
    (d2 / "big.bin").write_bytes(b"\0" * (3 << 20))
    (snapshot_root / "prod/dataset-3/rw").mkdir(parents=True, exist_ok=True)


class Sidecar:
    """A warden-sidecar process in local mode."""

    def __init__(self, *, extra_args: Optional[List[str]] = None, workload: str = "app", policy: str = POLICY) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="warden-pytest-"))
        self.snapshots = self.dir / "share"
        self.staging = self.dir / "staging"
        self.state = self.dir / "state"
        self.policy = self.dir / "policy.yaml"
        self.audit = self.dir / "audit.log"
        self.stderr_path = self.dir / "sidecar.log"
        self.policy.write_text(policy)
        write_fixtures(self.snapshots)
        owner_root = self.staging / ENVIRONMENT / OWNER_DIR
        # Where the app sees staged copies: here, the staging folder itself (in a pod, the
        # webhook mounts it at /secure/datasets/data).
        self.data_dir = owner_root / OWNER_DIR if workload == "workspace" else owner_root
        self.args = [
            sidecar_bin(),
            "--owner", OWNER, "--environment", ENVIRONMENT, "--workload", workload,
            "--policy", str(self.policy),
            "--snapshot-root", str(self.snapshots), "--staging-root", str(self.staging), "--state-dir", str(self.state),
            "--data-dir", str(self.data_dir),
            "--audit-log", str(self.audit),
            "--max-ttl", "1h",
            *(extra_args or []),
        ]
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.url = ""
        self.start()

    def start(self) -> None:
        """Start (or restart, on the same port) the process and wait until it serves."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
        listen = self.url[len("http://"):] if self.url else "127.0.0.1:0"
        self.stderr_path.write_bytes(b"")
        self._log = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen([*self.args, "--listen", listen], stdout=subprocess.DEVNULL, stderr=self._log, env=env)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sidecar exited with {self.proc.returncode}: {self.log()}")
            for line in self.log().splitlines():
                try:
                    rec: Dict[str, Any] = json.loads(line)
                except ValueError:
                    continue
                if rec.get("msg") == "warden sidecar serving":
                    self.url = "http://" + rec["listen"]
                    return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"sidecar did not start within 20 s: {self.log()}")

    def log(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "_log", None):
            self._log.close()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def audit_lines(self) -> List[Dict[str, Any]]:
        if not self.audit.exists():
            return []
        return [json.loads(line) for line in self.audit.read_text().splitlines() if line.strip()]


class SidecarTestCase(unittest.TestCase):
    """One sidecar for the class; SIDECAR_ARGS and WORKLOAD configure it."""

    SIDECAR_ARGS: List[str] = []
    WORKLOAD = "app"
    sidecar: Sidecar

    @classmethod
    def setUpClass(cls) -> None:
        cls.sidecar = Sidecar(extra_args=cls.SIDECAR_ARGS, workload=cls.WORKLOAD)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.sidecar.close()


# --- a JWT issuer: RSA keys and RS256 signatures in pure Python --------------------------------


def _b64u(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode("ascii")


def _probable_prime(bits: int) -> int:
    small = [p for p in range(3, 2000, 2) if all(p % q for q in range(3, int(p ** 0.5) + 1, 2))]
    while True:
        n = secrets.randbits(bits) | (1 << (bits - 1)) | (1 << (bits - 2)) | 1
        if any(n % p == 0 for p in small):
            continue
        d, r = n - 1, 0
        while d % 2 == 0:
            d //= 2
            r += 1
        for _ in range(40):
            a = secrets.randbelow(n - 3) + 2
            x = pow(a, d, n)
            if x in (1, n - 1):
                continue
            for _ in range(r - 1):
                x = pow(x, 2, n)
                if x == n - 1:
                    break
            else:
                break
        else:
            return n


class Issuer:
    """An OIDC-issuer stand-in: an RSA-2048 key, its JWKS file, RS256 tokens."""

    E = 65537

    def __init__(self, directory: Path, issuer: str = "https://login.example.test", audience: str = "warden") -> None:
        while True:
            p, q = _probable_prime(1024), _probable_prime(1024)
            phi = (p - 1) * (q - 1)
            if p != q and phi % self.E:
                break
        self.n = p * q
        self.d = pow(self.E, -1, phi)
        self.issuer, self.audience, self.kid = issuer, audience, "test-key-1"
        self.jwks = directory / "jwks.json"
        n_bytes = self.n.to_bytes((self.n.bit_length() + 7) // 8, "big")
        self.jwks.write_text(json.dumps({"keys": [{
            "kty": "RSA", "kid": self.kid, "alg": "RS256", "use": "sig",
            "n": _b64u(n_bytes), "e": _b64u(self.E.to_bytes(3, "big")),
        }]}))

    def sidecar_args(self) -> List[str]:
        return ["--caller-jwks", str(self.jwks), "--caller-issuer", self.issuer, "--caller-audience", self.audience]

    def token(self, sub: str, *, ttl: int = 600, **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": self.issuer, "aud": self.audience, "sub": sub, "iat": now, "exp": now + ttl, **claims}
        head = {"alg": "RS256", "typ": "JWT", "kid": self.kid}
        signing_input = _b64u(json.dumps(head).encode()) + "." + _b64u(json.dumps(body).encode())
        digest_info = bytes.fromhex("3031300d060960864801650304020105000420") + hashlib.sha256(signing_input.encode()).digest()
        k = (self.n.bit_length() + 7) // 8
        em = b"\x00\x01" + b"\xff" * (k - len(digest_info) - 3) + b"\x00" + digest_info
        sig = pow(int.from_bytes(em, "big"), self.d, self.n).to_bytes(k, "big")
        return signing_input + "." + _b64u(sig)
