"""The simulator's helm-controller with the real helm CLI and charts from the fleet's OCI registry,
and the release process of the design (000: a new chart version inside the range is pushed, a
reconcile is requested, the gate passes only once the release runs that version)."""
from __future__ import annotations

import base64
import gzip
import json
import os
import subprocess
import sys
import uuid

import pytest
from kubernetes import client

from lf_helpers import condition, ready_at_generation

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.join(ROOT, "hack"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration", "readiness"))

from localfleet import charts, helmops  # noqa: E402

import hubkit  # noqa: E402

from ansible_collections.c5c3.gitops.plugins.module_utils import readiness  # noqa: E402

pytestmark = pytest.mark.integration
SECRET = "spoke-kubeconfig"
RANGE = ">=0.1.0 <1.0.0"
CRDS = {"crds": "CreateReplace", "createNamespace": True, "remediation": {"retries": 1}}


class Registry:
    def __init__(self, fleet, tmp):
        self.fleet = fleet
        with open(os.path.join(fleet.state_dir, "registry", "url"), encoding="utf-8") as fh:
            self.url = fh.read().strip()
        self.tmp = tmp
        self.helm = helmops.Helm(fleet.state["helm"], os.path.join(tmp, "helm"))

    def push(self, chart, *versions, fail_template=False):
        for v in versions:
            path = os.path.join(self.tmp, f"{chart}-{v}.tgz")
            with open(path, "wb") as fh:
                fh.write(charts.build(chart, v, {"metrics": {"enabled": True}}, fail_template=fail_template))
            self.helm.push(path, self.url)


@pytest.fixture(scope="module")
def reg(local_fleet, tmp_path_factory):
    return Registry(local_fleet, str(tmp_path_factory.mktemp("charts")))


@pytest.fixture(scope="module")
def modules(local_fleet):
    return hubkit.Hub(local_fleet.kubeconfig(local_fleet.hub))


@pytest.fixture
def rel(hub, reg):
    """A chart of the test's own, a HelmRepository of type oci on the registry, a kubeconfig Secret."""
    chart = "rp-" + uuid.uuid4().hex[:8]
    hub.create("HelmRepository", "local", {"type": "oci", "url": reg.url, "insecure": True, "interval": "1h"})
    hub.kubeconfig_secret(SECRET)
    return chart


def release(hub, chart, version=RANGE, values=None, install=None, upgrade=None):
    return hub.helm_release(chart, secret=SECRET, repo="local", version=version, target=chart, values=values,
                            install=install or CRDS, upgrade=upgrade or CRDS)


def hr(hub, chart, **extra):
    return dict({"kind": "HelmRelease", "name": chart, "namespace": hub.ns}, **extra)


def spoke_release_records(hub, chart):
    items = hub.spoke_core.list_namespaced_secret(chart, label_selector=f"owner=helm,name={chart}").items
    return sorted(items, key=lambda s: int(s.metadata.labels["version"]))


def decode(secret):
    return json.loads(gzip.decompress(base64.b64decode(base64.b64decode(secret.data["release"]))))


def crd_version(hub, chart):
    ext = client.ApiextensionsV1Api(hub.spoke_api)
    crd = ext.read_custom_resource_definition(f"chartprobes.{chart}.charts.c5c3.io")
    return crd.metadata.annotations["charts.c5c3.io/chart-version"]


def request_reconcile(hub, kind, name):
    token = uuid.uuid4().hex
    hub.annotate(kind, name, {"reconcile.fluxcd.io/requestedAt": token})
    return token


def gate_verdict(hub, chart, version):
    """What flux_wait with chart_version concludes about the release now (its pure rules)."""
    obj = hub.get("HelmRelease", chart)
    return readiness.check_chart_version(obj, version, readiness.evaluate(obj))


def stalled(obj):
    c = condition(obj, "Stalled")
    return c is not None and c["status"] == "True"


def test_release_is_helms_own_on_the_spoke(hub, reg, rel):
    reg.push(rel, "0.1.0", "0.2.0", "1.0.0")
    release(hub, rel, values={"replicas": 3, "metrics": {"enabled": False}})
    obj = hub.wait("HelmRelease", rel, ready_at_generation, timeout=90)
    head = obj["status"]["history"][0]
    # the highest version inside the range; 1.0.0 is outside
    assert (head["chartName"], head["chartVersion"], head["version"], head["status"]) == (rel, "0.2.0", 1, "deployed")
    assert head["configDigest"].startswith("sha256:") and head["digest"].startswith("sha256:")
    assert obj["status"]["lastAttemptedRevision"] == "0.2.0"
    assert condition(obj, "Ready")["message"] == \
        f"Helm install succeeded for release {rel}/{rel}.v1 with chart {rel}@0.2.0"
    # Helm's own storage record, rendered objects and CRD
    (record,) = spoke_release_records(hub, rel)
    assert record.type == "helm.sh/release.v1" and record.metadata.name == f"sh.helm.release.v1.{rel}.v1"
    assert record.metadata.labels["status"] == "deployed"
    data = decode(record)
    assert data["chart"]["metadata"]["version"] == "0.2.0"
    assert data["config"] == {"replicas": 3, "metrics": {"enabled": False}}
    dep = client.AppsV1Api(hub.spoke_api).read_namespaced_deployment(rel, rel)
    assert dep.spec.replicas == 3 and dep.metadata.labels["app.kubernetes.io/version"] == "0.2.0"
    cm = hub.spoke_core.read_namespaced_config_map(f"{rel}-values", rel)
    assert "enabled: false" in cm.data["values.yaml"]
    assert crd_version(hub, rel) == "0.2.0"
    out = subprocess.run([reg.helm.binary, "list", "-n", rel, "-o", "json", "--kubeconfig",
                          hub.fleet.kubeconfig(hub.spoke)], capture_output=True, text=True, env=reg.helm.env,
                         check=True)
    assert [(r["name"], r["chart"], r["status"]) for r in json.loads(out.stdout)] == [(rel, f"{rel}-0.2.0", "deployed")]


def test_release_process_new_version_in_range_then_one_outside(hub, reg, rel, modules):
    reg.push(rel, "0.1.0", "1.0.0")
    release(hub, rel)
    hub.wait("HelmRelease", rel, ready_at_generation, timeout=90)
    reg.push(rel, "0.2.0")
    # before the reconcile request the gate does not pass for the new version (the gate's own rule)
    early = gate_verdict(hub, rel, "0.2.0")
    assert early.state == "progressing" and early.reason == "ChartVersionPending", early
    asked, _s, _f = modules.module("flux_reconcile", {"objects": [hr(hub, rel)], "timeout": 90})
    assert asked.get("failed") is not True, asked["msg"]
    gate, _s, _f = modules.module("flux_wait", {"objects": [hr(hub, rel, chart_version="0.2.0")], "timeout": 90})
    assert gate.get("failed") is not True, gate["msg"]
    assert gate["objects"][0]["chart_version"] == "0.2.0"
    obj = hub.get("HelmRelease", rel)
    hist = obj["status"]["history"]
    assert [(h["chartVersion"], h["version"], h["status"]) for h in hist[:2]] == \
        [("0.2.0", 2, "deployed"), ("0.1.0", 1, "superseded")]
    assert condition(obj, "Released")["reason"] == "UpgradeSucceeded"
    assert [s.metadata.labels["status"] for s in spoke_release_records(hub, rel)] == ["superseded", "deployed"]
    assert crd_version(hub, rel) == "0.2.0"  # upgrade.crds CreateReplace replaced the CRD
    # a version outside the range is never picked up
    reg.push(rel, "1.5.0")
    token = request_reconcile(hub, "HelmRelease", rel)
    hub.wait("HelmRelease", rel, lambda o: o["status"].get("lastHandledReconcileAt") == token, timeout=90)
    out = gate_verdict(hub, rel, "1.5.0")
    assert out.state == "progressing" and out.reason == "ChartVersionPending", out
    assert "runs chart version 0.2.0" in out.message
    assert len(spoke_release_records(hub, rel)) == 2


def test_values_typo_fails_with_helms_message_then_stalls(hub, reg, rel):
    reg.push(rel, "0.1.0")
    release(hub, rel, values={"metrics": {"enabeld": True}})
    obj = hub.wait("HelmRelease", rel, stalled, timeout=90)
    ready = condition(obj, "Ready")
    assert ready["status"] == "False" and ready["reason"] == "InstallFailed"
    assert f"Helm install failed for release {rel}/{rel} with chart {rel}@0.1.0: " in ready["message"]
    assert "Additional property enabeld is not allowed" in ready["message"]
    assert condition(obj, "Stalled")["reason"] == "RetriesExceeded"
    assert obj["status"]["installFailures"] == 2  # the attempt and one retry (remediation.retries: 1)
    assert not spoke_release_records(hub, rel)  # Helm refused before writing a release


def test_unresolvable_range_is_not_ready_with_the_source_message(hub, reg, rel):
    reg.push(rel, "0.1.0")
    release(hub, rel, version=">=5.0.0 <6.0.0")
    obj = hub.wait("HelmRelease", rel, lambda o: (condition(o, "Ready") or {}).get("status") == "False", timeout=60)
    ready = condition(obj, "Ready")
    assert ready["reason"] == "SourceNotReady"
    assert f"no '{rel}' chart with version matching '>=5.0.0 <6.0.0' found" in ready["message"]
    assert not spoke_release_records(hub, rel)


def test_failing_upgrade_is_rolled_back_then_stalled(hub, reg, rel):
    reg.push(rel, "0.1.0")
    release(hub, rel)
    hub.wait("HelmRelease", rel, ready_at_generation, timeout=90)
    reg.push(rel, "0.2.0", fail_template=True)
    request_reconcile(hub, "HelmRelease", rel)
    obj = hub.wait("HelmRelease", rel, stalled, timeout=90)
    ready = condition(obj, "Ready")
    assert ready["reason"] == "UpgradeFailed" and "template failure on purpose" in ready["message"]
    assert obj["status"]["upgradeFailures"] == 2 and obj["status"]["lastAttemptedRevision"] == "0.2.0"
    # the release still runs 0.1.0: Helm rolled the first failure back (retries: 1)
    records = spoke_release_records(hub, rel)
    deployed = [decode(s)["chart"]["metadata"]["version"] for s in records if s.metadata.labels["status"] == "deployed"]
    assert deployed == ["0.1.0"]
    # the gate fails at once: the failure is at the expected version
    assert gate_verdict(hub, rel, "0.2.0").state == "failed"


def test_ocirepository_chart_ref(hub, reg):
    chart = "rp-" + uuid.uuid4().hex[:8]
    reg.push(chart, "0.1.0", "0.2.0", "1.0.0")
    hub.kubeconfig_secret(SECRET)
    hub.create("OCIRepository", chart, {"url": f"{reg.url}/{chart}", "insecure": True, "interval": "1h",
                                        "ref": {"semver": RANGE}})
    src = hub.wait("OCIRepository", chart, ready_at_generation, timeout=60)
    assert src["status"]["artifact"]["revision"].startswith("0.2.0@sha256:")
    hub.create("HelmRelease", chart, {"interval": "10m", "releaseName": chart, "targetNamespace": chart,
                                      "chartRef": {"kind": "OCIRepository", "name": chart},
                                      "kubeConfig": {"secretRef": {"name": SECRET}}, "install": CRDS, "upgrade": CRDS})
    obj = hub.wait("HelmRelease", chart, ready_at_generation, timeout=90)
    assert obj["status"]["history"][0]["chartVersion"] == "0.2.0"
    reg.push(chart, "0.3.0", "1.1.0")
    # the source's new revision alone brings the release to the new version (no request on the release)
    request_reconcile(hub, "OCIRepository", chart)
    src = hub.wait("OCIRepository", chart, lambda o: o["status"]["artifact"]["revision"].startswith("0.3.0@"),
                   timeout=60)
    obj = hub.wait("HelmRelease", chart, lambda o: ready_at_generation(o) and
                   o["status"]["history"][0]["chartVersion"] == "0.3.0", timeout=90)
    assert obj["status"]["history"][1]["chartVersion"] == "0.2.0"
    assert crd_version(hub, chart) == "0.3.0"


def test_source_without_insecure_fails_like_flux(hub, reg):
    chart = "rp-" + uuid.uuid4().hex[:8]
    reg.push(chart, "0.1.0")
    hub.create("HelmRepository", "strict", {"type": "oci", "url": reg.url, "interval": "1h"})
    hub.kubeconfig_secret(SECRET)
    hub.helm_release(chart, secret=SECRET, repo="strict", version=RANGE, target=chart, install=CRDS)
    obj = hub.wait("HelmRelease", chart, lambda o: "server gave HTTP response to HTTPS client" in
                   ((condition(o, "Ready") or {}).get("message") or ""), timeout=60)
    assert condition(obj, "Ready")["reason"] == "SourceNotReady"
