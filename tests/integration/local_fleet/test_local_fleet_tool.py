"""hack/local-fleet itself: inventory, certificates and tokens, CRDs, up/status/down, cache, no leftovers."""
from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
import yaml
from kubernetes import client

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.join(ROOT, "hack"))

from localfleet import crds, fleet  # noqa: E402


def run_local_fleet(*args, check=True):
    env = dict(os.environ, LOCAL_FLEET_PYTHON=sys.executable)
    proc = subprocess.run([os.path.join(ROOT, "hack", "local-fleet"), *args], check=False, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, env=env, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"hack/local-fleet {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


pytestmark = pytest.mark.integration


def _get(url, token, cafile):
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, context=ssl.create_default_context(cafile=cafile), timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_local_inventory_describes_hub_and_three_spokes():
    clusters, hub = fleet.read_inventory(os.path.join(ROOT, "inventories", "local"))
    assert hub == "management"
    groups = {c["name"]: c["groups"] for c in clusters}
    assert groups == {"management": ["management"], "control-plane": ["control_plane"],
                      "hypervisor": ["hypervisor"], "storage": ["storage"]}
    with open(os.path.join(ROOT, "inventories", "local", "hosts.yml"), encoding="utf-8") as fh:
        raw = yaml.safe_load(fh)
    # kubeconfigs are named after the cluster (gitops_cluster_name), hosts apart from their groups
    assert raw["all"]["vars"]["gitops_kubeconfig"].endswith("/.cache/local-fleet/kubeconfigs/{{ gitops_cluster_name }}.yaml")
    for gname, group in raw["all"]["children"].items():
        for host, hv in group["hosts"].items():
            assert host != gname and hv["gitops_cluster_name"] in groups


def test_crd_strip_removes_every_cel_rule():
    docs = crds.load(fleet.DEFAULT_CRD_DIR)
    assert {d["spec"]["names"]["kind"] for d in docs} >= {"HelmRelease", "Kustomization", "FluxInstance",
                                                          "FluxReport", "HelmRepository", "GitRepository",
                                                          "OCIRepository"}
    assert "x-kubernetes-validations" not in json.dumps(docs)
    assert crds.strip({"a": [{"x-kubernetes-validations": [1], "b": 1}], "x-kubernetes-validations": 2}) == \
        {"a": [{"b": 1}]}


def test_fleet_is_real_tls_token_rbac_and_has_the_crds(local_fleet):
    st = local_fleet.status()
    assert st["ready"] and st["simulator"]["running"] and st["etcd"]["running"] and st["registry"]["running"]
    assert st["registry"]["url"].startswith("oci://127.0.0.1:")
    assert {c["name"] for c in st["clusters"]} == {"management", "control-plane", "hypervisor", "storage"}
    assert [c["name"] for c in st["clusters"] if c["hub"]] == [local_fleet.hub] == ["management"]
    cafile = os.path.join(local_fleet.state_dir, "pki", "ca.crt")
    tokens = {}
    for name in local_fleet.clusters:
        with open(local_fleet.kubeconfig(name), encoding="utf-8") as fh:
            kc = yaml.safe_load(fh)
        # self-contained: embedded CA and a bearer token, nothing referring to files
        assert kc["clusters"][0]["cluster"]["certificate-authority-data"]
        assert kc["clusters"][0]["cluster"]["server"].startswith("https://127.0.0.1:")
        assert set(kc["users"][0]["user"]) == {"token"}
        tokens[name] = kc["users"][0]["user"]["token"]
    assert len(set(tokens.values())) == len(tokens)
    hub_url, spoke = local_fleet.urls[local_fleet.hub], local_fleet.spokes[0]
    assert _get(f"{hub_url}/readyz", tokens[local_fleet.hub], cafile) == 200
    assert _get(f"{hub_url}/api/v1/namespaces", None, cafile) == 401           # no anonymous access
    assert _get(f"{hub_url}/api/v1/namespaces", tokens[spoke], cafile) == 401  # a spoke's token is not the hub's

    # RBAC is on: a user without bindings is forbidden (impersonated through the admin)
    api = local_fleet.api_client(local_fleet.hub)
    api.set_default_header("Impersonate-User", "nobody")
    with pytest.raises(client.ApiException) as exc:
        client.CoreV1Api(api).list_namespace()
    assert exc.value.status == 403

    ext = client.ApiextensionsV1Api(local_fleet.api_client(local_fleet.hub))
    names = {c.metadata.name for c in ext.list_custom_resource_definition().items}
    assert {"helmreleases.helm.toolkit.fluxcd.io", "kustomizations.kustomize.toolkit.fluxcd.io",
            "fluxinstances.fluxcd.controlplane.io", "fluxreports.fluxcd.controlplane.io"} <= names
    spoke_ext = client.ApiextensionsV1Api(local_fleet.api_client(spoke))
    assert not [c for c in spoke_ext.list_custom_resource_definition().items if "fluxcd" in c.metadata.name]


def _alive(pid):
    return fleet.pid_alive(pid)


def test_up_status_down_uses_cache_and_leaves_nothing(tmp_path):
    inv = tmp_path / "hosts.yml"
    inv.write_text(yaml.safe_dump({"all": {"children": {
        "management": {"hosts": {"hub": {}}}, "storage": {"hosts": {"spoke": {}}}}}}))
    state_dir = str(tmp_path / "state")
    binary = os.path.join(fleet.install_assets(), "kube-apiserver")
    mtime = os.stat(binary).st_mtime

    t0 = time.monotonic()
    up = run_local_fleet("up", "--inventory", str(inv), "--state-dir", state_dir)
    try:
        took = time.monotonic() - t0
        assert up.stdout.strip().splitlines()[-1] == state_dir  # the state directory is printed
        assert "cached:" in up.stderr or "C5C3_KUBE_ASSETS" in up.stderr  # no build on a second up
        assert os.stat(binary).st_mtime == mtime
        # a hang guard, not a benchmark: `up` also starts the registry and pushes the generated charts
        # with helm (about a minute on an idle 2-core machine, much more under load)
        assert took < 240, f"up took {took:.1f}s"

        with open(os.path.join(state_dir, "state.json"), encoding="utf-8") as fh:
            state = json.load(fh)
        assert state["timings"]["servers_ready_s"] < 30, state["timings"]
        assert {c["name"] for c in state["clusters"]} == {"hub", "spoke"} and state["hub"] == "hub"
        pids = [p["pid"] for p in state["processes"].values()] + [state["simulator"]["pid"]]
        # etcd, the OCI registry, two kube-apiservers, sshd (the Git server), the simulator
        assert len(pids) == 6 and all(_alive(p) for p in pids)
        assert set(state["processes"]) == {"etcd", "registry", "sshd", "kube-apiserver-hub", "kube-apiserver-spoke"}
        # the registry's storage came from the cache (nothing pushed), or every chart was pushed
        # (the first fleet on this machine) and the storage is the cache from now on
        reg = state["registry"]
        assert (reg["seeded"] and reg["pushed"] == 0) or (not reg["seeded"] and reg["pushed"] == reg["charts"]), reg
        with open(os.path.join(state_dir, "registry", "url"), encoding="utf-8") as fh:
            assert fh.read().strip() == state["registry"]["url"]
        assert os.path.exists(os.path.join(state_dir, "kubeconfigs", "spoke.yaml"))
        etcd_dir = state["etcd"]["data_dir"]

        st = json.loads(run_local_fleet("status", "--json", "--state-dir", state_dir).stdout)
        assert st["ready"] is True and st["git"]["ready"] is True
        git_dir = os.path.join(state_dir, "git")
        with open(os.path.join(git_dir, "url"), encoding="utf-8") as fh:
            assert fh.read().strip() == st["git"]["url"]
        assert oct(os.stat(os.path.join(git_dir, "identity")).st_mode & 0o777) == "0o600"
        repo_dir = state["git"]["repo"]
        assert os.path.isdir(repo_dir) and st["git"]["url"].endswith(repo_dir)

        again = run_local_fleet("up", "--inventory", str(inv), "--state-dir", state_dir)
        assert "reusing" in again.stderr
        with open(os.path.join(state_dir, "state.json"), encoding="utf-8") as fh:
            assert [p["pid"] for p in json.load(fh)["processes"].values()] == pids[:-1]

        # issue 12 §9: right after a server is killed its pid still lives while it shuts down;
        # `up` must not reuse a fleet whose servers do not answer /readyz. SIGSTOP holds that
        # window open deterministically (pid alive, nothing served); `down` resumes and stops it.
        victim = state["processes"]["kube-apiserver-spoke"]["pid"]
        os.kill(victim, signal.SIGSTOP)
        fresh = run_local_fleet("up", "--inventory", str(inv), "--state-dir", state_dir)
        assert "reusing" not in fresh.stderr, fresh.stderr
        assert "do not answer /readyz" in fresh.stderr, fresh.stderr
        assert not _alive(victim)
        assert json.loads(run_local_fleet("status", "--json", "--state-dir", state_dir).stdout)["ready"] is True
        with open(os.path.join(state_dir, "state.json"), encoding="utf-8") as fh:
            state = json.load(fh)
        pids = [p["pid"] for p in state["processes"].values()] + [state["simulator"]["pid"]]
        etcd_dir = state["etcd"]["data_dir"]
        assert victim not in pids and all(_alive(p) for p in pids)

        # the simulator can be stopped and started on its own
        run_local_fleet("simulator", "stop", "--state-dir", state_dir)
        assert not _alive(pids[-1])
        run_local_fleet("simulator", "start", "--state-dir", state_dir)
        with open(os.path.join(state_dir, "state.json"), encoding="utf-8") as fh:
            sim_pid = json.load(fh)["simulator"]["pid"]
        assert _alive(sim_pid) and sim_pid != pids[-1]

        run_local_fleet("down", "--state-dir", state_dir)
        for pid in pids[:-1] + [sim_pid]:
            assert not _alive(pid), f"pid {pid} still running after down"
        assert not os.path.exists(state_dir) and not os.path.exists(etcd_dir) and not os.path.exists(repo_dir)
    finally:
        # a failed assertion above must not leave the servers running
        if os.path.exists(state_dir):
            run_local_fleet("down", "--state-dir", state_dir, check=False)
    assert run_local_fleet("status", "--state-dir", state_dir, check=False).returncode == 3
