"""Flux Operator: FluxInstance (and its generated sync objects), ResourceSet, FluxReport, the operator Deployment.

Each reconcile function takes the runtime (sim.runtime.Runtime) and returns True when the result
is terminal for the current fingerprint (see Runtime.reconcile)."""
from __future__ import annotations

import hashlib
import json
import logging
import re
import traceback

from kubernetes.client.rest import ApiException

from .common import (ANN_FAIL, ANN_FAIL_MSG, DEFAULT_COMPONENTS, FLUX_VERSION, FORCE_AT, KINDS, OPERATOR_VERSION,
                     REPORT_KINDS, SERVER_VERSION, cond, digest, is_ready, now_iso)

LOG = logging.getLogger("simulator")


def reconcile_resourceset(rt, key, obj) -> bool:
    status = rt.handled(obj, {})
    ready = {"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded",
             "message": "Reconciliation finished in 0s"}
    status["conditions"] = rt.conditions(obj, [ready], drop=("Reconciling",))
    rt.patch_status(key, obj, status)
    return True


def flux_components(rt, fi):
    spec = fi.get("spec") or {}
    dist = spec.get("distribution") or {}
    version = resolve_version(dist.get("version"))
    registry = (dist.get("registry") or "ghcr.io/fluxcd").rstrip("/")
    comps = spec.get("components") or DEFAULT_COMPONENTS
    out = []
    for c in comps:
        out.append({"name": c, "repository": f"{registry}/{c}", "tag": version,
                    "digest": "sha256:" + hashlib.sha256(f"{registry}/{c}:{version}".encode()).hexdigest()})
    return version, out


def resolve_version(v):
    if not v or v in ("*", "2.x", "2.x.x", "v2.x"):
        return FLUX_VERSION
    v = str(v)
    m = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)", v)
    if m:
        return "v" + ".".join(m.groups())
    m = re.fullmatch(r"v?(\d+)\.(\d+)\.x", v)
    if m:
        return f"v{m.group(1)}.{m.group(2)}.0"
    return FLUX_VERSION


def reconcile_fluxinstance(rt, key, obj) -> bool:
    version, comps = flux_components(rt, obj)
    st = obj.get("status") or {}
    rev = f"{version}@{digest(comps)}"
    status = rt.handled(obj, {"components": comps,
                              "lastAppliedRevision": rev, "lastAttemptedRevision": rev,
                              "lastArtifactRevision": st.get("lastArtifactRevision")})
    ann = obj["metadata"].get("annotations") or {}
    if ann.get(FORCE_AT):
        status["lastHandledForceAt"] = ann[FORCE_AT]
    if ann.get(ANN_FAIL):
        msg = ann.get(ANN_FAIL_MSG) or f"simulated failure ({ANN_FAIL}={ann.get(ANN_FAIL)})"
        status["conditions"] = rt.conditions(obj, [
            {"type": "Ready", "status": "False", "reason": "ReconciliationFailed", "message": msg},
            {"type": "Reconciling", "status": "True", "reason": "ProgressingWithRetry", "message": msg}])
        rt.patch_status(key, obj, status)
        rt.report_dirty.set()
        return True
    ensure_sync_objects(rt, obj)
    status["conditions"] = rt.conditions(obj, [{"type": "Ready", "status": "True",
                                                "reason": "ReconciliationSucceeded",
                                                "message": "Reconciliation finished in 1s"}],
                                         drop=("Reconciling", "Stalled"))
    rt.patch_status(key, obj, status)
    rt.report_dirty.set()
    return True


def sync_objects(fi):
    """The source and Kustomization the Flux Operator generates from FluxInstance.spec.sync,
    both named after the instance's namespace (as the operator names them)."""
    sync = (fi.get("spec") or {}).get("sync") or {}
    if not sync.get("url"):
        return []
    ns = fi["metadata"]["namespace"]
    labels = {"app.kubernetes.io/managed-by": "flux-operator",
              "fluxcd.controlplane.io/name": fi["metadata"]["name"],
              "fluxcd.controlplane.io/namespace": ns}
    kind = sync.get("kind") or "GitRepository"
    ref = str(sync.get("ref") or "")
    src_spec = {"interval": sync.get("interval") or "1m", "url": sync["url"]}
    if kind == "GitRepository":
        src_spec["ref"] = {"name": ref} if ref.startswith("refs/") else {"branch": ref or "main"}
    elif kind == "OCIRepository":
        src_spec["ref"] = {"tag": ref or "latest"}
    if sync.get("pullSecret"):
        src_spec["secretRef"] = {"name": sync["pullSecret"]}
    out = [{"kind": kind, "metadata": {"name": ns, "namespace": ns, "labels": labels}, "spec": src_spec}]
    out.append({"kind": "Kustomization", "metadata": {"name": ns, "namespace": ns, "labels": labels},
                "spec": {"interval": sync.get("interval") or "10m", "path": sync.get("path") or "./",
                         "prune": True, "sourceRef": {"kind": kind, "name": ns}}})
    return out


def merge_patch(cur: dict, want: dict) -> dict:
    """RFC 7386 merge patch turning cur into want (None removes a key)."""
    out = {k: None for k in cur if k not in want}
    for k, v in want.items():
        if isinstance(v, dict) and isinstance(cur.get(k), dict):
            out[k] = merge_patch(cur[k], v)
        elif cur.get(k) != v:
            out[k] = v
    return out


def ensure_sync_objects(rt, fi):
    """Create or update the generated sync objects, as the operator does on every reconcile."""
    for want in sync_objects(fi):
        kind, md = want["kind"], want["metadata"]
        if kind not in KINDS:
            continue
        g, v, p = KINDS[kind]
        body = {"apiVersion": f"{g}/{v}", **want}
        cur = rt.store.get((kind, md["namespace"], md["name"]))
        try:
            if cur is None:
                rt.call(rt.custom.create_namespaced_custom_object, g, v, md["namespace"], p, body,
                        _preload_content=False)
            elif (cur.get("spec") or {}) != want["spec"]:
                rt.call(rt.custom.patch_namespaced_custom_object, g, v, md["namespace"], p, md["name"],
                        {"spec": merge_patch(cur.get("spec") or {}, want["spec"])}, _preload_content=False)
        except ApiException as exc:
            if exc.status != 409:  # created meanwhile: the watch brings it in
                raise


def is_operator_deployment(obj) -> bool:
    md = obj["metadata"]
    return (md.get("namespace") == "flux-system"
            or (md.get("labels") or {}).get("app.kubernetes.io/name") == "flux-operator")


def reconcile_deployment(rt, key, obj):
    md = obj["metadata"]
    spec = obj.get("spec") or {}
    st = obj.get("status") or {}
    replicas = spec.get("replicas", 1)
    gen = md.get("generation")
    ok = (st.get("observedGeneration") == gen and st.get("readyReplicas", 0) == replicas
          and st.get("availableReplicas", 0) == replicas and st.get("updatedReplicas", 0) == replicas)
    if ok and any(c.get("type") == "Available" and c.get("status") == "True" for c in st.get("conditions") or []):
        return
    t = now_iso()
    name = md["name"]
    rs_hash = hashlib.sha256(json.dumps(spec.get("template") or {}, sort_keys=True).encode()).hexdigest()[:10]
    status = {"observedGeneration": gen, "replicas": replicas, "updatedReplicas": replicas,
              "readyReplicas": replicas, "availableReplicas": replicas, "unavailableReplicas": None,
              "conditions": [
                  {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                   "message": "Deployment has minimum availability.", "lastUpdateTime": t, "lastTransitionTime": t},
                  {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                   "message": f'ReplicaSet "{name}-{rs_hash}" has successfully progressed.',
                   "lastUpdateTime": t, "lastTransitionTime": t}]}
    try:
        resp = rt.call(rt.apps.patch_namespaced_deployment_status, name, md["namespace"], {"status": status},
                       _preload_content=False)
    except ApiException as exc:
        if exc.status == 404:
            return
        raise
    new = json.loads(resp.data)
    rt.store.upsert(("Deployment", md["namespace"], name), new)
    rt.report_dirty.set()


def report_loop(rt):
    while not rt.stop.is_set():
        if not rt.report_dirty.wait(30):
            rt.report_dirty.set()  # refresh at least every 30s, like the operator's report interval
            continue
        if rt.stop.is_set():
            return
        rt.report_dirty.clear()
        try:
            update_report(rt)
        except Exception:  # noqa: BLE001
            LOG.error("FluxReport update failed:\n%s", traceback.format_exc())
            rt.stop.wait(2)
            rt.report_dirty.set()
        rt.stop.wait(0.5)  # debounce: at most two report writes per second


def build_report(rt):
    ns = "flux-system"
    instances = [o for o in rt.store.by_kind("FluxInstance") if o["metadata"]["namespace"] == ns]
    fi = instances[0] if instances else None
    spec = {"cluster": {"platform": "linux/amd64", "serverVersion": SERVER_VERSION, "nodes": 0},
            "operator": {"apiVersion": "fluxcd.controlplane.io/v1", "platform": "linux/amd64",
                         "version": OPERATOR_VERSION}}
    if fi is not None and is_ready(fi):
        version, comps = flux_components(rt, fi)
        dist = (fi.get("spec") or {}).get("distribution") or {}
        spec["distribution"] = {"entitlement": "Issued by controlplane" if "controlplane" in str(dist.get("registry", ""))
                                else "Unknown", "managedBy": f"FluxInstance/{fi['metadata']['name']}",
                                "status": "Installed", "version": version}
        spec["components"] = [{"name": c["name"], "image": f"{c['repository']}:{c['tag']}@{c['digest']}",
                               "ready": True, "status": "Current Deployment replicas: 1"} for c in comps]
    else:
        spec["distribution"] = {"entitlement": "Unknown", "status": "Not Installed"}
        spec["components"] = []
    recs = []
    for kind in REPORT_KINDS:
        objs = rt.store.by_kind(kind)
        if not objs:
            continue
        running = failing = suspended = 0
        for o in objs:
            if (o.get("spec") or {}).get("suspend"):
                suspended += 1
            elif (cond(o, "Ready") or {}).get("status") == "False":
                failing += 1
            else:
                running += 1
        g, v, _unused = KINDS[kind]
        recs.append({"apiVersion": f"{g}/{v}", "kind": kind,
                     "stats": {"running": running, "failing": failing, "suspended": suspended}})
    spec["reconcilers"] = recs
    sync = (fi.get("spec") or {}).get("sync") if fi else None
    if sync:
        ks = rt.store.get(("Kustomization", ns, fi["metadata"]["name"])) or \
            rt.store.get(("Kustomization", ns, "flux-system"))
        src = sync.get("url", "")
        if ks is not None:
            rc = cond(ks, "Ready") or {}
            spec["sync"] = {"id": f"kustomization/{ks['metadata']['name']}", "path": sync.get("path", ""),
                            "ready": is_ready(ks), "source": src, "status": rc.get("message", "")}
        else:
            ps = sync.get("pullSecret")
            missing = ps and rt.store.get(("Secret", ns, ps)) is None
            spec["sync"] = {"id": f"kustomization/{fi['metadata']['name']}", "path": sync.get("path", ""),
                            "ready": False, "source": src,
                            "status": f"secret '{ns}/{ps}' not found" if missing else
                            "not reconciled yet: the sync Kustomization does not exist"}
    return ns, spec


def update_report(rt):
    ns, spec = build_report(rt)
    if ("Namespace", None, ns) not in rt.store.objs:
        return
    g, v, p = KINDS["FluxReport"]
    key = ("FluxReport", ns, "flux")
    cur = rt.store.get(key)
    if cur is None:
        body = {"apiVersion": f"{g}/{v}", "kind": "FluxReport",
                "metadata": {"name": "flux", "namespace": ns,
                             "labels": {"app.kubernetes.io/managed-by": "flux-operator"}},
                "spec": spec}
        try:
            resp = rt.call(rt.custom.create_namespaced_custom_object, g, v, ns, p, body, _preload_content=False)
            cur = json.loads(resp.data)
            rt.store.upsert(key, cur)
        except ApiException as exc:
            if exc.status != 409:
                raise
            cur = json.loads(rt.call(rt.custom.get_namespaced_custom_object, g, v, ns, p, "flux",
                                     _preload_content=False).data)
    if (cur.get("spec") or {}) != spec:
        resp = rt.call(rt.custom.patch_namespaced_custom_object, g, v, ns, p, "flux",
                       {"spec": spec}, _preload_content=False)
        cur = json.loads(resp.data)
        rt.store.upsert(key, cur)
    status = rt.handled(cur, {"conditions": rt.conditions(cur, [
        {"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded",
         "message": "Reporting finished in 5ms"}])})
    rt.patch_status(key, cur, status)
