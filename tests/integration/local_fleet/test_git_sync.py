"""Issue 8 §4: the local fleet's Git server (sshd + git-shell) and the simulator's real
source-controller fetch and kustomize-controller build + server-side apply + prune."""
from __future__ import annotations

import subprocess
import uuid

import pytest

from lf_helpers import SyncRepo, condition, git_secret, ready_at_generation, ready_reason, wait_core

pytestmark = pytest.mark.integration


@pytest.fixture
def repo(local_fleet, hub, tmp_path):
    yield SyncRepo(local_fleet, tmp_path)
    # real sources are fetched every interval (and failing ones retried): leave none behind
    for kind, (g, v, p) in (("Kustomization", ("kustomize.toolkit.fluxcd.io", "v1", "kustomizations")),
                            ("GitRepository", ("source.toolkit.fluxcd.io", "v1", "gitrepositories"))):
        for o in hub.custom.list_namespaced_custom_object(g, v, hub.ns, p)["items"]:
            hub.custom.delete_namespaced_custom_object(g, v, hub.ns, p, o["metadata"]["name"])


def _branch():
    return "t-" + uuid.uuid4().hex[:8]


def _cm(name, ns, value):
    return (f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {ns}\n"
            f"data:\n  value: \"{value}\"\n")


def _managers(obj):
    return {m.manager for m in obj.metadata.managed_fields or []}


def test_git_server_only_serves_the_deploy_key_to_a_known_host(local_fleet, repo, tmp_path):
    st = local_fleet.status()
    assert st["git"]["ready"] is True and st["git"]["url"] == repo.url
    assert repo.url.startswith("ssh://") and "@127.0.0.1:" in repo.url
    branch = _branch()
    sha = repo.commit(branch, {"README": "hello\n"})
    clone = repo.git("clone", "-q", "--branch", branch, repo.url, str(tmp_path / "clone"))
    assert clone.returncode == 0
    assert repo.git("-C", str(tmp_path / "clone"), "rev-parse", "HEAD").stdout.strip() == sha

    wrong = tmp_path / "wrong"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(wrong)], check=True)
    refused = repo.git("ls-remote", repo.url, check=False, env=repo.env(identity=str(wrong)))
    assert refused.returncode != 0 and "Permission denied (publickey)" in refused.stderr

    empty = tmp_path / "known_hosts"
    empty.write_text("")
    unknown = repo.git("ls-remote", repo.url, check=False, env=repo.env(known_hosts=str(empty)))
    assert unknown.returncode != 0 and "Host key verification failed" in unknown.stderr

    # the account is limited to git-shell: no command other than git's
    port = repo.url.split("@127.0.0.1:", 1)[1].split("/", 1)[0]
    shell = subprocess.run(["ssh", "-p", port, "-i", repo.identity, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                            "-o", f"UserKnownHostsFile={repo.known_hosts}", "-F", "/dev/null",
                            repo.url.split("//", 1)[1].split(":", 1)[0], "id"],
                           capture_output=True, text=True, timeout=30, check=False)
    assert shell.returncode != 0 and "uid=" not in shell.stdout


def test_source_fetches_the_real_commit_with_the_secret_credentials(hub, repo, tmp_path):
    branch = _branch()
    sha = repo.commit(branch, {"apps/README": "x\n"})
    git_secret(hub, "sync", repo)
    spec = {"url": repo.url, "interval": "1m", "ref": {"branch": branch}, "secretRef": {"name": "sync"}}
    hub.create("GitRepository", "fleet", spec)
    src = hub.wait("GitRepository", "fleet", ready_at_generation)
    assert src["status"]["artifact"]["revision"] == f"{branch}@sha1:{sha}" == f"{branch}@sha1:{repo.head(branch)}"
    assert condition(src, "Ready")["message"] == f"stored artifact for revision '{branch}@sha1:{sha}'"

    # a ref that does not exist (yet): a clear not-ready, not a made-up revision
    hub.create("GitRepository", "nobranch", dict(spec, ref={"branch": "does-not-exist"}))
    src = hub.wait("GitRepository", "nobranch", ready_reason("GitOperationFailed"))
    assert "does-not-exist" in condition(src, "Ready")["message"] and "artifact" not in src["status"]

    wrong = tmp_path / "wrong"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(wrong)], check=True)
    git_secret(hub, "wrong-key", repo, identity=str(wrong))
    hub.create("GitRepository", "wrongkey", dict(spec, secretRef={"name": "wrong-key"}))
    src = hub.wait("GitRepository", "wrongkey", ready_reason("AuthenticationFailed"))
    assert "Permission denied (publickey)" in condition(src, "Ready")["message"]

    empty = tmp_path / "known_hosts"
    empty.write_text("")
    git_secret(hub, "no-host-key", repo, known_hosts=str(empty))
    hub.create("GitRepository", "unknownhost", dict(spec, secretRef={"name": "no-host-key"}))
    src = hub.wait("GitRepository", "unknownhost", lambda o: (condition(o, "Ready") or {}).get("status") == "False")
    assert "Host key verification failed" in condition(src, "Ready")["message"]


def test_kustomization_builds_applies_as_kustomize_controller_and_prunes(hub, repo):
    branch = _branch()
    ns = hub.ns
    files = {"apps/kustomization.yaml": "resources: [a.yaml, b.yaml, flux.yaml]\n",
             "apps/a.yaml": _cm("a", ns, "1"), "apps/b.yaml": _cm("b", ns, "1"),
             # Flux objects applied onto the hub are then processed by the other controllers
             "apps/flux.yaml": (f"apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata:\n"
                                f"  name: charts\n  namespace: {ns}\nspec:\n  url: https://charts.example.org\n"
                                f"  interval: 10m\n---\napiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\n"
                                f"metadata:\n  name: app\n  namespace: {ns}\nspec:\n  interval: 10m\n"
                                f"  chart:\n    spec:\n      chart: app\n      version: 1.0.0\n      sourceRef:\n"
                                f"        kind: HelmRepository\n        name: charts\n")}
    sha = repo.commit(branch, files)
    git_secret(hub, "sync", repo)
    hub.create("GitRepository", "fleet", {"url": repo.url, "interval": "1m", "ref": {"branch": branch},
                                          "secretRef": {"name": "sync"}})
    hub.create("Kustomization", "apps", {"interval": "10m", "path": "./apps", "prune": True, "wait": True,
                                         "sourceRef": {"kind": "GitRepository", "name": "fleet"}})
    ks = hub.wait("Kustomization", "apps", ready_at_generation, timeout=90)
    rev = f"{branch}@sha1:{sha}"
    assert ks["status"]["lastAppliedRevision"] == rev == ks["status"]["lastAttemptedRevision"]
    assert condition(ks, "Ready")["message"] == f"Applied revision: {rev}"
    ids = {e["id"] for e in ks["status"]["inventory"]["entries"]}
    assert ids == {f"{ns}_a__ConfigMap", f"{ns}_b__ConfigMap", f"{ns}_charts_source.toolkit.fluxcd.io_HelmRepository",
                   f"{ns}_app_helm.toolkit.fluxcd.io_HelmRelease"}
    a = hub.core.read_namespaced_config_map("a", ns)
    assert "kustomize-controller" in _managers(a) and "c5c3.gitops" not in _managers(a)
    assert a.metadata.labels["kustomize.toolkit.fluxcd.io/name"] == "apps"
    assert ready_at_generation(hub.get("HelmRelease", "app"))  # wait: true waited for it

    # b leaves the tree, a changes: a new commit, a reconcile request, prune
    sha2 = repo.commit(branch, {"apps/kustomization.yaml": "resources: [a.yaml, flux.yaml]\n", "apps/b.yaml": None,
                                "apps/a.yaml": _cm("a", ns, "2")})
    hub.annotate("GitRepository", "fleet", {"reconcile.fluxcd.io/requestedAt": "1"})
    ks = hub.wait("Kustomization", "apps", lambda o: o["status"].get("lastAppliedRevision") == f"{branch}@sha1:{sha2}", timeout=90)
    assert f"{ns}_b__ConfigMap" not in {e["id"] for e in ks["status"]["inventory"]["entries"]}
    wait_core(hub.core.list_namespaced_config_map, "b", lambda o: o is None, timeout=60, namespace=ns)
    assert hub.core.read_namespaced_config_map("a", ns).data == {"value": "2"}

    # a broken build: BuildFailed with kustomize's message; the last applied revision stays
    sha3 = repo.commit(branch, {"apps/kustomization.yaml": "resources: [a.yaml, missing.yaml]\n"})
    hub.annotate("GitRepository", "fleet", {"reconcile.fluxcd.io/requestedAt": "2"})
    ks = hub.wait("Kustomization", "apps", ready_reason("BuildFailed"), timeout=90)
    assert "missing.yaml" in condition(ks, "Ready")["message"]
    assert ks["status"]["lastAttemptedRevision"] == f"{branch}@sha1:{sha3}"
    assert ks["status"]["lastAppliedRevision"] == f"{branch}@sha1:{sha2}"


def test_kustomization_applies_to_the_spoke_through_its_kubeconfig(hub, repo):
    branch = _branch()
    ns = hub.ns
    hub.ensure_namespace(ns, core=hub.spoke_core)
    sha = repo.commit(branch, {"spoke/cm.yaml": _cm("on-spoke", ns, "x")})  # no kustomization.yaml: generated
    git_secret(hub, "sync", repo)
    hub.kubeconfig_secret("spoke-kubeconfig")
    hub.create("GitRepository", "fleet", {"url": repo.url, "interval": "1m", "ref": {"branch": branch},
                                          "secretRef": {"name": "sync"}})
    hub.create("Kustomization", "spoke", {"interval": "10m", "path": "./spoke", "prune": True,
                                          "sourceRef": {"kind": "GitRepository", "name": "fleet"},
                                          "kubeConfig": {"secretRef": {"name": "spoke-kubeconfig"}}})
    ks = hub.wait("Kustomization", "spoke", ready_at_generation, timeout=90)
    assert ks["status"]["lastAppliedRevision"] == f"{branch}@sha1:{sha}"
    cm = hub.spoke_core.read_namespaced_config_map("on-spoke", ns)
    assert "kustomize-controller" in _managers(cm)
    assert not hub.core.list_namespaced_config_map(ns, field_selector="metadata.name=on-spoke").items


def test_fluxinstance_sync_is_not_ready_until_the_branch_exists_then_applies_it(hub, repo):
    """The sync objects the operator generates, against the fleet's (empty) sync repository."""
    ns = "flux-system"
    hub.ensure_namespace(ns)
    branch = _branch()
    with open(repo.identity, encoding="utf-8") as fh:
        identity = fh.read()
    with open(repo.known_hosts, encoding="utf-8") as fh:
        known_hosts = fh.read()
    secret = {"metadata": {"name": "flux-system", "namespace": ns},
              "stringData": {"identity": identity, "known_hosts": known_hosts}}
    try:
        hub.core.create_namespaced_secret(ns, secret)
    except Exception as exc:  # noqa: BLE001 - left by an earlier test (e.g. site.yml's placeholders) on the shared fleet
        assert getattr(exc, "status", None) == 409
        hub.core.replace_namespaced_secret("flux-system", ns, secret)  # this test needs the Git server's real key
    sync = {"kind": "GitRepository", "url": repo.url, "ref": f"refs/heads/{branch}", "path": f"clusters/{branch}",
            "pullSecret": "flux-system"}
    created = True
    try:
        hub.create("FluxInstance", "flux", {"distribution": {"version": "2.x", "registry": "ghcr.io/fluxcd"},
                                            "sync": sync}, namespace=ns)
    except Exception as exc:  # noqa: BLE001 - another test made the instance: give it the sync
        assert getattr(exc, "status", None) == 409
        created = False
        hub.patch("FluxInstance", "flux", {"spec": {"sync": sync}}, namespace=ns)
    try:
        src = hub.wait("GitRepository", ns, lambda o: (o.get("spec") or {}).get("ref", {}).get("name")
                       == f"refs/heads/{branch}" and (condition(o, "Ready") or {}).get("status") == "False",
                       namespace=ns, timeout=60)
        assert condition(src, "Ready")["reason"] == "GitOperationFailed"
        assert f"couldn't find remote ref refs/heads/{branch}" in condition(src, "Ready")["message"]

        sha = repo.commit(branch, {f"clusters/{branch}/cm.yaml": _cm(f"sync-{branch}", hub.ns, "1")})
        hub.annotate("GitRepository", ns, {"reconcile.fluxcd.io/requestedAt": branch}, namespace=ns)
        ks = hub.wait("Kustomization", ns, lambda o: (o.get("status") or {}).get("lastAppliedRevision")
                      == f"refs/heads/{branch}@sha1:{sha}", namespace=ns, timeout=90)
        assert ready_at_generation(ks)
        cm = hub.core.read_namespaced_config_map(f"sync-{branch}", hub.ns)
        assert "kustomize-controller" in _managers(cm)
    finally:
        # leave flux-system as found: the instance (other tests create their own) and its sync objects
        if created:
            hub.custom.delete_namespaced_custom_object("fluxcd.controlplane.io", "v1", ns, "fluxinstances", "flux")
        else:
            hub.patch("FluxInstance", "flux", {"spec": {"sync": None}}, namespace=ns)
        for g, p in (("kustomize.toolkit.fluxcd.io", "kustomizations"), ("source.toolkit.fluxcd.io", "gitrepositories")):
            hub.custom.delete_namespaced_custom_object(g, "v1", ns, p, ns)
