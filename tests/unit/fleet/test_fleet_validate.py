"""Every validation of issue 2 §4: one FleetValidationError naming the offending item."""
import pytest

from ansible_collections.c5c3.gitops.plugins.module_utils.fleet_model import build_fleet
from ansible_collections.c5c3.gitops.plugins.module_utils.fleet_validate import FleetValidationError, validate_objects

from fleet_helpers import TWO_REGIONS, kubeconfig, make_inventory


def _fails(catalog, inventory, *fragments):
    with pytest.raises(FleetValidationError) as err:
        build_fleet(inventory, catalog)
    msg = str(err.value)
    for fragment in fragments:
        assert fragment in msg, msg
    return msg


def test_the_design_fleet_is_valid(catalog):
    build_fleet(make_inventory(), catalog)
    build_fleet(make_inventory(layout=TWO_REGIONS), catalog)


# -- unknown group / cluster

def test_cluster_in_unknown_group(catalog):
    inv = make_inventory(extra_groups={"control-plane": ["cp-typo"]})
    _fails(catalog, inv, "cluster cp-typo", "unknown group control-plane", "control_plane")


def test_catalog_names_unknown_group(catalog):
    catalog["components"]["compute"] = []
    _fails(catalog, make_inventory(), "components catalog", "unknown group 'compute'")
    catalog = dict(catalog, components={k: v for k, v in catalog["components"].items() if k != "compute"})
    catalog["kustomizations"]["controlplane"] = []
    _fails(catalog, make_inventory(), "kustomizations catalog", "unknown group 'controlplane'")


def test_dependency_on_unknown_cluster(catalog):
    hv = {"hypervisor": {"gitops_kustomization_overrides": {"apps": {"dependsOn": [{"cluster": "control-plane-9", "name": "apps"}]}}}}
    _fails(catalog, make_inventory(host_vars=hv), "cluster hypervisor kustomization apps", "unknown cluster 'control-plane-9'")


def test_override_of_unknown_component(catalog):
    hv = {"control-plane": {"gitops_component_overrides": {"keystone": {"enabled": False}}}}
    _fails(catalog, make_inventory(host_vars=hv), "cluster control-plane", "component 'keystone'", "not in the catalog")


def test_cluster_in_two_groups(catalog):
    layout = {"management": ["management"], "control_plane": ["x"], "storage": ["x"], "hypervisor": []}
    _fails(catalog, make_inventory(layout=layout), "cluster x is in groups control_plane and storage")


@pytest.mark.parametrize("hubs", [[], ["hub-a", "hub-b"]])
def test_exactly_one_hub(catalog, hubs):
    layout = {"management": hubs, "control_plane": ["control-plane"], "hypervisor": [], "storage": []}
    _fails(catalog, make_inventory(layout=layout), "group management must hold exactly one cluster")


# -- dependsOn

def test_depends_on_missing_release(catalog):
    hv = {"control-plane": {"gitops_component_overrides": {"keystone-operator": {"dependsOn": ["mariadb-operatr"]}}}}
    _fails(catalog, make_inventory(host_vars=hv), "HelmRelease control-plane/keystone-operator dependsOn",
           "HelmRelease control-plane/mariadb-operatr", "does not exist")


def test_depends_on_disabled_release(catalog):
    hv = {"control-plane": {"gitops_component_overrides": {"cert-manager": {"enabled": False}}}}
    _fails(catalog, make_inventory(host_vars=hv), "dependsOn HelmRelease control-plane/cert-manager", "disabled")


def test_release_depending_on_a_kustomization(catalog):
    hv = {"control-plane": {"gitops_component_overrides": {"keystone-operator": {
        "dependsOn": [{"name": "control-plane-infrastructure", "namespace": "control-plane"}]}}}}
    _fails(catalog, make_inventory(host_vars=hv), "HelmRelease control-plane/keystone-operator",
           "control-plane/control-plane-infrastructure, which is a Kustomization", "same kind")


def test_kustomization_depending_on_a_release(catalog):
    hv = {"storage": {"gitops_kustomization_overrides": {"apps": {"dependsOn": [{"name": "rook-ceph", "namespace": "storage"}]}}}}
    _fails(catalog, make_inventory(host_vars=hv), "Kustomization storage/storage-apps", "which is a HelmRelease")


def test_missing_kustomization_dependency(catalog):
    hv = {"storage": {"gitops_kustomization_overrides": {"apps": {"dependsOn": ["rook"]}}}}
    _fails(catalog, make_inventory(host_vars=hv), "Kustomization storage/storage-apps dependsOn Kustomization storage/storage-rook", "does not exist")


def test_dependency_across_clusters_resolves(catalog):
    hv = {"hypervisor": {"gitops_kustomization_overrides": {"apps": {"dependsOn": [{"cluster": "control-plane", "name": "apps"}]}}}}
    fleet = build_fleet(make_inventory(host_vars=hv), catalog)
    ks = [i["object"] for i in fleet["objects"] if i["object"]["metadata"]["name"] == "hypervisor-apps"][0]
    assert ks["spec"]["dependsOn"] == [{"name": "control-plane-apps", "namespace": "control-plane"}]


# -- cycles

def test_release_cycle_is_reported_with_its_path(catalog):
    hv = {"control-plane": {"gitops_component_overrides": {"mariadb-operator": {"dependsOn": ["keystone-operator"]}}}}
    msg = _fails(catalog, make_inventory(host_vars=hv), "dependency cycle")
    assert ("HelmRelease control-plane/mariadb-operator -> HelmRelease control-plane/keystone-operator -> "
            "HelmRelease control-plane/mariadb-operator") in msg


def test_kustomization_cycle(catalog):
    hv = {"storage": {"gitops_kustomization_overrides": {"rook-operator": {"dependsOn": ["apps"]}}}}
    _fails(catalog, make_inventory(host_vars=hv), "dependency cycle", "Kustomization storage/storage-apps", "Kustomization storage/storage-rook-operator")


def test_self_dependency(catalog):
    hv = {"control-plane": {"gitops_component_overrides": {"k-orc": {"dependsOn": ["k-orc"]}}}}
    _fails(catalog, make_inventory(host_vars=hv), "HelmRelease control-plane/k-orc depends on itself")


def test_long_cycle(catalog):
    hv = {"hypervisor": {"gitops_component_overrides": {
        "hypervisor-operator": {"dependsOn": ["ovn-controller"]},
        "ovs-vswitchd": {"dependsOn": ["kvm-node-agent"]},
    }}}
    msg = _fails(catalog, make_inventory(host_vars=hv), "dependency cycle")
    assert msg.count("->") == 4, msg


# -- SemVer

@pytest.mark.parametrize("version", ["latest", ">=0.1.0 <", "1.2.3.4", ""])
def test_invalid_component_semver_range(catalog, version):
    hv = {"storage": {"gitops_component_overrides": {"prysm": {"version": version}}}}
    _fails(catalog, make_inventory(host_vars=hv), "cluster storage component prysm version", "invalid SemVer range")


def test_invalid_flux_distribution_version(catalog):
    catalog["flux_instance"]["distribution"]["version"] = "two"
    _fails(catalog, make_inventory(), "FluxInstance flux spec.distribution.version", "invalid SemVer range")


# -- duplicates and names

def test_duplicate_component_in_catalog(catalog):
    catalog["components"]["storage"].append(dict(catalog["components"]["storage"][0]))
    _fails(catalog, make_inventory(), "components catalog of group storage", "duplicate name 'rook-ceph'")


def test_extra_component_duplicating_the_catalog(catalog):
    hv = {"storage": {"gitops_components_extra": [{"name": "prysm", "version": "1.x", "source": "c5c3-charts", "namespace": "p"}]}}
    _fails(catalog, make_inventory(host_vars=hv), "cluster storage", "adds component 'prysm'", "already has")


def test_duplicate_objects_across_entries(catalog):
    # two clusters mapped onto one hub namespace would produce the same HelmRelease names
    hv = {"control-plane-eu-2": {"gitops_hub_namespace": "control-plane-eu-1"}}
    _fails(catalog, make_inventory(layout=TWO_REGIONS, host_vars=hv), "cluster control-plane-eu-2",
           "hub namespace 'control-plane-eu-1' is already used by cluster control-plane-eu-1")


def test_hub_namespace_of_the_hub_cannot_be_reused(catalog):
    hv = {"storage": {"gitops_hub_namespace": "flux-system"}}
    _fails(catalog, make_inventory(host_vars=hv), "hub namespace 'flux-system' is already used by cluster management")


def test_duplicate_objects_are_refused_by_the_object_pass():
    # The model's own naming cannot clash (per-cluster hub namespaces); this backstop catches
    # whatever a future builder or a spec override might produce.
    obj = {"apiVersion": "v1", "kind": "HelmRelease", "metadata": {"name": "a", "namespace": "n"}, "spec": {"chart": {}}}
    with pytest.raises(FleetValidationError, match="duplicate object HelmRelease n/a"):
        validate_objects([obj, dict(obj)])
    validate_objects([obj, dict(obj, kind="Kustomization")])  # same name, other kind: fine


def test_same_kustomization_name_in_two_namespaces_is_fine(catalog):
    catalog["kustomizations"]["management"].append({"name": "storage-apps", "path": "./apps/x"})
    catalog["kustomizations"]["storage"] = [{"name": "apps"}]
    hv = {"management": {}}
    layout = {"management": ["management"], "control_plane": [], "hypervisor": [], "storage": ["storage"]}
    fleet = build_fleet(make_inventory(layout=layout, host_vars=hv), catalog)
    names = [(i["object"]["metadata"]["namespace"], i["object"]["metadata"]["name"])
             for i in fleet["objects"] if i["object"]["kind"] == "Kustomization"]
    assert ("flux-system", "management-storage-apps") in names and ("storage", "storage-apps") in names


def test_duplicate_source_names(catalog):
    catalog["sources"].append({"name": "jetstack", "kind": "HelmRepository", "url": "https://x"})
    _fails(catalog, make_inventory(), "sources catalog", "duplicate name 'jetstack'")


@pytest.mark.parametrize("layout_name,fragment", [
    ("Control-Plane", "cluster Control-Plane"),
    ("cp_1", "cluster cp_1"),
    ("x" * 64, "is not a valid DNS-1123 label"),
])
def test_illegal_cluster_names(catalog, layout_name, fragment):
    layout = {"management": ["management"], "control_plane": [layout_name], "hypervisor": [], "storage": []}
    _fails(catalog, make_inventory(layout=layout), fragment, "DNS-1123")


def test_illegal_component_name_and_namespace(catalog):
    hv = {"storage": {"gitops_components_extra": [{"name": "My_Operator", "version": "1.x", "source": "c5c3-charts", "namespace": "x"}]}}
    _fails(catalog, make_inventory(host_vars=hv), "cluster storage component My_Operator", "DNS-1123")
    hv = {"storage": {"gitops_component_overrides": {"prysm": {"namespace": "Prysm.System"}}}}
    _fails(catalog, make_inventory(host_vars=hv), "cluster storage component prysm namespace", "DNS-1123 label")


def test_release_name_too_long(catalog):
    hv = {"storage": {"gitops_component_overrides": {"prysm": {"releaseName": "p" * 54}}}}
    _fails(catalog, make_inventory(host_vars=hv), "cluster storage component prysm", "at most 53")


# -- FluxInstance

def test_flux_instance_not_named_flux(catalog):
    catalog["flux_instance"]["name"] = "flux-main"
    _fails(catalog, make_inventory(), "FluxInstance 'flux-main'", "named 'flux'")


def test_flux_instance_renamed_through_hub_override(catalog):
    hv = {"management": {"gitops_flux_instance": {"name": "fluxcd"}}}
    _fails(catalog, make_inventory(host_vars=hv), "FluxInstance 'fluxcd'")


def test_flux_instance_without_sync_url(catalog):
    catalog["flux_instance"]["sync"]["url"] = ""
    _fails(catalog, make_inventory(), "FluxInstance flux: spec.sync.url is required")


# -- kubeconfigs

def test_exec_kubeconfig_is_refused(catalog):
    kc = {"storage": kubeconfig(user={"exec": {"command": "aws", "args": ["eks", "get-token"]}})}
    _fails(catalog, make_inventory(kubeconfigs=kc), "cluster storage kubeconfig", "user 'spoke-admin'", "exec credentials (aws)")


def test_auth_provider_kubeconfig_is_refused(catalog):
    kc = {"hypervisor": kubeconfig(user={"auth-provider": {"name": "gcp"}})}
    _fails(catalog, make_inventory(kubeconfigs=kc), "cluster hypervisor kubeconfig", "auth-provider (gcp)")


def test_kubeconfig_without_server_is_refused(catalog):
    kc = kubeconfig()
    del kc["clusters"][0]["cluster"]["server"]
    _fails(catalog, make_inventory(kubeconfigs={"control-plane": kc}), "cluster control-plane kubeconfig", "no server URL")


def test_kubeconfig_context_from_inventory(catalog):
    kc = kubeconfig()
    hv = {"storage": {"gitops_kubeconfig_context": "elsewhere"}}
    _fails(catalog, make_inventory(kubeconfigs={"storage": kc}, host_vars=hv), "context 'elsewhere' does not exist")


def test_unreadable_kubeconfig_is_reported(catalog):
    inv = make_inventory()
    inv["hosts"]["storage"]["kubeconfig_error"] = "cannot read kubeconfig /x: permission denied"
    _fails(catalog, inv, "cluster storage: cannot read kubeconfig /x")


def test_required_kubeconfigs(catalog):
    catalog["require_kubeconfigs"] = True
    kc = {h: kubeconfig(name=h) for h in ("management", "control-plane", "hypervisor")}
    _fails(catalog, make_inventory(kubeconfigs=kc), "cluster storage: no kubeconfig (set gitops_kubeconfig")
    kc["storage"] = kubeconfig(name="storage")
    build_fleet(make_inventory(kubeconfigs=kc), catalog)


def test_path_and_content_together(catalog):
    inv = make_inventory(host_vars={"storage": {"gitops_kubeconfig": "/k.yaml"}})
    inv["hosts"]["storage"]["kubeconfig_content"] = True
    _fails(catalog, inv, "cluster storage: set either gitops_kubeconfig")


# -- other catalog errors

def test_component_with_unknown_source(catalog):
    hv = {"storage": {"gitops_component_overrides": {"prysm": {"source": "nowhere"}}}}
    _fails(catalog, make_inventory(host_vars=hv), "cluster storage component prysm", "source 'nowhere' is not defined")


def test_component_with_unknown_tier(catalog):
    hv = {"storage": {"gitops_component_overrides": {"prysm": {"tier": "apps"}}}}
    _fails(catalog, make_inventory(host_vars=hv), "cluster storage component prysm", "tier 'apps'")


def test_kustomization_with_absolute_path(catalog):
    hv = {"storage": {"gitops_kustomization_overrides": {"apps": {"path": "/clusters/storage"}}}}
    _fails(catalog, make_inventory(host_vars=hv), "cluster storage kustomization apps", "relative to the repository root")


def test_bad_interval(catalog):
    hv = {"storage": {"gitops_component_overrides": {"prysm": {"interval": "30 minutes"}}}}
    _fails(catalog, make_inventory(host_vars=hv), "cluster storage component prysm interval", "Go duration")


# -- source references and source urls (issue 12: bad input the API server or Flux would only
#    refuse after earlier stages were written)

def test_chart_ref_to_a_source_that_does_not_exist(catalog):
    hv = {"control-plane": {"gitops_component_overrides": {"keystone-operator": {"spec": {
        "chart": None, "chartRef": {"kind": "OCIRepository", "name": "keystone-oci", "namespace": "flux-system"}}}}}}
    msg = _fails(catalog, make_inventory(host_vars=hv))
    assert msg == ("HelmRelease control-plane/keystone-operator chartRef OCIRepository flux-system/keystone-oci, "
                   "which does not exist (define the source in fleet_sources)")


def test_chart_source_ref_to_a_source_that_does_not_exist(catalog):
    hv = {"control-plane": {"gitops_component_overrides": {"keystone-operator": {"spec": {
        "chart": {"spec": {"sourceRef": {"kind": "HelmRepository", "name": "c5c3-chartz"}}}}}}}}
    msg = _fails(catalog, make_inventory(host_vars=hv))
    assert msg == ("HelmRelease control-plane/keystone-operator chart.spec.sourceRef HelmRepository "
                   "flux-system/c5c3-chartz, which does not exist (define the source in fleet_sources)")


def test_kustomization_source_ref_to_a_source_that_does_not_exist(catalog):
    hv = {"storage": {"gitops_kustomization_overrides": {"apps": {"spec": {"sourceRef": {
        "kind": "GitRepository", "name": "apps-repo", "namespace": "flux-system"}}}}}}
    msg = _fails(catalog, make_inventory(host_vars=hv))
    assert msg == ("Kustomization storage/storage-apps sourceRef GitRepository flux-system/apps-repo, which does not "
                   "exist (define the source in fleet_sources)")


def test_source_refs_to_the_model_and_the_sync_source_resolve(catalog):
    catalog["sources"].append({"name": "apps-repo", "kind": "GitRepository", "url": "https://git.example.com/apps.git"})
    hv = {"storage": {"gitops_kustomization_overrides": {"apps": {"source": "apps-repo"}}}}
    fleet = build_fleet(make_inventory(host_vars=hv), catalog)
    refs = {o["object"]["metadata"]["name"]: o["object"]["spec"]["sourceRef"] for o in fleet["objects"]
            if o["object"]["kind"] == "Kustomization"}
    assert refs["storage-apps"]["name"] == "apps-repo"
    assert refs["storage-rook-operator"] == {"kind": "GitRepository", "name": "flux-system", "namespace": "flux-system"}


@pytest.mark.parametrize("kind,url,allowed", [
    ("HelmRepository", "ftp://charts.example.com", "http://, https:// or oci://"),
    ("HelmRepository", "charts.example.com", "http://, https:// or oci://"),
    ("GitRepository", "git@github.com:c5c3/apps.git", "http://, https:// or ssh://"),
    ("GitRepository", "oci://ghcr.io/c5c3/apps", "http://, https:// or ssh://"),
    ("OCIRepository", "https://ghcr.io/c5c3/charts/x", "oci://"),
])
def test_source_url_schemes_of_the_upstream_crds(catalog, kind, url, allowed):
    catalog["sources"].append({"name": "bad-source", "kind": kind, "url": url})
    msg = _fails(catalog, make_inventory())
    assert msg == "source bad-source: url %r must start with %s (kind %s)" % (url, allowed, kind)
