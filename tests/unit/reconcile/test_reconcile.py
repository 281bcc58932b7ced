"""flux_reconcile's logic against the waiter's in-memory API server."""
import os
import sys
import threading

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "waiter"))
from fake_cluster import FakeCluster, helmrelease  # noqa: E402

from ansible_collections.c5c3.gitops.plugins.module_utils import reconcile  # noqa: E402


class PatchableCluster(FakeCluster):
    """Adds merge_patch of annotations and a controller that answers requests when told."""

    def merge_patch(self, info, namespace, name, patch):
        with self.lock:
            self.api_requests += 1
            self.calls.append(("patch", info["kind"], namespace))
            obj = self.objects.get((info["kind"], namespace, name))
            if obj is None:
                return None
            obj = dict(obj, metadata=dict(obj["metadata"]))
            obj["metadata"]["annotations"] = dict(obj["metadata"].get("annotations") or {},
                                                  **patch["metadata"]["annotations"])
            return self.put(obj)

    def handle(self, kind, namespace, name, ready=True):
        with self.lock:
            obj = self.objects[(kind, namespace, name)]
            ann = obj["metadata"].get("annotations") or {}
            status = dict(obj.get("status") or {})
            for a, field in reconcile.HANDLED.items():
                if a in ann:
                    status[field] = ann[a]
            gen = obj["metadata"].get("generation", 1)
            status["conditions"] = [{"type": "Ready", "status": "True" if ready else "False",
                                     "reason": "Succeeded" if ready else "Progressing", "message": "",
                                     "observedGeneration": gen}]
            self.put(dict(obj, status=status))


def hr_ref(name, ns="control-plane"):
    return {"kind": "HelmRelease", "name": name, "namespace": ns}


def test_source_of():
    rel = {"kind": "HelmRelease", "metadata": {"name": "keystone", "namespace": "cp"},
           "spec": {"chart": {"spec": {"sourceRef": {"kind": "HelmRepository", "name": "charts", "namespace": "flux-system"}}}}}
    assert reconcile.source_of(rel) == [
        {"kind": "HelmRepository", "namespace": "flux-system", "name": "charts"},
        {"kind": "HelmChart", "namespace": "flux-system", "name": "cp-keystone"}]
    rel["status"] = {"helmChart": "flux-system/custom"}
    assert reconcile.source_of(rel)[1]["name"] == "custom"
    rel = {"kind": "HelmRelease", "metadata": {"name": "k", "namespace": "cp"},
           "spec": {"chartRef": {"kind": "OCIRepository", "name": "k"}}}
    assert reconcile.source_of(rel) == [{"kind": "OCIRepository", "namespace": "cp", "name": "k"}]
    ks = {"kind": "Kustomization", "metadata": {"name": "apps", "namespace": "cp"},
          "spec": {"sourceRef": {"kind": "GitRepository", "name": "flux-system", "namespace": "flux-system"}}}
    assert reconcile.source_of(ks) == [{"kind": "GitRepository", "namespace": "flux-system", "name": "flux-system"}]


def test_old_ready_does_not_pass_until_the_token_is_handled():
    cluster = PatchableCluster()
    cluster.put(helmrelease("a", ready=True))
    handled = []
    timer = threading.Timer(0.3, lambda: (handled.append(1), cluster.handle("HelmRelease", "control-plane", "a")))
    timer.start()
    out = reconcile.Reconciler(cluster).run([hr_ref("a")], force=True, timeout=5, token="T1")
    assert handled  # returned only after the stand-in controller handled the request
    assert out["ok"] and out["outcome"] == "handled"
    status = cluster.objects[("HelmRelease", "control-plane", "a")]["status"]
    assert status["lastHandledReconcileAt"] == status["lastHandledForceAt"] == "T1"
    assert out["requested"][0]["annotations"] == {reconcile.REQUESTED_AT: "T1", reconcile.FORCE_AT: "T1"}


def test_unhandled_request_times_out_with_a_clear_message():
    cluster = PatchableCluster()
    cluster.put(helmrelease("a", ready=True))
    out = reconcile.Reconciler(cluster).run([hr_ref("a")], timeout=0.3, token="T2")
    assert not out["ok"] and out["outcome"] == "timeout"
    assert "ReconcileRequested: request T2 not handled yet (status.lastHandledReconcileAt)" in out["message"]


def test_with_source_requests_sources_first_and_skips_oci_helmrepository():
    cluster = PatchableCluster()
    rel = helmrelease("a")
    rel["spec"]["chart"] = {"spec": {"sourceRef": {"kind": "HelmRepository", "name": "oci", "namespace": "flux-system"}}}
    cluster.put(rel)
    cluster.put({"kind": "HelmRepository", "metadata": {"name": "oci", "namespace": "flux-system", "generation": 1},
                 "spec": {"type": "oci", "url": "oci://x"}})
    cluster.put({"kind": "HelmChart", "metadata": {"name": "control-plane-a", "namespace": "flux-system", "generation": 1},
                 "spec": {}})
    out = reconcile.Reconciler(cluster).run([hr_ref("a")], with_source=True, wait=False, token="T3")
    assert [(r["kind"], r["source"]) for r in out["requested"]] == [("HelmChart", True), ("HelmRelease", False)]
    assert out["skipped_sources"] == [{"kind": "HelmRepository", "namespace": "flux-system", "name": "oci",
                                       "reason": "OCI HelmRepository (not reconciled)"}]
    assert out["outcome"] == "requested"


def test_check_mode_sends_nothing():
    cluster = PatchableCluster()
    cluster.put(helmrelease("a", ready=True))
    out = reconcile.Reconciler(cluster).run([hr_ref("a")], reset=True, check_mode=True, token="T4")
    assert out["ok"] and cluster.count("patch") == 0 and cluster.count("watch") == 0
    assert out["requested"][0]["annotations"][reconcile.RESET_AT] == "T4"
    assert out["objects"][0]["state"] == "ready"


def test_missing_object_is_an_error():
    with pytest.raises(reconcile.ReconcileError, match="not found"):
        reconcile.Reconciler(PatchableCluster()).run([hr_ref("ghost")], token="T5")


def test_with_source_skips_a_chart_that_does_not_exist_yet():
    cluster = PatchableCluster()
    rel = helmrelease("a")
    rel["spec"]["chartRef"] = {"kind": "OCIRepository", "name": "a-chart", "namespace": "flux-system"}
    cluster.put(rel)
    out = reconcile.Reconciler(cluster).run([hr_ref("a")], with_source=True, wait=False, token="T6")
    assert [r["kind"] for r in out["requested"]] == ["HelmRelease"]
    assert out["skipped_sources"][0]["reason"] == "not found"
