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
