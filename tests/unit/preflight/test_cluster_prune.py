"""Pruning what removed clusters left on the hub (plugins/module_utils/cluster_prune.py)."""
from ansible_collections.c5c3.gitops.plugins.module_utils import cluster_prune as cp


def owned(kind, name, cluster, namespace=None, **extra):
    md = {"name": name, "uid": "uid-" + name, "labels": cp.ownership_labels(cluster)}
    if namespace:
        md["namespace"] = namespace
    return dict({"kind": kind, "metadata": md}, **extra)


class Hub:
    def __init__(self, secrets=(), namespaces=(), flux=None, in_ns=None):
        self.secrets = list(secrets)
        self.namespaces = list(namespaces)
        self.flux = flux or {}  # path -> items
        self.in_ns = in_ns or {}
        self.deleted = []
        self.gets = 0

    def request(self, method, path, query=None, body=None):
        if method == "DELETE":
            self.deleted.append((path, body["preconditions"]["uid"]))
            return 200, {}
        self.gets += 1
        if path == "/api/v1/secrets":
            assert query["labelSelector"] == cp.SELECTOR
            return 200, {"items": self.secrets}
        if path == "/api/v1/namespaces":
            return 200, {"items": self.namespaces}
        if path in self.in_ns:
            return 200, {"items": self.in_ns[path]}
        items = self.flux.get(path, [])
        if callable(items):
            items = items()
        return 200, {"items": items}


def test_namespace_manifests_skip_shared_and_system():
    got = cp.namespace_manifests([{"name": "a", "namespace": "a"}, {"name": "b", "namespace": "shared"},
                                  {"name": "c", "namespace": "shared"}, {"name": "d", "namespace": "flux-system"}])
    assert [m["metadata"]["name"] for m in got] == ["a"]
    assert got[0]["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "c5c3.gitops",
                                            "gitops.c5c3.io/stage": "clusters", "gitops.c5c3.io/cluster": "a"}


def test_select_only_fully_labelled_objects_of_removed_clusters():
    unlabelled = {"kind": "Secret", "metadata": {"name": "x", "namespace": "gone", "labels": {"gitops.c5c3.io/cluster": "gone"}}}
    other_stage = owned("Secret", "y", "gone", "gone")
    other_stage["metadata"]["labels"]["gitops.c5c3.io/stage"] = "services"
    got = cp.select([owned("Secret", "gone-kubeconfig", "gone", "gone"), owned("Secret", "kept-kubeconfig", "kept", "kept"),
                     unlabelled, other_stage],
                    [owned("Namespace", "gone", "gone"), owned("Namespace", "kube-system", "gone")], {"kept"})
    assert list(got) == ["gone"]
    assert [s["metadata"]["name"] for s in got["gone"]["secrets"]] == ["gone-kubeconfig"]
    assert [n["metadata"]["name"] for n in got["gone"]["namespaces"]] == ["gone"]


def test_prunes_secret_then_namespace_with_uid_preconditions():
    hub = Hub([owned("Secret", "gone-kubeconfig", "gone", "gone", data={"value": "c2VjcmV0"})], [owned("Namespace", "gone", "gone")])
    got = cp.Pruner(hub).run(["kept"])
    assert hub.deleted == [("/api/v1/namespaces/gone/secrets/gone-kubeconfig", "uid-gone-kubeconfig"),
                           ("/api/v1/namespaces/gone", "uid-gone")]
    assert [(p["kind"], p["name"]) for p in got["pruned"]] == [("Secret", "gone-kubeconfig"), ("Namespace", "gone")]
    assert got["kept"] == [] and "sha256:" in got["diff"][0]["before"]["data"]["value"]


def test_check_mode_lists_and_deletes_nothing():
    hr = owned("HelmRelease", "keystone-operator", "gone", "gone")
    hub = Hub([dict(owned("Secret", "gone-kubeconfig", "gone", "gone"), data={"value": "c2VjcmV0"})],
              [owned("Namespace", "gone", "gone")],
              flux={"/apis/helm.toolkit.fluxcd.io/v2/helmreleases": [hr]})
    got = cp.Pruner(hub, check_mode=True).run([])
    assert hub.deleted == []
    assert got["pruned"][0]["after"] == ["HelmRelease gone/keystone-operator"]
    assert "c2VjcmV0" not in str(got)


def test_objects_still_in_use_and_not_being_deleted_keep_the_secret_at_once():
    hr = owned("HelmRelease", "keystone-operator", "gone", "gone")
    hub = Hub([owned("Secret", "gone-kubeconfig", "gone", "gone")], [owned("Namespace", "gone", "gone")],
              flux={"/apis/helm.toolkit.fluxcd.io/v2/helmreleases": [hr]})
    slept = []
    got = cp.Pruner(hub, sleep=slept.append).run([])
    assert hub.deleted == [] and slept == []
    assert "still used by HelmRelease gone/keystone-operator (not being deleted" in got["kept"][0]["reason"]


def test_waits_for_objects_being_deleted_then_prunes():
    hr = owned("HelmRelease", "keystone-operator", "gone", "gone")
    hr["metadata"]["deletionTimestamp"] = "2026-12-01T00:00:00Z"
    calls = {"n": 0}

    def releases():
        calls["n"] += 1
        return [hr] if calls["n"] < 3 else []
    hub = Hub([owned("Secret", "gone-kubeconfig", "gone", "gone")], [],
              flux={"/apis/helm.toolkit.fluxcd.io/v2/helmreleases": releases})
    slept = []
    got = cp.Pruner(hub, sleep=slept.append, clock=lambda: 0).run([])
    assert len(slept) == 2 and [p["kind"] for p in got["pruned"]] == ["Secret"]


def test_wait_is_bounded():
    hr = owned("HelmRelease", "x", "gone", "gone")
    hr["metadata"]["deletionTimestamp"] = "2026-12-01T00:00:00Z"
    hub = Hub([owned("Secret", "gone-kubeconfig", "gone", "gone")], [],
              flux={"/apis/helm.toolkit.fluxcd.io/v2/helmreleases": [hr]})
    t = {"now": 0}

    def sleep(s):
        t["now"] += s
    got = cp.Pruner(hub, wait_timeout=10, poll=2, sleep=sleep, clock=lambda: t["now"]).run([])
    assert hub.deleted == [] and t["now"] == 10 and got["kept"][0]["cluster"] == "gone"


def test_namespace_with_foreign_objects_is_kept():
    hub = Hub([owned("Secret", "gone-kubeconfig", "gone", "gone")], [owned("Namespace", "gone", "gone")],
              in_ns={"/api/v1/namespaces/gone/secrets": [{"metadata": {"name": "someones-secret"}},
                                                         {"metadata": {"name": "t"}, "type": "kubernetes.io/service-account-token"}],
                     "/api/v1/namespaces/gone/configmaps": [{"metadata": {"name": "kube-root-ca.crt"}}]})
    got = cp.Pruner(hub).run([])
    assert hub.deleted == [("/api/v1/namespaces/gone/secrets/gone-kubeconfig", "uid-gone-kubeconfig")]
    assert got["kept"] == [{"cluster": "gone", "reason": "namespace gone still holds someones-secret"}]


def test_nothing_to_do_when_every_cluster_is_kept():
    hub = Hub([owned("Secret", "a-kubeconfig", "a", "a")], [owned("Namespace", "a", "a")])
    assert cp.Pruner(hub).run(["a"]) == {"pruned": [], "kept": [], "diff": []}
