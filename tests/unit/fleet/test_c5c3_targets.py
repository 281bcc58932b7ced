"""C5C3's target-cluster Secrets as fleet data (plugins/module_utils/c5c3_targets.py via build_fleet)."""
import pytest

from ansible_collections.c5c3.gitops.plugins.module_utils.fleet_model import build_fleet
from ansible_collections.c5c3.gitops.plugins.module_utils.fleet_validate import FleetValidationError

from fleet_helpers import TWO_REGIONS, make_inventory


def test_off_by_default(catalog):
    fleet = build_fleet(make_inventory(), catalog)
    assert fleet["c5c3"] == {"cluster": "control-plane", "namespace": "c5c3-clusters", "targets": []}
    assert not [s for s in fleet["secrets"] if s["kind"] == "c5c3-target"]


def test_targets_go_to_the_cluster_running_c5c3_operator(catalog):
    inv = make_inventory(host_vars={"hypervisor": {"gitops_c5c3_target": True, "gitops_c5c3_target_namespaces": ["openstack", "nova"]},
                                    "storage": {"gitops_c5c3_target": True}})
    fleet = build_fleet(inv, catalog)
    assert fleet["c5c3"] == {"cluster": "control-plane", "namespace": "c5c3-clusters",
                             "targets": [{"name": "hypervisor", "namespaces": ["openstack", "nova"]},
                                         {"name": "storage", "namespaces": []}]}
    refs = [s for s in fleet["secrets"] if s["kind"] == "c5c3-target"]
    assert [(s["name"], s["namespace"], s["on_cluster"], s["keys"]) for s in refs] == [
        ("hypervisor", "c5c3-clusters", "control-plane", ["kubeconfig", "namespaces"]),
        ("storage", "c5c3-clusters", "control-plane", ["kubeconfig"])]
    assert refs[0]["labels"]["sigs.k8s.io/multicluster-runtime-kubeconfig"] == "true"
    es = [m for m in fleet["manifests"] if m["object"]["kind"] == "ExternalSecret" and m["path"] == "clusters/control-plane/c5c3-clusters.yaml"]
    assert [m["object"]["metadata"]["name"] for m in es] == ["hypervisor", "storage"]
    spec = es[0]["object"]["spec"]
    assert spec["target"]["template"]["data"] == {"namespaces": "openstack,nova"}
    assert spec["target"]["template"]["metadata"]["labels"]["sigs.k8s.io/multicluster-runtime-kubeconfig"] == "true"
    assert spec["data"] == [{"secretKey": "kubeconfig", "remoteRef": {"key": "kv-v2/data/clusters/hypervisor/kubeconfig", "property": "value"}}]
    ns = [m for m in fleet["manifests"] if m["object"]["kind"] == "Namespace" and m["object"]["metadata"]["name"] == "c5c3-clusters"]
    assert [m["path"] for m in ns] == ["clusters/control-plane/namespaces.yaml"]


@pytest.mark.parametrize("host_vars,fragment", [
    ({"storage": {"gitops_c5c3_target": "yes"}}, "cluster storage: gitops_c5c3_target must be true or false"),
    ({"storage": {"gitops_c5c3_target": True, "gitops_c5c3_target_namespaces": "openstack"}},
     "cluster storage: gitops_c5c3_target_namespaces must be a list of namespace names"),
    ({"storage": {"gitops_c5c3_target_namespaces": ["a"]}}, "gitops_c5c3_target_namespaces is set but gitops_c5c3_target is not true"),
])
def test_bad_switches_are_refused(catalog, host_vars, fragment):
    with pytest.raises(FleetValidationError, match=fragment):
        build_fleet(make_inventory(host_vars=host_vars), catalog)


def test_two_clusters_running_the_operator_are_ambiguous(catalog):
    inv = make_inventory(layout=TWO_REGIONS, host_vars={"storage-eu-1": {"gitops_c5c3_target": True}})
    with pytest.raises(FleetValidationError, match="control-plane-eu-1, control-plane-eu-2 all run c5c3-operator"):
        build_fleet(inv, catalog)
