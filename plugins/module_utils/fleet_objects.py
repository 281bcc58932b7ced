# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)
"""Builders of the Kubernetes objects of the fleet, each built exactly once.

Both sinks consume these dicts (render writes them, apply server-side-applies them), so the
shape here is the shape on the hub. Every builder returns a fresh dict: callers may mutate.
Naming, namespaces and labels follow docs/architecture.md. Pure Python, no Ansible imports.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

from ansible_collections.c5c3.gitops.plugins.module_utils import flux_kinds

# Ownership labels and apiVersions: the one kind table (flux_kinds).
MANAGED_BY = flux_kinds.MANAGED_BY_VALUE
LABEL_MANAGED_BY = flux_kinds.MANAGED_BY
LABEL_STAGE = flux_kinds.STAGE_LABEL
LABEL_CLUSTER = flux_kinds.CLUSTER_LABEL
LABEL_WATCH = "reconcile.fluxcd.io/watch"

# Writers (docs/architecture.md "One writer per object"): bootstrap objects are written by
# Ansible only (they must exist before Flux can read Git); delivered ones by Flux from the sync
# repository (gitops_delivery: git) or by the apply sink (gitops_delivery: direct), never both.
WRITER_BOOTSTRAP = "bootstrap"
WRITER_DELIVERED = "delivered"
BOOTSTRAP_STAGES = ("bootstrap", "instance")

STAGES = ("bootstrap", "instance", "clusters", "sources", "kustomizations", "infrastructure", "services")

API = dict((kind, flux_kinds.api_version(kind)) for kind in (
    "FluxInstance", "HelmRepository", "GitRepository", "OCIRepository", "Kustomization", "HelmRelease", "Namespace"))


def deep_merge(base, override):
    """Recursive dict merge; override wins; lists and scalars are replaced, not merged."""
    if not isinstance(base, dict) or not isinstance(override, dict):
        return copy.deepcopy(override)
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def labels(stage, cluster=None, extra=None):
    out = {LABEL_MANAGED_BY: MANAGED_BY, LABEL_STAGE: stage}
    if cluster:
        out[LABEL_CLUSTER] = cluster
    if extra:
        out.update(extra)
    return out


def _meta(name, namespace, stage, cluster=None):
    md = {"name": name, "labels": labels(stage, cluster)}
    if namespace:
        md["namespace"] = namespace
    return md


def flux_instance(settings, hub_name):
    """FluxInstance ``flux``: every upstream spec field set in the settings (empty ones left out;
    ``sync`` is optional, for direct delivery without a Git sync)."""
    spec = {}
    for key in sorted(settings):
        if key in ("name", "namespace"):
            continue
        value = settings[key]
        if key == "kustomize" and isinstance(value, dict) and not value.get("patches"):
            continue
        if key == "sync" and isinstance(value, dict):
            value = {k: v for k, v in value.items() if v not in (None, "")}
            if not value.get("url"):  # no url: no spec.sync (gitops_delivery: direct without a sync repository)
                continue
            if value.get("path"):
                value["path"] = value["path"].replace("{hub}", hub_name)
        if value not in (None, "", {}, []):
            spec[key] = copy.deepcopy(value)
    return {
        "apiVersion": API["FluxInstance"],
        "kind": "FluxInstance",
        "metadata": _meta(settings["name"], settings["namespace"], "instance", hub_name),
        "spec": spec,
    }


# Source fields copied into the spec as they are (OCIRepository and HelmRepository alike).
_SOURCE_PASSTHROUGH = ("provider", "insecure", "timeout", "layerSelector", "serviceAccountName")


def source(src, namespace):
    """HelmRepository / GitRepository / OCIRepository in the sources namespace."""
    kind = src["kind"]
    spec = {"interval": src["interval"], "url": src["url"]}
    if kind == "HelmRepository" and src["url"].startswith("oci://"):
        # OCI HelmRepositories have no status (Flux >= 2.2): ready by existing.
        spec["type"] = "oci"
    if src.get("ref"):
        spec["ref"] = copy.deepcopy(src["ref"])
    elif kind == "GitRepository":
        spec["ref"] = {"branch": "main"}
    if src.get("secretRef"):
        spec["secretRef"] = {"name": src["secretRef"]}
    if src.get("certSecretRef"):
        spec["certSecretRef"] = {"name": src["certSecretRef"]}
    for key in _SOURCE_PASSTHROUGH:
        if src.get(key) is not None and not (kind == "GitRepository" and key in ("insecure", "layerSelector")):
            spec[key] = copy.deepcopy(src[key])
    if src.get("spec"):
        spec = deep_merge(spec, src["spec"])
    spec["suspend"] = bool(spec.get("suspend"))  # owned, as every field the model means (docs/faults.md)
    return {
        "apiVersion": API[kind],
        "kind": kind,
        "metadata": _meta(src["name"], namespace, "sources"),
        "spec": spec,
    }


def _kubeconfig_ref(cluster):
    return {"secretRef": {"name": cluster["kubeconfig_secret"], "key": "value"}}


def kustomization(cluster, entry, source_ref):
    """Kustomization ``<cluster>-<entry>`` in the cluster's hub namespace."""
    spec = {
        "interval": entry["interval"],
        "path": entry["path"],
        "prune": entry["prune"],
        "sourceRef": copy.deepcopy(source_ref),
    }
    if entry.get("timeout"):
        spec["timeout"] = entry["timeout"]
    if not cluster["hub"]:
        spec["kubeConfig"] = _kubeconfig_ref(cluster)
    if entry["dependsOn"]:
        spec["dependsOn"] = [dict(d) for d in entry["dependsOn"]]
    spec.update(copy.deepcopy(entry.get("fields") or {}))
    if entry.get("spec"):
        spec = deep_merge(spec, entry["spec"])
    spec["suspend"] = bool(spec.get("suspend"))  # owned: a hand-set suspend is undone, not kept (docs/faults.md)
    return {
        "apiVersion": API["Kustomization"],
        "kind": "Kustomization",
        "metadata": _meta(entry["object_name"], cluster["hub_namespace"], "kustomizations", cluster["name"]),
        "spec": spec,
    }


def namespace(name, stage, cluster=None, extra_labels=None, annotations=None):
    md = _meta(name, None, stage, cluster)
    if extra_labels:
        md["labels"] = dict(extra_labels, **md["labels"])
    if annotations:
        md["annotations"] = dict(annotations)
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": md}


def secret_reference(kind, name, namespace_, stage, cluster, keys, variables, values_defined, extra_labels=None):
    """A Secret the apply sink must create, described without its values."""
    return {
        "kind": kind,
        "name": name,
        "namespace": namespace_,
        "stage": stage,
        "cluster": cluster,
        "labels": labels(stage, cluster, extra_labels),
        "keys": list(keys),
        "vars": dict(variables),
        "values_defined": bool(values_defined),
    }


def external_secret(secret, store):
    """ExternalSecret placeholder for the render sink: the Secret comes from the secret store
    (OpenBao via ESO in the design), so the GitOps tree never holds a value."""
    remote_key = store["remote_keys"][secret["kind"]].replace("{name}", secret["name"]).replace(
        "{cluster}", secret["cluster"] or ""
    )
    data = [
        {"secretKey": key, "remoteRef": {"key": remote_key, "property": key}}
        for key in secret["keys"]
    ]
    return {
        "apiVersion": store["api_version"],
        "kind": "ExternalSecret",
        "metadata": {"name": secret["name"], "namespace": secret["namespace"], "labels": labels(secret["stage"], secret["cluster"])},
        "spec": {
            "refreshInterval": store["refresh_interval"],
            "secretStoreRef": {"name": store["name"], "kind": store["kind"]},
            "target": {
                "name": secret["name"],
                "creationPolicy": "Owner",
                "template": {"metadata": {"labels": dict(secret["labels"])}},
            },
            "data": data,
        },
    }


def writer(stage):
    """bootstrap | delivered for a fleet object of ``stage``."""
    return WRITER_BOOTSTRAP if stage in BOOTSTRAP_STAGES else WRITER_DELIVERED


def sort_key(item):
    """Deterministic order of fleet objects: (stage, kind, namespace, name)."""
    obj = item["object"]
    md = obj["metadata"]
    return (STAGES.index(item["stage"]), obj["kind"], md.get("namespace", ""), md["name"])
