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
    """FluxInstance ``flux``; optional parts (kustomize, sharding, storage, commonMetadata) only when set."""
    spec = {
        "distribution": copy.deepcopy(settings["distribution"]),
        "components": list(settings["components"]),
        "cluster": copy.deepcopy(settings["cluster"]),
    }
    sync = {k: v for k, v in (settings.get("sync") or {}).items() if v not in (None, "")}
    if sync.get("url"):  # no url: no spec.sync (gitops_delivery: direct without a sync repository)
        sync["path"] = sync.get("path", "").replace("{hub}", hub_name)
        spec["sync"] = sync
    for key in ("kustomize", "sharding", "storage", "commonMetadata", "wait", "migrateResources"):
        value = settings.get(key)
        if key == "kustomize" and isinstance(value, dict) and not value.get("patches"):
            continue
        if value not in (None, "", {}, []):
            spec[key] = copy.deepcopy(value)
    return {
        "apiVersion": API["FluxInstance"],
        "kind": "FluxInstance",
        "metadata": _meta(settings["name"], settings["namespace"], "instance", hub_name),
        "spec": spec,
    }


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
    if src.get("spec"):
        spec = deep_merge(spec, src["spec"])
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
    if entry.get("spec"):
        spec = deep_merge(spec, entry["spec"])
    return {
        "apiVersion": API["Kustomization"],
        "kind": "Kustomization",
        "metadata": _meta(entry["object_name"], cluster["hub_namespace"], "kustomizations", cluster["name"]),
        "spec": spec,
    }


def helm_release(cluster, comp, src, sources_namespace, defaults):
    """HelmRelease named after the component, in the cluster's hub namespace.

    The release itself lands in the component's namespace on the target cluster
    (targetNamespace/storageNamespace) under the chart's plain name (releaseName).
    """
    chart_spec = {
        "chart": comp["chart"],
        "version": comp["version"],
        "sourceRef": {"kind": src["kind"], "name": src["name"], "namespace": sources_namespace},
    }
    spec = {
        "interval": comp["interval"],
        "chart": {"spec": chart_spec},
        "releaseName": comp["releaseName"],
        "targetNamespace": comp["namespace"],
        "storageNamespace": comp["namespace"],
        "install": copy.deepcopy(defaults.get("install") or {}),
        "upgrade": copy.deepcopy(defaults.get("upgrade") or {}),
    }
    for key in ("timeout", "maxHistory"):
        if defaults.get(key) is not None:
            spec[key] = defaults[key]
    if not cluster["hub"]:
        spec["kubeConfig"] = _kubeconfig_ref(cluster)
    if comp["dependsOn"]:
        spec["dependsOn"] = [dict(d) for d in comp["dependsOn"]]
    if comp["values"]:
        spec["values"] = copy.deepcopy(comp["values"])
    if comp.get("spec"):
        spec = deep_merge(spec, comp["spec"])
    return {
        "apiVersion": API["HelmRelease"],
        "kind": "HelmRelease",
        "metadata": _meta(comp["name"], cluster["hub_namespace"], comp["tier"], cluster["name"]),
        "spec": spec,
    }


def namespace(name, stage, cluster=None):
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(name, None, stage, cluster)}


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
