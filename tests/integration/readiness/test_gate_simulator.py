"""flux_wait / flux_reconcile / flux_report_info against the shared local fleet *with* its Flux
simulator (tests/integration/conftest.py `local_fleet`): statuses come from the simulator,
failures are injected with its annotations (docs/local-fleet.md)."""
import threading
import time
import uuid

import pytest
from kubernetes import client, watch

pytestmark = pytest.mark.integration

HR = ("helm.toolkit.fluxcd.io", "v2", "helmreleases")
REPO = ("source.toolkit.fluxcd.io", "v1", "helmrepositories")


@pytest.fixture(scope="module")
def sim(local_fleet):
    import hubkit
    hub = hubkit.Hub(local_fleet.kubeconfig(local_fleet.hub))
    try:
        hub.create_namespace("flux-system")
    except client.ApiException as exc:
        if exc.status != 409:
            raise
    return hub


@pytest.fixture
def sns(sim):
    """A namespace and an OCI HelmRepository (ready by existing) for the test's HelmReleases."""
    name = "gsim-" + uuid.uuid4().hex[:8]
    sim.create_namespace(name)
    sim.co.create_namespaced_custom_object(REPO[0], REPO[1], name, REPO[2], {
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "HelmRepository",
        "metadata": {"name": "charts", "namespace": name},
        "spec": {"type": "oci", "url": "oci://registry.example/charts", "interval": "1h"}})
    return name


def release(sim, ns, name, annotations=None, depends_on=None, labels=None):
    spec = {"interval": "10m", "releaseName": name,
            "chart": {"spec": {"chart": name, "version": "1.0.0",
                               "sourceRef": {"kind": "HelmRepository", "name": "charts", "namespace": ns}}}}
    if depends_on:
        spec["dependsOn"] = [{"name": d} for d in depends_on]
    return sim.co.create_namespaced_custom_object(HR[0], HR[1], ns, HR[2], {
        "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
        "metadata": {"name": name, "namespace": ns, "annotations": annotations or {}, "labels": labels or {}},
        "spec": spec})


def hr(ns, name):
    return {"kind": "HelmRelease", "name": name, "namespace": ns}


def first_seen(sim, ns, name, predicate):
    """Thread watching one HelmRelease; records when predicate(obj) first holds (monotonic)."""
    mark, stop = {}, threading.Event()

    def run():
        w = watch.Watch()
        for event in w.stream(sim.co.list_namespaced_custom_object, HR[0], HR[1], ns, HR[2],
                              field_selector="metadata.name=%s" % name, timeout_seconds=120):
            if predicate(event["object"]):
                mark["t"] = time.monotonic()
                w.stop()
                return
            if stop.is_set():
                w.stop()
                return

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    mark["stop"] = stop
    return mark


def stalled(obj):
    return any(c.get("type") == "Stalled" and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or [])


def test_simulated_releases_become_ready(sim, sns):
    for i in range(5):
        release(sim, sns, "app-%d" % i, annotations={"simulator.c5c3.io/delay": "3s"},
                labels={"gitops.c5c3.io/stage": "services"})
    result, dummy, dummy = sim.module("flux_wait", {"selectors": [
        {"kind": "HelmRelease", "namespace": sns, "label_selector": "gitops.c5c3.io/stage=services"}], "timeout": 120})
    assert result.get("failed") is not True, result["msg"]
    assert result["summary"]["ready"] == 5 and result["api_requests"] == 2


def test_injected_install_failure_fails_within_two_seconds_of_stalled(sim, sns):
    release(sim, sns, "broken", annotations={"simulator.c5c3.io/fail": "install",
                                             "simulator.c5c3.io/fail-message": "image pull back-off",
                                             "simulator.c5c3.io/delay": "5s"})
    seen = first_seen(sim, sns, "broken", stalled)
    result, started, finished = sim.module("flux_wait", {"objects": [hr(sns, "broken")], "timeout": 120})
    assert result["failed"] is True and result["outcome"] == "failed", result["msg"]
    assert "t" in seen, "Stalled never appeared"
    assert finished - seen["t"] < 2.0, "failed %.2fs after Stalled appeared" % (finished - seen["t"])
    assert finished - started < 60
    row = result["objects"][0]
    assert row["state"] == "failed" and row["reason"] in ("RetriesExceeded", "InstallFailed"), row
    assert "HelmRelease %s/broken: failed" % sns in result["msg"]


def test_dependency_chain_from_the_simulator(sim, sns):
    release(sim, sns, "database", annotations={"simulator.c5c3.io/fail": "install"})
    release(sim, sns, "operator", depends_on=["database"])
    release(sim, sns, "service", depends_on=["operator"])
    result, dummy, dummy = sim.module("flux_wait", {"objects": [hr(sns, "service")], "timeout": 8})
    assert result["failed"] is True and result["outcome"] == "timeout"
    assert any(c.startswith("HelmRelease %s/service -> HelmRelease %s/operator (progressing: DependencyNotReady)"
                            " -> HelmRelease %s/database (failed: " % (sns, sns, sns)) for c in result["chains"]), \
        result["chains"]


def test_simulated_stale_ready_is_not_accepted(sim, sns):
    release(sim, sns, "app", annotations={"simulator.c5c3.io/stale": "true"})
    first, dummy, dummy = sim.module("flux_wait", {"objects": [hr(sns, "app")], "timeout": 60})
    assert first.get("failed") is not True, first["msg"]
    sim.co.patch_namespaced_custom_object(HR[0], HR[1], sns, HR[2], "app", {"spec": {"values": {"replicas": 2}}})
    result, dummy, dummy = sim.module("flux_wait", {"objects": [hr(sns, "app")], "timeout": 4})
    assert result["failed"] is True and result["objects"][0]["reason"] == "StaleGeneration", result["msg"]


def test_reconcile_handled_by_the_simulator(sim, sns):
    release(sim, sns, "app")
    first, dummy, dummy = sim.module("flux_wait", {"objects": [hr(sns, "app")], "timeout": 60})
    assert first.get("failed") is not True, first["msg"]
    result, dummy, dummy = sim.module("flux_reconcile", {
        "objects": [hr(sns, "app")], "force": True, "with_source": True, "timeout": 60})
    assert result.get("failed") is not True, result["msg"]
    assert result["changed"] is True and result["outcome"] == "handled"
    status = sim.get("HelmRelease", sns, "app")["status"]
    assert status["lastHandledReconcileAt"] == status["lastHandledForceAt"] == result["token"]
    # the simulator has no source-controller: its OCI HelmRepository is static, no HelmChart exists
    assert sorted(s["kind"] for s in result["skipped_sources"]) == ["HelmChart", "HelmRepository"]


def test_report_of_the_simulated_operator(sim):
    # The simulator writes FluxReport flux-system/flux once flux-system exists: gate on it first.
    report = {"kind": "FluxReport", "name": "flux", "namespace": "flux-system"}
    waited, dummy, dummy = sim.module("flux_wait", {"objects": [report], "timeout": 90, "missing_grace": 60})
    assert waited.get("failed") is not True, waited["msg"]
    result, dummy, dummy = sim.module("flux_report_info", {})
    assert result.get("failed") is not True, result.get("msg")
    assert result["exists"] is True and result["report"]["ready"]["state"] == "ready"
    assert result["report"]["operator"]["apiVersion"] == "fluxcd.controlplane.io/v1"
    assert result["healthy"] == (result["problems"] == [])
    if result["report"]["distribution"]["status"] == "Not Installed":  # no FluxInstance in this session
        assert "Flux distribution not installed (Not Installed)" in result["problems"]
    strict, dummy, dummy = sim.module("flux_report_info", {"fail_on_unhealthy": True})
    assert bool(strict.get("failed")) == (not result["healthy"])
