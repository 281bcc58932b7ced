"""A cluster that left the inventory leaves nothing on the hub (issue 12 §10).

A cluster registered earlier (its kubeconfig Secret and hub namespace, with the ownership labels)
and no longer in the inventory: check mode shows the prune and writes nothing; while a Flux object
still uses the Secret it is kept; once that is gone, site.yml prunes the Secret, then the namespace.
"""
import uuid

import pytest

import pf_helpers as h

pytestmark = pytest.mark.integration


def test_removed_cluster_secret_and_namespace_are_pruned(local_fleet, tmp_path):
    gone = "gone-%s" % uuid.uuid4().hex[:6]
    state = h.HubState(local_fleet)
    inv = h.inventory(local_fleet, str(tmp_path / "inv"))
    hub = local_fleet.kubeconfig(local_fleet.hub)
    # an earlier run registered `gone` (same module and labels as the clusters stage)
    reg = h.module(inv, "cluster_kubeconfig", {"kubeconfig": hub, "cluster": gone, "verify_spoke": False,
                                               "kubeconfig_path": local_fleet.kubeconfig("storage")})
    assert reg.returncode == 0, reg.stdout
    secret_path = "/api/v1/namespaces/%s/secrets/%s-kubeconfig" % (gone, gone)
    assert state.get(secret_path)["metadata"]["labels"]["gitops.c5c3.io/cluster"] == gone
    assert state.get("/api/v1/namespaces/%s" % gone)["metadata"]["labels"]["gitops.c5c3.io/stage"] == "clusters"
    # ... and one of its HelmReleases still exists (not being deleted)
    hr_path = "/apis/helm.toolkit.fluxcd.io/v2/namespaces/%s/helmreleases" % gone
    state.raw.request("POST", hr_path, body={
        "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
        "metadata": {"name": "keystone-operator", "namespace": gone,
                     "labels": {"app.kubernetes.io/managed-by": "c5c3.gitops", "gitops.c5c3.io/stage": "services",
                                "gitops.c5c3.io/cluster": gone}},
        "spec": {"interval": "10m", "suspend": True,
                 "chart": {"spec": {"chart": "x", "sourceRef": {"kind": "HelmRepository", "name": "none"}}}}})

    before = state.snapshot()
    check = h.playbook("site.yml", inv, "--check", "--diff", "--tags", "clusters")
    assert check.returncode == 0, check.stdout[-3000:]
    assert "Prune the registrations of clusters that left the fleet" in check.stdout
    assert "Secret %s/%s-kubeconfig" % (gone, gone) in check.stdout and "Namespace %s" % gone in check.stdout
    assert state.snapshot() == before

    kept = h.module(inv, "cluster_prune", {"kubeconfig": hub, "clusters": list(local_fleet.clusters)})
    assert kept.returncode == 0, kept.stdout
    assert "cluster %s left the fleet but its registration is kept for now: still used by HelmRelease %s/keystone-operator" % (gone, gone) \
        in kept.stdout
    assert state.get(secret_path) is not None

    state.raw.request("DELETE", hr_path + "/keystone-operator")
    run = h.playbook("site.yml", inv, "--tags", "clusters")
    assert run.returncode == 0, run.stdout[-3000:]
    assert state.get(secret_path) is None
    ns = state.get("/api/v1/namespaces/%s" % gone)
    assert ns is None or ns["metadata"].get("deletionTimestamp")  # no namespace controller runs locally
    for cluster in local_fleet.spokes:  # the fleet's own registrations are untouched
        assert state.get("/api/v1/namespaces/%s/secrets/%s-kubeconfig" % (cluster, cluster)) is not None
