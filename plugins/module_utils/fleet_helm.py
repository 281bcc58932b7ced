# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)
"""Components (catalog entries) -> HelmReleases, and the OCIRepositories their charts come from.

Split from fleet_model.py: the component fields, how they override the HelmRelease defaults
(a ``null`` removes a default key), ``valuesFrom``, the release namespace on the hub, and the
two chart forms (``spec.chart`` via a HelmRepository/GitRepository, ``spec.chartRef`` to an
OCIRepository). docs/fleet-model.md describes every field. Pure Python, no Ansible imports.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import re

from ansible_collections.c5c3.gitops.plugins.module_utils import fleet_objects as fo
from ansible_collections.c5c3.gitops.plugins.module_utils.fleet_validate import FleetValidationError, check_bool, check_subdomain

# HelmRelease spec fields a component may set directly; each is deep-merged over the same key
# of fleet_helmrelease_defaults, and a null anywhere in it removes that key of the defaults.
HR_FIELDS = (
    "install", "upgrade", "rollback", "uninstall", "test", "driftDetection", "timeout", "maxHistory",
    "suspend", "serviceAccountName", "persistentClient", "postRenderers", "commonMetadata",
    "healthCheckExprs", "waitStrategy", "postRenderStrategy",
)
COMPONENT_FIELDS = frozenset((
    "name", "chart", "version", "source", "namespace", "tier", "values", "valuesFrom", "dependsOn",
    "enabled", "releaseName", "releaseNamespace", "interval", "spec",
) + HR_FIELDS)
# Chart forms of a HelmRepository source (``chartForm``): spec.chart (HelmChart objects made by
# helm-controller) or spec.chartRef to one OCIRepository per release (oci:// repositories only).
CHART_FORMS = ("chart", "chartRef")
HELM_LAYER = {"mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip", "operation": "copy"}
VALUES_FROM_FIELDS = frozenset(("kind", "name", "valuesKey", "targetPath", "optional", "literal"))
_VALUES_KEY = re.compile(r"^[\-._a-zA-Z0-9]+$")
_TARGET_PATH = re.compile(r"^([a-zA-Z0-9_\-.\\/]|\[[0-9]{1,5}\])+$")


def merge_spec(base, override, keep_nulls_under=("values",)):
    """Deep merge for HelmRelease specs: mappings merge, lists/scalars replace, ``None`` deletes.

    Below ``values`` a null is kept: it is Helm's own way to drop a chart default.
    """
    if not isinstance(base, dict) or not isinstance(override, dict):
        return copy.deepcopy(override)
    out = copy.deepcopy(base)
    for key, value in override.items():
        if value is None and key not in keep_nulls_under:
            out.pop(key, None)
        elif key in keep_nulls_under:
            out[key] = fo.deep_merge(out.get(key) or {}, value) if isinstance(value, dict) else copy.deepcopy(value)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_spec(out[key], value, ())
        elif isinstance(value, dict):
            out[key] = merge_spec({}, value, ())
        else:
            out[key] = copy.deepcopy(value)
    return out


def normalize_component(raw, cluster, defaults, hub_release_namespaces):
    """A catalog entry (after overrides) -> the component of the model; raises naming it."""
    what = "cluster %s component %s" % (cluster["name"], raw["name"])
    unknown = sorted(set(raw) - COMPONENT_FIELDS)
    if unknown:
        raise FleetValidationError(
            "%s: unknown field%s %s (known: %s)" % (what, "s" if len(unknown) > 1 else "", ", ".join(unknown),
                                                    ", ".join(sorted(COMPONENT_FIELDS))))
    enabled = check_bool(raw.get("enabled", True), "%s enabled" % what)
    namespace = raw.get("namespace")
    release_ns = raw.get("releaseNamespace")
    if release_ns is None:
        release_ns = namespace if (cluster["hub"] and hub_release_namespaces == "component") else cluster["hub_namespace"]
    elif not cluster["hub"] and release_ns != cluster["hub_namespace"]:
        raise FleetValidationError(
            "%s: releaseNamespace %r: a spoke's HelmRelease must live in the cluster's hub namespace %r, next to "
            "its kubeconfig Secret (only hub components may live elsewhere)" % (what, release_ns, cluster["hub_namespace"]))
    overrides = {}
    for key in HR_FIELDS:
        if key in raw:
            overrides[key] = copy.deepcopy(raw[key])
    values = raw.get("values")
    return {
        "name": raw["name"],
        "chart": raw.get("chart") or raw["name"],
        "version": raw.get("version"),
        "source": raw.get("source"),
        "namespace": namespace,
        "release_namespace": release_ns,
        "tier": raw.get("tier", "infrastructure"),
        "values": copy.deepcopy(values) if values is not None else {},
        "valuesFrom": _values_from(raw.get("valuesFrom"), what),
        "enabled": enabled,
        "releaseName": raw.get("releaseName") or raw["name"],
        "interval": raw.get("interval") or defaults.get("interval") or "30m",
        "overrides": overrides,
        "spec": copy.deepcopy(raw.get("spec") or {}),
        "has_version": raw.get("version") is not None,
    }


def _values_from(entries, what):
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise FleetValidationError("%s valuesFrom must be a list of {kind, name, valuesKey, targetPath, optional}" % what)
    out = []
    for index, entry in enumerate(entries):
        where = "%s valuesFrom[%d]" % (what, index)
        if not isinstance(entry, dict):
            raise FleetValidationError("%s: expected a mapping {kind, name, ...}, got %r" % (where, entry))
        unknown = sorted(set(entry) - VALUES_FROM_FIELDS)
        if unknown:
            raise FleetValidationError("%s: unknown field %s (known: %s)" % (where, ", ".join(unknown), ", ".join(sorted(VALUES_FROM_FIELDS))))
        if entry.get("kind") not in ("ConfigMap", "Secret"):
            raise FleetValidationError("%s: kind %r must be ConfigMap or Secret" % (where, entry.get("kind")))
        check_subdomain(entry.get("name"), "%s name" % where)
        item = {"kind": entry["kind"], "name": entry["name"]}
        if entry.get("valuesKey") is not None:
            key = entry["valuesKey"]
            if not isinstance(key, str) or len(key) > 253 or not _VALUES_KEY.match(key):
                raise FleetValidationError("%s: valuesKey %r must match [-._a-zA-Z0-9]+ (at most 253 characters)" % (where, key))
            item["valuesKey"] = key
        if entry.get("targetPath") is not None:
            path = entry["targetPath"]
            if not isinstance(path, str) or len(path) > 250 or not _TARGET_PATH.match(path):
                raise FleetValidationError("%s: targetPath %r is not a YAML dot-notation path (a.b[0].c)" % (where, path))
            item["targetPath"] = path
        for flag in ("optional", "literal"):
            if flag in entry:
                item[flag] = check_bool(entry[flag], "%s %s" % (where, flag))
        out.append(item)
    return out


def chart_form(comp, src):
    """'chartRef-source' (an OCIRepository source), 'chartRef' (OCIRepository per release) or 'chart'."""
    if src["kind"] == "OCIRepository":
        return "chartRef-source"
    if src["kind"] == "HelmRepository" and src.get("chartForm") == "chartRef":
        return "chartRef"
    return "chart"


def release_oci_repository(cluster, comp, src):
    """The OCIRepository of one release when its HelmRepository source uses chartForm: chartRef:
    named after the HelmRelease, next to it, url = <repository>/<chart>, ref.semver = version."""
    spec = {
        "interval": src["interval"],
        "url": "%s/%s" % (src["url"].rstrip("/"), comp["chart"]),
        "ref": {"semver": comp["version"]},
        "layerSelector": dict(HELM_LAYER),
    }
    for key in ("provider", "insecure", "timeout", "certSecretRef", "serviceAccountName"):
        if src.get(key) is not None:
            spec[key] = copy.deepcopy(src[key])
    if src.get("secretRef"):
        spec["secretRef"] = {"name": src["secretRef"]}
    spec["suspend"] = False
    return {
        "apiVersion": fo.API["OCIRepository"],
        "kind": "OCIRepository",
        "metadata": fo._meta(comp["name"], comp["release_namespace"], comp["tier"], cluster["name"]),
        "spec": spec,
    }


def helm_release(cluster, comp, src, sources_namespace, defaults):
    """HelmRelease named after the component, in its release namespace on the hub.

    The release lands in the component's namespace on the target cluster
    (targetNamespace/storageNamespace) under the chart's plain name (releaseName). Every field
    the model means is emitted, ``values: {}`` included, so that server-side apply owns it.
    """
    form = chart_form(comp, src)
    spec = {
        "interval": comp["interval"],
        "releaseName": comp["releaseName"],
        "targetNamespace": comp["namespace"],
        "storageNamespace": comp["namespace"],
    }
    if form == "chartRef-source":
        spec["chartRef"] = {"kind": "OCIRepository", "name": src["name"], "namespace": sources_namespace}
    elif form == "chartRef":
        spec["chartRef"] = {"kind": "OCIRepository", "name": comp["name"], "namespace": comp["release_namespace"]}
    else:
        spec["chart"] = {"spec": {
            "chart": comp["chart"],
            "version": comp["version"],
            "sourceRef": {"kind": src["kind"], "name": src["name"], "namespace": sources_namespace},
        }}
    base = {k: v for k, v in (defaults or {}).items() if k != "interval"}
    spec.update(merge_spec(base, comp["overrides"], ()))
    if not cluster["hub"]:
        spec["kubeConfig"] = {"secretRef": {"name": cluster["kubeconfig_secret"], "key": "value"}}
    if comp["dependsOn"]:
        spec["dependsOn"] = [dict(d) for d in comp["dependsOn"]]
    spec["values"] = copy.deepcopy(comp["values"])
    if comp["valuesFrom"]:
        spec["valuesFrom"] = [dict(v) for v in comp["valuesFrom"]]
    if comp.get("spec"):
        spec = merge_spec(spec, comp["spec"])
    spec["suspend"] = bool(spec.get("suspend"))  # owned: a hand-set suspend is undone, not kept (docs/faults.md)
    return {
        "apiVersion": fo.API["HelmRelease"],
        "kind": "HelmRelease",
        "metadata": fo._meta(comp["name"], comp["release_namespace"], comp["tier"], cluster["name"]),
        "spec": spec,
    }
