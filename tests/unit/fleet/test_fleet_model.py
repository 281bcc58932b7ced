import json
import time

from ansible_collections.c5c3.gitops.plugins.module_utils.fleet_model import build_fleet
from ansible_collections.c5c3.gitops.plugins.module_utils.fleet_objects import STAGES
from ansible_collections.c5c3.gitops.plugins.module_utils.gitops_tree import render_tree

from fleet_helpers import TWO_REGIONS, kubeconfig, make_inventory


def _objs(fleet, kind=None, namespace=None):
    out = {}
    for item in fleet["objects"]:
        obj = item["object"]
        md = obj["metadata"]
        if (kind is None or obj["kind"] == kind) and (namespace is None or md.get("namespace") == namespace):
            out[(obj["kind"], md.get("namespace"), md["name"])] = item
    return out


def test_design_fleet_has_every_component(catalog):
    fleet = build_fleet(make_inventory(), catalog)
    hr = {(ns, name) for (_k, ns, name) in _objs(fleet, "HelmRelease")}
    expected = {
        "flux-system": ["flux-operator", "openbao", "external-secrets", "greenhouse", "aurora-dashboard"],
        "control-plane": ["mariadb-operator", "valkey-operator", "rabbitmq-cluster-operator", "memcached-operator",
                          "cert-manager", "c5c3-operator", "keystone-operator", "glance-operator",
                          "placement-operator", "nova-operator", "neutron-operator", "cinder-operator",
                          "ovn-operator", "k-orc"],
        "hypervisor": ["hypervisor-operator", "kvm-node-agent", "ovs-agent", "ha-agent", "labels-injector"],
        "storage": ["rook-ceph", "rook-ceph-cluster", "external-arbiter-operator", "prysm"],
    }
    for ns, names in expected.items():
        for name in names:
            assert (ns, name) in hr, (ns, name)
    # cortex is optional and off by default
    assert ("control-plane", "cortex-operator") not in hr


def test_flux_instance_matches_design(catalog):
    fleet = build_fleet(make_inventory(), catalog)
    fi = _objs(fleet, "FluxInstance")[("FluxInstance", "flux-system", "flux")]
    assert fi["stage"] == "instance"
    assert fi["path"] == "clusters/management/flux-system/flux-instance.yaml"
    spec = fi["object"]["spec"]
    assert spec["distribution"] == {"version": "2.x", "registry": "ghcr.io/fluxcd"}
    assert spec["components"] == ["source-controller", "kustomize-controller", "helm-controller", "notification-controller"]
    assert spec["cluster"] == {"multitenant": False, "networkPolicy": True}
    assert spec["sync"] == {"kind": "GitRepository", "url": "ssh://git@github.com/c5c3/c5c3-gitops.git",
                            "ref": "refs/heads/main", "path": "clusters/management", "pullSecret": "flux-system"}
    for optional in ("kustomize", "sharding", "storage", "commonMetadata"):
        assert optional not in spec


def test_flux_instance_optional_parts_and_override(catalog):
    overrides = {"gitops_flux_instance": {
        "sync": {"url": "https://git.example.com/fleet.git"},
        "kustomize": {"patches": [{"patch": "- op: add\n  path: /x\n  value: 1", "target": {"kind": "Deployment"}}]},
        "storage": {"class": "standard", "size": "10Gi"},
        "commonMetadata": {"labels": {"team": "c5c3"}},
    }}
    fleet = build_fleet(make_inventory(host_vars={"management": overrides}), catalog)
    spec = _objs(fleet, "FluxInstance")[("FluxInstance", "flux-system", "flux")]["object"]["spec"]
    assert spec["sync"]["url"] == "https://git.example.com/fleet.git"
    assert spec["sync"]["ref"] == "refs/heads/main"  # deep-merged, not replaced
    assert spec["kustomize"]["patches"][0]["target"] == {"kind": "Deployment"}
    assert spec["storage"] == {"class": "standard", "size": "10Gi"}
    assert spec["commonMetadata"] == {"labels": {"team": "c5c3"}}


def test_keystone_release_matches_design(catalog):
    fleet = build_fleet(make_inventory(), catalog)
    item = _objs(fleet, "HelmRelease")[("HelmRelease", "control-plane", "keystone-operator")]
    assert item["stage"] == "services"
    assert item["path"] == "clusters/control-plane/hub/services/keystone-operator.yaml"
    obj = item["object"]
    assert obj["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "c5c3.gitops",
        "gitops.c5c3.io/stage": "services",
        "gitops.c5c3.io/cluster": "control-plane",
        "gitops.c5c3.io/wave": "0",
    }
    spec = obj["spec"]
    assert spec["chart"]["spec"] == {
        "chart": "keystone-operator", "version": ">=0.1.0 <1.0.0",
        "sourceRef": {"kind": "HelmRepository", "name": "c5c3-charts", "namespace": "flux-system"},
    }
    assert spec["interval"] == "30m"
    assert spec["install"]["crds"] == spec["upgrade"]["crds"] == "CreateReplace"
    assert spec["install"]["remediation"]["retries"] == spec["upgrade"]["remediation"]["retries"] == 3
    assert spec["dependsOn"] == [
        {"name": "mariadb-operator", "namespace": "control-plane"},
        {"name": "memcached-operator", "namespace": "control-plane"},
        {"name": "cert-manager", "namespace": "control-plane"},
    ]
    assert spec["kubeConfig"] == {"secretRef": {"name": "control-plane-kubeconfig", "key": "value"}}
    assert (spec["targetNamespace"], spec["storageNamespace"], spec["releaseName"]) == ("openstack", "openstack", "keystone-operator")
    assert spec["values"]["replicas"] == 2
    assert spec["values"]["metrics"] == {"enabled": True, "port": 8080}
    assert spec["values"]["leaderElection"] == {"enabled": True}
    assert spec["values"]["webhook"] == {"enabled": True, "port": 9443}
    assert spec["values"]["resources"]["limits"] == {"cpu": "500m", "memory": "128Mi"}


def test_hub_releases_have_no_kubeconfig(catalog):
    fleet = build_fleet(make_inventory(), catalog)
    for (_k, ns, _n), item in _objs(fleet, namespace="flux-system").items():
        assert "kubeConfig" not in item["object"].get("spec", {})
    openbao = _objs(fleet)[("HelmRelease", "flux-system", "openbao")]["object"]["spec"]
    assert openbao["targetNamespace"] == "openbao-system"


def test_design_kustomizations_and_dependencies(catalog):
    fleet = build_fleet(make_inventory(), catalog)
    ks = {name: item["object"]["spec"] for (_k, _ns, name), item in _objs(fleet, "Kustomization").items()}
    assert ks["control-plane-apps"]["dependsOn"] == [{"name": "control-plane-infrastructure", "namespace": "control-plane"}]
    assert ks["storage-apps"]["dependsOn"] == [{"name": "storage-rook-operator", "namespace": "storage"}]
    assert ks["hypervisor-labels-injector"]["dependsOn"] == [{"name": "hypervisor-apps", "namespace": "hypervisor"}]
    assert "dependsOn" not in ks["hypervisor-apps"]
    for name in ("control-plane-apps", "hypervisor-apps", "storage-apps"):
        cluster = name[: -len("-apps")]
        assert ks[name]["path"] == "./clusters/%s" % cluster
        assert ks[name]["kubeConfig"] == {"secretRef": {"name": "%s-kubeconfig" % cluster, "key": "value"}}
        assert ks[name]["prune"] is True and ks[name]["interval"] == "10m"
        assert ks[name]["sourceRef"] == {"kind": "GitRepository", "name": "flux-system", "namespace": "flux-system"}
    assert "kubeConfig" not in ks["management-cluster-configs"]


def test_oci_helm_repository(catalog):
    fleet = build_fleet(make_inventory(), catalog)
    repo = _objs(fleet)[("HelmRepository", "flux-system", "c5c3-charts")]
    assert repo["stage"] == "sources" and repo["path"] == "infrastructure/sources/helm-repositories.yaml"
    assert repo["object"]["spec"] == {"type": "oci", "interval": "1h", "url": "oci://ghcr.io/c5c3/charts", "suspend": False}
    https = _objs(fleet)[("HelmRepository", "flux-system", "jetstack")]["object"]["spec"]
    assert "type" not in https


def test_objects_are_sorted_by_stage_kind_namespace_name(catalog):
    fleet = build_fleet(make_inventory(), catalog)
    keys = [(STAGES.index(i["stage"]), i["object"]["kind"], i["object"]["metadata"].get("namespace", ""),
             i["object"]["metadata"]["name"]) for i in fleet["objects"]]
    assert keys == sorted(keys)
    stages = [i["stage"] for i in fleet["objects"]]
    assert stages.index("instance") < stages.index("sources") < stages.index("kustomizations") < stages.index("infrastructure") < stages.index("services")


def test_every_object_carries_ownership_labels(catalog):
    fleet = build_fleet(make_inventory(layout=TWO_REGIONS), catalog)
    for item in fleet["objects"]:
        labels = item["object"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "c5c3.gitops"
        assert labels["gitops.c5c3.io/stage"] == item["stage"]
        if item["object"]["kind"] in ("Kustomization", "HelmRelease"):
            assert labels["gitops.c5c3.io/cluster"] == item["object"]["metadata"]["namespace"] or item["object"]["metadata"]["namespace"] == "flux-system"


def test_two_regions_get_their_own_hub_namespaces(catalog):
    fleet = build_fleet(make_inventory(layout=TWO_REGIONS), catalog)
    clusters = {c["name"]: c for c in fleet["clusters"]}
    assert [c["name"] for c in fleet["clusters"]] == sorted(clusters)
    assert clusters["control-plane-eu-2"]["hub_namespace"] == "control-plane-eu-2"
    assert clusters["control-plane-eu-2"]["kubeconfig_secret"] == "control-plane-eu-2-kubeconfig"
    assert clusters["management"]["hub_namespace"] == "flux-system"
    hr = _objs(fleet, "HelmRelease")
    for region in ("control-plane-eu-1", "control-plane-eu-2"):
        spec = hr[("HelmRelease", region, "keystone-operator")]["object"]["spec"]
        assert spec["kubeConfig"]["secretRef"]["name"] == "%s-kubeconfig" % region
        assert spec["releaseName"] == "keystone-operator"  # plain chart name on each spoke
        assert {d["namespace"] for d in spec["dependsOn"]} == {region}
    ks = _objs(fleet, "Kustomization")
    assert ("Kustomization", "hypervisor-eu-2", "hypervisor-eu-2-labels-injector") in ks
    assert {s["name"] for s in fleet["secrets"] if s["kind"] == "kubeconfig"} == {
        "%s-kubeconfig" % c for c in clusters if c != "management"}


def test_hub_namespace_override(catalog):
    inv = make_inventory(layout=TWO_REGIONS, host_vars={"control-plane-eu-1": {"gitops_hub_namespace": "cp-eu-1"}})
    fleet = build_fleet(inv, catalog)
    assert ("HelmRelease", "cp-eu-1", "keystone-operator") in _objs(fleet)
    secret = [s for s in fleet["secrets"] if s["cluster"] == "control-plane-eu-1"][0]
    assert (secret["name"], secret["namespace"]) == ("control-plane-eu-1-kubeconfig", "cp-eu-1")


def test_component_overrides_and_extras(catalog):
    hv = {"control-plane": {
        "gitops_component_overrides": {
            "cortex-operator": {"enabled": True},
            "keystone-operator": {"version": ">=0.2.0 <1.0.0", "values": {"replicas": 3}},
            "glance-operator": {"enabled": False},
        },
        "gitops_components_extra": [{"name": "extra-operator", "version": "1.x", "source": "c5c3-charts",
                                     "namespace": "extra", "tier": "services", "dependsOn": ["keystone-operator"]}],
    }}
    # c5c3-operator depends on glance-operator: turn that dependency off too
    hv["control-plane"]["gitops_component_overrides"]["c5c3-operator"] = {"dependsOn": ["keystone-operator"]}
    fleet = build_fleet(make_inventory(host_vars=hv), catalog)
    hr = _objs(fleet, "HelmRelease", "control-plane")
    assert ("HelmRelease", "control-plane", "cortex-operator") in hr
    assert ("HelmRelease", "control-plane", "glance-operator") not in hr
    ks = hr[("HelmRelease", "control-plane", "keystone-operator")]["object"]["spec"]
    assert ks["chart"]["spec"]["version"] == ">=0.2.0 <1.0.0"
    assert ks["values"]["replicas"] == 3 and ks["values"]["metrics"]["enabled"] is True  # values deep-merge
    extra = hr[("HelmRelease", "control-plane", "extra-operator")]
    assert extra["stage"] == "services" and extra["object"]["spec"]["targetNamespace"] == "extra"


def test_secrets_are_references_without_values(catalog):
    secret_text = "-----BEGIN OPENSSH PRIVATE KEY-----very-secret"
    kc = {h: kubeconfig(name=h) for h in ("control-plane", "hypervisor", "storage")}
    inv = make_inventory(kubeconfigs=kc)
    # the model is never given the sync values, only whether they are defined
    inv["hosts"]["management"]["sync_vars_defined"] = True
    fleet = build_fleet(inv, catalog)
    text = json.dumps(fleet)
    assert secret_text not in text and "s3cr3t-token-value" not in text and "Q0E=" not in text
    sync = fleet["secrets"][0]
    assert sync == {
        "kind": "git-sync", "name": "flux-system", "namespace": "flux-system", "stage": "instance",
        "cluster": "management",
        "labels": {"app.kubernetes.io/managed-by": "c5c3.gitops", "gitops.c5c3.io/stage": "instance",
                   "gitops.c5c3.io/cluster": "management"},
        "keys": ["identity", "identity.pub", "known_hosts"],
        "vars": {"identity": "gitops_sync_identity", "identity.pub": "gitops_sync_identity_pub",
                 "known_hosts": "gitops_sync_known_hosts"},
        "values_defined": True,
        "writer": "bootstrap",
    }
    cp = [s for s in fleet["secrets"] if s["name"] == "control-plane-kubeconfig"][0]
    assert cp["labels"]["reconcile.fluxcd.io/watch"] == "Enabled" and cp["keys"] == ["value"]
    assert cp["namespace"] == "control-plane" and cp["stage"] == "clusters"
    server = {c["name"]: c["server"] for c in fleet["clusters"]}
    assert server["control-plane"] == "https://10.0.0.1:6443"


def test_kubeconfig_source_is_recorded_not_its_value(catalog):
    inv = make_inventory(host_vars={"storage": {"gitops_kubeconfig": "/etc/c5c3/storage.yaml"}})
    inv["hosts"]["hypervisor"]["kubeconfig_content"] = True
    fleet = build_fleet(inv, catalog)
    c = {x["name"]: x for x in fleet["clusters"]}
    assert (c["storage"]["kubeconfig_source"], c["storage"]["kubeconfig"]) == ("path", "/etc/c5c3/storage.yaml")
    assert (c["hypervisor"]["kubeconfig_source"], c["hypervisor"]["kubeconfig"]) == ("content", None)
    assert c["control-plane"]["kubeconfig_source"] is None


def test_bootstrap_describes_the_flux_operator_chart(catalog):
    fleet = build_fleet(make_inventory(), catalog)
    assert fleet["bootstrap"]["chart_ref"] == "oci://ghcr.io/controlplaneio-fluxcd/charts/flux-operator"
    assert fleet["bootstrap"]["namespace"] == "flux-system"
    assert fleet["sync"]["path"] == "clusters/management"


def test_build_is_deterministic_and_does_not_mutate_inputs(catalog):
    import copy
    inv = make_inventory(layout=TWO_REGIONS)
    before = (copy.deepcopy(inv), copy.deepcopy(catalog))
    a = json.dumps(build_fleet(inv, catalog), sort_keys=False)
    b = json.dumps(build_fleet(inv, catalog), sort_keys=False)
    assert a == b
    assert (inv, catalog) == before


def _big_layout(spokes):
    layout = {"management": ["management"], "control_plane": [], "hypervisor": [], "storage": []}
    groups = ["control_plane", "hypervisor", "storage"]
    for i in range(spokes):
        g = groups[i % 3]
        layout[g].append("%s-%02d" % (g.replace("_", "-"), i))
    return layout


def _best_of(runs, fn):
    best = None
    for _unused in range(runs):
        start = time.perf_counter()
        out = fn()
        elapsed = time.perf_counter() - start
        best = elapsed if best is None else min(best, elapsed)
    return best, out


def test_model_and_render_grow_linearly_with_the_fleet(catalog):
    # A ratio measured side by side (5x the spokes), not a wall-clock limit: linear work grows
    # about 5x, a quadratic step (a scan of every object per object) about 25x.
    small, big = make_inventory(layout=_big_layout(10)), make_inventory(layout=_big_layout(50))
    build_fleet(small, catalog)  # warm-up (imports, regex compilation)
    t_small, fleet_small = _best_of(3, lambda: build_fleet(small, catalog))
    t_big, fleet = _best_of(3, lambda: build_fleet(big, catalog))
    assert len(fleet["objects"]) + len(fleet["manifests"]) >= 830
    assert t_big / t_small < 12, "model: 10 spokes %.3fs, 50 spokes %.3fs" % (t_small, t_big)
    r_small, _unused = _best_of(3, lambda: render_tree(fleet_small))
    r_big, tree = _best_of(3, lambda: render_tree(fleet))
    assert len(tree) > 800
    assert r_big / r_small < 12, "render: 10 spokes %.3fs, 50 spokes %.3fs" % (r_small, r_big)


def test_every_reconcilable_object_owns_suspend(catalog):
    """A hand-set spec.suspend: true must be undone by the next apply (docs/faults.md): the model
    says suspend: false on every HelmRelease, Kustomization and source, so server-side apply owns
    it; a component that means suspend: true keeps it, a null means not suspended."""
    hv = {"control-plane": {"gitops_component_overrides": {"keystone-operator": {"suspend": True},
                                                           "glance-operator": {"suspend": None}}}}
    fleet = build_fleet(make_inventory(host_vars=hv), catalog)
    kinds = {"HelmRelease", "Kustomization", "HelmRepository", "GitRepository", "OCIRepository"}
    seen = set()
    for item in fleet["objects"]:
        obj = item["object"]
        if obj["kind"] not in kinds:
            continue
        seen.add(obj["kind"])
        key = (obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"])
        want = key == ("HelmRelease", "control-plane", "keystone-operator")
        assert obj["spec"]["suspend"] is want, key
    assert {"HelmRelease", "Kustomization", "HelmRepository"} <= seen
