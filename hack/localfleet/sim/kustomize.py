"""kustomize-controller: Kustomizations.

Each reconcile function takes the runtime (sim.runtime.Runtime) and returns True when the result
is terminal for the current fingerprint (see Runtime.reconcile)."""
from __future__ import annotations

from kubernetes import client
from kubernetes.client.rest import ApiException

from .common import ANN_FAIL, ANN_FAIL_MSG, Outcome, is_ready


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
