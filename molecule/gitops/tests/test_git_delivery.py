"""Verify of the gitops scenario: every delivered object on the hub was written by
kustomize-controller alone (one writer), at the repository's HEAD revision; the spokes hold what
the tree says (the namespaces of their Kustomizations, the release records of their HelmReleases).
"""
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
import fleetcheck  # noqa: E402

testinfra_hosts = ["ansible://management"]

FLEET = fleetcheck.fleet()
DELIVERED = [i["object"] for i in FLEET["objects"] if i["writer"] == "delivered" and i["object"]["kind"] in fleetcheck.PLURALS]
BOOTSTRAP = [i["object"] for i in FLEET["objects"] if i["writer"] == "bootstrap"]
SPOKE_NAMESPACES = [m for m in FLEET["manifests"] if m["object"]["kind"] == "Namespace"
                    and m["path"].startswith("clusters/") and m["path"].endswith("/namespaces.yaml")]
GIT = os.path.join(fleetcheck.ephemeral(), "fleet", "git")


def _id(obj):
    return "%s/%s/%s" % (obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"])


def _git(*argv, cwd=None):
    with open(os.path.join(GIT, "url"), encoding="utf-8") as handle:
        url = handle.read().strip()
    env = dict(os.environ, GIT_CONFIG_GLOBAL=os.devnull, GIT_SSH_COMMAND=(
        "ssh -F /dev/null -i %s -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes "
        "-o UserKnownHostsFile=%s" % (os.path.join(GIT, "identity"), os.path.join(GIT, "known_hosts"))))
    argv = [a.replace("{url}", url) for a in argv]
    return subprocess.run(["git"] + argv, check=True, capture_output=True, text=True, env=env, cwd=cwd).stdout


def _head():
    return _git("ls-remote", "{url}", "refs/heads/main").split()[0]


HEAD = _head()
REVISION = "refs/heads/main@sha1:%s" % HEAD


def _appliers(live):
    return sorted({m["manager"] for m in live["metadata"].get("managedFields") or [] if m.get("operation") == "Apply"})


def _managers(live):
    return sorted({m["manager"] for m in live["metadata"].get("managedFields") or []})


def test_the_fleet_is_not_trivial():
    assert len(DELIVERED) >= 30 and {o["kind"] for o in BOOTSTRAP} == {"FluxInstance"}


def test_sync_source_and_kustomization_are_at_head():
    _core, custom = fleetcheck.clients("management")
    ref = FLEET["sync"]["source_ref"]
    source = custom.get_namespaced_custom_object("source.toolkit.fluxcd.io", "v1", ref["namespace"], "gitrepositories", ref["name"])
    assert source["status"]["artifact"]["revision"] == REVISION
    sync = custom.get_namespaced_custom_object("kustomize.toolkit.fluxcd.io", "v1", ref["namespace"], "kustomizations", ref["namespace"])
    assert sync["status"]["lastAppliedRevision"] == REVISION and fleetcheck.is_ready(sync)


@pytest.mark.parametrize("obj", DELIVERED, ids=_id)
def test_delivered_object_has_one_writer_kustomize_controller(obj):
    _core, custom = fleetcheck.clients("management")
    live = fleetcheck.get(custom, obj)
    assert _appliers(live) == ["kustomize-controller"], live["metadata"].get("managedFields")
    assert "c5c3.gitops" not in _managers(live)
    assert fleetcheck.is_ready(live), live.get("status")
    if obj["kind"] == "Kustomization" and obj["spec"]["sourceRef"] == FLEET["sync"]["source_ref"]:
        assert live["status"]["lastAppliedRevision"] == REVISION


@pytest.mark.parametrize("obj", BOOTSTRAP, ids=_id)
def test_bootstrap_object_is_written_by_ansible_only(obj):
    _core, custom = fleetcheck.clients("management")
    live = fleetcheck.get(custom, obj)
    assert "kustomize-controller" not in _managers(live)
    assert _appliers(live) == ["c5c3.gitops"]


@pytest.mark.parametrize("manifest", SPOKE_NAMESPACES, ids=lambda m: "%s:%s" % (m["path"], m["object"]["metadata"]["name"]))
def test_spoke_got_the_namespaces_of_its_tree(manifest):
    cluster = manifest["object"]["metadata"]["labels"]["gitops.c5c3.io/cluster"]
    core, _unused = fleetcheck.clients(cluster)
    live = core.read_namespace(manifest["object"]["metadata"]["name"])
    managers = {m.manager for m in live.metadata.managed_fields or [] if m.operation == "Apply"}
    assert managers == {"kustomize-controller"}


@pytest.mark.parametrize("release", [o for o in DELIVERED if o["kind"] == "HelmRelease" and o["spec"].get("kubeConfig")], ids=_id)
def test_spoke_has_the_release_namespace(release):
    cluster = release["metadata"]["labels"]["gitops.c5c3.io/cluster"]
    core, _unused = fleetcheck.clients(cluster)
    core.read_namespace(release["spec"].get("storageNamespace") or release["spec"]["targetNamespace"])


def test_first_converge_made_one_commit_per_wave(tmp_path):
    # hosts.yml: hypervisor and storage in wave 1. The first two commits of the branch are the
    # first converge: wave 0 (hub + control-plane) alone, then wave 1 (hypervisor + storage).
    _git("clone", "--quiet", "{url}", str(tmp_path / "repo"))
    log = _git("log", "--reverse", "--format=%H %s", "main", cwd=str(tmp_path / "repo")).splitlines()
    first, second = log[0].split(" ", 1), log[1].split(" ", 1)
    assert "(wave 0)" in first[1] and "(wave 1)" in second[1], log

    def touched(sha):
        return _git("show", "--name-only", "--format=", sha, cwd=str(tmp_path / "repo")).split()

    wave0, wave1 = touched(first[0]), touched(second[0])
    assert any(p.startswith("clusters/control-plane/") for p in wave0), wave0
    assert not [p for p in wave0 if p.startswith(("clusters/hypervisor/", "clusters/storage/"))], wave0
    assert any(p.startswith("clusters/hypervisor/") for p in wave1) and any(p.startswith("clusters/storage/") for p in wave1)
    assert not [p for p in wave1 if p.startswith("clusters/control-plane/")], wave1
