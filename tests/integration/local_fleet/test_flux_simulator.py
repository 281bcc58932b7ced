"""The Flux simulator's rules, against the real kube-apiservers of the local fleet."""
from __future__ import annotations

import base64
import gzip
import json
import time

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from lf_helpers import condition, ready_at_generation, ready_reason

pytestmark = pytest.mark.integration


def release_secret(hub, ns, release, version):
    return hub.spoke_core.read_namespaced_secret(f"sh.helm.release.v1.{release}.v{version}", ns)


def test_helmrelease_ready_at_generation_with_release_on_spoke(hub):
    hub.kubeconfig_secret("spoke-kubeconfig")
    hub.helm_repository()
    hub.helm_release("mariadb-operator", secret="spoke-kubeconfig", target=f"{hub.ns}-mariadb",
                     storage=f"{hub.ns}-mariadb", values={"replicas": 1})
    hr = hub.wait("HelmRelease", "mariadb-operator", ready_at_generation)
    ready = condition(hr, "Ready")
    assert ready["reason"] == "InstallSucceeded"
    assert ready["message"] == (f"Helm install succeeded for release {hub.ns}-mariadb/mariadb-operator.v1 "
                                f"with chart mariadb-operator@1.0.0")
    assert ready["lastTransitionTime"] and ready["observedGeneration"] == 1
    assert condition(hr, "Released")["status"] == "True"
    st = hr["status"]
    assert st["history"][0]["version"] == 1 and st["storageNamespace"] == f"{hub.ns}-mariadb"
    assert st["helmChart"] == f"{hub.ns}/{hub.ns}-mariadb-operator"

    # the release is on the spoke: namespace + Helm storage record with chart, version, values digest
    hub.spoke_core.read_namespace(f"{hub.ns}-mariadb")
    sec = release_secret(hub, f"{hub.ns}-mariadb", "mariadb-operator", 1)
    assert sec.type == "helm.sh/release.v1"
    assert sec.metadata.labels["owner"] == "helm" and sec.metadata.labels["status"] == "deployed"
    assert sec.metadata.annotations["simulator.c5c3.io/chart"] == "mariadb-operator"
    assert sec.metadata.annotations["simulator.c5c3.io/chart-version"] == "1.0.0"
    assert sec.metadata.annotations["simulator.c5c3.io/values-digest"] == st["history"][0]["configDigest"]
    rel = json.loads(gzip.decompress(base64.b64decode(base64.b64decode(sec.data["release"]))))
    assert rel["config"] == {"replicas": 1} and rel["chart"]["metadata"]["version"] == "1.0.0"
    # nothing on the other spokes
    other = client.CoreV1Api(hub.fleet.api_client(hub.fleet.spokes[1]))
    with pytest.raises(ApiException) as exc:
        other.read_namespace(f"{hub.ns}-mariadb")
    assert exc.value.status == 404

    # a spec change is an upgrade at the new generation; the old release is superseded
    hub.patch("HelmRelease", "mariadb-operator", {"spec": {"values": {"replicas": 3}}})
    hr = hub.wait("HelmRelease", "mariadb-operator",
                  lambda o: ready_at_generation(o) and o["metadata"]["generation"] == 2)
    assert condition(hr, "Ready")["reason"] == "UpgradeSucceeded"
    assert hr["status"]["history"][0]["version"] == 2
    assert release_secret(hub, f"{hub.ns}-mariadb", "mariadb-operator", 2).metadata.labels["status"] == "deployed"
    assert release_secret(hub, f"{hub.ns}-mariadb", "mariadb-operator", 1).metadata.labels["status"] == "superseded"


def test_dependency_not_ready(hub):
    hub.kubeconfig_secret("spoke-kubeconfig")
    hub.helm_repository()
    hub.helm_release("keystone-operator", secret="spoke-kubeconfig", target=hub.ns, depends_on=["mariadb-operator"])
    hr = hub.wait("HelmRelease", "keystone-operator", ready_reason("DependencyNotReady"))
    assert condition(hr, "Ready")["status"] == "False"
    assert "mariadb-operator" in condition(hr, "Ready")["message"]
    # waiting on a dependency does not observe the generation (the real controller neither)
    assert hr["status"].get("observedGeneration") != hr["metadata"]["generation"]

    hub.helm_release("mariadb-operator", secret="spoke-kubeconfig", target=hub.ns,
                     annotations={"simulator.c5c3.io/delay": "2s"})
    hr = hub.wait("HelmRelease", "keystone-operator", lambda o: (condition(o, "Ready") or {}).get("message")
                  == f"dependency '{hub.ns}/mariadb-operator' is not ready")
    assert condition(hr, "Ready")["reason"] == "DependencyNotReady"
    hub.wait("HelmRelease", "keystone-operator", ready_at_generation)
    assert ready_at_generation(hub.get("HelmRelease", "mariadb-operator"))


def test_dependents_recover_when_a_dependency_flaps_or_is_recreated(hub):
    """Issue 12 §8: the dependent is re-checked (as Flux requeues it), not held by a stale memo."""
    hub.helm_repository()
    hub.helm_release("db", target=hub.ns)
    hub.helm_release("api", target=hub.ns, depends_on=["db"])
    hub.wait("HelmRelease", "api", ready_at_generation)
    db = hub.wait("HelmRelease", "db", ready_at_generation)
    g, v, p = "helm.toolkit.fluxcd.io", "v2", "helmreleases"

    def set_db_ready(status):
        conds = [dict(c, status=status, reason="ReconciliationSucceeded" if status == "True" else "InstallFailed")
                 if c["type"] == "Ready" else c for c in db["status"]["conditions"]]
        hub.custom.patch_namespaced_custom_object_status(g, v, hub.ns, p, "db", {"status": {"conditions": conds}})

    # not ready and back at the same generation
    set_db_ready("False")
    hub.wait("HelmRelease", "api", ready_reason("DependencyNotReady"))
    set_db_ready("True")
    hub.wait("HelmRelease", "api", ready_at_generation, timeout=20)

    # deleted and re-created (the same spec: generation 1 again)
    hub.custom.delete_namespaced_custom_object(g, v, hub.ns, p, "db")
    hr = hub.wait("HelmRelease", "api", ready_reason("DependencyNotReady"))
    assert "not found" in condition(hr, "Ready")["message"]
    hub.helm_release("db", target=hub.ns)
    hub.wait("HelmRelease", "api", ready_at_generation, timeout=20)


def test_kubeconfig_secret_missing_then_created(hub):
    hub.helm_repository()
    hub.helm_release("glance-operator", secret="late-kubeconfig", target=hub.ns)
    hr = hub.wait("HelmRelease", "glance-operator", ready_reason("RESTClientError"))
    assert condition(hr, "Ready")["message"] == \
        f"could not get KubeConfig secret '{hub.ns}/late-kubeconfig': Secret \"late-kubeconfig\" not found"
    assert condition(hr, "Ready")["status"] == "False"
    hub.kubeconfig_secret("late-kubeconfig")  # the secret watch triggers the retry at once
    hub.wait("HelmRelease", "glance-operator", ready_at_generation, timeout=15)


def test_kubeconfig_key_value_yaml_and_named_key(hub):
    hub.helm_repository()
    hub.kubeconfig_secret("kc-yaml", key="value.yaml")
    hub.kubeconfig_secret("kc-named", key="config")
    hub.helm_release("a", secret="kc-yaml", target=hub.ns)
    spec = {"interval": "10m", "chart": {"spec": {"chart": "b", "version": "1.0.0",
                                                  "sourceRef": {"kind": "HelmRepository", "name": "charts"}}},
            "targetNamespace": hub.ns, "kubeConfig": {"secretRef": {"name": "kc-named", "key": "config"}}}
    hub.create("HelmRelease", "b", spec)
    hub.wait("HelmRelease", "a", ready_at_generation)
    hub.wait("HelmRelease", "b", ready_at_generation)


def test_unreachable_spoke(hub):
    hub.helm_repository()
    hub.kubeconfig_secret("dead-kubeconfig", data=hub.unreachable_kubeconfig())
    hub.helm_release("nova-operator", secret="dead-kubeconfig", target=hub.ns)
    hr = hub.wait("HelmRelease", "nova-operator", ready_reason("StateError"))
    assert "connection refused" in condition(hr, "Ready")["message"]
    assert hr["status"]["observedGeneration"] == 1  # a failure at this generation: waiters can fail fast

    hub.create("GitRepository", "repo", {"url": "https://git.example.org/fleet", "interval": "1m",
                                         "ref": {"branch": "main"}})
    hub.create("Kustomization", "spoke-apps", {"interval": "10m", "path": "./apps", "prune": True,
                                               "sourceRef": {"kind": "GitRepository", "name": "repo"},
                                               "kubeConfig": {"secretRef": {"name": "dead-kubeconfig"}}})
    ks = hub.wait("Kustomization", "spoke-apps", ready_reason("ReconciliationFailed"))
    assert "connection refused" in condition(ks, "Ready")["message"]


def test_secret_rotation_reconciles_referencing_objects(hub):
    hub.helm_repository()
    hub.kubeconfig_secret("rot-kubeconfig")
    hub.helm_release("cinder-operator", secret="rot-kubeconfig", target=hub.ns)
    hub.wait("HelmRelease", "cinder-operator", ready_at_generation)
    hub.kubeconfig_secret("rot-kubeconfig", data=hub.unreachable_kubeconfig())
    hub.wait("HelmRelease", "cinder-operator", ready_reason("StateError"), timeout=15)
    hub.kubeconfig_secret("rot-kubeconfig")
    hr = hub.wait("HelmRelease", "cinder-operator", ready_at_generation, timeout=30)
    assert hr["status"]["history"][0]["version"] == 1  # nothing changed: no new release


def test_install_failed_then_stalled_retries_exceeded(hub):
    hub.kubeconfig_secret("spoke-kubeconfig")
    hub.helm_repository()
    hub.helm_release("neutron-operator", secret="spoke-kubeconfig", target=hub.ns,
                     install={"remediation": {"retries": 2}},
                     annotations={"simulator.c5c3.io/fail": "install"})
    hr = hub.wait("HelmRelease", "neutron-operator",
                  lambda o: (condition(o, "Stalled") or {}).get("status") == "True", timeout=30)
    stalled, ready = condition(hr, "Stalled"), condition(hr, "Ready")
    assert stalled["reason"] == "RetriesExceeded"
    assert stalled["message"] == "Failed to install after 3 attempt(s)"
    assert ready["status"] == "False" and ready["reason"] == "InstallFailed"
    assert ready["message"].startswith(f"Helm install failed for release {hub.ns}/neutron-operator with chart "
                                       f"neutron-operator@1.0.0: ")
    assert hr["status"]["installFailures"] == 3 and hr["status"]["observedGeneration"] == 1
    assert condition(hr, "Reconciling") is None
    with pytest.raises(ApiException):  # nothing was released on the spoke
        release_secret(hub, hub.ns, "neutron-operator", 1)

    # without the fault, a reset request (flux reconcile hr --reset) installs it
    hub.annotate("HelmRelease", "neutron-operator", {"simulator.c5c3.io/fail": None,
                                                     "reconcile.fluxcd.io/requestedAt": "r1",
                                                     "reconcile.fluxcd.io/resetAt": "r1"})
    hr = hub.wait("HelmRelease", "neutron-operator", ready_at_generation)
    assert hr["status"]["lastHandledResetAt"] == "r1" and condition(hr, "Stalled") is None


def test_upgrade_failed_then_stalled(hub):
    hub.kubeconfig_secret("spoke-kubeconfig")
    hub.helm_repository()
    hub.helm_release("placement-operator", secret="spoke-kubeconfig", target=hub.ns)
    hub.wait("HelmRelease", "placement-operator", ready_at_generation)
    hub.annotate("HelmRelease", "placement-operator", {"simulator.c5c3.io/fail": "upgrade"})
    hub.patch("HelmRelease", "placement-operator", {"spec": {"chart": {"spec": {"version": "1.1.0"}}}})
    hr = hub.wait("HelmRelease", "placement-operator",
                  lambda o: (condition(o, "Stalled") or {}).get("reason") == "RetriesExceeded")
    assert condition(hr, "Ready")["reason"] == "UpgradeFailed"
    assert hr["status"]["observedGeneration"] == 2 and hr["status"]["upgradeFailures"] == 1


def test_slow_readiness(hub):
    hub.kubeconfig_secret("spoke-kubeconfig")
    hub.helm_repository()
    t0 = time.monotonic()
    hub.helm_release("horizon-operator", secret="spoke-kubeconfig", target=hub.ns,
                     annotations={"simulator.c5c3.io/delay": "3s"})
    hr = hub.wait("HelmRelease", "horizon-operator", lambda o: condition(o, "Reconciling") is not None)
    assert condition(hr, "Ready")["status"] == "Unknown"
    assert condition(hr, "Reconciling")["reason"] == "Progressing"
    hub.wait("HelmRelease", "horizon-operator", ready_at_generation, timeout=20)
    assert time.monotonic() - t0 >= 3


def test_stale_ready_left_at_old_generation(hub):
    hub.kubeconfig_secret("spoke-kubeconfig")
    hub.helm_repository()
    hub.helm_release("heat-operator", secret="spoke-kubeconfig", target=hub.ns,
                     annotations={"simulator.c5c3.io/stale": "true"})
    hub.wait("HelmRelease", "heat-operator", ready_at_generation)
    hub.patch("HelmRelease", "heat-operator", {"spec": {"values": {"x": 1}}})
    hub.settle()
    hr = hub.get("HelmRelease", "heat-operator")
    assert hr["metadata"]["generation"] == 2
    assert condition(hr, "Ready")["status"] == "True"
    assert hr["status"]["observedGeneration"] == 1 and condition(hr, "Ready")["observedGeneration"] == 1


def test_oci_helmrepository_has_no_status_but_serves_charts(hub):
    hub.kubeconfig_secret("spoke-kubeconfig")
    hub.helm_repository("oci-charts", oci=True)
    hub.helm_release("rabbitmq-operator", secret="spoke-kubeconfig", target=hub.ns, repo="oci-charts")
    hub.wait("HelmRelease", "rabbitmq-operator", ready_at_generation)
    hub.settle()
    status = hub.get("HelmRepository", "oci-charts").get("status") or {}
    # only the CRD's default (observedGeneration: -1) - no conditions, no artifact
    assert not status.get("conditions") and not status.get("artifact")
    assert status.get("observedGeneration", -1) == -1


def test_sources_ready_or_failing_like_source_controller(hub):
    hub.helm_repository()
    repo = hub.wait("HelmRepository", "charts", ready_at_generation)
    assert condition(repo, "Ready")["reason"] == "Succeeded" and repo["status"]["artifact"]["digest"]
    hub.create("OCIRepository", "oci", {"url": "oci://ghcr.io/example/manifests", "interval": "5m",
                                        "ref": {"tag": "v1.2.3"}})
    oci = hub.wait("OCIRepository", "oci", ready_at_generation)
    assert oci["status"]["artifact"]["revision"].startswith("v1.2.3@sha256:")
    hub.create("GitRepository", "private", {"url": "ssh://git@git.example.org/fleet", "interval": "1m",
                                            "ref": {"branch": "main"}, "secretRef": {"name": "git-auth"}})
    git = hub.wait("GitRepository", "private", ready_reason("AuthenticationFailed"))
    assert "git-auth" in condition(git, "Ready")["message"]


def test_kustomization_on_spoke_with_dependencies(hub):
    hub.kubeconfig_secret("spoke-kubeconfig")
    hub.create("GitRepository", "fleet", {"url": "https://git.example.org/fleet", "interval": "1m",
                                          "ref": {"branch": "main"}})
    base = {"interval": "10m", "prune": True, "sourceRef": {"kind": "GitRepository", "name": "fleet"},
            "kubeConfig": {"secretRef": {"name": "spoke-kubeconfig"}}}
    hub.create("Kustomization", "apps", dict(base, path="./apps", dependsOn=[{"name": "infrastructure"}]))
    ks = hub.wait("Kustomization", "apps", ready_reason("DependencyNotReady"))
    assert condition(ks, "Ready")["message"].startswith("unable to get")
    hub.create("Kustomization", "infrastructure", dict(base, path="./infrastructure", wait=True))
    infra = hub.wait("Kustomization", "infrastructure", ready_at_generation)
    assert condition(infra, "Ready")["reason"] == "ReconciliationSucceeded"
    assert condition(infra, "Ready")["message"].startswith("Applied revision: main@sha1:")
    assert condition(infra, "Healthy")["status"] == "True"
    hub.wait("Kustomization", "apps", ready_at_generation)


def test_reconcile_requests_are_handled(hub):
    hub.kubeconfig_secret("spoke-kubeconfig")
    hub.helm_repository()
    hub.helm_release("octavia-operator", secret="spoke-kubeconfig", target=hub.ns)
    hub.wait("HelmRelease", "octavia-operator", ready_at_generation)
    hub.annotate("HelmRelease", "octavia-operator", {"reconcile.fluxcd.io/requestedAt": "2026-01-01T00:00:00Z"})
    hr = hub.wait("HelmRelease", "octavia-operator",
                  lambda o: o["status"].get("lastHandledReconcileAt") == "2026-01-01T00:00:00Z")
    assert hr["status"]["history"][0]["version"] == 1
    hub.annotate("HelmRelease", "octavia-operator", {"reconcile.fluxcd.io/requestedAt": "force-1",
                                                     "reconcile.fluxcd.io/forceAt": "force-1"})
    hr = hub.wait("HelmRelease", "octavia-operator", lambda o: o["status"].get("lastHandledForceAt") == "force-1")
    assert hr["status"]["history"][0]["version"] == 2  # a forced release
    hub.helm_repository("other")
    hub.annotate("HelmRepository", "other", {"reconcile.fluxcd.io/requestedAt": "x"})
    hub.wait("HelmRepository", "other", lambda o: (o.get("status") or {}).get("lastHandledReconcileAt") == "x")


def test_suspended_objects_are_left_alone(hub):
    hub.kubeconfig_secret("spoke-kubeconfig")
    hub.helm_repository()
    spec = {"interval": "10m", "suspend": True, "targetNamespace": hub.ns,
            "kubeConfig": {"secretRef": {"name": "spoke-kubeconfig"}},
            "chart": {"spec": {"chart": "x", "version": "1.0.0", "sourceRef": {"kind": "HelmRepository",
                                                                               "name": "charts"}}}}
    hub.create("HelmRelease", "suspended", spec)
    hub.settle()
    status = hub.get("HelmRelease", "suspended").get("status") or {}
    assert not status.get("conditions") and status.get("observedGeneration", -1) == -1


def test_fluxinstance_fluxreport_and_operator_deployment(hub):
    ns = "flux-system"
    hub.ensure_namespace(ns)
    dep = {"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "flux-operator", "namespace": ns, "labels": {"app.kubernetes.io/name": "flux-operator"}},
           "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "flux-operator"}},
                    "template": {"metadata": {"labels": {"app": "flux-operator"}},
                                 "spec": {"containers": [{"name": "manager",
                                                          "image": "ghcr.io/controlplaneio-fluxcd/flux-operator:v0.58.1"}]}}}}
    try:
        hub.apps.create_namespaced_deployment(ns, dep)
    except ApiException as exc:
        assert exc.status == 409

    def available(d):
        return d.status.available_replicas == 1 and d.status.observed_generation == d.metadata.generation

    d = hub.apps.read_namespaced_deployment_status("flux-operator", ns)
    if not available(d):
        w = watch.Watch()
        for ev in w.stream(hub.apps.list_namespaced_deployment, ns, field_selector="metadata.name=flux-operator",
                           resource_version=d.metadata.resource_version, timeout_seconds=30):
            if available(ev["object"]):
                d = ev["object"]
                w.stop()
        assert available(d), d.status
    assert any(c.type == "Available" and c.status == "True" for c in d.status.conditions)

    try:
        hub.create("FluxInstance", "flux", {"distribution": {"version": "2.x", "registry": "ghcr.io/fluxcd"},
                                            "components": ["source-controller", "kustomize-controller",
                                                           "helm-controller"]}, namespace=ns)
    except ApiException as exc:
        assert exc.status == 409
    fi = hub.wait("FluxInstance", "flux", ready_at_generation, namespace=ns)
    # The fleet is shared: an earlier test (site.yml) may own the FluxInstance already (409 above);
    # the status must list exactly the components its spec asks for.
    wanted = list(fi["spec"]["components"])
    assert "source-controller" in wanted
    assert [c["name"] for c in fi["status"]["components"]] == wanted
    report = hub.wait("FluxReport", "flux",
                      lambda o: (o.get("spec") or {}).get("distribution", {}).get("status") == "Installed"
                      and (condition(o, "Ready") or {}).get("status") == "True", namespace=ns)
    spec = report["spec"]
    assert spec["distribution"]["version"].startswith("v2.")
    assert {c["name"] for c in spec["components"]} == set(wanted)
    assert all(c["ready"] for c in spec["components"])
    kinds = {r["kind"]: r for r in spec["reconcilers"]}
    assert set(kinds["FluxInstance"]["stats"]) == {"running", "failing", "suspended"}
    assert condition(report, "Ready")["status"] == "True"

    # the report follows the fleet: a new failing HelmRelease shows up in the stats
    before = kinds.get("HelmRelease", {"stats": {"failing": 0}})["stats"]["failing"]
    hub.helm_release("never", secret="no-such-secret", target=hub.ns)
    hub.wait("FluxReport", "flux", lambda o: any(
        r["kind"] == "HelmRelease" and r["stats"]["failing"] > before for r in o["spec"]["reconcilers"]),
        namespace=ns)
