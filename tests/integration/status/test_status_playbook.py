"""playbooks/status.yml against the local fleet: tables, the four artifacts, a failure, a blocked
chain across clusters, an unreachable cluster, --forks > 1, and a sliced run merged = one run.

The hub is seeded directly (no site.yml: seconds instead of minutes): HelmReleases in the spokes'
hub namespaces, one with the simulator's install failure, others depending on it (one from
another cluster), and the kubeconfig Secrets Flux uses; cluster ``edge`` has a Secret pointing at
a closed port.
"""
import base64
import copy
import json
import os
import re
import shutil
import subprocess
import sys
from xml.etree import ElementTree as ET

import jsonschema
import pytest
import yaml

from ansible_collections.c5c3.gitops.plugins.module_utils import flux_kinds, status_graph
from ansible_collections.c5c3.gitops.plugins.module_utils.kube import client_from_kubeconfig
from ansible_collections.c5c3.gitops.plugins.module_utils.waiter import Waiter

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
BIN = os.path.dirname(sys.executable)
ANSIBLE_PLAYBOOK = os.path.join(BIN, "ansible-playbook") if os.path.exists(os.path.join(BIN, "ansible-playbook")) \
    else shutil.which("ansible-playbook")
pytestmark = pytest.mark.integration
HR = flux_kinds.lookup("HelmRelease")


def hr(ns, name, deps=(), fail=None, cluster=None):
    meta = {"name": name, "namespace": ns, "labels": {"gitops.c5c3.io/cluster": cluster or ns}}
    if fail:
        meta["annotations"] = {"simulator.c5c3.io/fail": fail, "simulator.c5c3.io/fail-message": "boom in the test"}
    spec = {"interval": "10m", "releaseName": name, "targetNamespace": "st-" + name, "storageNamespace": "st-" + name,
            "chart": {"spec": {"chart": name, "version": "1.2.3",
                               "sourceRef": {"kind": "HelmRepository", "name": "st-charts", "namespace": "flux-system"}}},
            "kubeConfig": {"secretRef": {"name": "%s-kubeconfig" % (cluster or ns)}},
            "dependsOn": list(deps)}
    return {"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease", "metadata": meta, "spec": spec}


def apply(client, path, body):
    client.call_api(*client.param_serialize(
        "PATCH", path, query_params=[("fieldManager", "status-test"), ("force", "true")],
        header_params={"Content-Type": "application/apply-patch+yaml", "Accept": "application/json"},
        body=body, auth_settings=["BearerToken"]))


def delete(client, path):
    client.call_api(*client.param_serialize("DELETE", path, header_params={"Accept": "application/json"},
                                            auth_settings=["BearerToken"]))


@pytest.fixture(scope="module")
def seeded(local_fleet, tmp_path_factory):
    hub = local_fleet.api_client()
    # flux-system too: on a fresh fleet (this module alone) nothing has bootstrapped it yet
    for ns in ("flux-system", "control-plane", "hypervisor", "storage", "edge"):
        apply(hub, "/api/v1/namespaces/%s" % ns, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    apply(hub, "/apis/source.toolkit.fluxcd.io/v1/namespaces/flux-system/helmrepositories/st-charts",
          {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "HelmRepository",
           "metadata": {"name": "st-charts", "namespace": "flux-system"},
           "spec": {"type": "oci", "url": "oci://registry.example/charts", "interval": "10m"}})
    for cluster in ("control-plane", "hypervisor", "storage"):
        with open(local_fleet.kubeconfig(cluster), "rb") as handle:
            value = base64.b64encode(handle.read()).decode()
        apply(hub, "/api/v1/namespaces/%s/secrets/%s-kubeconfig" % (cluster, cluster),
              {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "%s-kubeconfig" % cluster, "namespace": cluster},
               "data": {"value": value}})
    with open(local_fleet.kubeconfig("storage")) as handle:
        dead = yaml.safe_load(handle)
    dead["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1"
    apply(hub, "/api/v1/namespaces/edge/secrets/edge-kubeconfig",
          {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "edge-kubeconfig", "namespace": "edge"},
           "data": {"value": base64.b64encode(yaml.safe_dump(dead).encode()).decode()}})
    objs = [hr("control-plane", "st-db", fail="install"),
            hr("control-plane", "st-api", deps=[{"name": "st-db"}]),
            hr("control-plane", "st-web"),
            hr("hypervisor", "st-agent", deps=[{"name": "st-api", "namespace": "control-plane"}]),
            hr("storage", "st-store"),
            hr("edge", "st-edge")]
    for obj in objs:
        apply(hub, flux_kinds.object_path(HR, obj["metadata"]["namespace"], obj["metadata"]["name"]), obj)
    # Real waits (the collection's own watch loop): the good ones ready, the failing one failed.
    source = client_from_kubeconfig(local_fleet.kubeconfig(local_fleet.hub), workers=4)
    waiter = Waiter(source)
    ready = waiter.wait([{"kind": "HelmRelease", "namespace": "control-plane", "name": "st-web"},
                         {"kind": "HelmRelease", "namespace": "storage", "name": "st-store"}], timeout=120)
    assert ready["outcome"] == "ready", ready["message"]
    failed = Waiter(source).wait([{"kind": "HelmRelease", "namespace": "control-plane", "name": "st-db"}],
                                 timeout=120)
    assert failed["outcome"] == "failed", failed["message"]

    # The local inventory plus cluster "edge", kubeconfigs of this fleet.
    with open(os.path.join(ROOT, "inventories", "local", "hosts.yml")) as handle:
        inv = yaml.safe_load(handle)
    inv["all"].get("vars", {}).pop("gitops_kubeconfig", None)
    for group in inv["all"]["children"].values():
        for name, hv in group["hosts"].items():
            hv["gitops_kubeconfig"] = local_fleet.kubeconfig(hv.get("gitops_cluster_name") or name)
    inv["all"]["children"]["hypervisor"]["hosts"]["edge"] = {"gitops_cluster_name": "edge"}
    hosts = dict((hv.get("gitops_cluster_name") or n, n) for g in inv["all"]["children"].values()
                 for n, hv in g["hosts"].items())
    inv_dir = tmp_path_factory.mktemp("status-inventory")
    shutil.copytree(os.path.join(ROOT, "inventories", "local", "group_vars"), str(inv_dir / "group_vars"))
    # Direct delivery: the report is under test here, not the Git server.
    shutil.copy(os.path.join(ROOT, "tests", "integration", "direct_delivery.yml"), str(inv_dir / "group_vars" / "management" / "git_sync.yml"))
    (inv_dir / "hosts.yml").write_text(yaml.safe_dump(inv))
    yield str(inv_dir / "hosts.yml"), hosts
    # Leave the shared fleet as found (namespaces stay: there is no namespace controller).
    for obj in objs:
        delete(hub, flux_kinds.object_path(HR, obj["metadata"]["namespace"], obj["metadata"]["name"]))
    delete(hub, "/apis/source.toolkit.fluxcd.io/v1/namespaces/flux-system/helmrepositories/st-charts")
    delete(hub, "/api/v1/namespaces/edge/secrets/edge-kubeconfig")


def run_status(seeded, dest, *extra):
    inventory = seeded[0]
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_DEPRECATION_WARNINGS="0", ANSIBLE_LOCALHOST_WARNING="0")
    proc = subprocess.run([ANSIBLE_PLAYBOOK, "playbooks/status.yml", "-i", inventory, "-e", "gitops_status_dir=%s" % dest]
                          + list(extra), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:]
    return proc.stdout


def load(dest):
    with open(os.path.join(dest, "status.json")) as handle:
        return json.load(handle)


def objects(report):
    return dict(("%s/%s" % (o["namespace"], o["name"]), o) for c in report["clusters"] for o in c["objects"])


def stable(report):
    report = copy.deepcopy(report)
    for key in ("generated_at", "elapsed", "requests", "merged_from"):
        report.pop(key, None)
    for cluster in report["clusters"]:
        cluster.pop("elapsed", None)
        if cluster.get("kubeconfig_secret"):
            cluster["kubeconfig_secret"].pop("age_seconds", None)
        cluster.get("spoke", {}).pop("namespaces", None)  # other tests' namespaces may come and go
        cluster.get("spoke", {}).pop("helm_releases", None)
        cluster["objects"] = [o for o in cluster["objects"] if o["name"].startswith("st-")]
    return report


@pytest.fixture(scope="module")
def full(seeded, tmp_path_factory):
    dest = str(tmp_path_factory.mktemp("status-full"))
    out = run_status(seeded, dest, "--forks", "5")
    return dest, out


def test_tables_and_artifacts(full):
    dest, out = full
    for name in ("status.json", "status.md", "status.junit.xml", "status.dot", "status.svg"):
        assert os.path.getsize(os.path.join(dest, name)) > 0, name
    assert re.search(r"control-plane \(control_plane, hub namespace control-plane\): \d+ objects", out)
    assert "root cause: HelmRelease control-plane/st-db on control-plane (failed: " in out
    assert "edge (hypervisor, hub namespace edge)" in out and "cluster NOT REACHABLE" in out


def test_json_states_chains_and_schema(full):
    report = load(full[0])
    with open(os.path.join(ROOT, "docs", "fleet-status.schema.json")) as handle:
        jsonschema.validate(report, json.load(handle))
    objs = objects(report)
    assert objs["control-plane/st-db"]["state"] == "failed"
    assert objs["control-plane/st-db"]["reason"] in ("RetriesExceeded", "InstallFailed")
    assert objs["control-plane/st-api"]["state"] == "blocked"
    agent = objs["hypervisor/st-agent"]
    assert agent["state"] == "blocked" and agent["cluster"] == "hypervisor"
    assert agent["root_causes"][0]["name"] == "st-db" and agent["root_causes"][0]["cluster"] == "control-plane"
    web = objs["control-plane/st-web"]
    assert web["state"] == "ready" and web["installed"]["chart_version"] == "1.2.3"
    assert web["on_cluster"]["chart_version"] == "1.2.3"  # the Helm record on the spoke, read with its kubeconfig
    clusters = dict((c["name"], c) for c in report["clusters"])
    assert clusters["edge"]["reachable"] is False and "connection refused" in clusters["edge"]["spoke"]["error"].lower()
    assert objs["edge/st-edge"]["state"] != "ready"  # the hub still reports the cluster's objects
    assert clusters["storage"]["reachable"] and clusters["management"]["reachable"]
    assert "st-web" in [r["name"] for r in clusters["control-plane"]["spoke"]["helm_releases"]]
    assert clusters["control-plane"]["credential"]["auth"] == "token"


def test_no_credentials_in_artifacts_or_output(full, local_fleet):
    dest, out = full
    for cluster in local_fleet.clusters:
        with open(local_fleet.kubeconfig(cluster)) as handle:
            tok = yaml.safe_load(handle)["users"][0]["user"]["token"]
        assert tok not in out
        for name in os.listdir(dest):
            with open(os.path.join(dest, name)) as handle:
                assert tok not in handle.read(), name


def test_junit_and_svg(full):
    dest = full[0]
    report = load(dest)
    root = ET.parse(os.path.join(dest, "status.junit.xml")).getroot()
    cases = dict((c.get("name"), c) for c in root.iter("testcase"))
    assert cases["control-plane/st-db"].find("failure").get("type") in ("RetriesExceeded", "InstallFailed")
    assert cases["control-plane/st-web"].find("failure") is None
    with open(os.path.join(dest, "status.svg")) as handle:
        nodes = status_graph.svg_nodes(handle.read())
    for obj in objects(report).values():
        assert nodes[status_graph.node_id(obj)] == status_graph.COLORS[obj["state"]]
    assert nodes["HelmRelease/control-plane/st-db"] == status_graph.COLORS["failed"]


def test_sliced_run_merged_equals_one_run(full, seeded, tmp_path):
    a, b, merged = str(tmp_path / "a"), str(tmp_path / "b"), str(tmp_path / "merged")
    hosts = seeded[1]  # cluster name -> inventory host
    run_status(seeded, a, "--limit", ",".join(hosts[c] for c in ("management", "hypervisor", "edge")), "--forks", "3")
    run_status(seeded, b, "--limit", ",".join(hosts[c] for c in ("control-plane", "storage")), "--forks", "3")
    assert sorted(c["name"] for c in load(a)["clusters"]) == ["edge", "hypervisor", "management"]
    # alone, slice a cannot know the state of st-api (another cluster's object)
    assert objects(load(a))["hypervisor/st-agent"]["blocked_by"][0]["state"] == "unknown"
    run_status(seeded, merged, "-e", json.dumps({"gitops_status_merge": [a + "/status.json", b + "/status.json"]}))
    assert stable(load(merged)) == stable(load(full[0]))
