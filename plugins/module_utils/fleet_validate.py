# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)
"""Validation of the fleet before anything is written or applied.

Every check raises one FleetValidationError whose message names the offending item
(cluster, component, object), so a run stops with one clear line instead of a half-applied
hub. Two passes: ``validate_model`` on the merged inventory + catalogs, ``validate_objects``
on the built objects (names, duplicates, dependsOn resolution, kinds, cycles).
Pure Python, no Ansible imports.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.c5c3.gitops.plugins.module_utils.semver_range import SemverRangeError, parse_range

KNOWN_GROUPS = ("management", "control_plane", "hypervisor", "storage")
HUB_GROUP = "management"
TIERS = ("infrastructure", "services")
SOURCE_KINDS = ("HelmRepository", "GitRepository", "OCIRepository")
# The upstream FluxInstance spec (fluxcd.controlplane.io/v1), every field reachable from the inventory.
FLUX_INSTANCE_SPEC = ("cluster", "commonMetadata", "components", "distribution", "kustomize", "migrateResources",
                      "sharding", "storage", "sync", "wait")
FLUX_CLUSTER_TYPES = ("kubernetes", "openshift", "aws", "azure", "gcp")
FLUX_CLUSTER_SIZES = ("small", "medium", "large")
# Who writes the delivered objects: Flux from the sync repository, or the apply sink.
DELIVERY_MODES = ("git", "direct")
# Who writes the spoke kubeconfig Secrets: the registration role, or ESO from the tree's ExternalSecrets.
KUBECONFIG_WRITERS = ("registration", "eso")

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DURATION = re.compile(r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$")


class FleetValidationError(ValueError):
    """The inventory or catalogs describe a fleet Flux would refuse; the message names the item."""


def check_label(value, what):
    """A DNS-1123 label (namespaces, cluster names): lowercase alphanumerics and '-', <= 63."""
    if not isinstance(value, str) or not value:
        raise FleetValidationError("%s: a name is required (got %r)" % (what, value))
    if len(value) > 63 or not _DNS1123_LABEL.match(value):
        raise FleetValidationError(
            "%s: %r is not a valid DNS-1123 label (lowercase letters, digits and '-', "
            "starting and ending with a letter or digit, at most 63 characters)" % (what, value)
        )
    return value


def check_subdomain(value, what):
    """A DNS-1123 subdomain (object names): like a label but dots allowed, <= 253."""
    if not isinstance(value, str) or not value:
        raise FleetValidationError("%s: a name is required (got %r)" % (what, value))
    if len(value) > 253 or not _DNS1123_SUBDOMAIN.match(value):
        raise FleetValidationError(
            "%s: %r is not a valid DNS-1123 name (lowercase letters, digits, '-' and '.', "
            "starting and ending with a letter or digit, at most 253 characters)" % (what, value)
        )
    return value


def check_duration(value, what):
    if not isinstance(value, str) or not _DURATION.match(value):
        raise FleetValidationError("%s: %r is not a Go duration such as '10m' or '1h30m'" % (what, value))
    return value


_TRUE = ("true", "yes", "on")
_FALSE = ("false", "no", "off")


def check_bool(value, what):
    """A boolean (YAML true/false, or the strings true/false/yes/no/on/off); anything else is an error."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _TRUE + _FALSE:
        return value.lower() in _TRUE
    raise FleetValidationError("%s: %r is not a boolean (use true or false)" % (what, value))


def check_range(value, what):
    try:
        parse_range(value)
    except SemverRangeError as exc:
        raise FleetValidationError("%s: invalid SemVer range: %s" % (what, exc))
    return value


# --------------------------------------------------------------------------- model pass


def validate_model(model):
    """Checks on the merged model (see fleet_model.build_model for its shape)."""
    fi = model["flux_instance"]
    if fi.get("name") != "flux":
        raise FleetValidationError(
            "FluxInstance %r: the Flux Operator reconciles only a FluxInstance named 'flux' "
            "(set fleet_flux_instance.name to 'flux')" % fi.get("name")
        )
    check_label(fi.get("namespace"), "FluxInstance flux namespace")
    unknown = sorted(set(fi) - set(FLUX_INSTANCE_SPEC) - {"name", "namespace"})
    if unknown:
        raise FleetValidationError(
            "FluxInstance flux: unknown spec field %s (upstream FluxInstance spec: %s)"
            % (", ".join(unknown), ", ".join(FLUX_INSTANCE_SPEC)))
    dist = fi.get("distribution") or {}
    check_range(dist.get("version"), "FluxInstance flux spec.distribution.version")
    if not dist.get("registry"):
        raise FleetValidationError("FluxInstance flux: spec.distribution.registry is required")
    cluster = fi.get("cluster") or {}
    if cluster.get("type") is not None and cluster["type"] not in FLUX_CLUSTER_TYPES:
        raise FleetValidationError("FluxInstance flux: spec.cluster.type %r is not one of %s" % (cluster["type"], ", ".join(FLUX_CLUSTER_TYPES)))
    if cluster.get("size") is not None and cluster["size"] not in FLUX_CLUSTER_SIZES:
        raise FleetValidationError("FluxInstance flux: spec.cluster.size %r is not one of %s" % (cluster["size"], ", ".join(FLUX_CLUSTER_SIZES)))
    sync = fi.get("sync")
    # Optional: without it (or without a url) the apply sink delivers directly (no Git sync on the hub).
    if sync and (not isinstance(sync, dict) or sync.get("url")):
        if not isinstance(sync, dict):
            raise FleetValidationError("FluxInstance flux: spec.sync must be a mapping or null")
        for key in ("kind", "url", "ref", "path"):
            if not sync.get(key):
                raise FleetValidationError("FluxInstance flux: spec.sync.%s is required (or set sync to null for no sync)" % key)
        if sync["kind"] not in ("GitRepository", "OCIRepository", "Bucket"):
            raise FleetValidationError("FluxInstance flux: spec.sync.kind %r is not one of GitRepository, OCIRepository, Bucket" % sync["kind"])
    validate_delivery(model)

    sources = model["sources"]
    for name, src in sources.items():
        what = "source %s" % name
        check_subdomain(name, what)
        if src.get("kind") not in SOURCE_KINDS:
            raise FleetValidationError("%s: kind %r is not one of %s" % (what, src.get("kind"), ", ".join(SOURCE_KINDS)))
        if not src.get("url"):
            raise FleetValidationError("%s: url is required" % what)
        check_duration(src.get("interval"), "%s interval" % what)
        _validate_source(src, what)

    namespaces = {}
    for cluster in model["clusters"]:
        cname = cluster["name"]
        check_label(cname, "cluster %s" % cname)
        ns = check_label(cluster["hub_namespace"], "cluster %s hub namespace (gitops_hub_namespace)" % cname)
        if ns in namespaces:
            raise FleetValidationError(
                "cluster %s: hub namespace %r is already used by cluster %s; every cluster needs its own "
                "(set gitops_hub_namespace)" % (cname, ns, namespaces[ns])
            )
        namespaces[ns] = cname
        for comp in cluster["components"]:
            _validate_component(cluster, comp, sources)
        for entry in cluster["kustomizations"]:
            what = "cluster %s kustomization %s" % (cname, entry["name"])
            check_subdomain(entry["name"], what)
            check_duration(entry["interval"], "%s interval" % what)
            path = entry["path"]
            if not isinstance(path, str) or not path.startswith("./") or ".." in path.split("/"):
                raise FleetValidationError("%s: path %r must be relative to the repository root ('./...')" % (what, path))


SOURCE_FIELDS = {
    "HelmRepository": ("name", "kind", "url", "interval", "secretRef", "spec", "chartForm", "provider", "insecure",
                       "timeout", "certSecretRef"),
    "GitRepository": ("name", "kind", "url", "interval", "ref", "secretRef", "spec", "provider", "timeout"),
    "OCIRepository": ("name", "kind", "url", "interval", "ref", "layerSelector", "secretRef", "provider", "insecure",
                      "timeout", "certSecretRef", "serviceAccountName", "spec"),
}
OCI_PROVIDERS = ("generic", "aws", "azure", "gcp")
# The url schemes of the upstream source CRDs (spec.url pattern). API servers enforce the pattern
# only when the object is applied, after earlier stages were written: the model checks it first.
SOURCE_URL_SCHEMES = {
    "HelmRepository": ("http", "https", "oci"),
    "GitRepository": ("http", "https", "ssh"),
    "OCIRepository": ("oci",),
}


def _validate_source(src, what):
    kind = src["kind"]
    unknown = sorted(set(src) - set(SOURCE_FIELDS[kind]))
    if unknown:
        raise FleetValidationError("%s: unknown field %s for a %s (known: %s)" % (what, ", ".join(unknown), kind, ", ".join(SOURCE_FIELDS[kind])))
    schemes = ["%s://" % x for x in SOURCE_URL_SCHEMES[kind]]
    if not isinstance(src["url"], str) or not src["url"].startswith(tuple(schemes)):
        allowed = schemes[0] if len(schemes) == 1 else "%s or %s" % (", ".join(schemes[:-1]), schemes[-1])
        raise FleetValidationError("%s: url %r must start with %s (kind %s)" % (what, src["url"], allowed, kind))
    if "insecure" in src:
        check_bool(src["insecure"], "%s insecure" % what)
    if src.get("secretRef") is not None:
        check_subdomain(src["secretRef"], "%s secretRef" % what)
    if kind == "HelmRepository":
        form = src.get("chartForm", "chart")
        if form not in ("chart", "chartRef"):
            raise FleetValidationError("%s: chartForm %r is not one of chart, chartRef" % (what, form))
        if form == "chartRef" and not src["url"].startswith("oci://"):
            raise FleetValidationError("%s: chartForm chartRef needs an oci:// url (it makes one OCIRepository per chart)" % what)
        if src.get("provider") is not None and src["provider"] not in OCI_PROVIDERS:
            raise FleetValidationError("%s: provider %r is not one of %s" % (what, src["provider"], ", ".join(OCI_PROVIDERS)))
    if kind == "OCIRepository":
        if src.get("provider") is not None and src["provider"] not in OCI_PROVIDERS:
            raise FleetValidationError("%s: provider %r is not one of %s" % (what, src["provider"], ", ".join(OCI_PROVIDERS)))
        ref = src.get("ref")
        if ref is not None:
            if not isinstance(ref, dict) or not ref or set(ref) - {"tag", "semver", "digest", "semverFilter"}:
                raise FleetValidationError("%s: ref must be a mapping of tag, semver, digest, semverFilter (got %r)" % (what, ref))
            if ref.get("semver") is not None:
                check_range(ref["semver"], "%s ref.semver" % what)
            if ref.get("digest") is not None and not re.match(r"^sha256:[0-9a-f]{64}$", str(ref["digest"])):
                raise FleetValidationError("%s: ref.digest %r must be sha256:<64 hex digits>" % (what, ref["digest"]))
        layer = src.get("layerSelector")
        if layer is not None:
            if not isinstance(layer, dict) or set(layer) - {"mediaType", "operation"}:
                raise FleetValidationError("%s: layerSelector takes mediaType and operation (got %r)" % (what, layer))
            if layer.get("operation") not in (None, "extract", "copy"):
                raise FleetValidationError("%s: layerSelector.operation %r is not one of extract, copy" % (what, layer["operation"]))


def validate_delivery(model):
    """gitops_delivery / gitops_kubeconfig_writer and the FluxInstance sync they need."""
    delivery = model.get("delivery") or "git"
    if delivery not in DELIVERY_MODES:
        raise FleetValidationError("gitops_delivery: %r is not one of %s" % (delivery, ", ".join(DELIVERY_MODES)))
    writer = model.get("kubeconfig_writer") or "registration"
    if writer not in KUBECONFIG_WRITERS:
        raise FleetValidationError("gitops_kubeconfig_writer: %r is not one of %s" % (writer, ", ".join(KUBECONFIG_WRITERS)))
    if writer == "eso" and not model.get("secret_store"):
        raise FleetValidationError("gitops_kubeconfig_writer: eso needs fleet_secret_store (the store the ExternalSecrets read)")
    sync = model["flux_instance"].get("sync") or {}
    if delivery == "direct" and not sync.get("url"):
        return  # no spec.sync: nothing for Flux to sync, the apply sink writes everything
    for key in ("url", "kind", "ref", "path"):
        if not sync.get(key):
            raise FleetValidationError(
                "FluxInstance flux: spec.sync.%s is required%s" % (key, " (gitops_delivery: git publishes to it)" if delivery == "git" else ""))
    if delivery == "git" and sync["kind"] != "GitRepository":
        raise FleetValidationError(
            "gitops_delivery: git publishes to a Git repository, but FluxInstance spec.sync.kind is %s" % sync["kind"])


def validate_sync_overlap(delivery, sync_path, tree_paths):
    """direct mode: the FluxInstance must not sync a path that holds delivered objects, or Flux and
    the apply sink would both write (and prune) them. ``tree_paths``: files and Kustomization
    paths of the delivered objects."""
    if delivery != "direct" or sync_path is None:
        return
    root = sync_path.strip().strip("/")
    while root.startswith("./"):
        root = root[2:]
    root = "" if root in (".", "") else root
    hits = sorted(set(p for p in (x.strip("/").lstrip("./") for x in tree_paths) if not root or p == root or p.startswith(root + "/")))
    if hits:
        raise FleetValidationError(
            "gitops_delivery: direct, but the FluxInstance syncs path %s, which holds objects the apply sink "
            "writes (%s%s): they would have two writers. Remove the sync (gitops_flux_instance: {sync: null}) "
            "or point sync.path outside the tree" % (
                sync_path, ", ".join(hits[:3]), " and %d more" % (len(hits) - 3) if len(hits) > 3 else ""))


def _validate_component(cluster, comp, sources):
    what = "cluster %s component %s" % (cluster["name"], comp["name"])
    check_subdomain(comp["name"], what)
    check_label(comp.get("namespace"), "%s namespace" % what)
    release = comp.get("releaseName")
    if not isinstance(release, str) or len(release) > 53 or not _DNS1123_SUBDOMAIN.match(release):
        raise FleetValidationError("%s: releaseName %r must be a DNS-1123 name of at most 53 characters" % (what, release))
    check_label(comp.get("release_namespace"), "%s releaseNamespace" % what)
    if not comp.get("chart") or not isinstance(comp["chart"], str):
        raise FleetValidationError("%s: chart is required" % what)
    if comp.get("tier") not in TIERS:
        raise FleetValidationError("%s: tier %r is not one of %s" % (what, comp.get("tier"), ", ".join(TIERS)))
    check_duration(comp.get("interval"), "%s interval" % what)
    src = sources.get(comp.get("source"))
    if src is None:
        raise FleetValidationError(
            "%s: source %r is not defined (known sources: %s)" % (what, comp.get("source"), ", ".join(sorted(sources)))
        )
    if src["kind"] == "OCIRepository":
        # spec.chartRef: the chart and its version are the OCIRepository's url and ref.
        if comp.get("has_version"):
            raise FleetValidationError(
                "%s: source %r is an OCIRepository (spec.chartRef): its ref selects the version, so the "
                "component must not set version %r" % (what, comp["source"], comp.get("version")))
    else:
        check_range(comp.get("version"), "%s version" % what)
    if not isinstance(comp.get("values"), dict):
        raise FleetValidationError("%s: values must be a mapping" % what)


# --------------------------------------------------------------------------- CEL rules
# The x-kubernetes-validations (CEL) rules of the upstream CRDs of every kind the model renders.
# API servers before 1.25 (the local fleet runs 1.20) ignore them, so the model enforces them
# itself; tests/unit/fleet/test_crd_schemas.py fails when an upstream rule is neither listed here
# nor in CEL_NOT_CHECKABLE.


def _has(mapping, *path):
    for key in path:
        if not isinstance(mapping, dict) or key not in mapping:
            return False
        mapping = mapping[key]
    return True


def _get(mapping, *path):
    for key in path:
        if not isinstance(mapping, dict):
            return None
        mapping = mapping.get(key)
    return mapping


def _one_kubeconfig_ref(obj):
    kc = _get(obj, "spec", "kubeConfig")
    return kc is None or (("configMapRef" in kc) != ("secretRef" in kc))


def _strategy_ok(obj, section, allowed_with_interval):
    strategy = _get(obj, "spec", section, "strategy")
    if not isinstance(strategy, dict) or "retryInterval" not in strategy:
        return True
    return strategy.get("name") == allowed_with_interval


CEL_RULES = (
    ("FluxInstance", "the only accepted name for a FluxInstance is 'flux'",
     lambda o: _get(o, "metadata", "name") == "flux"),
    ("FluxInstance", ".spec.storage must be set when .spec.sharding.storage is 'persistent'",
     lambda o: _get(o, "spec", "sharding", "storage") != "persistent" or _has(o, "spec", "storage")),
    ("FluxInstance", ".objectLevelWorkloadIdentity must be set to true when .multitenantWorkloadIdentity is set to true",
     lambda o: bool(_get(o, "spec", "cluster", "objectLevelWorkloadIdentity")) or not _get(o, "spec", "cluster", "multitenantWorkloadIdentity")),
    ("FluxInstance", "sync.provider 'gcp' is only supported for OCIRepository and Bucket",
     lambda o: _get(o, "spec", "sync", "provider") != "gcp" or _get(o, "spec", "sync", "kind") in ("OCIRepository", "Bucket")),
    ("FluxInstance", "sync.provider 'github' is only supported for GitRepository",
     lambda o: _get(o, "spec", "sync", "provider") != "github" or _get(o, "spec", "sync", "kind") == "GitRepository"),
    ("HelmRelease", "either chart or chartRef must be set",
     lambda o: _has(o, "spec", "chart") != _has(o, "spec", "chartRef")),
    ("HelmRelease", ".retryInterval cannot be set when .name is 'RemediateOnFailure'",
     lambda o: _get(o, "spec", "install", "strategy", "name") != "RemediateOnFailure"
     or not _has(o, "spec", "install", "strategy", "retryInterval")),
    ("HelmRelease", ".retryInterval can only be set when .name is 'RetryOnFailure'",
     lambda o: _strategy_ok(o, "upgrade", "RetryOnFailure")),
    ("HelmRelease", "exactly one of spec.kubeConfig.configMapRef or spec.kubeConfig.secretRef must be specified",
     _one_kubeconfig_ref),
    ("Kustomization", "exactly one of spec.kubeConfig.configMapRef or spec.kubeConfig.secretRef must be specified",
     _one_kubeconfig_ref),
    ("GitRepository", "serviceAccountName can only be set when provider is 'azure' or 'aws'",
     lambda o: not _has(o, "spec", "serviceAccountName") or _get(o, "spec", "provider") in ("azure", "aws")),
)
# Rules that compare with the object's previous state: nothing to check before it exists.
CEL_NOT_CHECKABLE = ("Sync name is immutable",)


def check_cel(obj):
    """Raise naming the object and the upstream rule's message when a CEL rule does not hold."""
    for kind, message, holds in CEL_RULES:
        if obj.get("kind") == kind and not holds(obj):
            md = obj.get("metadata") or {}
            raise FleetValidationError(
                "%s: %s (a CEL rule of the upstream CRD; API servers before 1.25 do not enforce it)"
                % (_show((kind, md.get("namespace", ""), md.get("name"))), message))


# --------------------------------------------------------------------------- objects pass


def _key(obj):
    md = obj["metadata"]
    return (obj["kind"], md.get("namespace", ""), md["name"])


def _show(key):
    kind, ns, name = key
    return "%s %s/%s" % (kind, ns, name) if ns else "%s %s" % (kind, name)


def _source_refs(obj):
    """(field, {kind, name, namespace}) of the sources an object reads its chart or files from."""
    spec = obj.get("spec") or {}
    if obj.get("kind") == "HelmRelease":
        yield "chartRef", spec.get("chartRef")
        yield "chart.spec.sourceRef", _get(spec, "chart", "spec", "sourceRef")
    elif obj.get("kind") == "Kustomization":
        yield "sourceRef", spec.get("sourceRef")


def _check_source_refs(index, external):
    """Every chartRef/sourceRef names a source of the model (or one that exists outside it, the
    FluxInstance's sync source): Flux would wait for a missing one forever."""
    for key, obj in sorted(index.items()):
        for field, ref in _source_refs(obj):
            if not isinstance(ref, dict):
                continue
            target = (ref.get("kind"), ref.get("namespace") or key[1], ref.get("name"))
            if target not in index and target not in external:
                raise FleetValidationError(
                    "%s %s %s, which does not exist (define the source in fleet_sources)" % (_show(key), field, _show(target)))


def validate_objects(objects, disabled=None, external=()):
    """Checks across the built objects.

    :param objects: the Kubernetes objects (dicts).
    :param disabled: optional {(kind, namespace, name): reason} of objects turned off in the
        catalogs, so that a dependsOn on one of them says so instead of "does not exist".
    :param external: (kind, namespace, name) of objects that exist without the model (the
        FluxInstance's sync source), which sourceRefs may name.
    """
    disabled = disabled or {}
    index = {}
    for obj in objects:
        key = _key(obj)
        check_subdomain(key[2], _show(key))
        if key in index:
            raise FleetValidationError("duplicate object %s: two catalog entries produce the same name" % _show(key))
        index[key] = obj
    for obj in objects:
        check_cel(obj)
    _check_source_refs(index, set(external))

    by_name = {}
    for kind, ns, name in index:
        by_name.setdefault((ns, name), []).append(kind)

    graph = {}
    for key, obj in sorted(index.items()):
        kind, ns, _name = key
        edges = []
        for dep in (obj.get("spec") or {}).get("dependsOn") or []:
            dep_ns = dep.get("namespace") or ns
            target = (kind, dep_ns, dep["name"])
            if target not in index:
                other = [k for k in by_name.get((dep_ns, dep["name"]), []) if k != kind]
                if other:
                    raise FleetValidationError(
                        "%s dependsOn %s/%s, which is a %s: Flux allows dependsOn only between objects of "
                        "the same kind" % (_show(key), dep_ns, dep["name"], other[0])
                    )
                if target in disabled:
                    raise FleetValidationError(
                        "%s dependsOn %s, which is disabled (%s)" % (_show(key), _show(target), disabled[target])
                    )
                raise FleetValidationError("%s dependsOn %s, which does not exist" % (_show(key), _show(target)))
            if target == key:
                raise FleetValidationError("%s depends on itself" % _show(key))
            edges.append(target)
        graph[key] = edges
    _check_cycles(graph)


def _check_cycles(graph):
    """Iterative DFS; raises naming the whole cycle (a -> b -> a)."""
    WHITE, GREY, BLACK = 0, 1, 2
    color = dict.fromkeys(graph, WHITE)
    for root in sorted(graph):
        if color[root] != WHITE:
            continue
        stack = [(root, iter(graph[root]))]
        path = [root]
        color[root] = GREY
        while stack:
            node, children = stack[-1]
            advanced = False
            for child in children:
                if color[child] == GREY:
                    cycle = path[path.index(child):] + [child]
                    raise FleetValidationError(
                        "dependency cycle: %s" % " -> ".join(_show(k) for k in cycle)
                    )
                if color[child] == WHITE:
                    color[child] = GREY
                    stack.append((child, iter(graph[child])))
                    path.append(child)
                    advanced = True
                    break
            if not advanced:
                color[node] = BLACK
                stack.pop()
                path.pop()
