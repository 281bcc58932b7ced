"""The wave planner: what changes in which wave, and the fleet/tree after wave N."""
import copy
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "fleet"))

from ansible_collections.c5c3.gitops.plugins.module_utils import waves  # noqa: E402
from ansible_collections.c5c3.gitops.plugins.module_utils.fleet_model import build_fleet  # noqa: E402
from ansible_collections.c5c3.gitops.plugins.module_utils.fleet_validate import FleetValidationError  # noqa: E402
from ansible_collections.c5c3.gitops.plugins.module_utils.gitops_tree import render_tree  # noqa: E402

from fleet_helpers import TWO_REGIONS, load_catalog, make_inventory  # noqa: E402

# Region 1 (with the hub and storage) is wave 0, region 2 wave 1.
WAVES = {"control-plane-eu-2": {"gitops_wave": 1}, "hypervisor-eu-2": {"gitops_wave": 1}}


def _fleet(host_vars=None, catalog=None, layout=None):
    hv = copy.deepcopy(WAVES)
    for host, extra in (host_vars or {}).items():
        hv.setdefault(host, {}).update(extra)
    return build_fleet(make_inventory(layout or TWO_REGIONS, host_vars=hv), catalog or load_catalog())


def _with_version(component, group, version):
    catalog = load_catalog()
    for comp in catalog["components"][group]:
        if comp["name"] == component:
            comp["version"] = version
    return catalog


def _entries(fleet):
    return [{"path": e["path"], "object": e["object"]} for e in fleet["objects"] + fleet["manifests"]]


def _names(items):
    return [(i["kind"], i["namespace"], i["name"]) for i in items]


def _hr(fleet, namespace, name):
    for e in fleet["objects"]:
        md = e["object"]["metadata"]
        if e["object"]["kind"] == "HelmRelease" and md["namespace"] == namespace and md["name"] == name:
            return e
    return None


OLD = _fleet()
NEW = _fleet(catalog=_with_version("mariadb-operator", "control_plane", "0.31.0"))


def test_default_is_one_wave_zero_and_objects_are_labelled():
    fleet = build_fleet(make_inventory(), load_catalog())
    assert fleet["waves"] == [{"wave": 0, "clusters": ["control-plane", "hypervisor", "management", "storage"]}]
    assert {c["wave"] for c in fleet["clusters"]} == {0}
    for e in fleet["objects"]:
        assert e["wave"] == 0
        assert e["object"]["metadata"]["labels"][waves.WAVE_LABEL] == "0"


def test_clusters_carry_their_wave_and_shared_objects_go_first():
    assert OLD["waves"] == [
        {"wave": 0, "clusters": ["control-plane-eu-1", "hypervisor-eu-1", "management", "storage-eu-1"]},
        {"wave": 1, "clusters": ["control-plane-eu-2", "hypervisor-eu-2"]},
    ]
    assert {c["name"]: c["wave"] for c in OLD["clusters"]}["control-plane-eu-2"] == 1
    assert _hr(OLD, "control-plane-eu-2", "mariadb-operator")["wave"] == 1
    assert _hr(OLD, "flux-system", "openbao")["wave"] == 0
    sources = [e for e in OLD["objects"] if e["stage"] == "sources"]
    assert sources and {e["wave"] for e in sources} == {0}
    # the hub's own components are wave 0 by default, even when every spoke is in a later wave
    later = _fleet({"control-plane-eu-1": {"gitops_wave": 2}})
    assert [w["wave"] for w in later["waves"]] == [0, 1, 2]


@pytest.mark.parametrize("value", [-1, "x", True, 1.5, "1a"])
def test_bad_wave_is_one_error_naming_the_cluster(value):
    with pytest.raises(FleetValidationError, match=r"cluster control-plane-eu-1: gitops_wave must be a whole number"):
        _fleet({"control-plane-eu-1": {"gitops_wave": value}})


def test_wave_from_an_ini_inventory_string():
    fleet = _fleet({"control-plane-eu-1": {"gitops_wave": "3"}})
    assert _hr(fleet, "control-plane-eu-1", "mariadb-operator")["wave"] == 3


def test_dependency_on_a_later_wave_is_refused():
    extra = {"gitops_components_extra": [{
        "name": "region-link", "version": "1.0.0", "source": "c5c3-charts", "namespace": "link",
        "dependsOn": [{"cluster": "control-plane-eu-2", "name": "keystone-operator"}],
    }]}
    with pytest.raises(FleetValidationError, match=r"HelmRelease control-plane-eu-1/region-link \(wave 0\) depends on "
                                                   r"HelmRelease control-plane-eu-2/keystone-operator, which is in the later wave 1"):
        _fleet({"control-plane-eu-1": extra})
    # the other way round (a later wave waiting on an earlier one) is fine
    _fleet({"control-plane-eu-2": {"gitops_components_extra": [dict(extra["gitops_components_extra"][0], dependsOn=[
        {"cluster": "control-plane-eu-1", "name": "keystone-operator"}])]}})


def test_same_model_is_at_target_in_every_wave():
    result = waves.plan(_entries(OLD), OLD)
    assert [w["wave"] for w in result] == [0, 1]
    assert all(waves.at_target(w) for w in result)


def test_version_bump_changes_each_region_in_its_own_wave():
    result = waves.plan(_entries(OLD), NEW)
    assert _names(result[0]["changed"]) == [("HelmRelease", "control-plane-eu-1", "mariadb-operator")]
    assert result[0]["changed"][0]["cluster"] == "control-plane-eu-1"
    assert _names(result[1]["changed"]) == [("HelmRelease", "control-plane-eu-2", "mariadb-operator")]
    for w in result:
        assert w["added"] == [] and w["removed"] == []


def test_after_wave_zero_later_waves_keep_their_previous_content():
    after0 = waves.fleet_after_wave(_entries(OLD), NEW, 0)
    assert _hr(after0, "control-plane-eu-1", "mariadb-operator")["object"]["spec"]["chart"]["spec"]["version"] == "0.31.0"
    assert _hr(after0, "control-plane-eu-2", "mariadb-operator") == _hr(OLD, "control-plane-eu-2", "mariadb-operator")
    tree0 = render_tree(after0)
    old_tree, new_tree = render_tree(OLD), render_tree(NEW)
    changed = sorted(p for p in new_tree if tree0.get(p) != old_tree.get(p))
    assert changed == ["clusters/control-plane-eu-1/hub/infrastructure/mariadb-operator.yaml"]
    assert after0["rollout"]["after_wave"] == 0
    # after the last wave the tree is the target tree
    assert render_tree(waves.fleet_after_wave(_entries(OLD), NEW, 1)) == new_tree
    assert waves.fleet_after_wave(_entries(OLD), NEW, 1)["objects"] == NEW["objects"]


def test_rerun_after_wave_zero_continues_with_wave_one():
    """The state after wave 0 (delivered, then the rollout stopped) plans nothing for wave 0."""
    after0 = waves.fleet_after_wave(_entries(OLD), NEW, 0)
    result = waves.plan(_entries(after0), NEW)
    assert waves.at_target(result[0])
    assert _names(result[1]["changed"]) == [("HelmRelease", "control-plane-eu-2", "mariadb-operator")]


def test_previous_state_read_back_from_the_rendered_tree():
    previous = waves.entries_from_tree(render_tree(OLD))
    assert waves.plan(previous, NEW) == waves.plan(_entries(OLD), NEW)
    assert render_tree(waves.fleet_after_wave(previous, NEW, 0)) == render_tree(waves.fleet_after_wave(_entries(OLD), NEW, 0))


def test_bootstrap_objects_are_in_no_wave_delivery():
    # The tree (git mode) never holds the FluxInstance: Ansible writes it at bootstrap.
    previous = waves.entries_from_tree(render_tree(OLD))
    assert not [e for e in previous if e["object"]["kind"] == "FluxInstance"]
    assert all(waves.at_target(w) for w in waves.plan(previous, OLD))
    after0 = waves.fleet_after_wave(previous, NEW, 0)
    instances = [e for e in after0["objects"] if e["object"]["kind"] == "FluxInstance"]
    assert [e["writer"] for e in instances] == ["bootstrap"]
    # entries read back from the tree get the writer of their stage again
    assert all(e["writer"] == "delivered" for e in after0["objects"] if e["object"]["kind"] != "FluxInstance")


def test_component_added_and_removed_in_the_later_wave():
    overrides = {"k-orc": {"enabled": False}, "cortex-operator": {"enabled": True}}
    new = _fleet({"control-plane-eu-2": {"gitops_component_overrides": overrides}})
    result = waves.plan(_entries(OLD), new)
    assert waves.at_target(result[0])
    # the release, and its namespace on the spoke (applied there by the cluster's Kustomization)
    assert _names(result[1]["added"]) == [("HelmRelease", "control-plane-eu-2", "cortex-operator"),
                                          ("Namespace", None, "cortex-system")]
    assert result[1]["added"][1]["path"] == "clusters/control-plane-eu-2/namespaces.yaml"
    assert _names(result[1]["removed"]) == [("HelmRelease", "control-plane-eu-2", "k-orc"), ("Namespace", None, "orc-system")]
    after0 = waves.fleet_after_wave(_entries(OLD), new, 0)
    assert _hr(after0, "control-plane-eu-2", "k-orc") is not None
    assert _hr(after0, "control-plane-eu-2", "cortex-operator") is None
    after1 = waves.fleet_after_wave(_entries(OLD), new, 1)
    assert _hr(after1, "control-plane-eu-2", "k-orc") is None
    assert _hr(after1, "control-plane-eu-2", "cortex-operator")["object"] == _hr(new, "control-plane-eu-2", "cortex-operator")["object"]


def test_first_rollout_from_nothing_adds_wave_by_wave():
    result = waves.plan([], OLD)
    assert not result[0]["changed"] and not result[0]["removed"]
    assert ("HelmRelease", "control-plane-eu-1", "mariadb-operator") in _names(result[0]["added"])
    assert ("HelmRelease", "control-plane-eu-2", "mariadb-operator") not in _names(result[0]["added"])
    assert ("HelmRelease", "control-plane-eu-2", "mariadb-operator") in _names(result[1]["added"])
    after0 = waves.fleet_after_wave([], OLD, 0)
    assert not any(e["object"]["metadata"].get("namespace") == "control-plane-eu-2" for e in after0["objects"])
    assert "clusters/control-plane-eu-2/hub/kustomization.yaml" not in render_tree(after0)


def test_cluster_removed_from_the_inventory_goes_in_its_labelled_wave():
    layout = dict(TWO_REGIONS, hypervisor=["hypervisor-eu-1"])
    new = _fleet(layout=layout)
    result = waves.plan(_entries(OLD), new)
    assert waves.at_target(result[0])
    removed = _names(result[1]["removed"])
    assert ("HelmRelease", "hypervisor-eu-2", "kvm-node-agent") in removed
    after0 = waves.fleet_after_wave(_entries(OLD), new, 0)
    assert _hr(after0, "hypervisor-eu-2", "kvm-node-agent") is not None
    root = render_tree(after0)["clusters/management/kustomization.yaml"]
    assert "../hypervisor-eu-2/hub" in root  # the hub's sync path still pulls its objects in
    assert "../hypervisor-eu-2/hub" not in render_tree(waves.fleet_after_wave(_entries(OLD), new, 1))["clusters/management/kustomization.yaml"]


def test_moving_a_cluster_to_another_wave_relabels_it_in_the_new_wave():
    new = _fleet({"control-plane-eu-2": {"gitops_wave": 0}})
    result = waves.plan(_entries(OLD), new)
    moved = _names(result[0]["changed"])
    assert ("HelmRelease", "control-plane-eu-2", "mariadb-operator") in moved
    assert _hr(new, "control-plane-eu-2", "mariadb-operator")["object"]["metadata"]["labels"][waves.WAVE_LABEL] == "0"


def test_shared_source_change_goes_in_the_first_wave():
    catalog = load_catalog()
    catalog["sources"][0]["interval"] = "2h"
    result = waves.plan(_entries(OLD), _fleet(catalog=catalog))
    assert _names(result[0]["changed"]) == [("HelmRepository", "flux-system", catalog["sources"][0]["name"])]
    assert waves.at_target(result[1])


def test_unknown_wave_and_bad_tree_are_errors():
    with pytest.raises(waves.WaveError, match=r"wave 7 is not a wave of the fleet \(waves: 0, 1\)"):
        waves.fleet_after_wave([], OLD, 7)
    with pytest.raises(waves.WaveError, match=r"clusters/x.yaml is not valid YAML"):
        waves.entries_from_tree({"clusters/x.yaml": "a: [b"})


def test_summary_lines():
    result = waves.plan(_entries(OLD), NEW)
    assert waves.summarize(result[1]) == "wave 1 (control-plane-eu-2, hypervisor-eu-2): 1 changed (HelmRelease control-plane-eu-2/mariadb-operator)"
    assert waves.summarize(waves.plan(_entries(NEW), NEW)[0]).endswith(": at target")
