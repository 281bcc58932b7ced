"""The HelmRelease controller's real Helm part: charts from the local registry, installed by `helm`.

A HelmRelease whose chart comes from the local fleet's registry (a HelmRepository of `type: oci`
or an OCIRepository with a URL under `<state>/registry/url`) is released with the real helm CLI
against the target cluster's kubeconfig; the release record (Helm's `sh.helm.release.v1.*`
Secrets), the rendered objects and the CRDs on the target cluster are Helm's own. Sources
anywhere else are out of reach (no network): for them the simulator keeps recording a release
without a chart (docs/local-fleet.md).

`Driver.source()` resolves the chart (SemVer range against the registry's tags),
`Driver.release()` installs or upgrades, `Driver.remediate()` uninstalls or rolls back.
"""
from __future__ import annotations

import hashlib
import json
import os

from . import helmops, registry

INSTALL, UPGRADE = "install", "upgrade"


class SourceError(Exception):
    """The chart cannot be resolved or pulled: Ready=False with reason/message."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason, self.message = reason, message


class ReleaseFailed(Exception):
    """`helm install|upgrade` failed; message is Helm's."""

    def __init__(self, action: str, message: str):
        super().__init__(message)
        self.action, self.message = action, message


class Location:
    """Where a chart lives in the local registry."""

    def __init__(self, repo: str, chart: str, version_range: str | None, insecure: bool):
        self.repo, self.chart, self.version_range, self.insecure = repo, chart, version_range, insecure


def digest(obj) -> str:
    return "sha256:" + hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class Driver:
    def __init__(self, state_dir: str, helm_bin: str, registry_url: str):
        self.registry_url = registry_url.rstrip("/")
        self.host = registry_url.split("://", 1)[1].split("/", 1)[0]
        self.helm = helmops.Helm(helm_bin, os.path.join(state_dir, "helm"))

    @classmethod
    def from_state(cls, state_dir: str, state: dict):
        url = registry.read_url(state_dir)
        if not url or not state.get("helm"):
            return None
        return cls(state_dir, state["helm"], url)

    # ---------------------------------------------------------------------------- source
    def chart_location(self, skind: str, src: dict | None, chart_name: str):
        """(oci repository, chart, version range or None) when the source is the local registry, else None.

        The registry speaks plain HTTP: a source without `insecure: true` fails as Flux's would
        (SourceError at source())."""
        spec = (src or {}).get("spec") or {}
        url = str(spec.get("url") or "").rstrip("/")
        if not url.startswith("oci://") or url.split("://", 1)[1].split("/", 1)[0] != self.host:
            return None
        if skind == "OCIRepository":
            # the OCIRepository's artifact decides the version (source-controller resolved it)
            repo, _sep, chart = url.rpartition("/")
            revision = ((src.get("status") or {}).get("artifact") or {}).get("revision") or ""
            return Location(repo, chart, revision.split("@", 1)[0] or None, bool(spec.get("insecure")))
        if skind == "HelmRepository" and spec.get("type") == "oci":
            return Location(url, chart_name, None, bool(spec.get("insecure")))
        return None

    def source(self, loc, version_range: str, helmchart: str):
        """(resolved version, path of the pulled tarball); SourceError as Flux words it."""
        repo, chart = loc.repo, loc.chart
        if not loc.insecure:
            base, prefix = registry.http_base(repo)
            raise SourceError("SourceNotReady", f"HelmChart '{helmchart}' is not ready: chart pull error: failed to get "
                                                f"chart version for remote reference: GET https://{base.split('//', 1)[1]}"
                                                f"/v2/{prefix}/{chart}/tags/list: http: server gave HTTP response to "
                                                f"HTTPS client (the local registry is plain HTTP: set insecure: true)")
        try:
            version = helmops.resolve(repo, chart, version_range)
        except helmops.HelmError as exc:
            raise SourceError("SourceNotReady", f"HelmChart '{helmchart}' is not ready: chart pull error: "
                                                f"failed to get chart version for remote reference: {exc}") from exc
        try:
            path = self.helm.pull(repo, chart, version)
        except helmops.HelmError as exc:
            raise SourceError("SourceNotReady", f"HelmChart '{helmchart}' is not ready: chart pull error: "
                                                f"failed to download chart for remote reference: {exc}") from exc
        return version, path

    # --------------------------------------------------------------------------- release
    @staticmethod
    def release_state(api, release: str, namespace: str) -> str:
        """'deployed' if a deployed revision exists, 'broken' for records without one, else 'absent'."""
        from kubernetes import client
        from kubernetes.client.rest import ApiException
        try:
            items = client.CoreV1Api(api).list_namespaced_secret(
                namespace, label_selector=f"owner=helm,name={release}", _request_timeout=10).items
        except ApiException:
            raise
        except Exception as exc:  # noqa: BLE001 - urllib3: the spoke is unreachable
            raise ConnectionError(f"{api.configuration.host}: {exc}") from exc
        if not items:
            return "absent"
        if any((s.metadata.labels or {}).get("status") == "deployed" for s in items):
            return "deployed"
        return "broken"

    def release(self, *, api, kubeconfig: bytes, spec: dict, release: str, namespace: str, chart_path: str,
                values: dict, force: bool = False):
        """Install or upgrade (as the storage says); returns (action, Flux history snapshot)."""
        current = self.release_state(api, release, namespace)  # ApiException/ConnectionError: StateError
        action = UPGRADE if current == "deployed" else INSTALL
        opts = spec.get(action) or {}
        crds = opts.get("crds") or ("Create" if action == INSTALL else "Skip")
        try:
            if current == "broken":  # only failed/pending records: start over, as a new install
                self.helm.uninstall(release, namespace, kubeconfig)
            crd_objs = helmops.chart_crds(chart_path)
            if crds == "CreateReplace" or (action == UPGRADE and crds == "Create"):
                helmops.apply_crds(api, crd_objs, crds)
            timeout = opts.get("timeout") or spec.get("timeout")
            if action == INSTALL:
                rel = self.helm.install(release, namespace, chart_path, values, kubeconfig, crds=crds,
                                        create_namespace=bool(opts.get("createNamespace")), timeout=timeout,
                                        description="Install complete (helm-controller of the c5c3 local fleet)")
            else:
                rel = self.helm.upgrade(release, namespace, chart_path, values, kubeconfig, timeout=timeout,
                                        force=force or bool(opts.get("force")),
                                        description="Upgrade complete (helm-controller of the c5c3 local fleet)")
        except helmops.HelmError as exc:
            raise ReleaseFailed(action, str(exc)) from exc
        except Exception as exc:  # noqa: BLE001 - CRD writes: the API's message
            raise ReleaseFailed(action, f"failed to apply CRDs: {getattr(exc, 'reason', None) or exc}") from exc
        return action, snapshot(rel, values)

    def remediate(self, *, action: str, kubeconfig: bytes, release: str, namespace: str) -> str:
        """Uninstall a failed install, roll back a failed upgrade; returns Flux's Remediated reason."""
        try:
            if action == INSTALL:
                self.helm.uninstall(release, namespace, kubeconfig)
                return "UninstallSucceeded"
            self.helm.rollback(release, namespace, kubeconfig)
            return "RollbackSucceeded"
        except helmops.HelmError as exc:
            if action == INSTALL and "not found" in str(exc):
                return "UninstallSucceeded"
            return "UninstallFailed" if action == INSTALL else "RollbackFailed"


def snapshot(rel: dict, values: dict) -> dict:
    """status.history entry (Flux helm-controller v2 `Snapshot`) of a Helm release."""
    info = rel.get("info") or {}
    meta = (rel.get("chart") or {}).get("metadata") or {}
    return {
        "name": rel["name"], "namespace": rel["namespace"], "version": rel["version"],
        "status": info.get("status", "deployed"),
        "chartName": meta.get("name"), "chartVersion": meta.get("version"), "appVersion": meta.get("appVersion"),
        "configDigest": digest(values or {}),
        "firstDeployed": _ts(info.get("first_deployed")), "lastDeployed": _ts(info.get("last_deployed")),
        "digest": digest({"name": rel["name"], "namespace": rel["namespace"], "version": rel["version"],
                          "chart": meta, "config": rel.get("config") or {}, "manifest": rel.get("manifest", "")}),
    }


def _ts(text: str | None) -> str | None:
    """Helm's RFC 3339 timestamps with nanoseconds -> seconds precision (as metav1.Time)."""
    if not text:
        return None
    head = text[:19]
    return head + "Z"


def oci_artifact(driver: Driver | None, src: dict):
    """(revision, digest) of an OCIRepository in the local registry (tag or semver resolved against
    its tags, `<version>@<manifest digest>` as source-controller reports it); None for other URLs."""
    spec = src.get("spec") or {}
    url = str(spec.get("url") or "").rstrip("/")
    if driver is None or not url.startswith("oci://") or url.split("://", 1)[1].split("/", 1)[0] != driver.host:
        return None
    repo, _sep, chart = url.rpartition("/")
    ref = spec.get("ref") or {}
    if not spec.get("insecure"):
        raise SourceError("OCIArtifactPullFailed", f"failed to determine artifact digest: GET https://{driver.host}/v2/: "
                                                   "http: server gave HTTP response to HTTPS client")
    try:
        if ref.get("semver"):
            tag = helmops.resolve(repo, chart, ref["semver"])
        else:
            tag = ref.get("tag") or "latest"
            if tag not in registry.tags(repo, chart):
                raise helmops.HelmError(f"{url}:{tag}: not found")
        d = ref.get("digest") or registry.manifest_digest(repo, chart, tag)
    except (helmops.HelmError, registry.RegistryError) as exc:
        raise SourceError("OCIArtifactPullFailed", f"failed to determine artifact digest: {exc}") from exc
    return f"{tag}@{d}", d


def compose_values(spec: dict, namespace: str, read) -> dict:
    """The values helm-controller hands to Helm: `valuesFrom` in order, then `spec.values` on top.

    read(kind, namespace, name) -> {key: text} or None (not found). A missing reference fails
    unless `optional: true`, with helm-controller's wording (SourceError reason InitFailed)."""
    import yaml

    from .charts import deep_merge

    out: dict = {}
    for ref in spec.get("valuesFrom") or []:
        kind, name = ref.get("kind", "ConfigMap"), ref.get("name")
        key = ref.get("valuesKey") or "values.yaml"
        what = f"could not resolve {kind} chart values reference '{namespace}/{name}' with key '{key}'"
        data = read(kind, namespace, name)
        if data is None or key not in data:
            if ref.get("optional"):
                continue
            plural = "configmaps" if kind == "ConfigMap" else "secrets"
            raise SourceError("InitFailed", f'{what}: {plural} "{name}" not found' if data is None
                              else f"{what}: key not found")
        text = data[key]
        if ref.get("targetPath"):
            node = out
            parts = ref["targetPath"].split(".")
            for part in parts[:-1]:
                if not isinstance(node.get(part), dict):
                    node[part] = {}
                node = node[part]
            node[parts[-1]] = text
            continue
        try:
            vals = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise SourceError("InitFailed", f"{what}: unable to read values: {exc}") from exc
        if not isinstance(vals, dict):
            raise SourceError("InitFailed", f"{what}: values are not a map")
        out = deep_merge(out, vals)
    return deep_merge(out, spec.get("values") or {})
