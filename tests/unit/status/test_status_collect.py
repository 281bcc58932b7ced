"""fleet_status_info's logic against fake hub/spoke clients: records, requests, chains, unreachable clusters."""
import copy
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from status_fakes import CLUSTERS, HR, collect, helmrelease, release_secret, sample_fleet  # noqa: E402

from ansible_collections.c5c3.gitops.plugins.module_utils import status_collect  # noqa: E402
from ansible_collections.c5c3.gitops.plugins.module_utils.status_collect import merge  # noqa: E402



@pytest.fixture
def fleet():
    return sample_fleet()


def by_name(report):
    return dict((c["name"], c) for c in report["clusters"])


def obj(report, cluster, name):
    return next(o for o in by_name(report)[cluster]["objects"] if o["name"] == name)


def test_states_versions_and_chains(fleet):
    report = collect(fleet)
    assert obj(report, "control-plane", "mariadb-operator")["state"] == "failed"
    assert obj(report, "control-plane", "mariadb-operator")["reason"] == "RetriesExceeded"
    keystone = obj(report, "control-plane", "keystone-operator")
    assert keystone["state"] == "blocked"
    assert keystone["blocked_by"][0]["name"] == "mariadb-operator"
    assert keystone["chains"] == ["HelmRelease control-plane/keystone-operator -> "
                                  "HelmRelease control-plane/mariadb-operator (failed: RetriesExceeded)"]
    # cross-cluster: hypervisor waits for keystone on control-plane, which waits for mariadb
    hv = obj(report, "hypervisor", "hypervisor-operator")
    assert hv["state"] == "blocked"
    assert hv["root_causes"][0]["name"] == "mariadb-operator" and hv["root_causes"][0]["cluster"] == "control-plane"
    assert len(hv["chains"][0].split(" -> ")) == 3
    glance = obj(report, "control-plane", "glance-operator")
    assert glance["state"] == "ready" and glance["installed"]["chart_version"] == "2.1.0"
    assert glance["on_cluster"] == {"revision": 2, "status": "deployed", "chart_version": "2.1.0"}
    assert obj(report, "control-plane", "control-plane-apps")["last_applied_revision"] == "main@sha1:abc"
    s = report["summary"]
    assert (s["ready"], s["failed"], s["blocked"], s["total"]) == (5, 1, 2, 8)
    assert not s["healthy"]


def test_unreachable_and_missing_secret_do_not_hide_others(fleet):
    report = collect(fleet)
    c = by_name(report)
    assert c["hypervisor"]["reachable"] is False
    assert "connection refused" in c["hypervisor"]["spoke"]["error"]
    assert "hv-token" not in c["hypervisor"]["spoke"]["error"]  # credentials scrubbed
    assert c["storage"]["kubeconfig_secret"]["exists"] is False
    assert "not found" in c["storage"]["spoke"]["error"]
    assert c["storage"]["objects"][0]["state"] == "ready"  # hub objects still reported
    assert c["control-plane"]["reachable"] and c["management"]["reachable"]
    assert report["summary"]["unreachable"] == ["hypervisor", "storage"]


def test_spoke_inventory_and_secret_age(fleet):
    report = collect(fleet)
    cp = by_name(report)["control-plane"]
    assert [n["name"] for n in cp["spoke"]["namespaces"]] == ["default", "glance-operator-system"]
    rel = cp["spoke"]["helm_releases"]
    assert len(rel) == 1 and rel[0]["revision"] == 2 and rel[0]["records"] == 2 and rel[0]["chart_version"] == "2.1.0"
    assert "very-secret-value" not in repr(report)  # Helm values never copied
    assert "opaque-token" not in repr(report)
    assert cp["kubeconfig_secret"]["age_seconds"] == 86400
    assert cp["credential"]["auth"] == "token" and cp["credential"]["expires"] is None


def test_requests_grow_with_namespaces_not_objects(fleet):
    hub_client, spokes, factory = fleet
    collect(fleet)
    hub_lists = [c for c in hub_client.calls if c[1].endswith(("helmreleases", "kustomizations"))]
    assert len(hub_lists) == 2 * 4  # two kinds x four hub namespaces
    assert len(spokes["https://cp"].calls) == 2  # namespaces + release Secrets
    assert ("GET", "/api/v1/secrets", (("fieldSelector", "type=helm.sh/release.v1"),)) in spokes["https://cp"].calls
    # more objects, same requests
    big = hub_client.responses[HR % "control-plane"]["items"]
    big.extend(helmrelease("control-plane", "op-%d" % i) for i in range(50))
    before = len(hub_client.calls)
    collect(fleet)
    assert len(hub_client.calls) - before == len(hub_client.calls[:before])


def test_hub_unreachable_reports_every_cluster(fleet):
    hub_client, spokes, factory = fleet
    hub_client.fail = "connect: connection refused"
    report = collect(fleet)
    assert len(report["clusters"]) == 4
    assert all(not c["hub_read"]["ok"] for c in report["clusters"])
    assert report["summary"]["hub_unread"] == ["control-plane", "hypervisor", "management", "storage"]


def volatile_free(report):
    report = copy.deepcopy(report)
    for key in ("elapsed", "requests", "generated_at", "merged_from"):
        report.pop(key, None)
    for c in report["clusters"]:
        c.pop("elapsed", None)
    return report


def test_merged_slices_equal_one_read(fleet):
    whole = collect(fleet)
    first = collect(fleet, [c for c in CLUSTERS if c["name"] in ("management", "hypervisor")])
    second = collect(fleet, [c for c in CLUSTERS if c["name"] in ("control-plane", "storage")])
    # in its slice, hypervisor's dependency is outside the report
    assert obj(first, "hypervisor", "hypervisor-operator")["blocked_by"][0]["state"] == "unknown"
    merged = merge([first, second])
    assert volatile_free(merged) == volatile_free(whole)
    with pytest.raises(ValueError, match="more than one report"):
        merge([first, first])


def test_decode_release_keeps_labels_on_foreign_body():
    sec = release_secret("ns", "x", 3, "1.0.0")
    sec["data"]["release"] = "bm90LWd6aXA="
    rec = status_collect.decode_release(sec)
    assert rec["revision"] == 3 and rec["status"] == "deployed" and rec["decode_error"]
