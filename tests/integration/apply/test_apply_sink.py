"""flux_apply and cluster_kubeconfig against the local fleet (real kube-apiservers).

Applier-level tests use the library directly; module-level tests run the modules through
`ansible` ad hoc (check mode, no_log and -vvv output are Ansible's behaviour, not the library's).
Every test works in namespaces of its own, so it can share a fleet with other tests.
"""
import base64
import json
import os
import subprocess
import sys
import uuid

import pytest
import yaml

from ansible_collections.c5c3.gitops.plugins.module_utils import apply as ap
from ansible_collections.c5c3.gitops.plugins.module_utils.kube import client_from_kubeconfig

pytestmark = pytest.mark.integration

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
OWNED = {ap.MANAGED_BY: ap.MANAGED_BY_VALUE, ap.STAGE_LABEL: "itest"}


@pytest.fixture
def ns():
    return "it-%s" % uuid.uuid4().hex[:8]


@pytest.fixture
def hub(local_fleet):
    client = client_from_kubeconfig(local_fleet.kubeconfig(local_fleet.hub))
    yield client
    client.close()


def hr(name, ns, labels=None, interval="10m"):
    return {"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
            "metadata": {"name": name, "namespace": ns, "labels": dict(OWNED) if labels is None else labels},
            "spec": {"interval": interval, "suspend": True,  # nothing reconciles it
                     "chart": {"spec": {"chart": name, "sourceRef": {"kind": "HelmRepository", "name": "none"}}}}}


def our_fields(obj):
    return [m for m in obj["metadata"]["managedFields"] if m["manager"] == "c5c3.gitops"]


def live(hub, obj):
    info = ap.flux_kinds.lookup(obj["kind"])
    m = obj["metadata"]
    return ap.Applier(hub).get(info, m.get("namespace"), m["name"])


def test_create_then_noop_keeps_resource_version(hub, ns):
    objs = [hr("a", ns), hr("b", ns)]
    first = ap.Applier(hub).run(objs)
    assert first["changed"] and all(a["created"] for a in first["applied"]) and first["namespaces_created"] == [ns]
    ours = our_fields(live(hub, objs[0]))
    second = ap.Applier(hub).run(objs)
    assert not second["changed"] and not any(a["changed"] for a in second["applied"])
    # the simulator may write status meanwhile; our own field manager's entry must be untouched
    assert our_fields(live(hub, objs[0])) == ours
    third = ap.Applier(hub).run([hr("a", ns, interval="5m"), hr("b", ns)])
    assert [a["changed"] for a in third["applied"]] == [True, False]
    assert third["applied"][0]["generation"] == 2


def test_check_mode_writes_nothing(hub, ns):
    ap.Applier(hub).run([hr("a", ns)])
    rv = live(hub, hr("a", ns))["metadata"]["resourceVersion"]
    other_ns = ns + "-new"
    result = ap.Applier(hub, check_mode=True, diff=True).run(
        [hr("a", ns, interval="1m"), hr("c", ns), hr("d", other_ns)],
        prune={"enabled": True, "stage": "itest"})
    assert [a["changed"] for a in result["applied"]] == [True, True, True]
    assert live(hub, hr("a", ns))["metadata"]["resourceVersion"] == rv
    assert live(hub, hr("c", ns)) is None
    assert ap.Applier(hub).get(ap.flux_kinds.lookup("Namespace"), None, other_ns) is None
    assert any(d["after"].get("spec", {}).get("interval") == "1m" for d in result["diff"])


def test_prune_deletes_only_owned_objects(hub, ns):
    ap.Applier(hub).run([hr("keep", ns), hr("gone", ns)])
    ap.Applier(hub).run([hr("foreign", ns, labels={"app": "foreign"}),
                         hr("other-owner", ns, labels={ap.MANAGED_BY: "someone-else", ap.STAGE_LABEL: "itest"})])
    result = ap.Applier(hub).run([hr("keep", ns)], prune={"enabled": True, "stage": "itest", "labels": {}, "kinds": ["HelmRelease"]})
    # other tests' namespaces hold itest objects too: only look at this namespace
    assert [p["name"] for p in result["pruned"] if p["namespace"] == ns] == ["gone"]
    for name, present in (("keep", True), ("gone", False), ("foreign", True), ("other-owner", True)):
        assert (live(hub, hr(name, ns)) is not None) == present, name


# --- modules through ansible ---------------------------------------------------------------------

def ansible(module, args, *flags, check=True):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_CALLBACK_RESULT_FORMAT="json",
               ANSIBLE_STDOUT_CALLBACK="default", ANSIBLE_LOAD_CALLBACK_PLUGINS="1")
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible"), "localhost", "-c", "local",
           "-e", "ansible_python_interpreter=%s" % sys.executable, "-m", module, "-a", json.dumps(args), *flags]
    proc = subprocess.run(cmd, check=False, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError("ansible failed (%d):\n%s\n%s" % (proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:]))
    return proc


def result(proc):
    """The module result of an ad-hoc run (`localhost | STATUS => {json}`)."""
    text = proc.stdout
    start = text.index("localhost | ")
    return json.JSONDecoder().raw_decode(text[text.index("{", start):])[0]


def secrets_of(kubeconfig_text):
    kc = yaml.safe_load(kubeconfig_text)
    out = []
    for u in kc["users"]:
        for key in ("token", "client-key-data", "client-certificate-data"):
            if u["user"].get(key):
                out.append(u["user"][key])
    return out


def read_secret(hub, ns, name):
    return ap.Applier(hub).get(ap.flux_kinds.lookup("Secret"), ns, name)


def test_cluster_kubeconfig_register_noop_rotate_without_leaks(local_fleet, hub, ns, tmp_path):
    spoke = local_fleet.spokes[0]
    text = open(local_fleet.kubeconfig(spoke)).read()
    base = {"kubeconfig": local_fleet.kubeconfig(local_fleet.hub), "cluster": spoke, "namespace": ns}

    first = ansible("c5c3.gitops.cluster_kubeconfig", dict(base, kubeconfig_content=text), "-vvv", "--diff")
    assert result(first)["changed"] and result(first)["created"]
    stored = read_secret(hub, ns, "%s-kubeconfig" % spoke)
    assert base64.b64decode(stored["data"]["value"]).decode() == text
    assert stored["metadata"]["labels"]["reconcile.fluxcd.io/watch"] == "Enabled"

    again = ansible("c5c3.gitops.cluster_kubeconfig", dict(base, kubeconfig_content=text), "-vvv", "--diff")
    assert result(again)["changed"] is False

    rotated = yaml.safe_load(text)
    rotated["users"][0]["name"] = "rotated"
    rotated["contexts"][0]["context"]["user"] = "rotated"
    path = tmp_path / "rotated.yaml"
    path.write_text(yaml.safe_dump(rotated))
    rot = ansible("c5c3.gitops.cluster_kubeconfig", dict(base, kubeconfig_path=str(path)), "-vvv", "--diff")
    assert result(rot)["changed"] and result(rot)["created"] is False
    assert base64.b64decode(read_secret(hub, ns, "%s-kubeconfig" % spoke)["data"]["value"]).decode() == path.read_text()

    for proc in (first, again, rot):
        output = proc.stdout + proc.stderr
        for secret in secrets_of(text):
            assert secret not in output
            assert secret[:40] not in output
        assert base64.b64encode(text.encode()).decode()[:60] not in output


@pytest.mark.parametrize("case", ["exec", "unreachable"])
def test_cluster_kubeconfig_refuses_before_writing(local_fleet, hub, ns, case):
    spoke = local_fleet.spokes[0]
    kc = yaml.safe_load(open(local_fleet.kubeconfig(spoke)))
    if case == "exec":
        kc["users"][0]["user"] = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "aws-iam-authenticator"}}
        expect = "exec credentials"
    else:
        kc["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1"
        expect = "cluster %s: cannot connect to https://127.0.0.1:1: connection refused" % spoke
    proc = ansible("c5c3.gitops.cluster_kubeconfig",
                   {"kubeconfig": local_fleet.kubeconfig(local_fleet.hub), "cluster": spoke, "namespace": ns,
                    "kubeconfig_content": yaml.safe_dump(kc)}, "-vvv", check=False)
    assert proc.returncode != 0
    assert expect in proc.stdout + proc.stderr
    if case == "unreachable":
        assert "connection refused" in proc.stdout and "is the API server running" in proc.stdout
    assert ap.Applier(hub).get(ap.flux_kinds.lookup("Namespace"), None, ns) is None  # nothing written, not even the namespace
    for secret in secrets_of(yaml.safe_dump(kc)):
        assert secret not in proc.stdout + proc.stderr


def test_flux_apply_module_check_mode_and_noop(local_fleet, hub, ns):
    args = {"kubeconfig": local_fleet.kubeconfig(local_fleet.hub), "objects": [hr("m", ns)]}
    check = ansible("c5c3.gitops.flux_apply", args, "--check")
    assert result(check)["changed"] and live(hub, hr("m", ns)) is None
    ansible("c5c3.gitops.flux_apply", args)
    noop = ansible("c5c3.gitops.flux_apply", args)
    assert result(noop)["changed"] is False and result(noop)["applied"][0]["changed"] is False


def test_cluster_kubeconfig_batch_writes_nothing_when_one_spoke_is_bad(local_fleet, hub, ns, tmp_path):
    good = [{"name": s, "hub_namespace": "%s-%s" % (ns, s), "kubeconfig": local_fleet.kubeconfig(s)} for s in local_fleet.spokes]
    bad = yaml.safe_load(open(local_fleet.kubeconfig(local_fleet.spokes[0])))
    bad["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    hub_kc = local_fleet.kubeconfig(local_fleet.hub)
    proc = ansible("c5c3.gitops.cluster_kubeconfig",
                   {"kubeconfig": hub_kc, "clusters": good + [{"name": "broken", "hub_namespace": ns, "kubeconfig": str(path)}]},
                   check=False)
    assert proc.returncode != 0 and "cluster broken: cannot connect to https://127.0.0.1:1" in proc.stdout + proc.stderr
    assert "connection refused" in proc.stdout
    for c in good + [{"hub_namespace": ns}]:
        assert ap.Applier(hub).get(ap.flux_kinds.lookup("Namespace"), None, c["hub_namespace"]) is None
    ok = result(ansible("c5c3.gitops.cluster_kubeconfig", {"kubeconfig": hub_kc, "clusters": good}))
    assert ok["changed"] and [c["cluster"] for c in ok["clusters"]] == local_fleet.spokes
    assert all(c["created"] and c["spoke"]["version"] for c in ok["clusters"])


def test_switching_chart_form_both_ways(hub, ns):
    """spec.chart -> spec.chartRef -> spec.chart on a live HelmRelease (the API server defaults
    fields inside spec.chart.spec that no manager owns; without removing the old form explicitly
    the apply is refused with 422)."""
    template = hr("sw", ns)
    ref = hr("sw", ns)
    del ref["spec"]["chart"]
    ref["spec"]["chartRef"] = {"kind": "OCIRepository", "name": "sw"}
    ap.Applier(hub).run([template])
    assert live(hub, template)["spec"]["chart"]["spec"]["reconcileStrategy"] == "ChartVersion"  # defaulted

    rv = live(hub, template)["metadata"]["resourceVersion"]
    check = ap.Applier(hub, check_mode=True, diff=True).run([ref])
    assert check["changed"] and "chart" not in check["diff"][0]["after"]["spec"]
    assert live(hub, template)["metadata"]["resourceVersion"] == rv  # check mode wrote nothing

    result = ap.Applier(hub).run([ref])
    obj = live(hub, ref)
    assert result["changed"] and "chart" not in obj["spec"] and obj["spec"]["chartRef"]["name"] == "sw"
    assert not ap.Applier(hub).run([ref])["changed"]

    ap.Applier(hub).run([template])
    obj = live(hub, template)
    assert "chartRef" not in obj["spec"] and obj["spec"]["chart"]["spec"]["chart"] == "sw"
