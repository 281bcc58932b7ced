"""Unit tests of the apply sink: changed detection, prune selection, diff redaction, check mode."""
import pytest

from ansible_collections.c5c3.gitops.plugins.module_utils import apply as ap
from ansible_collections.c5c3.gitops.plugins.module_utils import apply_diff as ad
from fake_server import FakeServer

OWNED = {ap.MANAGED_BY: ap.MANAGED_BY_VALUE}


def hr(name, ns="control-plane", stage="infrastructure", spec=None, labels=None):
    lab = dict(OWNED, **{ap.STAGE_LABEL: stage, ap.CLUSTER_LABEL: ns})
    if labels is not None:
        lab = labels
    return {"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
            "metadata": {"name": name, "namespace": ns, "labels": lab},
            "spec": spec or {"interval": "10m", "chart": {"spec": {"chart": name}}}}


def applier(server, **kw):
    return ap.Applier(server, **kw)


# --- pure helpers --------------------------------------------------------------------------------

def test_normalize_accepts_fleet_entries_and_manifests():
    entries = ap.normalize([{"stage": "services", "path": "x.yaml", "object": hr("a")}, hr("b")])
    assert [e["key"] for e in entries] == [("helm.toolkit.fluxcd.io", "HelmRelease", "control-plane", "a"),
                                           ("helm.toolkit.fluxcd.io", "HelmRelease", "control-plane", "b")]
    assert entries[0]["stage"] == "services"
    assert entries[1]["stage"] == "infrastructure"  # from the label


@pytest.mark.parametrize("bad, msg", [
    ({"kind": "HelmRelease", "metadata": {}}, "needs kind and metadata.name"),
    ({"kind": "Widget", "metadata": {"name": "x"}}, "unknown kind"),
    ({"kind": "HelmRelease", "metadata": {"name": "x"}}, "has no metadata.namespace"),
    ("nope", "expected a mapping"),
])
def test_normalize_rejects_bad_items(bad, msg):
    with pytest.raises(ap.ApplyError, match=msg):
        ap.normalize([bad])


def test_normalize_rejects_duplicates():
    with pytest.raises(ap.ApplyError, match="listed twice"):
        ap.normalize([hr("a"), hr("a")])


def test_normalize_drops_namespace_of_cluster_scoped():
    [entry] = ap.normalize([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n", "namespace": "x"}}])
    assert "namespace" not in entry["manifest"]["metadata"]


def test_is_changed():
    before = {"metadata": {"resourceVersion": "5"}}
    assert ad.is_changed(201, None, {"metadata": {"resourceVersion": "6"}})
    assert not ad.is_changed(200, before, {"metadata": {"resourceVersion": "5"}})
    assert ad.is_changed(200, before, {"metadata": {"resourceVersion": "7"}, "spec": {"x": 1}})
    assert not ad.is_changed(200, before, {"metadata": {"resourceVersion": "7"}, "status": {"x": 1}})
    assert ad.is_changed(200, None, {"metadata": {"resourceVersion": "7"}})  # adopted


def test_dry_run_changed_ignores_server_fields():
    live = hr("a")
    live["metadata"].update(resourceVersion="9", managedFields=[{"manager": "x"}], generation=3)
    live["status"] = {"conditions": []}
    same = hr("a")
    same["metadata"].update(resourceVersion="9", managedFields=[{"manager": "y", "time": "now"}], generation=3)
    assert not ad.dry_run_changed(live, same)
    other = hr("a", spec={"interval": "5m"})
    assert ad.dry_run_changed(live, other)
    assert ad.dry_run_changed(None, other)


def test_prune_selector_always_requires_ownership():
    assert ap.prune_selector("services", {"x": "y"}) == {ap.MANAGED_BY: "c5c3.gitops", ap.STAGE_LABEL: "services", "x": "y"}
    with pytest.raises(ap.ApplyError):
        ap.prune_selector(labels={ap.MANAGED_BY: "someone-else"})


def test_select_prune_never_returns_unlabelled_objects():
    live = [hr("owned-gone"), hr("owned-kept"), hr("foreign", labels={}), hr("other-owner", labels={ap.MANAGED_BY: "helm"}),
            hr("other-stage", stage="services")]
    live[0]["kind"] = "HelmRelease"
    desired = {("helm.toolkit.fluxcd.io", "HelmRelease", "control-plane", "owned-kept")}
    # the server's filtering is not trusted: pass everything, including foreign objects
    selector = ap.prune_selector("infrastructure")
    doomed = ap.select_prune(live, desired, selector, ["HelmRelease"], lambda k: "helm.toolkit.fluxcd.io")
    assert [o["metadata"]["name"] for o in doomed] == ["owned-gone"]


def test_select_prune_respects_kinds_and_deletion():
    ks = {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
          "metadata": {"name": "k", "namespace": "n", "labels": dict(OWNED)}}
    dying = hr("dying")
    dying["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    doomed = ap.select_prune([ks, dying], set(), dict(OWNED), ["HelmRelease"], lambda k: "g")
    assert doomed == []


def test_redact_secret_hides_every_value():
    secret = {"apiVersion": "v1", "kind": "Secret",
              "metadata": {"name": "s", "annotations": {ad.LAST_APPLIED: '{"data":{"value":"c2VjcmV0"}}'}},
              "data": {"value": "c2VjcmV0"}, "stringData": {"identity": "PRIVATE KEY"}}
    out = ad.redact_secret(secret)
    text = repr(out)
    assert "c2VjcmV0" not in text and "PRIVATE KEY" not in text
    assert out["data"]["value"].startswith("<redacted> sha256:")
    assert out["data"]["value"] != ad.redact_secret(dict(secret, data={"value": "b3RoZXI="}))["data"]["value"]
    assert secret["data"]["value"] == "c2VjcmV0"  # input untouched


def test_diff_view_shows_labels_annotations_spec_only():
    obj = hr("a")
    obj["metadata"]["resourceVersion"] = "4"
    obj["status"] = {"x": 1}
    view = ad.diff_view(obj)
    assert set(view) == {"metadata", "spec"}
    assert set(view["metadata"]) == {"labels", "annotations"}


# --- the Applier against the in-memory server ------------------------------------------------------

def test_first_apply_creates_then_noop_reports_unchanged():
    server = FakeServer()
    objs = [hr("keystone-operator"), hr("mariadb-operator")]
    first = applier(server).run(objs)
    assert first["changed"] and [a["created"] for a in first["applied"]] == [True, True]
    assert first["namespaces_created"] == ["control-plane"]
    second = applier(server).run(objs)
    assert not second["changed"]
    assert [a["changed"] for a in second["applied"]] == [False, False]
    assert second["applied"][0]["generation"] == 1
    # a no-op costs one LIST per kind and one PATCH per object: no per-object GET
    gets = [c for c in server.calls[-5:] if c[0] == "GET" and c[1].endswith("/keystone-operator")]
    assert gets == []


def test_spec_change_is_reported_with_new_generation():
    server = FakeServer()
    applier(server).run([hr("a")])
    result = applier(server).run([hr("a", spec={"interval": "1m"})])
    assert result["changed"] and result["applied"][0]["generation"] == 2 and not result["applied"][0]["created"]


def test_adopting_a_foreign_object_counts_as_changed():
    server = FakeServer(namespaces=("flux-system", "control-plane"))
    server.put("helmreleases", "control-plane", hr("a", labels={}))
    result = applier(server).run([hr("a")])
    assert result["applied"][0]["changed"]


def test_check_mode_writes_nothing_and_reports_changes():
    server = FakeServer()
    applier(server).run([hr("a")])
    before = dict(server.store)
    calls = len(server.writes())
    result = applier(server, check_mode=True, diff=True).run(
        [hr("a", spec={"interval": "1m"}), hr("b"), hr("c", ns="new-ns")],
        prune={"enabled": True, "stage": "infrastructure"})
    assert server.store == before and len(server.writes()) == calls
    assert [a["changed"] for a in result["applied"]] == [True, True, True]
    assert len(result["diff"]) == 3
    noop = applier(server, check_mode=True).run([hr("a")])
    assert not noop["changed"]


def test_prune_deletes_only_owned_objects_of_the_stage():
    server = FakeServer(namespaces=("flux-system", "control-plane"))
    applier(server).run([hr("keep"), hr("gone"), hr("svc", stage="services")])
    server.put("helmreleases", "control-plane", hr("foreign", labels={"app": "x"}))
    server.put("helmreleases", "control-plane", hr("helm-owned", labels={ap.MANAGED_BY: "Helm"}))
    result = applier(server).run([hr("keep")], prune={"enabled": True, "stage": "infrastructure", "kinds": ["HelmRelease"]})
    assert [p["name"] for p in result["pruned"]] == ["gone"]
    names = sorted(k[2] for k in server.store if k[0] == "helmreleases")
    assert names == ["foreign", "helm-owned", "keep", "svc"]
    assert result["changed"]


def test_prune_disabled_by_default():
    server = FakeServer()
    applier(server).run([hr("a"), hr("b")])
    result = applier(server).run([hr("a")])
    assert result["pruned"] == [] and ("helmreleases", "control-plane", "b") in server.store


def test_apply_error_names_the_object_and_stops_before_dependents():
    server = FakeServer(namespaces=("flux-system", "control-plane"))
    server.fail["bad"] = (422, "spec.interval: Invalid value")
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "bad", "namespace": "control-plane"}, "data": {"v": "eA=="}}
    with pytest.raises(ap.ApplyError, match=r"Secret control-plane/bad: spec.interval: Invalid value") as info:
        applier(server).run([secret, hr("a")])
    assert ("helmreleases", "control-plane", "a") not in server.store
    assert info.value.applied == []


def test_secret_data_never_in_results_or_diff():
    server = FakeServer()
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "flux-system", "namespace": "flux-system"},
              "stringData": {"identity": "-----BEGIN OPENSSH PRIVATE KEY-----"}}
    result = applier(server, diff=True).run([secret])
    assert "PRIVATE KEY" not in repr(result)
    secret2 = dict(secret, stringData={"identity": "-----BEGIN OPENSSH PRIVATE KEY----- rotated"})
    result = applier(server, diff=True).run([secret2])
    assert result["changed"] and "PRIVATE KEY" not in repr(result)
    d = result["diff"][0]
    assert d["before"]["stringData"]["identity"] != d["after"]["stringData"]["identity"]


def test_parallel_workers_give_same_result_in_input_order():
    server = FakeServer()
    objs = [hr("r%03d" % i, ns="ns%d" % (i % 5)) for i in range(60)]
    result = applier(server, workers=16).run(objs)
    assert [a["name"] for a in result["applied"]] == ["r%03d" % i for i in range(60)]
    assert not applier(server, workers=16).run(objs)["changed"]


def test_adopted_object_is_not_reported_as_created():
    server = FakeServer(namespaces=("flux-system", "control-plane"))
    server.put("helmreleases", "control-plane", hr("a", labels={}))
    assert applier(server).run([hr("a")])["applied"][0]["created"] is False


def test_prune_keep_protects_objects_moving_between_stages():
    server = FakeServer(namespaces=("flux-system", "control-plane"))
    applier(server).run([hr("moving"), hr("gone")])
    keep = [{"name": "moving", "namespace": "control-plane"}]  # metadata only: any kind kept
    result = applier(server).run([], prune={"enabled": True, "stage": "infrastructure", "keep": keep})
    assert [p["name"] for p in result["pruned"]] == ["gone"]
    assert ("helmreleases", "control-plane", "moving") in server.store


def test_keep_keys_shapes():
    keys = ap.keep_keys([{"kind": "HelmRelease", "namespace": "a", "name": "x"},
                         {"name": "y", "namespace": "b"},
                         {"stage": "s", "object": hr("z", ns="c")}, "junk"])
    assert keys == {("HelmRelease", "a", "x"), (None, "b", "y"), ("HelmRelease", "c", "z")}


def test_status_write_between_read_and_apply_is_not_a_change():
    before = hr("a")
    before["metadata"]["resourceVersion"] = "5"
    after = hr("a")
    after["metadata"]["resourceVersion"] = "6"
    after["status"] = {"conditions": [{"type": "Ready", "status": "True"}]}
    assert not ad.is_changed(200, before, after)


# --- exclusive alternatives (spec.chart <-> spec.chartRef) -------------------------------------

CHART = {"interval": "10m", "chart": {"spec": {"chart": "a", "reconcileStrategy": "ChartVersion",
                                               "sourceRef": {"kind": "HelmRepository", "name": "r"}}}}
CHART_REF = {"interval": "10m", "chartRef": {"kind": "OCIRepository", "name": "a"}}


@pytest.mark.parametrize("desired, live, stale", [
    (CHART_REF, CHART, ["chart"]),
    (CHART, CHART_REF, ["chartRef"]),
    (CHART, CHART, []),
    (CHART_REF, None, []),
    ({"interval": "1m"}, CHART, []),  # a manifest without either form replaces nothing
])
def test_replaced_alternatives(desired, live, stale):
    info = ap.flux_kinds.lookup("HelmRelease")
    assert ap.replaced_alternatives(info, {"spec": desired}, live and {"spec": live}) == stale


def test_replaced_alternatives_only_for_kinds_that_have_them():
    info = ap.flux_kinds.lookup("Kustomization")
    assert ap.replaced_alternatives(info, {"spec": {"path": "./x"}}, {"spec": {"chart": {}}}) == []


def patches(server):
    return [(c[2].get("dryRun"), c[1].rsplit("/", 1)[1]) for c in server.calls if c[0] == "PATCH"]


def test_switching_chart_form_removes_the_old_form_in_one_merge_patch_first():
    server = FakeServer()
    applier(server).run([hr("a", spec=CHART)])
    del server.calls[:]
    result = applier(server).run([hr("a", spec=CHART_REF)])
    live = server.store[("helmreleases", "control-plane", "a")]
    assert "chart" not in live["spec"] and live["spec"]["chartRef"] == CHART_REF["chartRef"]
    assert result["changed"] and result["applied"][0]["generation"] == 2
    assert patches(server) == [(None, "a"), (None, "a")]  # merge patch, then the apply
    # and back: chartRef goes the same way
    back = applier(server).run([hr("a", spec=CHART)])
    live = server.store[("helmreleases", "control-plane", "a")]
    assert back["changed"] and "chartRef" not in live["spec"] and live["spec"]["chart"] == CHART["chart"]


def test_switching_chart_form_in_check_mode_writes_nothing():
    server = FakeServer()
    applier(server).run([hr("a", spec=CHART)])
    before = dict(server.store)
    writes = len(server.writes())
    result = applier(server, check_mode=True, diff=True).run([hr("a", spec=CHART_REF)])
    assert server.store == before and len(server.writes()) == writes
    assert result["changed"] and len(result["diff"]) == 1
    after = result["diff"][0]["after"]["spec"]
    assert "chart" not in after and after["chartRef"] == CHART_REF["chartRef"]
    assert [p[0] for p in patches(server)][-1:] == ["All"]  # the dry-run merge patch, no apply after it
