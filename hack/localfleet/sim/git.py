"""Real Git work of the simulator's source-controller: fetch over ssh with a Secret's credentials,
resolve the ref to a commit, export a commit's tree for the kustomize-controller.

Every GitRepository gets a bare cache repository under <state>/sim/git/<namespace>/<name>.git.
Credentials (identity, known_hosts of the secretRef Secret) are written to a private temporary
directory for the one git call and removed after it; strict host key checking is always on (a
Secret without known_hosts means an empty known_hosts: the host is unknown and refused).
"""
from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
import threading
from urllib.parse import urlparse

GIT_TIMEOUT = float(os.environ.get("LOCAL_FLEET_SIM_GIT_TIMEOUT", "60"))
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
_locks: dict = {}
_locks_lock = threading.Lock()


class GitError(Exception):
    def __init__(self, reason, message):
        super().__init__(message)
        self.reason, self.message = reason, message


def served_locally(url: str) -> bool:
    """True for URLs on the local fleet's loopback (its Git server): those are fetched for real.

    The local fleet has no egress; sources elsewhere (github.com, git.example.org) keep the
    simulated revision (docs/local-fleet.md)."""
    try:
        u = urlparse(url)
    except ValueError:
        return False
    return u.scheme in ("ssh", "http", "https") and (u.hostname or "") in LOCAL_HOSTS


def _lock(path):
    with _locks_lock:
        return _locks.setdefault(path, threading.Lock())


def cache_dir(state_dir, ns, name) -> str:
    return os.path.join(state_dir, "sim", "git", ns, f"{name}.git")


def _git(argv, env=None, cwd=None, binary=False):
    try:
        proc = subprocess.run(["git", *argv], check=False, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=env, cwd=cwd, timeout=GIT_TIMEOUT)
    except subprocess.TimeoutExpired:
        return 1, b"" if binary else "", f"git {argv[2] if len(argv) > 2 else argv[0]}: timeout after {GIT_TIMEOUT:.0f}s"
    return proc.returncode, proc.stdout if binary else proc.stdout.decode(errors="replace"), \
        proc.stderr.decode(errors="replace").strip()


def ref_spec(ref: dict) -> tuple[str, str]:
    """(remote ref to fetch, Flux's revision prefix) for spec.ref; commit refs have no prefix."""
    if ref.get("name"):
        return ref["name"], ref["name"]
    if ref.get("tag"):
        return f"refs/tags/{ref['tag']}", ref["tag"]
    branch = ref.get("branch") or "master"
    return f"refs/heads/{branch}", branch


def fetch(state_dir, ns, name, url, ref: dict, secret_data: dict | None) -> tuple[str, str]:
    """Fetch spec.ref of url into the cache; return (commit sha, Flux revision)."""
    cache = cache_dir(state_dir, ns, name)
    remote_ref, prefix = ref_spec(ref)
    with _lock(cache):
        if not os.path.isdir(cache):
            os.makedirs(os.path.dirname(cache), exist_ok=True)
            rc, _out, err = _git(["init", "-q", "--bare", cache])
            if rc:
                raise GitError("GitOperationFailed", f"cannot create the artifact cache: {err}")
        creds = tempfile.mkdtemp(prefix="sim-git-")
        try:
            os.chmod(creds, 0o700)
            data = secret_data or {}
            kh = os.path.join(creds, "known_hosts")
            with open(kh, "wb") as fh:
                fh.write(base64.b64decode(data["known_hosts"]) if data.get("known_hosts") else b"")
            ssh = (f"ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile={kh} "
                   f"-o GlobalKnownHostsFile=/dev/null -o IdentitiesOnly=yes -o ConnectTimeout=10 -F /dev/null")
            if data.get("identity"):
                ident = os.path.join(creds, "identity")
                fd = os.open(ident, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    raw = base64.b64decode(data["identity"])
                    fh.write(raw if raw.endswith(b"\n") else raw + b"\n")
                ssh += f" -i {ident}"
            else:
                ssh += " -o IdentityFile=/dev/null"
            env = dict(os.environ, GIT_SSH_COMMAND=ssh, GIT_TERMINAL_PROMPT="0", HOME=creds)
            if ref.get("commit") and not (ref.get("name") or ref.get("tag") or ref.get("branch")):
                argv = ["--git-dir", cache, "fetch", "-q", "--no-tags", url, ref["commit"]]
            else:
                argv = ["--git-dir", cache, "fetch", "-q", "--no-tags", "--force", url, f"+{remote_ref}:{remote_ref}"]
            rc, _out, err = _git(argv, env=env)
        finally:
            shutil.rmtree(creds, ignore_errors=True)
        if rc:
            msg = f"failed to checkout and determine revision: unable to clone '{url}': {err}"
            if "Permission denied" in err:
                raise GitError("AuthenticationFailed", msg)
            raise GitError("GitOperationFailed", msg)
        if ref.get("commit") and not (ref.get("name") or ref.get("tag") or ref.get("branch")):
            return ref["commit"], f"sha1:{ref['commit']}"
        rc, out, err = _git(["--git-dir", cache, "rev-parse", "--verify", f"{remote_ref}^{{commit}}"])
        if rc:
            raise GitError("GitOperationFailed", f"failed to resolve '{remote_ref}': {err}")
        sha = out.strip()
        if ref.get("commit") and ref["commit"] != sha:
            raise GitError("GitOperationFailed", f"commit '{ref['commit']}' is not the head of '{remote_ref}' ({sha})")
        return sha, f"{prefix}@sha1:{sha}"


def archive(state_dir, ns, name, sha) -> bytes:
    """The commit's tree as a tar (what the source-controller stores as the artifact)."""
    cache = cache_dir(state_dir, ns, name)
    with _lock(cache):
        rc, out, err = _git(["--git-dir", cache, "archive", "--format=tar", sha], binary=True)
    if rc:
        raise GitError("ArtifactFailed", f"artifact of {sha} not available: {err}")
    return out


def artifact_digest(tar: bytes) -> str:
    return "sha256:" + hashlib.sha256(tar).hexdigest()


def export(tar: bytes, dest: str) -> None:
    with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
        tf.extractall(dest, filter="data")
