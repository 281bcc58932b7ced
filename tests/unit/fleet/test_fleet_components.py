"""Components -> HelmReleases: fields over the defaults, valuesFrom, release namespaces, chart
forms, strict booleans, and the CEL rules the 1.20 API server ignores (issues 9 §1 §2 §4, 12 §3 §5)."""
import pytest

from ansible_collections.c5c3.gitops.plugins.module_utils.fleet_model import build_fleet
from ansible_collections.c5c3.gitops.plugins.module_utils.fleet_validate import FleetValidationError, check_cel

from fleet_helpers import make_inventory


def _objects(catalog, host_vars=None):
    return [o["object"] for o in build_fleet(make_inventory(host_vars=host_vars), catalog)["objects"]]


def _release(objects, name, namespace=None):
    hits = [o for o in objects if o["kind"] == "HelmRelease" and o["metadata"]["name"] == name
            and (namespace is None or o["metadata"]["namespace"] == namespace)]
    assert len(hits) == 1, [o["metadata"] for o in hits]
    return hits[0]


def _fails(catalog, host_vars, *fragments):
    with pytest.raises(FleetValidationError) as err:
        build_fleet(make_inventory(host_vars=host_vars), catalog)
    for fragment in fragments:
        assert fragment in str(err.value), str(err.value)


def test_empty_values_are_emitted_so_the_apply_owns_them(catalog):
    hr = _release(_objects(catalog), "valkey-operator")
    assert hr["spec"]["values"] == {}


@pytest.mark.parametrize("value", ["maybe", 1, None, "enabled"])
def test_enabled_must_be_a_boolean(catalog, value):
    hv = {"control-plane": {"gitops_component_overrides": {"k-orc": {"enabled": value}}}}
    _fails(catalog, hv, "cluster control-plane component k-orc enabled", "is not a boolean")


def test_kustomization_enabled_must_be_a_boolean(catalog):
    hv = {"storage": {"gitops_kustomization_overrides": {"apps": {"enabled": "maybe"}}}}
    _fails(catalog, hv, "cluster storage kustomization apps enabled", "'maybe' is not a boolean")


@pytest.mark.parametrize("value,enabled", [(False, False), ("false", False), ("no", False), (True, True), ("yes", True)])
def test_boolean_spellings(catalog, value, enabled):
    hv = {"control-plane": {"gitops_component_overrides": {"k-orc": {"enabled": value}}}}
    names = [o["metadata"]["name"] for o in _objects(catalog, hv) if o["kind"] == "HelmRelease"]
    assert ("k-orc" in names) is enabled


def test_a_null_removes_one_default_and_keeps_the_others(catalog):
    hv = {"control-plane": {"gitops_component_overrides": {"cert-manager": {"install": {"remediation": None},
                                                                            "timeout": "10m"}}}}
    objs = _objects(catalog, hv)
    spec = _release(objs, "cert-manager")["spec"]
    assert spec["install"] == {"crds": "CreateReplace", "createNamespace": True}
    assert spec["upgrade"]["remediation"] == {"retries": 3} and spec["timeout"] == "10m"
    assert _release(objs, "keystone-operator")["spec"]["install"]["remediation"] == {"retries": 3}
    assert catalog["helmrelease_defaults"]["install"]["remediation"] == {"retries": 3}  # not mutated


def test_helm_nulls_in_values_are_kept(catalog):
    hv = {"control-plane": {"gitops_component_overrides": {"cert-manager": {"values": {"crds": None}}}}}
    assert _release(_objects(catalog, hv), "cert-manager")["spec"]["values"] == {"crds": None}


def test_unknown_component_field_is_refused(catalog):
    hv = {"control-plane": {"gitops_component_overrides": {"cert-manager": {"valueFrom": []}}}}
    _fails(catalog, hv, "cluster control-plane component cert-manager", "unknown field valueFrom")


def test_values_from_on_a_spoke(catalog):
    vf = [{"kind": "Secret", "name": "keystone-values", "valuesKey": "override.yaml", "targetPath": "image.digest",
           "optional": True}]
    hv = {"control-plane": {"gitops_component_overrides": {"keystone-operator": {"valuesFrom": vf}}}}
    hr = _release(_objects(catalog, hv), "keystone-operator")
    assert hr["spec"]["valuesFrom"] == vf and hr["metadata"]["namespace"] == "control-plane"


@pytest.mark.parametrize("entry,fragment", [
    ({"kind": "Configmap", "name": "x"}, "kind 'Configmap' must be ConfigMap or Secret"),
    ({"kind": "ConfigMap", "name": "X_y"}, "valuesFrom[0] name: 'X_y' is not a valid DNS-1123 name"),
    ({"kind": "ConfigMap", "name": "x", "valuesKey": "a b"}, "valuesKey 'a b'"),
    ({"kind": "ConfigMap", "name": "x", "targetPath": "a b"}, "targetPath 'a b'"),
    ({"kind": "ConfigMap", "name": "x", "optional": "maybe"}, "optional: 'maybe' is not a boolean"),
    ({"kind": "ConfigMap", "name": "x", "key": "v"}, "unknown field key"),
])
def test_values_from_is_validated(catalog, entry, fragment):
    hv = {"control-plane": {"gitops_component_overrides": {"keystone-operator": {"valuesFrom": [entry]}}}}
    _fails(catalog, hv, "cluster control-plane component keystone-operator valuesFrom[0]", fragment)


def test_hub_components_in_their_own_namespaces(catalog):
    catalog["hub_release_namespaces"] = "component"
    objs = _objects(catalog)
    hr = _release(objs, "openbao")
    assert hr["metadata"]["namespace"] == "openbao-system" == hr["spec"]["targetNamespace"]
    # dependsOn follows the dependency into its namespace
    assert _release(objs, "aurora-dashboard")["spec"]["dependsOn"] == [{"name": "greenhouse", "namespace": "greenhouse"}]
    ns = sorted(o["metadata"]["name"] for o in objs if o["kind"] == "Namespace")
    assert ns == ["aurora-dashboard", "external-secrets", "greenhouse", "openbao-system"]  # not flux-system
    # spokes stay next to their kubeconfig Secret
    assert _release(objs, "keystone-operator")["metadata"]["namespace"] == "control-plane"


def test_release_namespace_per_component_and_hub_namespaces(catalog):
    catalog["namespaces"] = [{"name": "tenant-a", "labels": {"team": "a"}}, "tenant-b"]
    hv = {"management": {"gitops_component_overrides": {"openbao": {"releaseNamespace": "vault"}}}}
    objs = _objects(catalog, hv)
    assert _release(objs, "openbao")["metadata"]["namespace"] == "vault"
    nss = {o["metadata"]["name"]: o for o in objs if o["kind"] == "Namespace"}
    assert sorted(nss) == ["tenant-a", "tenant-b", "vault"]
    assert nss["tenant-a"]["metadata"]["labels"]["team"] == "a"
    assert nss["vault"]["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "c5c3.gitops"


def test_a_spoke_release_cannot_leave_its_hub_namespace(catalog):
    hv = {"control-plane": {"gitops_component_overrides": {"keystone-operator": {"releaseNamespace": "openstack"}}}}
    _fails(catalog, hv, "cluster control-plane component keystone-operator", "hub namespace 'control-plane'")


def test_oci_repository_source_gives_chart_ref(catalog):
    catalog["sources"].append({"name": "keystone-oci", "kind": "OCIRepository", "url": "oci://ghcr.io/c5c3/charts/keystone-operator",
                               "ref": {"semver": ">=0.1.0 <1.0.0"}, "interval": "10m", "insecure": True, "provider": "generic",
                               "secretRef": "ghcr-pull", "layerSelector": {"mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
                                                                           "operation": "copy"}})
    hv = {"control-plane": {"gitops_component_overrides": {"keystone-operator": {"source": "keystone-oci", "version": None}}}}
    objs = _objects(catalog, hv)
    spec = _release(objs, "keystone-operator")["spec"]
    assert spec["chartRef"] == {"kind": "OCIRepository", "name": "keystone-oci", "namespace": "flux-system"} and "chart" not in spec
    oci = [o for o in objs if o["kind"] == "OCIRepository"][0]["spec"]
    assert oci["insecure"] is True and oci["secretRef"] == {"name": "ghcr-pull"} and oci["interval"] == "10m"


def test_oci_repository_source_refuses_a_version(catalog):
    catalog["sources"].append({"name": "keystone-oci", "kind": "OCIRepository", "url": "oci://ghcr.io/c5c3/charts/keystone-operator"})
    hv = {"control-plane": {"gitops_component_overrides": {"keystone-operator": {"source": "keystone-oci"}}}}
    _fails(catalog, hv, "component keystone-operator", "is an OCIRepository (spec.chartRef)", "must not set version")


@pytest.mark.parametrize("src,fragment", [
    ({"kind": "OCIRepository", "url": "https://x"}, "must start with oci://"),
    ({"kind": "OCIRepository", "url": "oci://x/y", "provider": "github"}, "provider 'github'"),
    ({"kind": "OCIRepository", "url": "oci://x/y", "ref": {"branch": "main"}}, "ref must be a mapping of tag"),
    ({"kind": "OCIRepository", "url": "oci://x/y", "ref": {"digest": "sha256:abc"}}, "ref.digest"),
    ({"kind": "OCIRepository", "url": "oci://x/y", "ref": {"semver": "not a range!"}}, "ref.semver"),
    ({"kind": "OCIRepository", "url": "oci://x/y", "layerSelector": {"operation": "unpack"}}, "layerSelector.operation"),
    ({"kind": "OCIRepository", "url": "oci://x/y", "insecure": "maybe"}, "insecure: 'maybe' is not a boolean"),
    ({"kind": "HelmRepository", "url": "https://charts.x", "chartForm": "chartRef"}, "needs an oci:// url"),
    ({"kind": "HelmRepository", "url": "oci://x", "chartForm": "ref"}, "chartForm 'ref'"),
    ({"kind": "HelmRepository", "url": "oci://x", "layerSelector": {}}, "unknown field layerSelector"),
])
def test_sources_are_validated(catalog, src, fragment):
    catalog["sources"].append(dict(src, name="bad-source"))
    _fails(catalog, None, "source bad-source", fragment)


def test_chart_form_chart_ref_gives_each_release_its_own_oci_repository(catalog):
    for src in catalog["sources"]:
        if src["name"] == "c5c3-charts":
            src["chartForm"] = "chartRef"
    objs = _objects(catalog)
    hr = _release(objs, "keystone-operator")
    assert hr["spec"]["chartRef"] == {"kind": "OCIRepository", "name": "keystone-operator", "namespace": "control-plane"}
    oci = [o for o in objs if o["kind"] == "OCIRepository" and o["metadata"]["name"] == "keystone-operator"][0]
    assert oci["metadata"]["namespace"] == "control-plane"
    assert oci["spec"]["url"] == "oci://ghcr.io/c5c3/charts/keystone-operator"
    assert oci["spec"]["ref"] == {"semver": ">=0.1.0 <1.0.0"}
    assert oci["spec"]["layerSelector"]["operation"] == "copy"
    # other sources keep spec.chart
    assert "chart" in _release(objs, "cert-manager")["spec"]


def test_chart_and_chart_ref_together_is_refused(catalog):
    hv = {"control-plane": {"gitops_component_overrides": {"keystone-operator": {
        "spec": {"chartRef": {"kind": "OCIRepository", "name": "x"}}}}}}
    _fails(catalog, hv, "HelmRelease control-plane/keystone-operator", "either chart or chartRef must be set")


@pytest.mark.parametrize("obj,fragment", [
    ({"kind": "HelmRelease", "spec": {"chart": {}, "install": {"strategy": {"name": "RemediateOnFailure", "retryInterval": "1m"}}}},
     "cannot be set when .name is 'RemediateOnFailure'"),
    ({"kind": "HelmRelease", "spec": {"chart": {}, "upgrade": {"strategy": {"name": "RemediateOnFailure", "retryInterval": "1m"}}}},
     "can only be set when .name is 'RetryOnFailure'"),
    ({"kind": "HelmRelease", "spec": {"chart": {}, "kubeConfig": {"secretRef": {}, "configMapRef": {}}}}, "exactly one of"),
    ({"kind": "Kustomization", "spec": {"kubeConfig": {}}}, "exactly one of"),
    ({"kind": "GitRepository", "spec": {"serviceAccountName": "sa"}}, "serviceAccountName can only be set"),
    ({"kind": "FluxInstance", "metadata": {"name": "flux2"}, "spec": {}}, "the only accepted name"),
    ({"kind": "FluxInstance", "spec": {"sharding": {"storage": "persistent"}}}, ".spec.storage must be set"),
    ({"kind": "FluxInstance", "spec": {"cluster": {"multitenantWorkloadIdentity": True}}}, "objectLevelWorkloadIdentity"),
    ({"kind": "FluxInstance", "spec": {"sync": {"kind": "GitRepository", "provider": "gcp"}}}, "sync.provider 'gcp'"),
    ({"kind": "FluxInstance", "spec": {"sync": {"kind": "OCIRepository", "provider": "github"}}}, "sync.provider 'github'"),
])
def test_cel_rules(obj, fragment):
    obj = dict(obj, apiVersion="x/v1")
    obj.setdefault("metadata", {"name": "flux", "namespace": "ns"})
    with pytest.raises(FleetValidationError, match="CEL rule") as err:
        check_cel(obj)
    assert fragment in str(err.value)


def test_flux_instance_upstream_fields_and_no_sync(catalog):
    hv = {"management": {"gitops_flux_instance": {
        "sync": None, "cluster": {"type": "openshift", "size": "large", "domain": "example.local"},
        "distribution": {"artifact": "oci://ghcr.io/controlplaneio-fluxcd/flux-operator-manifests", "variant": "upstream-alpine"},
        "wait": True, "migrateResources": True}}}
    catalog["kustomizations"] = {}
    catalog["delivery"] = "direct"  # no sync: nothing for git delivery to publish to
    fleet = build_fleet(make_inventory(host_vars=hv), catalog)
    fi = [o["object"] for o in fleet["objects"] if o["object"]["kind"] == "FluxInstance"][0]
    assert "sync" not in fi["spec"] and fi["spec"]["wait"] is True
    assert fi["spec"]["cluster"]["size"] == "large" and fi["spec"]["distribution"]["variant"] == "upstream-alpine"
    assert fleet["sync"]["enabled"] is False and fleet["sync"]["path"] == "clusters/management"
    assert not [s for s in fleet["secrets"] if s["kind"] == "git-sync"]


@pytest.mark.parametrize("fi,fragment", [
    ({"syncs": {}}, "unknown spec field syncs"),
    ({"cluster": {"size": "huge"}}, "spec.cluster.size 'huge'"),
    ({"cluster": {"type": "k3s"}}, "spec.cluster.type 'k3s'"),
    ({"sync": {"kind": "Git"}}, "spec.sync.kind 'Git'"),
])
def test_flux_instance_is_validated(catalog, fi, fragment):
    _fails(catalog, {"management": {"gitops_flux_instance": fi}}, "FluxInstance flux", fragment)


def test_no_sync_needs_a_source_for_every_kustomization(catalog):
    catalog["delivery"] = "direct"
    _fails(catalog, {"management": {"gitops_flux_instance": {"sync": None}}},
           "Kustomization control-plane/control-plane-infrastructure", "the FluxInstance has no sync")
