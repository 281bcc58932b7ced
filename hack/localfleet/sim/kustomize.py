"""kustomize-controller: Kustomizations.

A Kustomization whose source is fetched for real (a GitRepository of the local fleet's Git server,
see source.py) is built and applied for real: the source's commit is exported, `kubectl kustomize`
builds spec.path (a kustomization.yaml is generated when the path has none, as Flux does), the
result is server-side applied with field manager `kustomize-controller` (force) to the hub, or to
the spoke of spec.kubeConfig; objects that left the build are pruned (spec.prune) from the
inventory in status.inventory (entries `<ns>_<name>_<group>_<kind>`, v). Every spec.interval it
is applied again. A Kustomization of a simulated source (outside the local fleet) only reports
the revision, as before.

Each reconcile function takes the runtime (sim.runtime.Runtime) and returns True when the result
is terminal for the current fingerprint (see Runtime.reconcile)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile

import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from . import git, source
from .common import ANN_FAIL, ANN_FAIL_MSG, KINDS, Outcome, is_ready, parse_duration

KUBECTL = os.environ.get("LOCAL_FLEET_KUBECTL") or shutil.which("kubectl") or "kubectl"
MANAGER = "kustomize-controller"
NAME_LABEL, NS_LABEL = "kustomize.toolkit.fluxcd.io/name", "kustomize.toolkit.fluxcd.io/namespace"
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


# ------------------------------------------------------------------------- Kustomization
def reconcile(rt, key, obj) -> bool:
    spec = obj.get("spec") or {}
    ann = obj["metadata"].get("annotations") or {}
    gen = obj["metadata"].get("generation")
    status = rt.handled(obj, {})
    try:
        rt.check_dependencies("Kustomization", obj)
        skind, sns, sname = rt.source_of("Kustomization", obj)
        src = rt.store.get((skind, sns, sname))
        if src is None:
            raise Outcome("ArtifactFailed", f"Source '{skind}/{sns}/{sname}' not found", requeue=rt._next_backoff(key))
        art = (src.get("status") or {}).get("artifact")
        if not is_ready(src) or not art:
            raise Outcome("ArtifactFailed", "Source artifact not found, retrying in 30s", wait=True, requeue=30)
        revision = art.get("revision", "")
        status["lastAttemptedRevision"] = revision
        kc_digest, api = rt.kubeconfig_for(obj, "Kustomization")
        if kc_digest != "hub":
            url = api.configuration.host
            try:
                rt.spoke_call(api, f"{url}/version", client.VersionApi(api).get_code, _preload_content=False)
            except (ConnectionError, ApiException) as exc:
                msg = rt.api_error(exc) if isinstance(exc, ApiException) else str(exc)
                raise Outcome("ReconciliationFailed", f"failed to build kube client: {msg}",
                              requeue=rt._next_backoff(key))
        if ann.get(ANN_FAIL):
            raise Outcome("ReconciliationFailed", ann.get(ANN_FAIL_MSG) or
                          f"simulated failure ({ANN_FAIL}={ann.get(ANN_FAIL)})", requeue=rt._next_backoff(key))
        if git.served_locally((src.get("spec") or {}).get("url", "")) and skind == "GitRepository":
            return _build_and_apply(rt, key, obj, skind, src, kc_digest, revision, status)
    except Outcome as out:
        desired = [{"type": "Ready", "status": "False", "reason": out.reason, "message": out.message},
                   {"type": "Reconciling", "status": "True",
                    "reason": "Progressing" if out.wait else "ProgressingWithRetry",
                    "message": "Fulfilling prerequisites" if out.wait else out.message}]
        status["conditions"] = rt.conditions(obj, desired, drop=("Healthy",) if out.wait else ())
        rt.patch_status(key, obj, status)
        if out.requeue:
            rt.queue.add_after(key, out.requeue)
        return False
    desired = [{"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded",
                "message": f"Applied revision: {revision}"}]
    if spec.get("wait") or spec.get("healthChecks"):
        desired.append({"type": "Healthy", "status": "True", "reason": "HealthCheckSucceeded",
                        "message": "Health check passed in 0s"})
    status.update({"observedGeneration": gen, "lastAppliedRevision": revision,
                   "conditions": rt.conditions(obj, desired, drop=("Reconciling", "Stalled"))})
    rt.patch_status(key, obj, status)
    return True


def _kubectl(argv, kubeconfig=None, stdin=None, timeout=60):
    cmd = [KUBECTL, *argv] + ([f"--kubeconfig={kubeconfig}"] if kubeconfig else [])
    try:
        proc = subprocess.run(cmd, check=False, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=timeout)
    except FileNotFoundError:
        raise Outcome("ReconciliationFailed", f"{KUBECTL} not found: the simulator's kustomize-controller needs "
                      "kubectl (set LOCAL_FLEET_KUBECTL)") from None
    return proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace").strip()


def _generate_kustomization(path):
    """Flux's behaviour for a path without kustomization.yaml: every manifest below it."""
    resources = []
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for f in sorted(files):
            if f.endswith((".yaml", ".yml")) and not f.startswith("."):
                resources.append(os.path.relpath(os.path.join(root, f), path))
    with open(os.path.join(path, "kustomization.yaml"), "w", encoding="utf-8") as fh:
        yaml.safe_dump({"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                        "resources": resources}, fh)


def build(tree, obj) -> str:
    """`kubectl kustomize` of spec.path in the exported tree (with spec.targetNamespace), plus Flux's
    ownership labels; Outcome ArtifactFailed/BuildFailed with kustomize's message."""
    spec = obj.get("spec") or {}
    md = obj["metadata"]
    rel = (spec.get("path") or "./").strip()
    path = os.path.normpath(os.path.join(tree, rel.lstrip("/")))
    if not (path == tree or path.startswith(tree + os.sep)) or not os.path.isdir(path):
        raise Outcome("ArtifactFailed", f"kustomization path not found: stat {path}: no such file or directory")
    if not any(os.path.exists(os.path.join(path, f)) for f in KUSTOMIZATION_FILES):
        _generate_kustomization(path)
    wrap = os.path.join(os.path.dirname(tree), "flux-wrap")
    os.makedirs(wrap, exist_ok=True)
    k = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
         "resources": [os.path.relpath(path, wrap)]}
    if spec.get("targetNamespace"):
        k["namespace"] = spec["targetNamespace"]
    with open(os.path.join(wrap, "kustomization.yaml"), "w", encoding="utf-8") as fh:
        yaml.safe_dump(k, fh)
    rc, out, err = _kubectl(["kustomize", wrap])
    if rc:
        m = re.search(r'err="(.*)"\s*$', err, re.S)  # kubectl wraps kustomize's error in a klog line
        err = (m.group(1).replace('\\"', '"') if m else err).replace(os.path.dirname(tree) + os.sep, "")
        raise Outcome("BuildFailed", f"kustomize build failed: {err}")
    docs = [d for d in yaml.safe_load_all(out) if d]
    for d in docs:  # the controller's ownership labels, on the object only (never on selectors)
        d.setdefault("metadata", {}).setdefault("labels", {}).update({NAME_LABEL: md["name"], NS_LABEL: md["namespace"]})
    return yaml.safe_dump_all(docs) if docs else ""


def entry_id(o) -> dict:
    md = o["metadata"]
    group, _sep, version = o["apiVersion"].rpartition("/")
    return {"id": f"{md.get('namespace') or ''}_{md['name']}_{group}_{o['kind']}", "v": version}


def _resource_arg(entry) -> tuple[str, str, str]:
    """kubectl's resource.version.group, name and namespace of an inventory entry ('_' cannot
    occur in Kubernetes names, groups or kinds)."""
    ns, name, group, kind = entry["id"].split("_")
    return (f"{kind}.{entry['v']}.{group}" if group else kind), name, ns


def _prune(old, new, kubeconfig, md) -> list[str]:
    """Delete what left the build: only objects that still carry this Kustomization's labels."""
    keep = {e["id"] for e in new}
    deleted = []
    for e in old:
        if e["id"] in keep:
            continue
        res, name, ns = _resource_arg(e)
        nsarg = [f"--namespace={ns}"] if ns else []
        rc, out, err = _kubectl(["get", res, name, "-o", "json", *nsarg], kubeconfig)
        if rc:
            if "NotFound" in err or "not found" in err:
                continue
            raise Outcome("PruneFailed", f"prune of {e['id']} failed: {err}")
        labels = (json.loads(out).get("metadata") or {}).get("labels") or {}
        if labels.get(NAME_LABEL) != md["name"] or labels.get(NS_LABEL) != md["namespace"]:
            continue  # taken over by someone else
        rc, _out, err = _kubectl(["delete", res, name, "--ignore-not-found", "--wait=false", *nsarg], kubeconfig)
        if rc:
            raise Outcome("PruneFailed", f"prune of {e['id']} failed: {err}")
        deleted.append(e["id"])
    return deleted


_health_pending: dict = {}  # key -> (revision, generation, applied objects, inventory): applied, health pending


def _build_and_apply(rt, key, obj, skind, src, kc_digest, revision, status) -> bool:
    spec = obj.get("spec") or {}
    md = obj["metadata"]
    pending = _health_pending.pop(key, None)
    if pending and pending[:2] == (revision, md.get("generation")):
        applied, entries = pending[2], pending[3]  # applied already: only the health check is left
    else:
        applied, entries = _apply(rt, key, obj, skind, src, kc_digest)
    # health: Flux objects applied onto the hub are waited for (nothing else runs locally)
    if (spec.get("wait") or spec.get("healthChecks")) and kc_digest == "hub":
        waiting = [f"{k}/{ns}/{name}" for k, ns, name in applied if k in KINDS and not is_ready(rt.store.get((k, ns, name)))]
        if waiting:
            _health_pending[key] = (revision, md.get("generation"), applied, entries)
            status.update({"inventory": {"entries": entries}, "conditions": rt.conditions(obj, [
                {"type": "Ready", "status": "Unknown", "reason": "Progressing",
                 "message": f"Running health checks for revision {revision}: waiting for {', '.join(waiting)}"},
                {"type": "Reconciling", "status": "True", "reason": "Progressing",
                 "message": f"Running health checks for revision {revision}"}])})
            rt.patch_status(key, obj, status)
            rt.queue.add_after(key, 1)
            return False
    desired = [{"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded",
                "message": f"Applied revision: {revision}"}]
    if spec.get("wait") or spec.get("healthChecks"):
        desired.append({"type": "Healthy", "status": "True", "reason": "HealthCheckSucceeded",
                        "message": "Health check passed"})
    status.update({"observedGeneration": md.get("generation"), "lastAppliedRevision": revision,
                   "inventory": {"entries": entries},
                   "conditions": rt.conditions(obj, desired, drop=("Reconciling", "Stalled"))})
    rt.patch_status(key, obj, status)
    rt.resync_after(key, parse_duration(spec.get("interval")) or 600)
    return True


def _apply(rt, key, obj, skind, src, kc_digest):
    """Export, build, server-side apply, prune; (applied (kind, ns, name) list, inventory entries)."""
    spec = obj.get("spec") or {}
    md = obj["metadata"]
    work = tempfile.mkdtemp(prefix="sim-kustomize-")
    try:
        tree = os.path.join(work, "source")
        os.makedirs(tree)
        try:
            source.local_checkout(rt, skind, src, tree)
        except git.GitError as exc:
            raise Outcome("ArtifactFailed", exc.message, requeue=rt._next_backoff(key)) from None
        try:
            manifests = build(tree, obj)
        except Outcome as out:
            out.requeue = rt._next_backoff(key)
            raise
        if kc_digest == "hub":
            kubeconfig = os.path.join(rt.state_dir, "kubeconfigs", f"{rt.hub_name}.yaml")
        else:
            kubeconfig = os.path.join(work, "kubeconfig")
            fd = os.open(kubeconfig, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(rt.spoke_kubeconfigs[kc_digest])
        applied = []
        if manifests:
            rc, out, err = _kubectl(["apply", "--server-side", "--force-conflicts", f"--field-manager={MANAGER}",
                                     "-f", "-", "-o", "json"], kubeconfig, stdin=manifests.encode(), timeout=120)
            if rc:
                raise Outcome("ReconciliationFailed", err, requeue=rt._next_backoff(key))
            res = json.loads(out)
            applied = res.get("items", [res]) if res.get("kind") == "List" else [res]
        entries = sorted((entry_id(o) for o in applied), key=lambda e: e["id"])
        old = (((obj.get("status") or {}).get("inventory") or {}).get("entries")) or []
        if spec.get("prune"):
            _prune(old, entries, kubeconfig, md)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return [(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in applied], entries
