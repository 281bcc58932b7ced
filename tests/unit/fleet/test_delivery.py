"""One writer per object: writer tags, delivery modes, the direct-mode sync overlap check."""
import pytest

from ansible_collections.c5c3.gitops.plugins.module_utils.fleet_model import build_fleet
from ansible_collections.c5c3.gitops.plugins.module_utils.fleet_validate import FleetValidationError
from ansible_collections.c5c3.gitops.plugins.module_utils.gitops_tree import render_tree

from fleet_helpers import make_inventory


def _fleet(catalog, flux=None, **settings):
    inv = make_inventory(host_vars={"management": {"gitops_flux_instance": flux}} if flux is not None else None)
    return build_fleet(inv, dict(catalog, **settings))


def test_every_object_is_tagged_with_its_writer(catalog):
    fleet = _fleet(catalog)
    assert fleet["delivery"] == "git" and fleet["kubeconfig_writer"] == "registration"
    writers = {(i["object"]["kind"], i["writer"]) for i in fleet["objects"]}
    assert ("FluxInstance", "bootstrap") in writers
    assert {w for k, w in writers if k != "FluxInstance"} == {"delivered"}
    secrets = {s["kind"]: s["writer"] for s in fleet["secrets"]}
    assert secrets == {"git-sync": "bootstrap", "kubeconfig": "registration"}


def test_eso_writes_the_kubeconfig_secrets_and_the_tree_carries_their_external_secrets(catalog):
    fleet = _fleet(catalog, kubeconfig_writer="eso")
    assert {s["writer"] for s in fleet["secrets"] if s["kind"] == "kubeconfig"} == {"eso"}
    assert "infrastructure/cluster-configs/storage-kubeconfig.yaml" in render_tree(fleet)
    with pytest.raises(FleetValidationError, match="eso needs fleet_secret_store"):
        _fleet(catalog, kubeconfig_writer="eso", secret_store={})


def test_direct_mode_refuses_a_sync_path_holding_delivered_objects(catalog):
    with pytest.raises(FleetValidationError) as err:
        _fleet(catalog, delivery="direct")
    text = str(err.value)
    assert "syncs path clusters/management" in text and "clusters/management/hub/" in text and "two writers" in text


def test_direct_mode_refuses_the_repository_root_too(catalog):
    with pytest.raises(FleetValidationError, match="syncs path ./"):
        _fleet(catalog, {"sync": {"path": "./"}}, delivery="direct")


def test_direct_mode_without_sync_or_outside_the_tree_is_fine(catalog):
    kustomizations = catalog["kustomizations"]
    catalog["kustomizations"] = {}  # without a sync there is no sync GitRepository for them to build from
    fleet = _fleet(catalog, {"sync": None}, delivery="direct")
    instance = [i["object"] for i in fleet["objects"] if i["object"]["kind"] == "FluxInstance"][0]
    assert "sync" not in instance["spec"] and fleet["sync"]["enabled"] is False
    catalog["kustomizations"] = kustomizations
    fleet = _fleet(catalog, {"sync": {"path": "bootstrap/{hub}"}}, delivery="direct")
    assert fleet["sync"]["path"] == "bootstrap/management"


def test_git_mode_needs_a_git_sync(catalog):
    with pytest.raises(FleetValidationError, match=r"spec.sync.url is required \(gitops_delivery: git"):
        _fleet(catalog, {"sync": None})
    with pytest.raises(FleetValidationError, match="spec.sync.kind is OCIRepository"):
        _fleet(catalog, {"sync": {"kind": "OCIRepository"}})
    with pytest.raises(FleetValidationError, match="gitops_delivery: 'gitlab' is not one of git, direct"):
        _fleet(catalog, delivery="gitlab")
