"""source-controller: GitRepository, OCIRepository, HelmRepository, HelmChart.

Each reconcile function takes the runtime (sim.runtime.Runtime) and returns True when the result
is terminal for the current fingerprint (see Runtime.reconcile)."""
from __future__ import annotations

import hashlib
import json

from kubernetes.client.rest import ApiException

from .. import helmreal
from . import git
from .common import now_iso, parse_duration


# -------------------------------------------------------------------------------- sources
def _read_secret(rt, ns, name):
    """The Secret (from the store, or read directly when it is not watched), or None."""
    sec = rt.store.get(("Secret", ns, name))
    if sec is not None:
        return sec
    try:
        return json.loads(rt.call(rt.core.read_namespaced_secret, name, ns, _preload_content=False).data)
    except ApiException as exc:
        if exc.status != 404:
            raise
        return None


def _fetch_failed(rt, key, obj, reason, message) -> bool:
    status = rt.handled(obj, {"observedGeneration": obj["metadata"].get("generation")})
    status["conditions"] = rt.conditions(obj, [
        {"type": "Ready", "status": "False", "reason": reason, "message": message},
        {"type": "FetchFailed", "status": "True", "reason": reason, "message": message}], drop=("Reconciling",))
    rt.patch_status(key, obj, status)
    rt.queue.add_after(key, rt._next_backoff(key))
    return False


def _source_ready(rt, key, obj, revision, message, extra=None, art_digest=None, size=1024) -> bool:
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
    art_digest = art_digest or "sha256:" + hashlib.sha256(revision.encode()).hexdigest()
    prev = (obj.get("status") or {}).get("artifact") or {}
    artifact = {"path": f"{kind.lower()}/{ns}/{name}/{art_digest[7:19]}.tar.gz",
                "url": f"http://source-controller.flux-system.svc.cluster.local./{kind.lower()}/{ns}/{name}/"
                       f"{art_digest[7:19]}.tar.gz",
                "revision": revision, "digest": art_digest,
                "lastUpdateTime": prev.get("lastUpdateTime") if prev.get("revision") == revision else now_iso(),
                "size": size}
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
    if git.served_locally(spec.get("url") or ""):
        return _fetch_gitrepository(rt, key, obj)
    ref = spec.get("ref") or {}
    name = ref.get("name") or ref.get("tag") or ref.get("branch") or ref.get("semver") or "master"
    if ref.get("tag") and not ref.get("name"):
        name = ref["tag"]
    sha = ref.get("commit") or hashlib.sha1(json.dumps([spec.get("url"), ref], sort_keys=True).encode()).hexdigest()
    rev = f"{name}@sha1:{sha}" if not ref.get("commit") or ref.get("branch") else f"sha1:{sha}"
    return _source_ready(rt, key, obj, rev, f"stored artifact for revision '{rev}'")


def reconcile_ocirepository(rt, key, obj) -> bool:
    spec = obj.get("spec") or {}
    try:
        art = helmreal.oci_artifact(rt.helmreal, obj)
    except helmreal.SourceError as exc:
        return _fetch_failed(rt, key, obj, exc.reason, exc.message)
    if art is not None:  # the local registry: the real tag and manifest digest
        return _source_ready(rt, key, obj, art[0], f"stored artifact for digest '{art[0]}'")
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


def _fetch_gitrepository(rt, key, obj) -> bool:
    """A repository of the local fleet's Git server: fetched for real (git over ssh with the
    secretRef's identity and known_hosts); the artifact is the commit's tree. Fetched again every
    spec.interval, like the real controller."""
    _kind, ns, name = key
    spec = obj.get("spec") or {}
    url = spec["url"]
    data = None
    sref = (spec.get("secretRef") or {}).get("name")
    if sref:
        sec = _read_secret(rt, ns, sref)
        if sec is None:
            return _fetch_failed(rt, key, obj, "AuthenticationFailed",
                                 f"failed to get secret '{ns}/{sref}': secrets \"{sref}\" not found")
        data = sec.get("data") or {}
    try:
        sha, revision = git.fetch(rt.state_dir, ns, name, url, spec.get("ref") or {}, data)
        tar = git.archive(rt.state_dir, ns, name, sha)
    except git.GitError as exc:
        return _fetch_failed(rt, key, obj, exc.reason, exc.message)
    rt.resync_after(key, parse_duration(spec.get("interval")) or 60)
    return _source_ready(rt, key, obj, revision, f"stored artifact for revision '{revision}'",
                         art_digest=git.artifact_digest(tar), size=len(tar))


def local_checkout(rt, kind, src, dest) -> str | None:
    """For the kustomize-controller: export the source's artifact (its commit) into dest; None when
    the source is not fetched for real (outside the local fleet)."""
    if kind != "GitRepository" or not git.served_locally((src.get("spec") or {}).get("url", "")):
        return None
    rev = ((src.get("status") or {}).get("artifact") or {}).get("revision", "")
    sha = rev.rsplit("sha1:", 1)[-1]
    md = src["metadata"]
    tar = git.archive(rt.state_dir, md["namespace"], md["name"], sha)
    git.export(tar, dest)
    return rev
