"""The watch loop against an in-memory API server (fake_cluster): timing, reconnects, messages."""
import os
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from fake_cluster import FakeCluster, helmrelease  # noqa: E402

from ansible_collections.c5c3.gitops.plugins.module_utils import readiness  # noqa: E402
from ansible_collections.c5c3.gitops.plugins.module_utils.waiter import (  # noqa: E402
    SourceError, WaitError, Waiter, WatchGone, normalize_objects)

NS = "control-plane"


def hr(name, ns=NS):
    return {"kind": "HelmRelease", "name": name, "namespace": ns}


def later(delay, fn, *args):
    timer = threading.Timer(delay, fn, args)
    timer.daemon = True
    timer.start()
    return timer


def wait_for(predicate, limit=2.0):
    """Test helper: block until the waiter has opened its watches (so we change state mid-watch)."""
    end = time.monotonic() + limit
    while not predicate():
        assert time.monotonic() < end, "condition not reached"
        time.sleep(0.005)


@pytest.fixture
def cluster():
    return FakeCluster()


def test_ready_set_one_list_and_one_watch_per_pair(cluster):
    cluster.put(helmrelease("a", ready=True))
    cluster.put(helmrelease("b", ready=False))
    cluster.put(helmrelease("x", namespace="storage", ready=True))
    later(0.2, cluster.put, helmrelease("b", ready=True))
    result = Waiter(cluster).wait([hr("a"), hr("b"), hr("x", "storage")], timeout=10)
    assert result["ok"], result["message"]
    assert result["summary"] == {"total": 3, "ready": 3, "progressing": 0, "failed": 0, "missing": 0}
    rows = dict((r["name"], r) for r in result["objects"])
    # a was ready at the LIST; b only after its watch event (timings loose: CI machines are shared)
    assert rows["a"]["ready_after"] < rows["b"]["ready_after"] < 5.0
    assert rows["b"]["generation"] == 1 and rows["b"]["observed_generation"] == 1
    # two (kind, namespace) pairs -> two LISTs + two WATCHes, no matter how many objects
    assert cluster.count("list") == 2 and cluster.count("watch") == 2
    assert result["api_requests"] == 4
    assert cluster.open_streams() == []  # watches are closed on return


def test_fail_fast_returns_well_under_two_seconds_after_stalled(cluster):
    cluster.put(helmrelease("a", ready=False, reason="Progressing"))
    cluster.put(helmrelease("b", ready=True))
    stalled_at = []

    def stall():
        stalled_at.append(time.monotonic())
        cluster.put(helmrelease("a", ready=False, reason="InstallFailed", stalled="RetriesExceeded",
                                message="Failed to install after 1 attempt(s)", failures=1))

    later(0.3, stall)
    result = Waiter(cluster).wait([hr("a"), hr("b")], timeout=60)
    returned = time.monotonic()
    assert not result["ok"] and result["outcome"] == "failed"
    assert returned - stalled_at[0] < 1.0  # the budget is 2 s; typically a few ms
    assert "HelmRelease control-plane/a: failed, RetriesExceeded: Failed to install after 1 attempt(s)" \
        in result["message"]
    assert result["not_ready"][0]["name"] == "a"


def test_without_fail_fast_a_failed_object_is_waited_on(cluster):
    cluster.put(helmrelease("a", ready=False, stalled="RetriesExceeded", message="gave up"))
    later(0.2, cluster.put, helmrelease("a", generation=2, ready=True))
    result = Waiter(cluster).wait([hr("a")], timeout=5, fail_fast=False)
    assert result["ok"]
    assert result["objects"][0]["generation"] == 2


def test_stale_ready_is_not_accepted_until_observed(cluster):
    cluster.put(helmrelease("a", generation=2, ready=True, observed=1))
    observed_at = []
    later(0.3, lambda: (observed_at.append(time.monotonic()),
                        cluster.put(helmrelease("a", generation=2, ready=True, observed=2))))
    result = Waiter(cluster).wait([hr("a")], timeout=5)
    assert result["ok"] and observed_at and time.monotonic() >= observed_at[0]


def test_timeout_lists_every_not_ready_object(cluster):
    cluster.put(helmrelease("a", ready=True))
    cluster.put(helmrelease("b", ready=False, reason="Progressing", message="Running 'install' action"))
    cluster.put(helmrelease("c", generation=3, ready=True, observed=2))
    start = time.monotonic()
    result = Waiter(cluster).wait([hr("a"), hr("b"), hr("c")], timeout=0.6)
    elapsed = time.monotonic() - start
    assert result["outcome"] == "timeout" and not result["ok"]
    assert 0.6 <= elapsed < 3.0  # one deadline for the whole set, not per object (3 x 0.6 s)
    msg = result["message"]
    assert msg.startswith("2 of 3 objects not ready, timed out after")
    assert "- HelmRelease control-plane/b: progressing, Progressing: Running 'install' action" in msg
    assert "- HelmRelease control-plane/c: progressing, StaleGeneration: Ready=True (InstallSucceeded) " \
           "was reported for generation 2; the object is at generation 3" in msg
    assert "control-plane/a" not in msg
    assert [r["name"] for r in result["not_ready"]] == ["b", "c"]


def test_410_gone_relists_and_keeps_waiting(cluster):
    cluster.put(helmrelease("a", ready=False))
    waiter = Waiter(cluster)

    def expire_then_ready():
        wait_for(cluster.open_streams)
        cluster.expire_watches()
        # changed while no watch was open: only the re-LIST can see it
        with cluster.lock:
            cluster.log.clear()
            cluster.put(helmrelease("a", ready=True))
            cluster.log.clear()

    later(0.1, expire_then_ready)
    result = Waiter.wait(waiter, [hr("a")], timeout=5)
    assert result["ok"], result["message"]
    assert result["relists"] == 1
    assert cluster.count("list") == 2 and cluster.count("watch") >= 2


def test_gone_on_watch_request_relists(cluster):
    cluster.put(helmrelease("a", ready=True))
    cluster.put(helmrelease("b", ready=False))
    cluster.fail_next_watches.append(WatchGone("too old resource version: 1 (200)"))
    later(0.2, cluster.put, helmrelease("b", ready=True))
    result = Waiter(cluster).wait([hr("a"), hr("b")], timeout=5)
    assert result["ok"] and result["relists"] == 1 and cluster.count("list") == 2


def test_server_side_watch_end_resumes_from_resource_version(cluster):
    cluster.put(helmrelease("a", ready=False))

    def end_then_change():
        wait_for(cluster.open_streams)
        with cluster.lock:
            cluster.end_watches()
            # happens between two watch requests; the replay from the last resourceVersion carries it
            cluster.put(helmrelease("a", ready=True))

    later(0.1, end_then_change)
    result = Waiter(cluster).wait([hr("a")], timeout=5)
    assert result["ok"]
    assert cluster.count("list") == 1 and cluster.count("watch") == 2
    assert result["watch_restarts"] == 1 and result["relists"] == 0


def test_dropped_connection_is_retried(cluster):
    cluster.put(helmrelease("a", ready=False))
    cluster.fail_next_watches.append(ConnectionRefusedError("connection refused"))

    def drop_then_ready():
        wait_for(cluster.open_streams)
        cluster.drop_watches()
        cluster.put(helmrelease("a", ready=True))

    later(0.05, drop_then_ready)
    result = Waiter(cluster, reconnect_backoff=(0.01, 0.05)).wait([hr("a")], timeout=5)
    assert result["ok"]
    assert cluster.count("watch") >= 3


def test_permanent_api_error_is_raised(cluster):
    class Forbidden(FakeCluster):
        def list(self, info, namespace, label_selector=None):
            raise SourceError(403, "list helmreleases: forbidden")

    with pytest.raises(SourceError, match="403"):
        Waiter(Forbidden()).wait([hr("a")], timeout=5)


def test_missing_object_fails_after_grace(cluster):
    cluster.put(helmrelease("a", ready=True))
    start = time.monotonic()
    result = Waiter(cluster).wait([hr("a"), hr("ghost")], timeout=30, missing_grace=0.4)
    elapsed = time.monotonic() - start
    assert result["outcome"] == "missing" and 0.4 <= elapsed < 3.0
    assert "- HelmRelease control-plane/ghost: missing, NotFound: the object does not exist" in result["message"]


def test_object_appearing_within_grace_is_waited_for(cluster):
    later(0.2, cluster.put, helmrelease("late", ready=True))
    result = Waiter(cluster).wait([hr("late")], timeout=5, missing_grace=2)
    assert result["ok"]


def test_grace_is_capped_by_timeout(cluster):
    start = time.monotonic()
    result = Waiter(cluster).wait([hr("ghost")], timeout=0.3, missing_grace=30)
    assert time.monotonic() - start < 2.0
    assert result["objects"][0]["state"] == "missing"


def test_deleted_object_turns_missing(cluster):
    cluster.put(helmrelease("a", ready=False))

    def delete():
        wait_for(cluster.open_streams)
        cluster.delete("HelmRelease", NS, "a")

    later(0.05, delete)
    result = Waiter(cluster).wait([hr("a")], timeout=5, missing_grace=0.2)
    assert result["outcome"] == "missing"


def test_dependency_chain_through_objects_outside_the_set(cluster):
    # keystone (waited) -> mariadb (same namespace, not waited) -> operators/cert-manager (failed)
    cluster.put(helmrelease("keystone-operator", ready=False, reason="DependencyNotReady",
                            message="dependency 'control-plane/mariadb-operator' is not ready",
                            depends_on=["mariadb-operator"]))
    cluster.put(helmrelease("mariadb-operator", ready=False, reason="DependencyNotReady",
                            message="dependency 'operators/cert-manager' is not ready",
                            depends_on=[{"name": "cert-manager", "namespace": "operators"}]))
    cluster.put(helmrelease("cert-manager", namespace="operators", ready=False, reason="InstallFailed",
                            message="image pull failed", failures=1))
    result = Waiter(cluster).wait([hr("keystone-operator")], timeout=0.5)
    assert result["outcome"] == "timeout"
    chain = ("HelmRelease control-plane/keystone-operator -> HelmRelease control-plane/mariadb-operator "
             "(progressing: DependencyNotReady) -> HelmRelease operators/cert-manager (failed: InstallFailed)")
    assert chain in result["chains"]
    assert "what blocks what:\n  " + chain in result["message"]
    assert result["objects"][0]["blocked_by"] == [readiness.ref("HelmRelease", NS, "mariadb-operator")]
    # mariadb came from the watched namespace's cache; only cert-manager needed a GET
    assert cluster.count("get") == 1


def test_dependency_cycle_terminates(cluster):
    cluster.put(helmrelease("a", ready=False, reason="DependencyNotReady", message="dependency 'control-plane/b' is not ready",
                            depends_on=["b"]))
    cluster.put(helmrelease("b", ready=False, reason="DependencyNotReady", message="dependency 'control-plane/a' is not ready",
                            depends_on=["a"]))
    result = Waiter(cluster).wait([hr("a"), hr("b")], timeout=0.3)
    assert "HelmRelease control-plane/a -> HelmRelease control-plane/b (progressing: DependencyNotReady) -> " \
           "HelmRelease control-plane/a (progressing: DependencyNotReady)" in result["chains"]


def test_selector_over_many_objects(cluster):
    for i in range(200):
        cluster.put(helmrelease("hr-%03d" % i, ready=False, labels={"gitops.c5c3.io/stage": "services"}))
    cluster.put(helmrelease("other", ready=False, labels={"gitops.c5c3.io/stage": "infrastructure"}))

    def turn_ready():
        for i in range(200):
            cluster.put(helmrelease("hr-%03d" % i, ready=True, labels={"gitops.c5c3.io/stage": "services"}))

    later(0.2, turn_ready)
    result = Waiter(cluster).wait(
        selectors=[{"kind": "HelmRelease", "namespace": NS, "label_selector": "gitops.c5c3.io/stage=services"}],
        timeout=10)
    assert result["ok"] and result["summary"]["total"] == 200
    assert result["api_requests"] == 2


def test_selector_matching_nothing_fails_after_grace(cluster):
    result = Waiter(cluster).wait(
        selectors=[{"kind": "HelmRelease", "namespace": NS, "label_selector": "app=none"}],
        timeout=5, missing_grace=0.2)
    assert result["outcome"] == "missing"
    assert "selector HelmRelease in control-plane (app=none) matched no objects" in result["message"]


def test_once_reports_without_watching(cluster):
    cluster.put(helmrelease("a", ready=True))
    cluster.put(helmrelease("b", ready=False, reason="Progressing", message="installing"))
    result = Waiter(cluster).wait([hr("a"), hr("b"), hr("c")], timeout=300, once=True)
    assert cluster.count("watch") == 0 and cluster.count("list") == 1
    assert result["outcome"] == "reported" and not result["ok"]
    assert [r["state"] for r in result["objects"]] == ["ready", "progressing", "missing"]


def test_override_holds_objects(cluster):
    cluster.put(helmrelease("a", ready=True))
    handled = threading.Event()

    def override(key, obj):
        if not handled.is_set():
            return readiness.Verdict(readiness.PROGRESSING, "ReconcileRequested", "waiting")
        return None

    def touch():
        handled.set()
        cluster.put(helmrelease("a", ready=True))

    later(0.2, touch)
    assert Waiter(cluster, override=override).wait([hr("a")], timeout=5)["ok"]
    assert handled.is_set()  # it did not return on the Ready=True it saw first


def test_bad_input():
    with pytest.raises(WaitError, match="unknown kind"):
        Waiter(FakeCluster()).wait([{"kind": "Widget", "name": "a", "namespace": "x"}])
    with pytest.raises(WaitError, match="namespace"):
        Waiter(FakeCluster()).wait([{"kind": "HelmRelease", "name": "a"}])


def test_normalize_accepts_apply_sink_items():
    applied = [{"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease", "name": "a",
                "namespace": "x", "changed": True, "generation": 4}]
    assert normalize_objects(applied) == [
        {"kind": "HelmRelease", "name": "a", "namespace": "x", "api_version": "helm.toolkit.fluxcd.io/v2"}]


def _at_chart(obj, version):
    obj["status"]["history"] = [{"name": obj["metadata"]["name"], "version": 1, "status": "deployed",
                                 "chartName": "c", "chartVersion": version}]
    obj["status"]["lastAttemptedRevision"] = version
    return obj


def test_chart_version_waits_until_the_release_runs_it(cluster):
    cluster.put(_at_chart(helmrelease("a", ready=True), "0.1.0"))
    later(0.2, cluster.put, _at_chart(helmrelease("a", ready=True, reason="UpgradeSucceeded"), "0.2.0"))
    result = Waiter(cluster).wait([hr("a")], timeout=10, chart_version="0.2.0")
    assert result["ok"], result["message"]
    assert result["objects"][0]["chart_version"] == "0.2.0"
    assert result["objects"][0]["ready_after"] >= 0.15


def test_chart_version_per_object_times_out_with_the_running_version(cluster):
    cluster.put(_at_chart(helmrelease("a", ready=True), "0.1.0"))
    cluster.put(_at_chart(helmrelease("b", ready=True), "0.1.0"))
    result = Waiter(cluster).wait([dict(hr("a"), chart_version="0.3.0"), hr("b")], timeout=0.5)
    assert result["outcome"] == "timeout"
    rows = dict((r["name"], r) for r in result["objects"])
    assert rows["b"]["state"] == "ready"  # no expectation for b
    assert rows["a"]["state"] == "progressing" and rows["a"]["reason"] == "ChartVersionPending"
    assert "runs chart version 0.1.0; waiting for 0.3.0" in rows["a"]["message"]


def test_chart_version_on_another_kind_is_refused(cluster):
    with pytest.raises(WaitError, match="chart_version applies only to HelmRelease"):
        Waiter(cluster).wait([{"kind": "Kustomization", "name": "k", "namespace": NS, "chart_version": "1.0.0"}],
                             timeout=1)


def test_normalize_objects_keeps_chart_version():
    assert normalize_objects([{"kind": "HelmRelease", "name": "a", "namespace": NS, "chart_version": "0.2.0"}])[0][
        "chart_version"] == "0.2.0"
