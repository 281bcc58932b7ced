"""Fake hub and spoke clients and object builders for the fleet status unit tests."""

import base64
import gzip
import json

import copy

import yaml

from ansible_collections.c5c3.gitops.plugins.module_utils.kubeconfig_secret import scrub
from ansible_collections.c5c3.gitops.plugins.module_utils.status_collect import Collector


class ApiError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class FakeClient:
    """request(method, path, query) over a dict of {path: payload}; records every request."""

    def __init__(self, responses, fail=None):
        self.responses = responses
        self.fail = fail
        self.calls = []

    def request(self, method, path, query=None):
        self.calls.append((method, path, tuple(sorted((query or {}).items()))))
        if self.fail:
            raise ApiError(0, self.fail)
        if path not in self.responses:
            raise ApiError(404, "%s not found" % path)
        return 200, self.responses[path]


def cond(ctype, status, reason, message="", gen=1):
    return {"type": ctype, "status": status, "reason": reason, "message": message, "observedGeneration": gen}


def helmrelease(ns, name, ready=True, reason="InstallSucceeded", message="ok", deps=(), cluster=None,
                version="1.0.0", stalled=False, history=True, gen=1):
    conds = [cond("Ready", "True" if ready else "False", reason, message, gen)]
    if stalled:
        conds.append(cond("Stalled", "True", "RetriesExceeded", "Failed to install after 1 attempt(s)", gen))
    obj = {
        "kind": "HelmRelease",
        "metadata": {"name": name, "namespace": ns, "generation": gen,
                     "labels": {"app.kubernetes.io/managed-by": "c5c3.gitops", "gitops.c5c3.io/stage": "services",
                                "gitops.c5c3.io/cluster": cluster or ns}},
        "spec": {"releaseName": name, "targetNamespace": name + "-system", "storageNamespace": name + "-system",
                 "chart": {"spec": {"chart": name, "version": version}},
                 "kubeConfig": {"secretRef": {"name": "%s-kubeconfig" % (cluster or ns)}},
                 "dependsOn": [dict(d) for d in deps]},
        "status": {"observedGeneration": gen, "conditions": conds},
    }
    if history and ready:
        obj["status"]["history"] = [{"chartName": name, "chartVersion": version, "version": 1, "status": "deployed",
                                     "configDigest": "sha256:x"}]
    return obj


def kustomization(ns, name, ready=True, deps=(), cluster=None, gen=1):
    return {
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": ns, "generation": gen,
                     "labels": {"gitops.c5c3.io/cluster": cluster or ns}},
        "spec": {"path": "./clusters/" + ns, "sourceRef": {"kind": "GitRepository", "name": "flux-system",
                                                             "namespace": "flux-system"},
                 "dependsOn": [dict(d) for d in deps]},
        "status": {"observedGeneration": gen, "lastAppliedRevision": "main@sha1:abc",
                   "conditions": [cond("Ready", "True" if ready else "False",
                                       "ReconciliationSucceeded" if ready else "ReconciliationFailed", "m", gen)]},
    }


def release_secret(ns, name, version, chart_version, status="deployed"):
    rel = {"name": name, "namespace": ns, "version": version,
           "info": {"status": status, "last_deployed": "2026-11-30T10:00:00Z"},
           "chart": {"metadata": {"name": name, "version": chart_version, "appVersion": chart_version}},
           "config": {"password": "very-secret-value"}}
    payload = base64.b64encode(gzip.compress(json.dumps(rel).encode())).decode()
    return {"metadata": {"name": "sh.helm.release.v1.%s.v%d" % (name, version), "namespace": ns,
                         "labels": {"owner": "helm", "name": name, "status": status, "version": str(version)}},
            "type": "helm.sh/release.v1", "data": {"release": base64.b64encode(payload.encode()).decode()}}


def kubeconfig(server, token="opaque-token-0123456789", cert_data=None):
    user = {"client-certificate-data": cert_data, "client-key-data": "a2V5a2V5a2V5"} if cert_data else {"token": token}
    return {"apiVersion": "v1", "kind": "Config", "current-context": "c",
            "clusters": [{"name": "c", "cluster": {"server": server}}],
            "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
            "users": [{"name": "u", "user": user}]}


def kubeconfig_secret(ns, name, kc, written="2026-11-30T00:00:00Z"):
    return {"metadata": {"name": name, "namespace": ns, "creationTimestamp": "2026-11-01T00:00:00Z",
                         "managedFields": [{"manager": "c5c3.gitops", "time": written}]},
            "data": {"value": base64.b64encode(yaml.safe_dump(kc).encode()).decode()}}


def lists(items):
    return {"items": items, "metadata": {"resourceVersion": "1"}}


NOW = 1796083200  # 2026-12-01T00:00:00Z
HR = "/apis/helm.toolkit.fluxcd.io/v2/namespaces/%s/helmreleases"
KS = "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/%s/kustomizations"
SECRET = "/api/v1/namespaces/%s/secrets/%s"
CLUSTERS = [
    {"name": "management", "group": "management", "hub_namespace": "flux-system", "kubeconfig_secret": None, "hub": True},
    {"name": "control-plane", "group": "control_plane", "hub_namespace": "control-plane",
     "kubeconfig_secret": "control-plane-kubeconfig"},
    {"name": "hypervisor", "group": "hypervisor", "hub_namespace": "hypervisor", "kubeconfig_secret": "hypervisor-kubeconfig"},
    {"name": "storage", "group": "storage", "hub_namespace": "storage", "kubeconfig_secret": "storage-kubeconfig"},
]


def spoke_responses(releases, namespaces):
    return {"/api/v1/namespaces": lists([{"metadata": {"name": n}, "status": {"phase": "Active"}} for n in namespaces]),
            "/api/v1/secrets": lists(releases)}


def sample_fleet():
    hub = spoke_responses([release_secret("flux-system", "flux-operator", 1, "0.33.0")], ["default", "flux-system"])
    hub.update({
        HR % "flux-system": lists([helmrelease("flux-system", "flux-operator", cluster="management")]),
        KS % "flux-system": lists([kustomization("flux-system", "flux-system", cluster="management")]),
        HR % "control-plane": lists([
            helmrelease("control-plane", "mariadb-operator", ready=False, reason="InstallFailed",
                        message="Helm install failed: boom", stalled=True),
            helmrelease("control-plane", "keystone-operator", ready=False, reason="DependencyNotReady",
                        message="dependency 'control-plane/mariadb-operator' is not ready",
                        deps=[{"name": "mariadb-operator"}]),
            helmrelease("control-plane", "glance-operator", version="2.1.0"),
        ]),
        KS % "control-plane": lists([kustomization("control-plane", "control-plane-apps")]),
        HR % "hypervisor": lists([helmrelease("hypervisor", "hypervisor-operator", ready=False, reason="DependencyNotReady",
                                              deps=[{"name": "keystone-operator", "namespace": "control-plane"}])]),
        KS % "hypervisor": lists([]),
        HR % "storage": lists([helmrelease("storage", "rook-operator")]),
        KS % "storage": lists([]),
        SECRET % ("control-plane", "control-plane-kubeconfig"): kubeconfig_secret(
            "control-plane", "control-plane-kubeconfig", kubeconfig("https://cp")),
        SECRET % ("hypervisor", "hypervisor-kubeconfig"): kubeconfig_secret(
            "hypervisor", "hypervisor-kubeconfig", kubeconfig("https://hv", token="hv-token-0123456789")),
    })
    spokes = {
        "https://cp": FakeClient(spoke_responses(
            [release_secret("glance-operator-system", "glance-operator", 1, "2.0.0"),
             release_secret("glance-operator-system", "glance-operator", 2, "2.1.0")],
            ["default", "glance-operator-system"])),
        "https://hv": FakeClient({}, fail="connect: connection refused hv-token-0123456789"),
    }
    hub_client = FakeClient(hub)

    def factory(kc, name=None):
        return spokes[kc["clusters"][0]["cluster"]["server"]]

    return hub_client, spokes, factory


def collect(fleet, clusters=None):
    clusters = CLUSTERS if clusters is None else clusters
    hub_client, spokes, factory = fleet
    collector = Collector(hub_client, factory, hub_kubeconfig=kubeconfig("https://hub"), now=NOW, workers=4,
                          scrub=lambda t, s=(): scrub(t, s))
    return collector.collect(copy.deepcopy(clusters))
