"""Verify of the default scenario: the hub holds every object of the fleet, Ready at its
generation; each spoke has the namespaces and Helm release records that the simulator made
through the kubeconfig Secrets."""
import base64
import os
import sys

import pytest
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
import fleetcheck  # noqa: E402

testinfra_hosts = ["ansible://management"]

FLEET = fleetcheck.fleet()
FLUX_OBJECTS = [o for o in FLEET["objects"] if o["kind"] in fleetcheck.PLURALS]
SPOKE_RELEASES = [o for o in FLEET["objects"] if o["kind"] == "HelmRelease" and o["spec"].get("kubeConfig")]


def _id(obj):
    return "%s/%s/%s" % (obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"])


def test_the_fleet_is_not_trivial():
    kinds = {o["kind"] for o in FLUX_OBJECTS}
    assert {"FluxInstance", "HelmRepository", "Kustomization", "HelmRelease"} <= kinds
    assert len(SPOKE_RELEASES) >= 3


def test_kubeconfigs_exist(host):
    for cluster in FLEET["clusters"]:
        assert host.file(fleetcheck.kubeconfig(cluster["name"])).exists


@pytest.mark.parametrize("obj", FLUX_OBJECTS, ids=_id)
def test_hub_object_ready_at_its_generation(obj):
    _unused, custom = fleetcheck.clients("management")
    live = fleetcheck.get(custom, obj)
    assert live["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "c5c3.gitops"
    assert fleetcheck.is_ready(live), live.get("status")


@pytest.mark.parametrize("cluster", [c for c in FLEET["clusters"] if c["kubeconfig_secret"]], ids=lambda c: c["name"])
def test_kubeconfig_secret_matches_the_spoke(cluster):
    core, _unused = fleetcheck.clients("management")
    secret = core.read_namespaced_secret(cluster["kubeconfig_secret"], cluster["hub_namespace"])
    assert secret.metadata.labels["reconcile.fluxcd.io/watch"] == "Enabled"
    stored = yaml.safe_load(base64.b64decode(secret.data["value"]))
    with open(fleetcheck.kubeconfig(cluster["name"]), encoding="utf-8") as handle:
        assert stored == yaml.safe_load(handle)


@pytest.mark.parametrize("release", SPOKE_RELEASES, ids=_id)
def test_spoke_has_namespace_and_release_record(release):
    cluster = release["metadata"]["labels"]["gitops.c5c3.io/cluster"]
    spec = release["spec"]
    storage_ns = spec.get("storageNamespace") or spec.get("targetNamespace")
    core, _unused = fleetcheck.clients(cluster)
    core.read_namespace(storage_ns)
    records = core.list_namespaced_secret(storage_ns, label_selector="owner=helm,name=%s" % spec["releaseName"]).items
    if not records:  # the simulator may not label its records like Helm does: fall back to the name
        prefix = "sh.helm.release.v1.%s.v" % spec["releaseName"]
        records = [s for s in core.list_namespaced_secret(storage_ns).items if s.metadata.name.startswith(prefix)]
    assert records, "no Helm release record of %s in %s on %s" % (spec["releaseName"], storage_ns, cluster)
