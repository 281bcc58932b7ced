"""playbooks/render.yml end to end: ansible-playbook on the example inventories, no cluster.

Needs no API server, but it runs ansible-playbook (seconds per run), so it is marked
``integration`` and runs in the pipeline's integration stage (hack/test integration).
"""
import os
import re
import shutil
import subprocess

import pytest
import yaml
from tree_snapshot import snapshot

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
PLAYBOOK = os.path.join(ROOT, "playbooks", "render.yml")
ANSIBLE_PLAYBOOK = os.path.join(ROOT, ".venv", "bin", "ansible-playbook")
if not os.path.exists(ANSIBLE_PLAYBOOK):
    ANSIBLE_PLAYBOOK = shutil.which("ansible-playbook") or ANSIBLE_PLAYBOOK

pytestmark = pytest.mark.integration

TOKEN = "TOKEN-MUST-NOT-LEAK-4711"
PRIVATE_KEY = "PRIVATE-KEY-MUST-NOT-LEAK-0815"


def run_render(inventory, dest, *extra, playbook=PLAYBOOK):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_DEPRECATION_WARNINGS="0")
    proc = subprocess.run(
        [ANSIBLE_PLAYBOOK, playbook, "-i", inventory, "-e", "gitops_render_dir=%s" % dest] + list(extra),
        check=False, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=300,
    )
    recap = re.search(r"\n(?:hub|cobaltcore)\s*:\s*ok=(\d+)\s+changed=(\d+).*failed=(\d+)", proc.stdout)
    return proc, (int(recap.group(2)) if recap else None)


@pytest.fixture(scope="module")
def secret_inventory(tmp_path_factory):
    """The example inventory plus real secret values: a token kubeconfig and sync identity."""
    inv = tmp_path_factory.mktemp("inv")
    shutil.copytree(os.path.join(ROOT, "inventories", "example"), str(inv / "example"))
    hv = inv / "example" / "host_vars"
    hv.mkdir(exist_ok=True)
    (hv / "storage-1.yml").write_text(yaml.safe_dump({
        "gitops_kubeconfig": None,
        "gitops_kubeconfig_content": {
            "apiVersion": "v1", "kind": "Config", "current-context": "storage",
            "contexts": [{"name": "storage", "context": {"cluster": "storage", "user": "admin"}}],
            "clusters": [{"name": "storage", "cluster": {"server": "https://192.0.2.10:6443", "certificate-authority-data": "Q0E="}}],
            "users": [{"name": "admin", "user": {"token": TOKEN}}],
        },
    }))
    (hv / "hub.yml").write_text(yaml.safe_dump({
        "gitops_sync_identity": PRIVATE_KEY, "gitops_sync_identity_pub": "ssh-ed25519 AAAA", "gitops_sync_known_hosts": "github.com ssh-ed25519 AAAA",
    }))
    return str(inv / "example")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, secret_inventory):
    dest = str(tmp_path_factory.mktemp("render") / "repo")
    first, changed1 = run_render(secret_inventory, dest)
    assert first.returncode == 0, first.stdout[-3000:]
    snap1 = snapshot(dest)
    second, changed2 = run_render(secret_inventory, dest)
    assert second.returncode == 0, second.stdout[-3000:]
    return {"dest": dest, "first": first, "second": second, "changed": (changed1, changed2), "snaps": (snap1, snapshot(dest))}


def test_second_run_changes_nothing_and_is_byte_identical(rendered):
    assert rendered["changed"] == (1, 0)
    assert rendered["snaps"][0] == rendered["snaps"][1]
    assert len(rendered["snaps"][0]) > 60


def test_every_object_of_the_design_is_rendered(rendered):
    docs = []
    for path, data in rendered["snaps"][0].items():
        if path.endswith(".yaml"):
            docs += [d for d in yaml.safe_load_all(data) if d and "metadata" in d]
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    # The FluxInstance and its sync Secret are bootstrap objects: Ansible writes them, the tree never carries them.
    assert ("FluxInstance", "flux") not in names and ("ExternalSecret", "flux-system") not in names
    # The registration role writes the kubeconfig Secrets (the default writer): no ExternalSecret for them.
    assert ("ExternalSecret", "control-plane-kubeconfig") not in names
    for expected in [("HelmRepository", "c5c3-charts"), ("HelmRepository", "mariadb-operator"),
                     ("Kustomization", "control-plane-apps"), ("Kustomization", "control-plane-infrastructure"),
                     ("Kustomization", "storage-apps"), ("Kustomization", "storage-rook-operator"),
                     ("Kustomization", "hypervisor-apps"), ("Kustomization", "hypervisor-labels-injector"),
                     ("HelmRelease", "keystone-operator"), ("HelmRelease", "openbao"), ("HelmRelease", "external-secrets"),
                     ("HelmRelease", "greenhouse"), ("HelmRelease", "aurora-dashboard"), ("HelmRelease", "rook-ceph"),
                     ("HelmRelease", "rook-ceph-cluster"), ("HelmRelease", "prysm"), ("HelmRelease", "hypervisor-operator")]:
        assert expected in names, expected


def test_no_secret_value_in_clear(rendered):
    for path, data in rendered["snaps"][0].items():
        assert TOKEN.encode() not in data, path
        assert PRIVATE_KEY.encode() not in data, path
    for proc in (rendered["first"], rendered["second"]):
        assert TOKEN not in proc.stdout and PRIVATE_KEY not in proc.stdout


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
def test_kubectl_kustomize_builds_every_directory(rendered):
    dest = rendered["dest"]
    dirs = sorted(os.path.dirname(p) for p in rendered["snaps"][0] if os.path.basename(p) == "kustomization.yaml")
    assert "clusters/management" in dirs
    for d in dirs:
        proc = subprocess.run(["kubectl", "kustomize", os.path.join(dest, d)], check=False, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
        assert proc.returncode == 0, "%s: %s" % (d, proc.stderr)
    hub = subprocess.run(["kubectl", "kustomize", os.path.join(dest, "clusters/management")], stdout=subprocess.PIPE,
                         universal_newlines=True, check=True).stdout
    kinds = [d["kind"] for d in yaml.safe_load_all(hub) if d]
    assert kinds.count("FluxInstance") == 0 and kinds.count("HelmRelease") == 31


def test_check_mode_writes_nothing(tmp_path, secret_inventory):
    dest = str(tmp_path / "never")
    proc, changed = run_render(secret_inventory, dest, "--check", "--diff")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert changed == 1
    assert not os.path.exists(dest)
    assert "keystone-operator.yaml" in proc.stdout  # the diff names the files it would write


def test_two_region_example_renders(tmp_path):
    dest = str(tmp_path / "regions")
    proc, changed = run_render(os.path.join(ROOT, "inventories", "example-regions"), dest)
    assert proc.returncode == 0 and changed == 1, proc.stdout[-3000:]
    assert os.path.exists(os.path.join(dest, "clusters/control-plane-eu-2/hub/services/cortex-operator.yaml"))
    assert not os.path.exists(os.path.join(dest, "clusters/control-plane-eu-1/hub/services/cortex-operator.yaml"))
    with open(os.path.join(dest, "clusters/management/kustomization.yaml")) as handle:
        resources = yaml.safe_load(handle)["resources"]
    assert "../control-plane-eu-2/hub" in resources and "../storage-eu-1/hub" in resources


EXEC_KUBECONFIG = {
    "apiVersion": "v1", "kind": "Config", "current-context": "hv",
    "contexts": [{"name": "hv", "context": {"cluster": "hv", "user": "sso"}}],
    "clusters": [{"name": "hv", "cluster": {"server": "https://192.0.2.20:6443", "certificate-authority-data": "Q0E="}}],
    "users": [{"name": "sso", "user": {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "kubelogin"}}}],
}


@pytest.mark.parametrize("host,host_vars,fragment", [
    ("hypervisor-1", {"gitops_kubeconfig": "kubeconfigs/hv.yaml"},
     "invalid fleet: cluster hypervisor kubeconfig: user 'sso' (context 'hv') uses exec credentials (kubelogin)"),
    ("control-plane", {"gitops_component_overrides": {"mariadb-operator": {"dependsOn": ["keystone-operator"]}}},
     "invalid fleet: dependency cycle: HelmRelease control-plane/"),
    ("storage-1", {"gitops_component_overrides": {"prysm": {"version": "latest"}}},
     "invalid fleet: cluster storage component prysm version: invalid SemVer range"),
])
def test_bad_inventory_fails_before_writing(tmp_path, host, host_vars, fragment):
    inv = tmp_path / "inv"
    shutil.copytree(os.path.join(ROOT, "inventories", "example"), str(inv))
    (inv / "kubeconfigs").mkdir()
    (inv / "kubeconfigs" / "hv.yaml").write_text(yaml.safe_dump(EXEC_KUBECONFIG))
    (inv / "host_vars").mkdir(exist_ok=True)
    (inv / "host_vars" / ("%s.yml" % host)).write_text(yaml.safe_dump(host_vars))
    dest = str(tmp_path / "out")
    proc, _changed = run_render(str(inv), dest)
    assert proc.returncode != 0
    assert fragment in proc.stdout, proc.stdout[-3000:]
    assert not os.path.exists(dest)


# -- issue 12 §5 and §11

HOST_GROUP_WARNING = "Found both group and host with same name"


@pytest.mark.parametrize("inventory", ["example", "example-regions", "cobaltcore-like"])
def test_inventories_render_without_host_group_warnings(tmp_path, inventory):
    proc, changed = run_render(os.path.join(ROOT, "inventories", inventory), str(tmp_path / "out"))
    assert proc.returncode == 0 and changed == 1, proc.stdout[-3000:]
    assert HOST_GROUP_WARNING not in proc.stdout, proc.stdout[:3000]
    assert "[WARNING]" not in proc.stdout, proc.stdout[:3000]


def test_the_warning_check_would_catch_a_collision(tmp_path):
    inv = tmp_path / "hosts.yml"
    inv.write_text(yaml.safe_dump({"all": {"children": {"management": {"hosts": {"management": {}}}}}}))
    proc, _changed = run_render(str(inv), str(tmp_path / "out"))
    assert HOST_GROUP_WARNING in proc.stdout


@pytest.mark.parametrize("playbook", ["render.yml", "site.yml"])
@pytest.mark.parametrize("hosts", [
    {"all": {"children": {"control_plane": {"hosts": {"cp-1": {}}}}}},
    {"all": {"children": {"management": {"hosts": {"hub-a": {}, "hub-b": {}}}}}},
])
def test_an_inventory_without_exactly_one_hub_fails(tmp_path, hosts, playbook):
    inv = tmp_path / "hosts.yml"
    inv.write_text(yaml.safe_dump(hosts))
    dest = str(tmp_path / "out")
    proc, _changed = run_render(str(inv), dest, playbook=os.path.join(ROOT, "playbooks", playbook))
    assert proc.returncode != 0, proc.stdout[-3000:]
    assert "group management must hold exactly one cluster (the hub running Flux)" in proc.stdout
    assert "no hosts matched" not in proc.stdout
    assert not os.path.exists(dest)


def test_a_non_boolean_enabled_fails_naming_component_and_cluster(tmp_path):
    inv = tmp_path / "inv"
    shutil.copytree(os.path.join(ROOT, "inventories", "example"), str(inv))
    (inv / "host_vars").mkdir(exist_ok=True)
    (inv / "host_vars" / "control-plane.yml").write_text(yaml.safe_dump({"gitops_component_overrides": {"k-orc": {"enabled": "maybe"}}}))
    proc, _changed = run_render(str(inv), str(tmp_path / "out"))
    assert proc.returncode != 0
    assert "invalid fleet: cluster control-plane component k-orc enabled: 'maybe' is not a boolean" in proc.stdout, proc.stdout[-3000:]
