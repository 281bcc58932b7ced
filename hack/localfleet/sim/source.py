"""source-controller: GitRepository, OCIRepository, HelmRepository, HelmChart.

Each reconcile function takes the runtime (sim.runtime.Runtime) and returns True when the result
is terminal for the current fingerprint (see Runtime.reconcile)."""
from __future__ import annotations

import hashlib
import json

from kubernetes.client.rest import ApiException

from .common import now_iso


# -------------------------------------------------------------------------------- sources
def _source_ready(rt, key, obj, revision, message, extra=None) -> bool:
    kind, ns, name = key
    spec = obj.get("spec") or {}
    status = rt.handled(obj, {})
    sref = (spec.get("secretRef") or {}).get("name")
    if sref and rt.store.get(("Secret", ns, sref)) is None:
        try:
            rt.call(rt.core.read_namespaced_secret, sref, ns, _preload_content=False)
        except ApiException as exc:
            if exc.status != 404:
                raise
            msg = f"failed to get secret '{ns}/{sref}': secrets \"{sref}\" not found"
            status.update({"observedGeneration": obj["metadata"].get("generation"),
                           "conditions": rt.conditions(obj, [
                               {"type": "Ready", "status": "False", "reason": "AuthenticationFailed", "message": msg},
                               {"type": "FetchFailed", "status": "True", "reason": "AuthenticationFailed",
                                "message": msg}], drop=("Reconciling",))})
            rt.patch_status(key, obj, status)
            rt.queue.add_after(key, rt._next_backoff(key))
            return False
    art_digest = "sha256:" + hashlib.sha256(revision.encode()).hexdigest()
    prev = (obj.get("status") or {}).get("artifact") or {}
    artifact = {"path": f"{kind.lower()}/{ns}/{name}/{art_digest[7:19]}.tar.gz",
                "url": f"http://source-controller.flux-system.svc.cluster.local./{kind.lower()}/{ns}/{name}/"
                       f"{art_digest[7:19]}.tar.gz",
                "revision": revision, "digest": art_digest,
                "lastUpdateTime": prev.get("lastUpdateTime") if prev.get("revision") == revision else now_iso(),
                "size": 1024}
    status.update({"observedGeneration": obj["metadata"].get("generation"), "artifact": artifact,
                   "url": artifact["url"] if kind != "HelmChart" else None,
                   "conditions": rt.conditions(obj, [
                       {"type": "Ready", "status": "True", "reason": "Succeeded" if kind != "HelmChart" else "ChartPullSucceeded",
                        "message": message},
                       {"type": "ArtifactInStorage", "status": "True", "reason": "Succeeded", "message": message}],
                       drop=("Reconciling", "FetchFailed", "Stalled"))})
    if extra:
        status.update(extra)
    rt.patch_status(key, obj, status)
    return True

def reconcile_gitrepository(rt, key, obj) -> bool:
    spec = obj.get("spec") or {}
    ref = spec.get("ref") or {}
    name = ref.get("name") or ref.get("tag") or ref.get("branch") or ref.get("semver") or "master"
    if ref.get("tag") and not ref.get("name"):
        name = ref["tag"]
    sha = ref.get("commit") or hashlib.sha1(json.dumps([spec.get("url"), ref], sort_keys=True).encode()).hexdigest()
    rev = f"{name}@sha1:{sha}" if not ref.get("commit") or ref.get("branch") else f"sha1:{sha}"
    return _source_ready(rt, key, obj, rev, f"stored artifact for revision '{rev}'")

def reconcile_ocirepository(rt, key, obj) -> bool:
    spec = obj.get("spec") or {}
    ref = spec.get("ref") or {}
    tag = ref.get("tag") or ref.get("semver") or "latest"
    d = ref.get("digest") or "sha256:" + hashlib.sha256(json.dumps([spec.get("url"), ref], sort_keys=True).encode()).hexdigest()
    rev = f"{tag}@{d}"
    return _source_ready(rt, key, obj, rev, f"stored artifact for digest '{rev}'")

def reconcile_helmrepository(rt, key, obj) -> bool:
    spec = obj.get("spec") or {}
    d = "sha256:" + hashlib.sha256(json.dumps([spec.get("url"), obj["metadata"].get("generation")]).encode()).hexdigest()
    return _source_ready(rt, key, obj, d, f"stored artifact: revision '{d}'")

def reconcile_helmchart(rt, key, obj) -> bool:
    spec = obj.get("spec") or {}
    chart = spec.get("chart", "chart").rstrip("/").rsplit("/", 1)[-1]
    version = spec.get("version") or "*"
    return _source_ready(rt, key, obj, version, f"pulled '{chart}' chart with version '{version}'",
                              extra={"observedChartName": chart})
