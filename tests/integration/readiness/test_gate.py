"""flux_wait, flux_reconcile and flux_report_info against a real kube-apiserver (local fleet hub).

Statuses are written by the test (see conftest), at known moments.
"""
import threading
import time

import pytest

from hubkit import at

pytestmark = pytest.mark.integration


def hr(ns, name):
    return {"kind": "HelmRelease", "name": name, "namespace": ns}


def test_success_reports_every_object(hub, ns):
    for name in ("a", "b", "c"):
        hub.helmrelease(ns, name)
    hub.kustomization(ns, "apps")
    hub.ready("HelmRelease", ns, "a")
    # later than ansible's start-up (1-3 s on a quiet machine, several seconds under load), so the
    # module is already watching when b and c become ready
    marks = [at(8.0, hub.ready, "HelmRelease", ns, "b"), at(10.0, hub.ready, "HelmRelease", ns, "c"),
             at(9.0, hub.ready, "Kustomization", ns, "apps")]
    result, started, finished = hub.module("flux_wait", {
        "objects": [hr(ns, "a"), hr(ns, "b"), hr(ns, "c"), {"kind": "Kustomization", "name": "apps", "namespace": ns}],
        "timeout": 60})
    assert result.get("failed") is not True, result["msg"]
    assert result["changed"] is False and result["outcome"] == "ready"
    assert result["summary"] == {"total": 4, "ready": 4, "progressing": 0, "failed": 0, "missing": 0}
    rows = dict((r["name"], r) for r in result["objects"])
    assert rows["a"]["ready_after"] < rows["b"]["ready_after"] < rows["c"]["ready_after"]
    assert rows["c"]["state"] == "ready" and rows["c"]["generation"] == rows["c"]["observed_generation"] == 1
    # 2 (kind, namespace) pairs: one LIST + one WATCH each
    assert result["api_requests"] == 4
    assert finished - marks[1]["t"] < 2.0


def test_fail_fast_on_stalled_within_two_seconds(hub, ns):
    hub.helmrelease(ns, "ok")
    hub.helmrelease(ns, "broken")
    hub.ready("HelmRelease", ns, "ok")
    hub.not_ready("HelmRelease", ns, "broken", "Progressing", "Running 'install' action with timeout of 5m0s")
    mark = at(8.0, hub.not_ready, "HelmRelease", ns, "broken", "InstallFailed",
              "Helm install failed for release %s/broken: context deadline exceeded" % ns,
              stalled=("RetriesExceeded", "Failed to install after 1 attempt(s)"), extra={"installFailures": 1})
    result, started, finished = hub.module("flux_wait", {"objects": [hr(ns, "ok"), hr(ns, "broken")], "timeout": 120})
    assert result["failed"] is True and result["outcome"] == "failed"
    assert finished - started > 8.0  # it was waiting when Stalled appeared
    assert finished - mark["t"] < 2.0, "not fail-fast: %.2fs after Stalled" % (finished - mark["t"])
    assert "1 of 2 objects not ready" in result["msg"]
    assert "HelmRelease %s/broken: failed, RetriesExceeded: Failed to install after 1 attempt(s)" % ns in result["msg"]
    assert [r["name"] for r in result["not_ready"]] == ["broken"]


def test_install_failed_with_retries_left_is_waited_on(hub, ns):
    hub.helmrelease(ns, "flaky", install_retries=3)
    hub.not_ready("HelmRelease", ns, "flaky", "InstallFailed", "Helm install failed", extra={"installFailures": 1})
    at(2.0, hub.ready, "HelmRelease", ns, "flaky")
    result, dummy, dummy = hub.module("flux_wait", {"objects": [hr(ns, "flaky")], "timeout": 60})
    assert result.get("failed") is not True, result["msg"]


def test_stale_ready_is_not_accepted(hub, ns):
    hub.helmrelease(ns, "app")
    hub.ready("HelmRelease", ns, "app")
    hub.bump_generation("HelmRelease", ns, "app")  # generation 2, Ready=True still says 1
    result, started, finished = hub.module("flux_wait", {"objects": [hr(ns, "app")], "timeout": 3})
    assert result["failed"] is True and result["outcome"] == "timeout"
    row = result["objects"][0]
    assert (row["state"], row["reason"], row["generation"], row["observed_generation"]) == \
        ("progressing", "StaleGeneration", 2, 1)
    assert "was reported for generation 1; the object is at generation 2" in result["msg"]


def test_dependency_chain_is_reported(hub, ns):
    other = ns + "-deps"
    hub.create_namespace(other)
    hub.helmrelease(ns, "keystone-operator", depends_on=["mariadb-operator"])
    hub.helmrelease(ns, "mariadb-operator", depends_on=[{"name": "cert-manager", "namespace": other}])
    hub.helmrelease(other, "cert-manager", install_retries=5)
    hub.not_ready("HelmRelease", ns, "keystone-operator", "DependencyNotReady",
                  "dependency '%s/mariadb-operator' is not ready" % ns)
    hub.not_ready("HelmRelease", ns, "mariadb-operator", "DependencyNotReady",
                  "dependency '%s/cert-manager' is not ready" % other)
    hub.not_ready("HelmRelease", other, "cert-manager", "InstallFailed", "image pull back-off",
                  extra={"installFailures": 2})
    result, dummy, dummy = hub.module("flux_wait", {"objects": [hr(ns, "keystone-operator")], "timeout": 3})
    assert result["outcome"] == "timeout"
    chain = ("HelmRelease %s/keystone-operator -> HelmRelease %s/mariadb-operator (progressing: DependencyNotReady)"
             " -> HelmRelease %s/cert-manager (progressing: InstallFailed)" % (ns, ns, other))
    assert result["chains"] == [chain]
    assert chain in result["msg"]
    assert result["objects"][0]["blocked_by"] == [{"kind": "HelmRelease", "namespace": ns, "name": "mariadb-operator"}]
    # LIST + WATCH of the one pair, + one GET for the dependency outside the watched namespace
    assert result["api_requests"] == 3


def test_watch_reconnects_after_server_timeout(hub, ns):
    hub.helmrelease(ns, "slow")
    mark = at(7.0, hub.ready, "HelmRelease", ns, "slow")
    result, dummy, finished = hub.module("flux_wait", {"objects": [hr(ns, "slow")], "timeout": 60, "watch_timeout": 1})
    assert result.get("failed") is not True, result["msg"]
    assert result["watch_restarts"] >= 2 and result["relists"] == 0
    assert finished - mark["t"] < 2.0


def test_missing_object_named_after_grace(hub, ns):
    result, started, finished = hub.module("flux_wait", {
        "objects": [hr(ns, "never")], "timeout": 60, "missing_grace": 2})
    assert result["failed"] is True and result["outcome"] == "missing"
    assert "HelmRelease %s/never: missing, NotFound" % ns in result["msg"]
    assert finished - started < 30


def test_selector_over_many_objects(hub, ns):
    labels = {"gitops.c5c3.io/stage": "services"}
    names = ["svc-%03d" % i for i in range(150)]
    for name in names:
        hub.helmrelease(ns, name, labels=labels)
    hub.helmrelease(ns, "not-selected", labels={"gitops.c5c3.io/stage": "infrastructure"})

    def all_ready():
        for name in names:
            hub.ready("HelmRelease", ns, name)

    at(2.0, all_ready)
    result, dummy, finished = hub.module("flux_wait", {
        "selectors": [{"kind": "HelmRelease", "namespace": ns, "label_selector": "gitops.c5c3.io/stage=services"}],
        "timeout": 120})
    assert result.get("failed") is not True, result["msg"]
    assert result["summary"]["total"] == 150 and result["summary"]["ready"] == 150
    assert result["api_requests"] == 2


def test_check_mode_reports_without_waiting(hub, ns):
    hub.helmrelease(ns, "a")
    hub.helmrelease(ns, "b")
    hub.ready("HelmRelease", ns, "a")
    result, started, finished = hub.module("flux_wait", {"objects": [hr(ns, "a"), hr(ns, "b"), hr(ns, "c")],
                                                         "timeout": 300}, check=True)
    assert result.get("failed") is not True and result["changed"] is False
    assert result["outcome"] == "reported"
    assert [r["state"] for r in result["objects"]] == ["ready", "progressing", "missing"]
    assert result["api_requests"] == 1


def test_accepts_flux_apply_applied_list(hub, ns):
    hub.helmrelease(ns, "a")
    hub.ready("HelmRelease", ns, "a")
    applied = [{"kind": "HelmRelease", "apiVersion": "helm.toolkit.fluxcd.io/v2", "name": "a", "namespace": ns,
                "generation": 1, "changed": True, "created": True},
               {"kind": "Namespace", "apiVersion": "v1", "name": ns, "namespace": None, "generation": None,
                "changed": False, "created": False}]
    result, dummy, dummy = hub.module("flux_wait", {"objects": applied, "timeout": 10})
    assert result.get("failed") is not True, result["msg"]
    assert result["summary"]["ready"] == 2


def test_reconcile_waits_for_the_request_to_be_handled(hub, ns):
    hub.helmrelease(ns, "app")
    hub.ready("HelmRelease", ns, "app")  # Ready=True at its generation already: must not count
    stop = threading.Event()
    # The stand-in controller answers a while after the request, like a busy helm-controller.
    mark = {}

    def late_controller():
        mark["t"] = time.monotonic()
        hub.answer_reconcile_requests(ns, stop)

    timer = threading.Timer(2.0, late_controller)
    timer.start()
    try:
        result, started, finished = hub.module("flux_reconcile", {
            "objects": [hr(ns, "app")], "force": True, "timeout": 60})
    finally:
        stop.set()
        timer.cancel()
    assert result.get("failed") is not True, result["msg"]
    assert result["changed"] is True and result["outcome"] == "handled"
    token = result["token"]
    status = hub.get("HelmRelease", ns, "app")["status"]
    assert status["lastHandledReconcileAt"] == token and status["lastHandledForceAt"] == token
    ann = hub.get("HelmRelease", ns, "app")["metadata"]["annotations"]
    assert ann["reconcile.fluxcd.io/requestedAt"] == ann["reconcile.fluxcd.io/forceAt"] == token
    assert finished - started >= 2.0  # did not accept the old Ready=True


def test_reconcile_check_mode_sends_nothing(hub, ns):
    hub.helmrelease(ns, "app")
    result, dummy, dummy = hub.module("flux_reconcile", {"objects": [hr(ns, "app")], "reset": True}, check=True)
    assert result.get("failed") is not True and result["changed"] is True
    assert result["requested"][0]["annotations"]["reconcile.fluxcd.io/resetAt"] == result["token"]
    assert "reconcile.fluxcd.io/requestedAt" not in (hub.get("HelmRelease", ns, "app")["metadata"].get("annotations") or {})


def test_reconcile_fails_fast_when_handled_but_failed(hub, ns):
    hub.helmrelease(ns, "app")
    stop = threading.Event()
    hub.answer_reconcile_requests(ns, stop, make_ready=False)

    def fail_after_handling():
        obj = hub.get("HelmRelease", ns, "app")
        while "lastHandledReconcileAt" not in (obj.get("status") or {}):
            time.sleep(0.05)  # test-side poll of the stand-in controller, not of the module
            obj = hub.get("HelmRelease", ns, "app")
        hub.not_ready("HelmRelease", ns, "app", "UpgradeFailed", "post-upgrade hooks failed",
                      stalled=("RetriesExceeded", "Failed to upgrade after 1 attempt(s)"),
                      extra={"upgradeFailures": 1, "lastHandledReconcileAt": obj["status"]["lastHandledReconcileAt"]})

    at(0.5, fail_after_handling)
    try:
        result, dummy, dummy = hub.module("flux_reconcile", {"objects": [hr(ns, "app")], "timeout": 60})
    finally:
        stop.set()
    assert result["failed"] is True and result["outcome"] == "failed"
    assert "RetriesExceeded: Failed to upgrade after 1 attempt(s)" in result["msg"]


FLUX_REPORT_SPEC = {
    "distribution": {"entitlement": "Issued by controlplane", "managedBy": "flux-operator",
                     "status": "Installed", "version": "v2.7.3"},
    "components": [
        {"name": "helm-controller", "image": "ghcr.io/fluxcd/helm-controller:v1.4.3", "ready": True,
         "status": "Current Deployment is available. Replicas: 1"},
        {"name": "source-controller", "image": "ghcr.io/fluxcd/source-controller:v1.7.3", "ready": True,
         "status": "Current Deployment is available. Replicas: 1"},
    ],
    "reconcilers": [
        {"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
         "stats": {"running": 12, "failing": 0, "suspended": 0}},
        {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
         "stats": {"running": 4, "failing": 0, "suspended": 1}},
    ],
    "sync": {"id": "kustomization/flux-system", "path": "clusters/management", "ready": True,
             "source": "https://git.example/c5c3/fleet.git", "status": "Applied revision: refs/heads/main@sha1:0123"},
}


def _put_report(hub, spec, ready=True):
    from hubkit import cond
    group, version, plural = "fluxcd.controlplane.io", "v1", "fluxreports"
    try:
        hub.create_namespace("flux-system")
    except Exception:
        pass  # exists
    try:
        hub.co.delete_namespaced_custom_object(group, version, "flux-system", plural, "flux")
    except Exception:
        pass
    obj = hub.co.create_namespaced_custom_object(group, version, "flux-system", plural, {
        "apiVersion": "fluxcd.controlplane.io/v1", "kind": "FluxReport",
        "metadata": {"name": "flux", "namespace": "flux-system"}, "spec": spec})
    gen = obj["metadata"]["generation"]
    status = {"conditions": [cond("Ready", "True" if ready else "False",
                                  "ReconciliationSucceeded" if ready else "ReconciliationFailed",
                                  "Reporting finished", gen)]}
    hub.co.patch_namespaced_custom_object_status(group, version, "flux-system", plural, "flux", {"status": status})


def test_flux_report_info_healthy(hub):
    _put_report(hub, FLUX_REPORT_SPEC)
    result, dummy, dummy = hub.module("flux_report_info", {"fail_on_unhealthy": True})
    assert result.get("failed") is not True, result.get("msg")
    assert result["healthy"] is True and result["problems"] == []
    report = result["report"]
    assert report["distribution"]["version"] == "v2.7.3"
    assert [c["name"] for c in report["components"]] == ["helm-controller", "source-controller"]
    assert report["reconcilers"][1]["suspended"] == 1
    assert report["sync"]["ready"] is True and report["ready"]["state"] == "ready"
    assert result["api_requests"] == 1


def test_flux_report_info_lists_problems(hub):
    import copy
    spec = copy.deepcopy(FLUX_REPORT_SPEC)
    spec["components"][0].update(ready=False, status="Deployment is not ready: 0/1 replicas available")
    spec["reconcilers"][0]["stats"]["failing"] = 2
    spec["sync"].update(ready=False, status="kustomize build failed")
    _put_report(hub, spec)
    result, dummy, dummy = hub.module("flux_report_info", {})
    assert result.get("failed") is not True and result["healthy"] is False
    assert result["problems"] == [
        "component helm-controller not ready: Deployment is not ready: 0/1 replicas available",
        "2 HelmRelease failing",
        "sync kustomization/flux-system not ready: kustomize build failed",
    ]
    failed, dummy, dummy = hub.module("flux_report_info", {"fail_on_unhealthy": True}, check=True)
    assert failed["failed"] is True and "2 HelmRelease failing" in failed["msg"]
