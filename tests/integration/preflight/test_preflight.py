"""Every cluster is checked before the first write of site.yml (issue 12 §2, credential hygiene).

Against the running local fleet: bad spokes (dead port, wrong token, expired client certificate)
make site.yml fail in the preflight, naming each spoke, with nothing written on the hub (every
object's resourceVersion compared before and after; on a fresh hub: no flux-system namespace).
"""
import json
import re

import pytest

import pf_helpers as h

pytestmark = pytest.mark.integration


@pytest.fixture
def hub_state(local_fleet):
    return h.HubState(local_fleet)


def test_bad_spokes_fail_site_before_any_write(local_fleet, hub_state, tmp_path):
    port = h.dead_port()
    kcs = {
        "control-plane": h.with_server(h.load_kubeconfig(local_fleet, "control-plane"), "https://127.0.0.1:%d" % port),
        "hypervisor": h.with_user(h.load_kubeconfig(local_fleet, "hypervisor"), {"token": "not-the-token-0123456789abcdef"}),
        "storage": h.with_user(h.load_kubeconfig(local_fleet, "storage"),
                               h.client_cert_user(local_fleet, "storage-admin", ["system:masters"], not_after_days=-1,
                                                  not_before_days=-30)),
    }
    inv = h.inventory(local_fleet, str(tmp_path / "inv"), kubeconfigs=kcs)
    fresh = hub_state.get("/api/v1/namespaces/flux-system") is None
    before = hub_state.snapshot()
    run = h.playbook("site.yml", inv)
    after = hub_state.snapshot()
    assert run.returncode != 0, run.stdout[-3000:]
    out = run.stdout
    assert "preflight failed for 3 cluster(s), nothing was written" in out, out[-3000:]
    assert "cluster control-plane: cannot connect to https://127.0.0.1:%d: connection refused" % port in out
    assert "cluster hypervisor: unauthorized: https://127.0.0.1:" in out
    assert re.search(r"cluster storage: the client certificate \(O=system:masters,CN=storage-admin\) expired at \d{4}-", out)
    # the play stopped at the preflight task: no later task of the run started
    assert "TASK [c5c3.gitops.flux_operator" not in out and "Take the hub for this run" not in out
    assert after == before, sorted(set(after.items()) ^ set(before.items()))[:10]
    if fresh:
        assert hub_state.get("/api/v1/namespaces/flux-system") is None
    assert "not-the-token-0123456789abcdef" not in out


def test_missing_access_and_expiry_warning_through_the_module(local_fleet, tmp_path):
    # a credential the API server accepts but RBAC gives nothing: the preflight lists what is missing
    nobody = h.with_user(h.load_kubeconfig(local_fleet, "storage"), h.client_cert_user(local_fleet, "nobody"))
    # a working credential that expires in 5 days: a warning, not a failure
    soon = h.with_user(h.load_kubeconfig(local_fleet, "hypervisor"),
                       h.client_cert_user(local_fleet, "hypervisor-admin", ["system:masters"], not_after_days=5))
    inv = h.inventory(local_fleet, str(tmp_path / "inv"), kubeconfigs={"storage": nobody, "hypervisor": soon})
    clusters = [{"name": c, "kubeconfig_secret": "%s-kubeconfig" % c, "kubeconfig": str(tmp_path / "inv-kubeconfigs" / ("%s.yaml" % c))}
                for c in ("hypervisor", "storage")]
    run = h.module(inv, "cluster_preflight", {"clusters": clusters, "check_hub": False, "expiry_warning_days": 14})
    assert run.returncode != 0
    assert "preflight failed for 1 cluster(s)" in run.stdout
    assert ("cluster storage: the credential (CN=nobody) may not create namespaces, patch namespaces, "
            "create customresourcedefinitions.apiextensions.k8s.io") in run.stdout
    assert "cluster hypervisor: the client certificate (O=system:masters,CN=hypervisor-admin) expires in 5.0 days" in run.stdout \
        or "expires in 4.9 days" in run.stdout
    ok = h.module(inv, "cluster_preflight", {"clusters": clusters[:1], "check_hub": False}, "-o")
    assert ok.returncode == 0, ok.stdout
    result = json.loads(ok.stdout.split(">>", 1)[1].strip()) if ">>" in ok.stdout else json.loads(ok.stdout.split("=>", 1)[1])
    spoke = result["clusters"][0]
    assert spoke["version"].startswith("v1.") and spoke["credential"]["kind"] == "client-certificate"
    assert spoke["missing_access"] == []
