import posixpath

import pytest
import yaml

from ansible_collections.c5c3.gitops.plugins.module_utils.fleet_model import build_fleet
from ansible_collections.c5c3.gitops.plugins.module_utils.gitops_tree import TreeError, dump, render_tree

from fleet_helpers import TWO_REGIONS, kubeconfig, make_inventory


@pytest.fixture
def tree(catalog):
    return render_tree(build_fleet(make_inventory(), catalog))


def test_design_layout(catalog):
    tree = render_tree(build_fleet(dict(make_inventory()), dict(catalog, kubeconfig_writer="eso")))
    for path in (
        "clusters/management/kustomization.yaml",
        "clusters/control-plane/kustomization.yaml",
        "clusters/control-plane/hub/kustomizations.yaml",
        "clusters/control-plane/hub/services/keystone-operator.yaml",
        "clusters/control-plane/hub/infrastructure/mariadb-operator.yaml",
        "clusters/storage/hub/infrastructure/rook-ceph.yaml",
        "apps/labels-injector/kustomization.yaml",
        "infrastructure/sources/helm-repositories.yaml",
        "infrastructure/cluster-configs/control-plane-kubeconfig.yaml",
        "infrastructure/cluster-configs/hypervisor-kubeconfig.yaml",
        "infrastructure/cluster-configs/storage-kubeconfig.yaml",
    ):
        assert path in tree, path
    # bootstrap objects (Ansible writes them) never go to Git: one writer each
    assert "clusters/management/flux-system/flux-instance.yaml" not in tree
    assert "infrastructure/cluster-configs/flux-system-git-sync.yaml" not in tree


def test_kubeconfig_external_secrets_only_when_eso_writes_them(tree):
    assert not [p for p in tree if p.startswith("infrastructure/cluster-configs/") and not p.endswith("kustomization.yaml")]


def test_every_directory_with_files_has_a_kustomization_listing_them(tree):
    dirs = {posixpath.dirname(p) for p in tree}
    for d in dirs:
        kpath = posixpath.join(d, "kustomization.yaml")
        assert kpath in tree, d
        resources = yaml.safe_load(tree[kpath])["resources"]
        own = sorted(posixpath.basename(p) for p in tree if posixpath.dirname(p) == d and not p.endswith("/kustomization.yaml"))
        assert [r for r in resources if r.endswith(".yaml")] == own
        for r in resources:
            target = posixpath.normpath(posixpath.join(d, r))
            assert target in tree or posixpath.join(target, "kustomization.yaml") in tree, (d, r)


def test_hub_sync_root_pulls_in_everything_the_hub_applies(tree):
    resources = yaml.safe_load(tree["clusters/management/kustomization.yaml"])["resources"]
    assert resources == ["../../infrastructure/sources", "hub", "../control-plane/hub",
                         "../hypervisor/hub", "../storage/hub"]
    # a spoke's own directory (applied ON the spoke) never includes its hub-side objects
    assert yaml.safe_load(tree["clusters/control-plane/kustomization.yaml"])["resources"] == ["namespaces.yaml"]


def test_spoke_directory_holds_only_spoke_side_objects(tree):
    docs = list(yaml.safe_load_all(tree["clusters/control-plane/namespaces.yaml"]))
    assert {d["kind"] for d in docs} == {"Namespace"}
    assert {d["metadata"]["name"] for d in docs} >= {"openstack", "mariadb-system", "cert-manager"}


def test_kustomization_paths_exist_in_the_tree(catalog):
    fleet = build_fleet(make_inventory(layout=TWO_REGIONS), catalog)
    tree = render_tree(fleet)
    for item in fleet["objects"]:
        if item["object"]["kind"] == "Kustomization":
            path = posixpath.normpath(item["object"]["spec"]["path"])
            assert posixpath.join(path, "kustomization.yaml") in tree, path


def test_every_object_is_written_to_its_path(catalog):
    fleet = build_fleet(make_inventory(), catalog)
    tree = render_tree(fleet)
    for item in fleet["objects"] + fleet["manifests"]:
        if item.get("writer") == "bootstrap":
            assert item["path"] not in tree
            continue
        docs = list(yaml.safe_load_all(tree[item["path"]]))
        assert item["object"] in docs


def test_render_is_byte_identical(catalog):
    a = render_tree(build_fleet(make_inventory(layout=TWO_REGIONS), catalog))
    b = render_tree(build_fleet(make_inventory(layout=TWO_REGIONS), catalog))
    assert a == b
    assert list(a) == sorted(a)


def test_key_order_is_stable_and_readable():
    text = dump({"spec": {"b": 1, "a": 2}, "metadata": {"name": "x"}, "kind": "K", "apiVersion": "v1", "zz": 1})
    assert text == "apiVersion: v1\nkind: K\nmetadata:\n  name: x\nspec:\n  a: 2\n  b: 1\nzz: 1\n"


def test_no_secret_value_is_rendered(catalog):
    kc = {h: kubeconfig(name=h) for h in ("control-plane", "hypervisor", "storage")}
    inv = make_inventory(kubeconfigs=kc)
    tree = render_tree(build_fleet(inv, dict(catalog, kubeconfig_writer="eso")))
    text = "".join(tree.values())
    assert "s3cr3t-token-value" not in text and "Q0E=" not in text
    docs = [d for t in tree.values() for d in yaml.safe_load_all(t) if d]
    assert not [d for d in docs if d["kind"] == "Secret"]
    es = [d for d in docs if d["kind"] == "ExternalSecret"]
    assert {d["metadata"]["name"] for d in es} == {"control-plane-kubeconfig", "hypervisor-kubeconfig", "storage-kubeconfig"}
    for d in es:
        assert d["spec"]["secretStoreRef"] == {"name": "openbao-cluster-store", "kind": "ClusterSecretStore"}
        for entry in d["spec"]["data"]:
            assert set(entry) == {"secretKey", "remoteRef"}


def test_shared_directory_with_identical_manifests_is_written_once(catalog):
    ns = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "labels", "namespace": "kube-system"}, "data": {"a": "b"}}
    catalog["kustomizations"]["hypervisor"][1]["manifests"] = [ns]
    tree = render_tree(build_fleet(make_inventory(layout=TWO_REGIONS), catalog))
    text = tree["apps/labels-injector/configmap-labels.yaml"]
    assert text.count("kind: ConfigMap") == 1


def test_shared_directory_with_different_manifests_is_refused(catalog):
    def labels(region):
        return {"gitops_kustomization_overrides": {"labels-injector": {"manifests": [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "labels"}, "data": {"region": region}}]}}}

    hv = {"hypervisor-eu-2": labels("eu-2"), "hypervisor-eu-1": labels("eu-1")}
    with pytest.raises(TreeError, match="apps/labels-injector/configmap-labels.yaml: ConfigMap labels is generated twice"):
        render_tree(build_fleet(make_inventory(layout=TWO_REGIONS, host_vars=hv), catalog))
