"""Helm operations of the simulator's helm-controller: the real `helm` CLI against a spoke.

Pure functions around subprocess calls, used by the HelmRelease controller:

- `resolve(oci_repo, chart, range)`: the highest tag of <oci_repo>/<chart> in the SemVer range
  (the registry's tag list, Masterminds rules through the collection's semver_range);
- `pull(...)`: `helm pull` into a per-fleet cache (a chart version is pulled once);
- `install(...)` / `upgrade(...)`: `helm install|upgrade` with the release name and namespace of
  the HelmRelease, the values as a file, CRDs per the policy (`Skip`, `Create`, `CreateReplace`);
  never `--wait` (there is no kubelet);
- `uninstall(...)` / `rollback(...)`: the remediations.

The kubeconfig goes to a 0600 temporary file that is removed after the call. Errors are
`HelmError` with Helm's own message (its stderr without the `Error: ` prefix).
"""
from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import subprocess
import tarfile
import tempfile
import threading
import time

import yaml

from . import registry

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.environ.get("LOCAL_FLEET_ROOT") or os.path.dirname(os.path.dirname(HERE))
HELM_TIMEOUT = float(os.environ.get("LOCAL_FLEET_HELM_TIMEOUT", "120"))
#: helm processes at once (more only thrash a small machine; the API servers are the bottleneck)
HELM_PARALLEL = threading.BoundedSemaphore(int(os.environ.get("LOCAL_FLEET_HELM_PARALLEL", "4")))

_spec = importlib.util.spec_from_file_location(
    "_c5c3_semver_range", os.path.join(ROOT, "plugins", "module_utils", "semver_range.py"))
semver = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(semver)

CRD_POLICIES = ("Skip", "Create", "CreateReplace")
LOG = logging.getLogger("simulator.helm")


class HelmError(Exception):
    """A failed helm call; str() is Helm's message."""


class Helm:
    """The helm binary with an environment of its own (config/cache/data under `home`)."""

    def __init__(self, binary: str, home: str):
        self.binary = binary
        self.home = home
        self.env = dict(os.environ)
        for var, sub in (("HELM_CONFIG_HOME", "config"), ("HELM_CACHE_HOME", "cache"), ("HELM_DATA_HOME", "data")):
            self.env[var] = os.path.join(home, sub)
            os.makedirs(self.env[var], exist_ok=True)
        self.env.pop("KUBECONFIG", None)
        self.env["KUBECACHEDIR"] = os.path.join(home, "kube-cache")  # discovery cache, removed with the state
        self.charts_dir = os.path.join(home, "charts")
        os.makedirs(self.charts_dir, exist_ok=True)
        self._locks: dict = {}
        self._locks_lock = threading.Lock()

    def run(self, args: list[str], *, kubeconfig: bytes | None = None, stdin: str | None = None) -> str:
        with _kubeconfig_file(kubeconfig) as kc:
            argv = [self.binary, *args] + (["--kubeconfig", kc] if kc else [])
            with HELM_PARALLEL:
                t0 = time.monotonic()
                try:
                    proc = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          text=True, env=self.env, timeout=HELM_TIMEOUT, check=False)
                except subprocess.TimeoutExpired as exc:
                    raise HelmError(f"helm {args[0]} timed out after {HELM_TIMEOUT:.0f}s") from exc
        LOG.info("helm %s %s: rc %d in %.2fs", args[0], args[1] if len(args) > 1 else "", proc.returncode,
                 time.monotonic() - t0)
        if proc.returncode != 0:
            raise HelmError(helm_message(proc.stderr) or f"helm {args[0]} exited {proc.returncode}")
        return proc.stdout

    # ------------------------------------------------------------------------- registry
    def push(self, tgz_path: str, oci_repo: str) -> str:
        out = self.run(["push", tgz_path, oci_repo, "--plain-http"])
        return out

    def pull(self, oci_repo: str, chart: str, version: str) -> str:
        """Path of the chart tarball, pulled once per (repository, chart, version).

        Over the OCI API directly (registry.pull_chart), not `helm pull`: a helm process costs
        0.3-15 s on a loaded machine and adds nothing (source-controller does not use the CLI either)."""
        base, _unused = registry.http_base(oci_repo)
        sub = os.path.join(self.charts_dir, base.split("//", 1)[1].replace(":", "_"))
        path = os.path.join(sub, f"{chart}-{version}.tgz")
        if os.path.exists(path):
            return path
        with self._lock(path):
            if os.path.exists(path):
                return path
            os.makedirs(sub, exist_ok=True)
            try:
                data = registry.pull_chart(oci_repo, chart, version)
            except registry.RegistryError as exc:
                raise HelmError(str(exc)) from exc
            fd, tmp = tempfile.mkstemp(dir=sub, suffix=".part")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        return path

    def _lock(self, key: str):
        with self._locks_lock:
            lock = self._locks.setdefault(key, threading.Lock())
        return lock

    # -------------------------------------------------------------------------- releases
    def install(self, release: str, namespace: str, chart_path: str, values: dict, kubeconfig: bytes, *,
                crds: str = "Create", create_namespace: bool = True, timeout: str | None = None,
                description: str | None = None) -> dict:
        args = ["install", release, chart_path, "--namespace", namespace, "--output", "json"]
        if create_namespace:
            args.append("--create-namespace")
        if crds != "Create":  # Skip: none; CreateReplace: applied by the controller before
            args.append("--skip-crds")
        return self._release(args, values, kubeconfig, timeout, description)

    def upgrade(self, release: str, namespace: str, chart_path: str, values: dict, kubeconfig: bytes, *,
                timeout: str | None = None, force: bool = False, description: str | None = None) -> dict:
        # `helm upgrade` never touches crds/ (the controller applies them per upgrade.crds);
        # --reset-values: the HelmRelease's values are the whole config, as helm-controller does
        args = ["upgrade", release, chart_path, "--namespace", namespace, "--output", "json", "--reset-values",
                "--skip-crds"]
        if force:
            args.append("--force")
        return self._release(args, values, kubeconfig, timeout, description)

    def _release(self, args, values, kubeconfig, timeout, description) -> dict:
        if timeout:
            args += ["--timeout", timeout]
        if description:
            args += ["--description", description]
        args += ["--values", "-"]
        out = self.run(args, kubeconfig=kubeconfig, stdin=json.dumps(values or {}))
        return json.loads(out)

    def uninstall(self, release: str, namespace: str, kubeconfig: bytes) -> None:
        self.run(["uninstall", release, "--namespace", namespace], kubeconfig=kubeconfig)

    def rollback(self, release: str, namespace: str, kubeconfig: bytes, revision: int | None = None) -> None:
        args = ["rollback", release] + ([str(revision)] if revision else []) + ["--namespace", namespace]
        self.run(args, kubeconfig=kubeconfig)

    def history(self, release: str, namespace: str, kubeconfig: bytes) -> list[dict]:
        """Helm's release history (oldest first); [] when the release does not exist."""
        try:
            out = self.run(["history", release, "--namespace", namespace, "--output", "json", "--max", "20"],
                           kubeconfig=kubeconfig)
        except HelmError as exc:
            if "release: not found" in str(exc):
                return []
            raise
        return json.loads(out or "[]")


def helm_message(stderr: str) -> str:
    """Helm's error text: the last `Error: ...` line(s), without the prefix and the warnings."""
    lines = [ln for ln in (stderr or "").strip().splitlines() if ln.strip()]
    for i, ln in enumerate(lines):
        if ln.startswith("Error: "):
            return "\n".join([ln[len("Error: "):]] + lines[i + 1:]).strip()
    return "\n".join(ln for ln in lines if not ln.startswith("WARNING:")).strip()


@contextlib.contextmanager
def _kubeconfig_file(kubeconfig: bytes | None):
    if kubeconfig is None:
        yield None
        return
    fd, path = tempfile.mkstemp(prefix="lf-helm-kubeconfig-", suffix=".yaml")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(kubeconfig)
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


# ------------------------------------------------------------------------------ resolution
def resolve(oci_repo: str, chart: str, range_text: str | None) -> str:
    """The highest version of <oci_repo>/<chart> inside range_text (as source-controller picks it).

    Raises HelmError with source-controller's wording when nothing matches."""
    range_text = (range_text or "*").strip() or "*"
    try:
        tags = registry.tags(oci_repo, chart)
    except registry.RegistryError as exc:
        raise HelmError(f"failed to get chart version for remote reference: {exc}") from exc
    best, best_key = None, None
    for tag in tags:
        try:
            key = semver.parse_version(tag)
            ok = range_text == "*" and not key[1] or semver.satisfies(tag, range_text)
        except semver.SemverRangeError:
            continue
        if ok and (best_key is None or key[0] > best_key[0]):
            best, best_key = tag, key
    if best is None:
        if not tags:
            raise HelmError(f"failed to get chart version for remote reference: "
                            f"{registry.http_base(oci_repo)[0].split('//', 1)[1]}/"
                            f"{registry.http_base(oci_repo)[1]}/{chart}: not found")
        raise HelmError(f"no '{chart}' chart with version matching '{range_text}' found")
    return best


# ---------------------------------------------------------------------------------- CRDs
def chart_crds(chart_path: str) -> list[dict]:
    """The CustomResourceDefinitions of a chart tarball's top-level crds/ directory."""
    out = []
    with tarfile.open(chart_path, "r:gz") as tar:
        for m in sorted(tar.getmembers(), key=lambda m: m.name):
            parts = m.name.split("/")
            if len(parts) != 3 or parts[1] != "crds" or not m.isfile() or not parts[2].endswith((".yaml", ".yml", ".json")):
                continue
            text = tar.extractfile(m).read().decode()
            for doc in yaml.safe_load_all(text):
                if doc and doc.get("kind") == "CustomResourceDefinition":
                    out.append(doc)
    return out


def apply_crds(api_client, crds: list[dict], policy: str) -> list[str]:
    """CRDs per the HelmRelease policy, as helm-controller applies them (not through Helm):
    Create: only missing ones; CreateReplace: create or replace. Returns what was written."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    if policy not in ("Create", "CreateReplace") or not crds:
        return []
    ext = client.ApiextensionsV1Api(api_client)
    done = []
    for crd in crds:
        name = crd["metadata"]["name"]
        try:
            cur = ext.read_custom_resource_definition(name, _request_timeout=10)
        except ApiException as exc:
            if exc.status != 404:
                raise
            cur = None
        if cur is None:
            try:
                ext.create_custom_resource_definition(crd, _request_timeout=10)
                done.append(name)
                continue
            except ApiException as exc:
                if exc.status != 409:
                    raise
                cur = ext.read_custom_resource_definition(name, _request_timeout=10)
        if policy == "CreateReplace":
            body = dict(crd)
            body["metadata"] = dict(crd["metadata"], resourceVersion=cur.metadata.resource_version)
            ext.replace_custom_resource_definition(name, body, _request_timeout=10)
            done.append(name)
    return done
