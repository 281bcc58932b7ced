"""Issue 9 "done": CobaltCore's own Flux deployment expressed by inventories/cobaltcore-like with
documented variables only (no `spec` escape hatch, no raw `manifests`), rendered and validated
against the upstream CRD schemas."""
import glob
import os

import jsonschema
import pytest
import yaml

from ansible_collections.c5c3.gitops.plugins.module_utils.fleet_model import build_fleet
from ansible_collections.c5c3.gitops.plugins.module_utils.gitops_tree import render_tree

from fleet_helpers import CRD_DIR, ROOT, load_catalog, make_inventory

INVENTORY = os.path.join(ROOT, "inventories", "cobaltcore-like")
# role variable -> catalog key of the fleet_model action (roles/fleet/tasks/main.yml)
CATALOG_VARS = {
    "fleet_components": "components", "fleet_kustomizations": "kustomizations", "fleet_sources": "sources",
    "fleet_flux_instance": "flux_instance", "fleet_helmrelease_defaults": "helmrelease_defaults",
    "fleet_kustomization_defaults": "kustomization_defaults", "fleet_namespaces": "namespaces",
    "fleet_hub_release_namespaces": "hub_release_namespaces", "fleet_secret_store": "secret_store",
    "gitops_delivery": "delivery",
}
C5C3_OPERATORS = ("ovn-operator", "keystone-operator", "glance-operator", "placement-operator", "nova-operator",
                  "neutron-operator", "c5c3-operator")


def _group_vars():
    out = {}
    for path in sorted(glob.glob(os.path.join(INVENTORY, "group_vars", "all", "*.yml"))):
        with open(path) as handle:
            out.update(yaml.safe_load(handle) or {})
    return out


def _fleet():
    gvars = _group_vars()
    catalog = load_catalog()
    for var, key in CATALOG_VARS.items():
        if var in gvars:
            catalog[key] = gvars[var]
    host_vars = {k: v for k, v in gvars.items() if k.startswith("gitops_")}
    inv = make_inventory(layout={"management": ["cobaltcore"], "control_plane": [], "hypervisor": [], "storage": []},
                         host_vars={"cobaltcore": host_vars})
    return build_fleet(inv, catalog), gvars


FLEET, GVARS = _fleet()
OBJECTS = [o["object"] for o in FLEET["objects"]]
RELEASES = {o["metadata"]["name"]: o for o in OBJECTS if o["kind"] == "HelmRelease"}


def test_no_escape_hatch_is_used():
    for comp in GVARS["fleet_components"]["management"]:
        assert "spec" not in comp, comp["name"]
    for entry in GVARS["fleet_kustomizations"]["management"]:
        assert "spec" not in entry and "manifests" not in entry, entry["name"]


def test_fifteen_releases_each_in_its_own_namespace():
    assert len(RELEASES) == 15
    for name, hr in RELEASES.items():
        ns = hr["metadata"]["namespace"]
        assert ns != "flux-system", name
        assert hr["spec"]["targetNamespace"] == ns == hr["spec"]["storageNamespace"], name
    namespaces = {o["metadata"]["name"] for o in OBJECTS if o["kind"] == "Namespace"}
    assert namespaces == {hr["metadata"]["namespace"] for hr in RELEASES.values()}


def test_image_digest_values_from_is_optional_and_next_to_the_operator():
    for name in C5C3_OPERATORS:
        hr = RELEASES[name]
        assert hr["spec"]["valuesFrom"] == [
            {"kind": "ConfigMap", "name": "%s-image-digest" % name, "valuesKey": "values.yaml", "optional": True}]
    # dependsOn points at each dependency's own namespace
    deps = RELEASES["c5c3-operator"]["spec"]["dependsOn"]
    assert {"name": "keystone-operator", "namespace": "keystone-system"} in deps
    assert {"name": "mariadb-operator", "namespace": "mariadb-system"} in deps


def test_oci_repository_chart_ref_release():
    hr = RELEASES["openbao-operator"]
    assert hr["spec"]["chartRef"] == {"kind": "OCIRepository", "name": "openbao-operator", "namespace": "flux-system"}
    assert "chart" not in hr["spec"]
    oci = [o for o in OBJECTS if o["kind"] == "OCIRepository"]
    assert [o["metadata"]["name"] for o in oci] == ["openbao-operator"]
    assert oci[0]["spec"]["ref"]["digest"].startswith("sha256:")
    assert oci[0]["spec"]["layerSelector"] == {"mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
                                               "operation": "copy"}


def test_crd_only_releases_drop_install_remediation_but_keep_the_defaults():
    for name in ("mariadb-operator-crds", "prometheus-operator-crds"):
        spec = RELEASES[name]["spec"]
        assert "remediation" not in spec["install"], name
        assert spec["install"] == {"crds": "CreateReplace", "createNamespace": True}
        assert spec["upgrade"]["remediation"] == {"retries": 3}
    assert RELEASES["keystone-operator"]["spec"]["install"]["remediation"] == {"retries": 3}
    assert RELEASES["c5c3-operator"]["spec"]["install"]["remediation"] == {"retries": 30}


def test_flux_instance_without_sync():
    fi = [o for o in OBJECTS if o["kind"] == "FluxInstance"][0]
    assert "sync" not in fi["spec"]
    assert fi["spec"]["cluster"]["type"] == "kubernetes" and fi["spec"]["cluster"]["size"] == "medium"
    assert fi["spec"]["distribution"]["artifact"].startswith("oci://")
    assert FLEET["sync"]["enabled"] is False
    assert not [s for s in FLEET["secrets"] if s["kind"] == "git-sync"]


def test_kustomization_of_another_repository():
    ks = [o for o in OBJECTS if o["kind"] == "Kustomization"]
    assert [k["metadata"]["name"] for k in ks] == ["cobaltcore-k-orc"]
    assert ks[0]["spec"]["sourceRef"] == {"kind": "GitRepository", "name": "k-orc", "namespace": "flux-system"}
    assert ks[0]["spec"]["wait"] is True and ks[0]["spec"]["images"][0]["digest"].startswith("sha256:")
    assert not [p for p in render_tree(FLEET) if p.startswith("config/")]


@pytest.mark.skipif(not os.path.isdir(CRD_DIR), reason="upstream CRDs not found")
def test_every_rendered_flux_object_matches_the_upstream_crd_schema():
    from test_crd_schemas import SCHEMAS
    checked = 0
    for _path, text in render_tree(FLEET).items():
        for doc in yaml.safe_load_all(text):
            if doc and "fluxcd" in doc["apiVersion"].split("/")[0]:
                jsonschema.validate(doc, SCHEMAS[(doc["apiVersion"], doc["kind"])], cls=jsonschema.Draft7Validator)
                checked += 1
    # The FluxInstance is a bootstrap object (written by Ansible, never rendered into the tree).
    assert checked == 15 + 6 + 1 + 1 + 1  # releases, HelmRepositories, GitRepository, OCIRepository, Kustomization
