"""Helpers for the local fleet / Flux simulator tests: create hub objects, wait on them by watch."""
from __future__ import annotations

import base64
import json
import time
import uuid

import yaml
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

KINDS = {
    "HelmRelease": ("helm.toolkit.fluxcd.io", "v2", "helmreleases"),
    "Kustomization": ("kustomize.toolkit.fluxcd.io", "v1", "kustomizations"),
    "HelmRepository": ("source.toolkit.fluxcd.io", "v1", "helmrepositories"),
    "GitRepository": ("source.toolkit.fluxcd.io", "v1", "gitrepositories"),
    "OCIRepository": ("source.toolkit.fluxcd.io", "v1", "ocirepositories"),
    "FluxInstance": ("fluxcd.controlplane.io", "v1", "fluxinstances"),
    "FluxReport": ("fluxcd.controlplane.io", "v1", "fluxreports"),
}


def condition(obj, ctype):
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c["type"] == ctype:
            return c
    return None


def ready_at_generation(obj) -> bool:
    """Ready=True at the object's generation (status.observedGeneration where the kind has it)."""
    c = condition(obj, "Ready")
    gen = obj["metadata"]["generation"]
    observed = obj.get("status", {}).get("observedGeneration", c.get("observedGeneration") if c else None)
    return c is not None and c["status"] == "True" and observed == gen and c.get("observedGeneration") == gen


def ready_reason(reason):
    def pred(obj):
        c = condition(obj, "Ready")
        return c is not None and c["reason"] == reason
    return pred


class Hub:
    """The hub of the local fleet, seen from a test; every test gets its own namespace."""

    def __init__(self, fleet):
        self.fleet = fleet
        self.api = fleet.api_client(fleet.hub)
        self.custom = client.CustomObjectsApi(self.api)
        self.core = client.CoreV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)
        self.spoke = fleet.spokes[0]
        self.spoke_api = fleet.api_client(self.spoke)
        self.spoke_core = client.CoreV1Api(self.spoke_api)
        self.ns = "t-" + uuid.uuid4().hex[:8]
        self.ensure_namespace(self.ns)

    def ensure_namespace(self, ns, core=None):
        try:
            (core or self.core).create_namespace({"metadata": {"name": ns}})
        except ApiException as exc:
            if exc.status != 409:
                raise

    # ------------------------------------------------------------------ objects
    def create(self, kind, name, spec, namespace=None, annotations=None, labels=None):
        g, v, p = KINDS[kind]
        ns = namespace or self.ns
        body = {"apiVersion": f"{g}/{v}", "kind": kind,
                "metadata": {"name": name, "namespace": ns, "annotations": annotations or {},
                             "labels": labels or {}}, "spec": spec}
        return self.custom.create_namespaced_custom_object(g, v, ns, p, body)

    def get(self, kind, name, namespace=None):
        g, v, p = KINDS[kind]
        return self.custom.get_namespaced_custom_object(g, v, namespace or self.ns, p, name)

    def patch(self, kind, name, body, namespace=None):
        g, v, p = KINDS[kind]
        return self.custom.patch_namespaced_custom_object(g, v, namespace or self.ns, p, name, body)

    def annotate(self, kind, name, annotations, namespace=None):
        return self.patch(kind, name, {"metadata": {"annotations": annotations}}, namespace)

    def wait(self, kind, name, predicate, timeout=30, namespace=None):
        """Watch one object until predicate(obj) is true; return it (fail with its last state)."""
        g, v, p = KINDS[kind]
        ns = namespace or self.ns
        deadline = time.monotonic() + timeout
        last = None
        while True:
            try:
                listing = self.custom.list_namespaced_custom_object(
                    g, v, ns, p, field_selector=f"metadata.name={name}")
            except ApiException:
                listing = {"items": [], "metadata": {"resourceVersion": None}}
            for item in listing["items"]:
                last = item
                if predicate(item):
                    return item
            left = deadline - time.monotonic()
            if left <= 0:
                break
            w = watch.Watch()
            for ev in w.stream(self.custom.list_namespaced_custom_object, g, v, ns, p,
                               field_selector=f"metadata.name={name}",
                               resource_version=listing["metadata"]["resourceVersion"],
                               timeout_seconds=max(1, int(left))):
                if ev["type"] in ("ADDED", "MODIFIED"):
                    last = ev["object"]
                    if predicate(last):
                        w.stop()
                        return last
            if time.monotonic() >= deadline:
                break
        raise AssertionError(f"{kind} {ns}/{name} did not reach the expected state in {timeout}s; last:\n"
                             f"{json.dumps((last or {}).get('status'), indent=2)}")

    def settle(self):
        """Return once the simulator has worked off everything created before this call.

        A fresh GitRepository is queued behind every earlier event; once it is Ready, earlier
        objects have been looked at (used to assert that something did *not* happen)."""
        name = "settle-" + uuid.uuid4().hex[:6]
        self.create("GitRepository", name, {"url": "https://git.example.org/settle", "interval": "1m",
                                            "ref": {"branch": "main"}})
        self.wait("GitRepository", name, ready_at_generation)

    # ------------------------------------------------------------------ kubeconfig secrets
    def kubeconfig_secret(self, name, cluster=None, key="value", data=None, watched=True, namespace=None):
        if data is None:
            with open(self.fleet.kubeconfig(cluster or self.spoke), encoding="utf-8") as fh:
                data = fh.read()
        body = {"metadata": {"name": name, "namespace": namespace or self.ns,
                             "labels": {"reconcile.fluxcd.io/watch": "Enabled"} if watched else {}},
                "data": {key: base64.b64encode(data.encode()).decode()}}
        try:
            return self.core.create_namespaced_secret(namespace or self.ns, body)
        except ApiException as exc:
            if exc.status != 409:
                raise
            return self.core.replace_namespaced_secret(name, namespace or self.ns, body)

    def unreachable_kubeconfig(self, cluster=None):
        """The spoke's kubeconfig with its server pointed at a closed port."""
        import socket
        with open(self.fleet.kubeconfig(cluster or self.spoke), encoding="utf-8") as fh:
            kc = yaml.safe_load(fh)
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        kc["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{port}"
        return yaml.safe_dump(kc)

    # ------------------------------------------------------------------ sources & releases
    def helm_repository(self, name="charts", oci=False):
        spec = {"url": "oci://ghcr.io/example/charts" if oci else "https://charts.example.org", "interval": "10m"}
        if oci:
            spec["type"] = "oci"
        return self.create("HelmRepository", name, spec)

    def helm_release(self, name, *, secret=None, repo="charts", chart=None, version="1.0.0", values=None,
                     depends_on=None, annotations=None, target=None, storage=None, install=None, upgrade=None):
        spec = {"interval": "10m", "releaseName": name,
                "chart": {"spec": {"chart": chart or name, "version": version,
                                   "sourceRef": {"kind": "HelmRepository", "name": repo}}}}
        if secret:
            spec["kubeConfig"] = {"secretRef": {"name": secret}}
        if values is not None:
            spec["values"] = values
        if depends_on:
            spec["dependsOn"] = [{"name": d} for d in depends_on]
        if target:
            spec["targetNamespace"] = target
        if storage:
            spec["storageNamespace"] = storage
        if install:
            spec["install"] = install
        if upgrade:
            spec["upgrade"] = upgrade
        return self.create("HelmRelease", name, spec, annotations=annotations)


# ---------------------------------------------------------------------- the local Git server
class SyncRepo:
    """The fleet's Git server (<state>/git/: identity, known_hosts, url), driven with real git over ssh.

    Every test pushes to a branch of its own in the bare sync repository."""

    def __init__(self, fleet, workdir):
        import os
        self.dir = os.path.join(fleet.state_dir, "git")
        with open(os.path.join(self.dir, "url"), encoding="utf-8") as fh:
            self.url = fh.read().strip()
        self.identity = os.path.join(self.dir, "identity")
        self.known_hosts = os.path.join(self.dir, "known_hosts")
        self.work = str(workdir)

    def env(self, identity=None, known_hosts=None):
        import os
        ssh = (f"ssh -i {identity or self.identity} -o IdentitiesOnly=yes -o BatchMode=yes -F /dev/null "
               f"-o StrictHostKeyChecking=yes -o UserKnownHostsFile={known_hosts or self.known_hosts} "
               "-o GlobalKnownHostsFile=/dev/null")
        return dict(os.environ, GIT_SSH_COMMAND=ssh, GIT_TERMINAL_PROMPT="0")

    def git(self, *args, check=True, **kw):
        import subprocess
        kw.setdefault("env", self.env())
        proc = subprocess.run(["git", *args], check=False, capture_output=True, text=True, timeout=60, **kw)
        if check and proc.returncode:
            raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
        return proc

    def commit(self, branch, files: dict, message="test") -> str:
        """Write `files` (path -> text; None removes) on top of the branch head, commit, push; the new sha."""
        import os
        wt = os.path.join(self.work, "wt-" + branch)
        if not os.path.isdir(wt):
            self.git("init", "-q", "-b", branch, wt)
            self.git("-C", wt, "remote", "add", "origin", self.url)
            if self.git("-C", wt, "fetch", "-q", "origin", branch, check=False).returncode == 0:
                self.git("-C", wt, "reset", "-q", "--hard", "FETCH_HEAD")
        for path, text in files.items():
            full = os.path.join(wt, path)
            if text is None:
                if os.path.exists(full):
                    os.unlink(full)
                continue
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w", encoding="utf-8") as fh:
                fh.write(text)
        self.git("-C", wt, "add", "-A")
        self.git("-C", wt, "-c", "user.name=test", "-c", "user.email=test@example.org", "commit", "-q",
                 "--allow-empty", "-m", message)
        self.git("-C", wt, "push", "-q", "origin", f"HEAD:refs/heads/{branch}")
        return self.head(branch)

    def head(self, branch) -> str:
        out = self.git("ls-remote", self.url, f"refs/heads/{branch}").stdout.split()
        return out[0] if out else ""


def git_secret(hub, name, repo, identity=None, known_hosts=None):
    """The sync Secret of a GitRepository (identity, identity.pub, known_hosts) from files."""
    data = {}
    for key, path in (("identity", identity or repo.identity), ("identity.pub", (identity or repo.identity) + ".pub"),
                      ("known_hosts", known_hosts or repo.known_hosts)):
        with open(path, "rb") as fh:
            data[key] = base64.b64encode(fh.read()).decode()
    body = {"metadata": {"name": name, "namespace": hub.ns}, "data": data}
    return hub.core.create_namespaced_secret(hub.ns, body)


def wait_core(list_fn, name, predicate, timeout=30, **kw):
    """Watch a core list (e.g. ConfigMaps of a namespace) until predicate(obj or None) holds."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        listing = list_fn(field_selector=f"metadata.name={name}", **kw)
        last = listing.items[0] if listing.items else None
        if predicate(last):
            return last
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"{name}: not in the expected state after {timeout}s; last: {last}")
        w = watch.Watch()
        for ev in w.stream(list_fn, field_selector=f"metadata.name={name}",
                           resource_version=listing.metadata.resource_version, timeout_seconds=max(1, int(left)), **kw):
            obj = None if ev["type"] == "DELETED" else ev["object"]
            if predicate(obj):
                w.stop()
                return obj
