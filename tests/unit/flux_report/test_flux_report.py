"""FluxReport -> structured report, healthy and problems (pure)."""
import copy

from ansible_collections.c5c3.gitops.plugins.module_utils.flux_report import summarize

REPORT = {
    "apiVersion": "fluxcd.controlplane.io/v1", "kind": "FluxReport",
    "metadata": {"name": "flux", "namespace": "flux-system", "generation": 3},
    "spec": {
        "distribution": {"entitlement": "Issued", "managedBy": "flux-operator", "status": "Installed", "version": "v2.7.3"},
        "components": [{"name": "helm-controller", "image": "x", "ready": True, "status": "Current"}],
        "reconcilers": [{"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
                         "stats": {"running": 3, "failing": 0, "suspended": 1, "totalSize": "1 MiB"}}],
        "sync": {"id": "kustomization/flux-system", "path": "clusters/mgmt", "ready": True, "source": "git", "status": "Applied"},
    },
    "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded",
                               "message": "ok", "observedGeneration": 3}],
               "lastHandledReconcileAt": "2026-11-23T10:00:00Z"},
}


def test_healthy_report():
    out = summarize(REPORT)
    assert out["exists"] and out["healthy"] and out["problems"] == []
    assert out["report"]["reconcilers"] == [{"api_version": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
                                             "running": 3, "failing": 0, "suspended": 1, "total_size": "1 MiB"}]
    assert out["report"]["distribution"]["managed_by"] == "flux-operator"
    assert out["report"]["last_handled_reconcile_at"] == "2026-11-23T10:00:00Z"


def test_every_problem_is_listed():
    obj = copy.deepcopy(REPORT)
    obj["metadata"]["generation"] = 4  # report changed since the Ready condition
    obj["spec"]["distribution"] = {"entitlement": "Unknown", "status": "Not Installed"}
    obj["spec"]["components"][0].update(ready=False, status="CrashLoopBackOff")
    obj["spec"]["reconcilers"][0]["stats"]["failing"] = 2
    obj["spec"]["sync"]["ready"] = False
    out = summarize(obj)
    assert not out["healthy"]
    assert out["problems"] == [
        "report not ready: StaleGeneration: Ready=True (ReconciliationSucceeded) was reported for generation 3; "
        "the object is at generation 4",
        "Flux distribution not installed (Not Installed)",
        "component helm-controller not ready: CrashLoopBackOff",
        "2 HelmRelease failing",
        "sync kustomization/flux-system not ready: Applied",
    ]


def test_missing_report():
    out = summarize(None)
    assert not out["exists"] and not out["healthy"] and "not found" in out["problems"][0]


def test_no_sync_is_not_a_problem():
    obj = copy.deepcopy(REPORT)
    del obj["spec"]["sync"]
    out = summarize(obj)
    assert out["healthy"] and out["report"]["sync"] is None
