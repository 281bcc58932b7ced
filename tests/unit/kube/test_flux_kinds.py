"""The one kind table: complete entries, and every reader derives its sets from it."""
import pytest

from ansible_collections.c5c3.gitops.plugins.filter.flux_kinds import flux_kind, flux_kinds_with
from ansible_collections.c5c3.gitops.plugins.module_utils import apply, fleet_objects, flux_kinds, readiness, reconcile

FACTS = ("group", "version", "plural", "namespaced", "readiness", "strict", "depends_on", "reconcilable",
         "force_reset", "prunable", "prune_default", "apply_order", "uses_kubeconfig", "oci_static")


@pytest.mark.parametrize("kind", sorted(flux_kinds.KINDS))
def test_every_entry_has_every_fact(kind):
    entry = flux_kinds.KINDS[kind]
    assert set(FACTS) <= set(entry)
    assert entry["readiness"] in ("conditions", "existence", "rollout")
    assert not entry["prune_default"] or entry["prunable"]


def test_readers_derive_from_the_table():
    assert readiness.EXISTENCE_KINDS == {"Secret", "ConfigMap", "Namespace"}
    assert readiness.DEPENDS_ON_KINDS == {"Kustomization", "HelmRelease", "ResourceSet"}
    assert readiness.STRICT_GENERATION_KINDS == {"FluxInstance", "Kustomization", "HelmRelease", "GitRepository",
                                                 "OCIRepository", "HelmRepository", "HelmChart", "Bucket", "ResourceSet"}
    assert {"Secret", "ConfigMap", "Namespace", "Deployment"} <= reconcile.NOT_RECONCILED
    assert "HelmRelease" not in reconcile.NOT_RECONCILED
    assert apply.DEFAULT_PRUNE_KINDS == ("HelmRelease", "Kustomization")
    assert fleet_objects.API["HelmRelease"] == "helm.toolkit.fluxcd.io/v2"
    assert fleet_objects.LABEL_MANAGED_BY == apply.MANAGED_BY == flux_kinds.MANAGED_BY


def test_a_new_kind_is_one_entry(monkeypatch):
    monkeypatch.setitem(flux_kinds.KINDS, "Widget", flux_kinds._kind("example.io", "v1", "widgets", readiness="existence"))
    info = flux_kinds.lookup("Widget")
    assert flux_kinds.collection_path(info, "ns") == "/apis/example.io/v1/namespaces/ns/widgets"
    assert readiness.evaluate({"kind": "Widget", "metadata": {"name": "w"}}, "Widget").state == readiness.READY
    assert flux_kinds.fact("Widget", "readiness") == "existence"


def test_prune_refuses_kinds_controllers_generate():
    class Nothing(object):
        def request(self, *a, **kw):
            raise AssertionError("no request expected")
    with pytest.raises(apply.ApplyError, match="HelmChart is not prunable"):
        apply.Applier(Nothing()).prune([], {"enabled": True, "kinds": ["HelmChart"]}, [])


def test_filters_for_roles():
    assert flux_kinds_with("uses_kubeconfig") == ["HelmRelease", "Kustomization"]
    assert flux_kind("Kustomization")["api_version"] == "kustomize.toolkit.fluxcd.io/v1"
    with pytest.raises(Exception, match="unknown kind fact"):
        flux_kinds_with("nope")
