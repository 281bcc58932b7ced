# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)
"""One description of the fleet, merged from the component catalogs and the inventory.

Inventory hosts are clusters; the groups ``management`` (exactly one: the hub),
``control_plane``, ``hypervisor`` and ``storage`` say what a cluster is. The catalogs (role
defaults of c5c3.gitops.fleet) list per group the components (operator charts), the
Kustomization entries and the chart sources; host/group vars override them per cluster:

- ``gitops_component_overrides``: {component: partial entry}, deep-merged (``enabled: false``
  turns one off, ``values`` merge, lists replace)
- ``gitops_components_extra``: [full entries] added to the cluster
- ``gitops_kustomization_overrides`` / ``gitops_kustomizations_extra``: the same for Kustomizations
- ``gitops_hub_namespace``: the cluster's namespace on the hub (default: its name)
- ``gitops_kubeconfig`` (path) or ``gitops_kubeconfig_content`` (vault; string or dict),
  ``gitops_kubeconfig_context``
- ``gitops_flux_instance`` (on the hub): deep-merged over the FluxInstance settings
- ``gitops_wave``: the cluster's rollout wave (whole number, default 0; module_utils/waves.py)

``build_fleet`` is the entry point: model -> validate -> objects -> validate -> fleet data
(docs/architecture.md, docs/fleet-model.md). It never copies a secret value into its result.
Pure Python, no Ansible imports.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

from ansible_collections.c5c3.gitops.plugins.module_utils import c5c3_targets
from ansible_collections.c5c3.gitops.plugins.module_utils import fleet_helm
from ansible_collections.c5c3.gitops.plugins.module_utils import fleet_objects as fo
from ansible_collections.c5c3.gitops.plugins.module_utils import waves
from ansible_collections.c5c3.gitops.plugins.module_utils.fleet_validate import (
    KNOWN_GROUPS,
    FleetValidationError,
    check_bool,
    check_label,
    validate_model,
    validate_objects,
    validate_sync_overlap,
)
from ansible_collections.c5c3.gitops.plugins.module_utils.fleet_inventory import (
    as_dict as _as_dict,
    as_list as _as_list,
    by_cluster_name as _by_cluster_name,
    by_name as _by_name,
    clusters_from_inventory as _clusters_from_inventory,
    component_name as _component_name,
    kustomization_name as _kustomization_name,
    merge_entries as _merge_entries,
    resolve_ref as _resolve_ref,
)
from ansible_collections.c5c3.gitops.plugins.module_utils.kubeconfig_check import KubeconfigError, check_kubeconfig

SOURCES_NAMESPACE = "flux-system"
SYNC_SECRET_KEYS = ("identity", "identity.pub", "known_hosts")
SYNC_SECRET_VARS = {
    "identity": "gitops_sync_identity",
    "identity.pub": "gitops_sync_identity_pub",
    "known_hosts": "gitops_sync_known_hosts",
}
# Host vars the model reads (the action passes only these, plus presence flags).
HOST_VARS = (
    "gitops_cluster_name",
    "gitops_hub_namespace",
    "gitops_kubeconfig",
    "gitops_kubeconfig_context",
    "gitops_component_overrides",
    "gitops_components_extra",
    "gitops_kustomization_overrides",
    "gitops_kustomizations_extra",
    "gitops_flux_instance",
    "gitops_wave",
) + c5c3_targets.HOST_VARS


def build_model(inventory, catalog):
    """Merge catalogs and inventory into the model (plain data, not yet Kubernetes objects).

    :param inventory: ``{"groups": {group: [host]}, "hosts": {host: {"vars": {...},
        "kubeconfig_data": dict|None, "kubeconfig_error": str|None,
        "kubeconfig_content": bool, "sync_vars_defined": bool}}}``
    :param catalog: the role defaults (components, kustomizations, sources, flux_instance,
        helmrelease_defaults, kustomization_defaults, secret_store, require_kubeconfigs).
    """
    components_catalog = _as_dict(catalog.get("components"), "components catalog")
    kustomizations_catalog = _as_dict(catalog.get("kustomizations"), "kustomizations catalog")
    for what, cat in (("components", components_catalog), ("kustomizations", kustomizations_catalog)):
        for group in cat:
            if group not in KNOWN_GROUPS:
                raise FleetValidationError(
                    "%s catalog: unknown group %r (groups: %s)" % (what, group, ", ".join(KNOWN_GROUPS))
                )

    member, hub_name, hosts = _clusters_from_inventory(_by_cluster_name(inventory))
    hub_info = hosts.get(hub_name) or {}
    hub_vars = hub_info.get("vars") or {}

    flux = fo.deep_merge(
        _as_dict(catalog.get("flux_instance"), "flux_instance settings"),
        _as_dict(hub_vars.get("gitops_flux_instance"), "cluster %s gitops_flux_instance" % hub_name),
    )
    hub_namespace = flux.get("namespace") or "flux-system"
    sources = _by_name(catalog.get("sources"), "sources catalog")
    hr_defaults = _as_dict(catalog.get("helmrelease_defaults"), "helmrelease defaults")
    ks_defaults = _as_dict(catalog.get("kustomization_defaults"), "kustomization defaults")
    require_kubeconfigs = bool(catalog.get("require_kubeconfigs"))

    clusters = []
    for name in sorted(member):
        group = member[name]
        info = hosts.get(name) or {}
        hvars = info.get("vars") or {}
        is_hub = name == hub_name
        cluster = {
            "name": name,
            "host": info.get("host") or name,
            "group": group,
            "hub": is_hub,
            "hub_namespace": hub_namespace if is_hub else (hvars.get("gitops_hub_namespace") or name),
            "kubeconfig_secret": None if is_hub else "%s-kubeconfig" % name,
        }
        try:
            cluster["wave"] = waves.parse_wave(hvars.get("gitops_wave"), name)
        except waves.WaveError as exc:
            raise FleetValidationError(str(exc))
        cluster.update(_kubeconfig_info(name, info, hvars, require_kubeconfigs))
        comps = _merge_entries(
            _by_name(components_catalog.get(group), "components catalog of group %s" % group),
            hvars.get("gitops_component_overrides"),
            hvars.get("gitops_components_extra"),
            name,
            "component",
        )
        kss = _merge_entries(
            _by_name(kustomizations_catalog.get(group), "kustomizations catalog of group %s" % group),
            hvars.get("gitops_kustomization_overrides"),
            hvars.get("gitops_kustomizations_extra"),
            name,
            "kustomization",
        )
        cluster["_components_raw"] = comps
        cluster["_kustomizations_raw"] = kss
        clusters.append(cluster)

    by_name = {c["name"]: c for c in clusters}
    disabled = {}
    release_mode = catalog.get("hub_release_namespaces") or "hub"
    if release_mode not in ("hub", "component"):
        raise FleetValidationError("hub_release_namespaces %r is not one of hub, component" % release_mode)
    _build_components(clusters, by_name, hr_defaults, release_mode, disabled)
    for cluster in clusters:
        cluster["kustomizations"] = []
        for ename, raw in cluster.pop("_kustomizations_raw").items():
            entry = _normalize_kustomization(raw, cluster, ks_defaults)
            what = "cluster %s kustomization %s" % (cluster["name"], ename)
            entry["dependsOn"] = [
                _resolve_ref(d, cluster, by_name, _kustomization_name, what)
                for d in _as_list(raw.get("dependsOn"), "%s dependsOn" % what)
            ]
            if entry["enabled"]:
                cluster["kustomizations"].append(entry)
            else:
                disabled[("Kustomization", cluster["hub_namespace"], entry["object_name"])] = (
                    "enabled: false on cluster %s" % cluster["name"]
                )

    model = {
        "hub": hub_name,
        "hub_namespace": hub_namespace,
        "clusters": clusters,
        "flux_instance": flux,
        "sources": {n: _normalize_source(s) for n, s in sources.items()},
        "namespaces": _hub_namespaces(catalog.get("namespaces")),
        "kustomization_defaults": ks_defaults,
        "secret_store": _as_dict(catalog.get("secret_store"), "secret_store settings"),
        "sync_vars_defined": bool(hub_info.get("sync_vars_defined")),
        "disabled": disabled,
        "delivery": catalog.get("delivery") or "git",
        "kubeconfig_writer": catalog.get("kubeconfig_writer") or "registration",
    }
    validate_model(model)
    return model


def _build_components(clusters, by_name, hr_defaults, release_mode, disabled):
    """Normalize every cluster's components, then resolve dependsOn to each release's namespace."""
    raws = {}
    for cluster in clusters:
        cluster["_components"] = []
        for cname, raw in cluster.pop("_components_raw").items():
            comp = fleet_helm.normalize_component(raw, cluster, hr_defaults, release_mode)
            raws[(cluster["name"], cname)] = raw
            cluster["_components"].append(comp)
    # (cluster, component) -> namespace of its HelmRelease on the hub, enabled or not.
    where = {(c["name"], comp["name"]): comp["release_namespace"] for c in clusters for comp in c["_components"]}

    for cluster in clusters:
        cluster["components"] = []
        for comp in cluster.pop("_components"):
            what = "cluster %s component %s" % (cluster["name"], comp["name"])
            deps = []
            for dep in _as_list(raws[(cluster["name"], comp["name"])].get("dependsOn"), "%s dependsOn" % what):
                ref = _resolve_ref(dep, cluster, by_name, _component_name, what)
                other = dep.get("cluster") if isinstance(dep, dict) else cluster["name"]
                if isinstance(dep, str) or (isinstance(dep, dict) and dep.get("cluster")):
                    ref["namespace"] = where.get((other, ref["name"]), ref["namespace"])
                deps.append(ref)
            comp["dependsOn"] = deps
            if comp["enabled"]:
                cluster["components"].append(comp)
            else:
                disabled[("HelmRelease", comp["release_namespace"], comp["name"])] = "enabled: false on cluster %s" % cluster["name"]


def _hub_namespaces(entries):
    """fleet_namespaces: [{name, labels, annotations}] -> {name: entry}, validated."""
    out = {}
    for entry in _as_list(entries, "namespaces catalog (fleet_namespaces)"):
        if isinstance(entry, str):
            entry = {"name": entry}
        if not isinstance(entry, dict) or set(entry) - {"name", "labels", "annotations"}:
            raise FleetValidationError("fleet_namespaces: %r must be a name or {name, labels, annotations}" % (entry,))
        name = check_label(entry.get("name"), "fleet_namespaces entry")
        if name in out:
            raise FleetValidationError("fleet_namespaces: duplicate namespace %r" % name)
        for key in ("labels", "annotations"):
            _as_dict(entry.get(key), "fleet_namespaces %s %s" % (name, key))
        out[name] = {"name": name, "labels": dict(entry.get("labels") or {}), "annotations": dict(entry.get("annotations") or {})}
    return out


def _kubeconfig_info(name, info, hvars, required):
    """Where the cluster's kubeconfig comes from (never its content) + what Flux will use."""
    path = hvars.get("gitops_kubeconfig")
    has_content = bool(info.get("kubeconfig_content"))
    if path and has_content:
        raise FleetValidationError(
            "cluster %s: set either gitops_kubeconfig (a path) or gitops_kubeconfig_content, not both" % name
        )
    source = "content" if has_content else ("path" if path else None)
    out = {"kubeconfig": path or None, "kubeconfig_source": source, "kubeconfig_context": hvars.get("gitops_kubeconfig_context")}
    if info.get("kubeconfig_error"):
        raise FleetValidationError("cluster %s: %s" % (name, info["kubeconfig_error"]))
    data = info.get("kubeconfig_data")
    if data is None:
        if required:
            where = ("kubeconfig %s does not exist" % path) if path else "no kubeconfig"
            raise FleetValidationError(
                "cluster %s: %s (set gitops_kubeconfig to an existing file or "
                "gitops_kubeconfig_content)" % (name, where)
            )
        out["server"] = None
        return out
    try:
        checked = check_kubeconfig(data, context=hvars.get("gitops_kubeconfig_context"), label="cluster %s kubeconfig" % name)
    except KubeconfigError as exc:
        raise FleetValidationError(str(exc))
    out["server"] = checked["server"]
    out["kubeconfig_context"] = checked["context"]
    return out


# Kustomization spec fields an entry may set directly (besides path, interval, prune, timeout,
# dependsOn and source, which the model handles itself).
KUSTOMIZATION_FIELDS = ("wait", "retryInterval", "targetNamespace", "images", "patches", "postBuild", "healthChecks",
                        "healthCheckExprs", "force", "suspend", "components", "commonMetadata", "namePrefix",
                        "nameSuffix", "deletionPolicy", "serviceAccountName", "decryption")
KUSTOMIZATION_ENTRY_FIELDS = frozenset(("name", "path", "interval", "prune", "timeout", "enabled", "dependsOn",
                                        "manifests", "source", "spec") + KUSTOMIZATION_FIELDS)


def _normalize_kustomization(raw, cluster, defaults):
    unknown = sorted(set(raw) - KUSTOMIZATION_ENTRY_FIELDS)
    if unknown:
        raise FleetValidationError("cluster %s kustomization %s: unknown field %s (known: %s)" % (
            cluster["name"], raw["name"], ", ".join(unknown), ", ".join(sorted(KUSTOMIZATION_ENTRY_FIELDS))))
    path = raw.get("path") or "./clusters/{cluster}"
    if isinstance(path, str):
        path = path.replace("{cluster}", cluster["name"]).replace("{group}", cluster["group"])
    return {
        "name": raw["name"],
        "object_name": _kustomization_name(cluster, raw["name"]),
        "path": path,
        "interval": raw.get("interval") or defaults.get("interval") or "10m",
        "prune": bool(raw.get("prune", defaults.get("prune", True))),
        "timeout": raw.get("timeout") or defaults.get("timeout"),
        "enabled": check_bool(raw.get("enabled", True), "cluster %s kustomization %s enabled" % (cluster["name"], raw["name"])),
        "manifests": copy.deepcopy(raw.get("manifests") or []),
        "source": raw.get("source"),
        "fields": {k: copy.deepcopy(raw[k]) for k in KUSTOMIZATION_FIELDS if raw.get(k) is not None},
        "spec": copy.deepcopy(raw.get("spec") or {}),
    }


def _normalize_source(raw):
    out = dict(raw)
    out.setdefault("kind", "HelmRepository")
    out.setdefault("interval", "1h")
    return out


# --------------------------------------------------------------------------- paths of the tree


def hub_dir(cluster):
    """Directory of the hub-side objects of a cluster (see docs/fleet-model.md)."""
    return "clusters/%s/hub" % cluster["name"]


def build_fleet(inventory, catalog):
    """Model -> validation -> objects -> validation -> the ``fleet`` data of docs/architecture.md."""
    model = build_model(inventory, catalog)
    hub_ns = model["hub_namespace"]
    clusters = model["clusters"]
    hub = [c for c in clusters if c["hub"]][0]
    sources = model["sources"]
    sync = model["flux_instance"].get("sync") or None
    source_ref = fo.deep_merge(
        {"kind": "GitRepository", "name": (sync or {}).get("name") or hub_ns, "namespace": hub_ns},
        model["kustomization_defaults"].get("sourceRef") or {},
    )

    objects = []
    instance = fo.flux_instance(model["flux_instance"], hub["name"])

    def add(stage, path, obj):
        objects.append({"stage": stage, "path": path, "object": obj, "writer": fo.writer(stage)})

    add("instance", "clusters/%s/flux-system/flux-instance.yaml" % hub["name"], instance)
    source_files = {
        "HelmRepository": "helm-repositories.yaml",
        "GitRepository": "git-repositories.yaml",
        "OCIRepository": "oci-repositories.yaml",
    }
    for name in sorted(sources):
        src = sources[name]
        add("sources", "infrastructure/sources/%s" % source_files[src["kind"]], fo.source(src, SOURCES_NAMESPACE))

    manifests = []
    secrets = []
    store = model["secret_store"]
    for cluster in clusters:
        base = hub_dir(cluster)
        for entry in cluster["kustomizations"]:
            add("kustomizations", "%s/kustomizations.yaml" % base, fo.kustomization(cluster, entry, _entry_source(entry, sources, source_ref, cluster)))
            for manifest in entry["manifests"]:
                md = manifest.get("metadata") or {}
                manifests.append({
                    "path": "%s/%s-%s.yaml" % (entry["path"][2:].rstrip("/"), manifest.get("kind", "object").lower(), md.get("name", "unnamed")),
                    "object": manifest,
                })
        for comp in cluster["components"]:
            _add_release(add, cluster, comp, sources[comp["source"]], base, catalog.get("helmrelease_defaults") or {})
        if not cluster["hub"]:
            # The hub namespace of a spoke, created by whoever applies the cluster's hub dir.
            manifests.append({"path": "%s/namespace.yaml" % base, "object": fo.namespace(cluster["hub_namespace"], "clusters", cluster["name"])})
            # The spoke-side namespaces its releases target (applied on the spoke by its Kustomizations).
            for ns in sorted({c["namespace"] for c in cluster["components"]}):
                manifests.append({
                    "path": "clusters/%s/namespaces.yaml" % cluster["name"],
                    "object": fo.namespace(ns, "kustomizations", cluster["name"]),
                })
            secret = fo.secret_reference(
                "kubeconfig", cluster["kubeconfig_secret"], cluster["hub_namespace"], "clusters", cluster["name"],
                ["value"], {"path": "gitops_kubeconfig", "content": "gitops_kubeconfig_content"}, cluster["kubeconfig_source"],
                extra_labels={fo.LABEL_WATCH: "Enabled"},
            )
            secret["writer"] = model["kubeconfig_writer"]
            secrets.append(secret)
            # One writer: the tree carries the ExternalSecret only when ESO writes the Secret.
            if model["kubeconfig_writer"] == "eso":
                manifests.append({"path": "infrastructure/cluster-configs/%s.yaml" % secret["name"], "object": fo.external_secret(secret, store)})

    _add_hub_namespaces(add, model, hub)
    _check_sync_source(model, objects, source_ref)
    pull_secret = (sync or {}).get("pullSecret")
    if pull_secret:
        secret = fo.secret_reference(
            "git-sync", pull_secret, model["flux_instance"]["namespace"], "instance", hub["name"],
            SYNC_SECRET_KEYS, SYNC_SECRET_VARS, model["sync_vars_defined"],
        )
        # Bootstrap: Flux needs it to read Git at all, so only Ansible writes it (never the tree).
        secret["writer"] = fo.WRITER_BOOTSTRAP
        secrets.insert(0, secret)

    # C5C3's own target-cluster Secrets (c5c3_targets): registration data plus render placeholders.
    try:
        c5c3 = c5c3_targets.plan(_by_cluster_name(inventory), clusters, fo.labels, store)
    except c5c3_targets.TargetError as exc:
        raise FleetValidationError(str(exc))
    secrets.extend(c5c3["secrets"])
    manifests.extend(c5c3["manifests"])

    objects.sort(key=fo.sort_key)
    # The FluxInstance's sync source is made by the Flux Operator, not by the model.
    external = [(source_ref["kind"], source_ref["namespace"], source_ref["name"])] if sync else []
    validate_objects([o["object"] for o in objects], model["disabled"], external)
    sync_spec = instance["spec"].get("sync")
    validate_sync_overlap(model["delivery"], sync_spec["path"] if sync_spec else None, _delivered_paths(objects, manifests))
    manifests.sort(key=lambda m: (m["path"], m["object"].get("kind", ""), (m["object"].get("metadata") or {}).get("namespace", ""),
                                  (m["object"].get("metadata") or {}).get("name", "")))

    operator = next((c for c in hub["components"] if c["name"] == "flux-operator"), None)
    try:
        wave_list = waves.assign_waves({"clusters": clusters, "objects": objects, "manifests": manifests})
    except waves.WaveError as exc:
        raise FleetValidationError(str(exc))
    return {
        "hub": {
            "name": hub["name"],
            "host": hub["host"],
            "namespace": hub_ns,
            "kubeconfig": hub["kubeconfig"],
            "kubeconfig_source": hub["kubeconfig_source"],
            "context": hub["kubeconfig_context"],
        },
        "clusters": [
            {
                "name": c["name"],
                "host": c["host"],
                "group": c["group"],
                "hub_namespace": c["hub_namespace"],
                "kubeconfig_secret": c["kubeconfig_secret"],
                "kubeconfig": c["kubeconfig"],
                "kubeconfig_source": c["kubeconfig_source"],
                "context": c["kubeconfig_context"],
                "server": c["server"],
                "wave": c["wave"],
            }
            for c in clusters
        ],
        "waves": wave_list,
        "objects": objects,
        "secrets": secrets,
        "manifests": manifests,
        "c5c3": c5c3["c5c3"],
        "bootstrap": _bootstrap(operator, sources, hub_ns),
        "sync": {
            "enabled": bool(sync),
            "path": (sync["path"].replace("{hub}", hub["name"]) if sync else "clusters/%s" % hub["name"]).strip("/").lstrip("./"),
            "source_ref": source_ref,
        },
        "delivery": model["delivery"],
        "kubeconfig_writer": model["kubeconfig_writer"],
    }


def _entry_source(entry, sources, default, cluster):
    """sourceRef of a Kustomization entry: its ``source`` (a GitRepository/OCIRepository of
    fleet_sources) or the default (the FluxInstance sync GitRepository)."""
    if not entry.get("source"):
        return default
    src = sources.get(entry["source"])
    if src is None or src["kind"] not in ("GitRepository", "OCIRepository"):
        raise FleetValidationError(
            "cluster %s kustomization %s: source %r is not a GitRepository or OCIRepository of fleet_sources (known: %s)"
            % (cluster["name"], entry["name"], entry["source"], ", ".join(sorted(sources))))
    return {"kind": src["kind"], "name": src["name"], "namespace": SOURCES_NAMESPACE}


def _add_release(add, cluster, comp, src, base, defaults):
    """The HelmRelease of a component (+ its own OCIRepository for a chartForm: chartRef source)."""
    path = "%s/%s/%s.yaml" % (base, comp["tier"], comp["name"])
    if fleet_helm.chart_form(comp, src) == "chartRef":
        add(comp["tier"], path, fleet_helm.release_oci_repository(cluster, comp, src))
    add(comp["tier"], path, fleet_helm.helm_release(cluster, comp, src, SOURCES_NAMESPACE, defaults))


def _add_hub_namespaces(add, model, hub):
    """Namespaces on the hub as objects of the model: fleet_namespaces, and the namespaces the hub's
    HelmReleases live in (other than the FluxInstance namespace, which the Flux Operator owns)."""
    wanted = dict(model["namespaces"])
    for comp in hub["components"]:
        ns = comp["release_namespace"]
        if ns != model["hub_namespace"]:
            wanted.setdefault(ns, {"name": ns, "labels": {}, "annotations": {}})
    for name in sorted(wanted):
        entry = wanted[name]
        add("sources", "%s/namespaces.yaml" % hub_dir(hub), fo.namespace(name, "sources", hub["name"], entry["labels"], entry["annotations"]))


def _check_sync_source(model, objects, source_ref):
    """Without a FluxInstance sync there is no sync GitRepository: Kustomizations need a declared one."""
    if model["flux_instance"].get("sync"):
        return
    declared = {(o["object"]["kind"], o["object"]["metadata"].get("namespace"), o["object"]["metadata"]["name"]) for o in objects}
    for item in objects:
        obj = item["object"]
        if obj["kind"] != "Kustomization":
            continue
        ref = obj["spec"].get("sourceRef") or {}
        key = (ref.get("kind"), ref.get("namespace") or obj["metadata"]["namespace"], ref.get("name"))
        if key not in declared:
            raise FleetValidationError(
                "Kustomization %s/%s: sourceRef %s %s/%s does not exist: the FluxInstance has no sync (spec.sync is "
                "null), so add that source to fleet_sources or set fleet_kustomization_defaults.sourceRef"
                % (obj["metadata"]["namespace"], obj["metadata"]["name"], key[0], key[1], key[2]))


def _delivered_paths(objects, manifests):
    """Files of the delivered objects and the paths their Kustomizations build."""
    paths = [o["path"] for o in objects if o["writer"] == fo.WRITER_DELIVERED] + [m["path"] for m in manifests]
    paths += [o["object"]["spec"]["path"] for o in objects if o["object"]["kind"] == "Kustomization"]
    return paths


def _bootstrap(operator, sources, namespace):
    """The Flux Operator chart for the bootstrap stage (installed before Flux exists)."""
    if operator is None:
        return None
    src = sources[operator["source"]]
    url = src["url"].rstrip("/")
    return {
        "release_name": operator["releaseName"],
        "namespace": operator["namespace"] or namespace,
        "chart": operator["chart"],
        "chart_ref": "%s/%s" % (url, operator["chart"]) if url.startswith("oci://") else operator["chart"],
        "repo_url": None if url.startswith("oci://") else url,
        "version": operator["version"],
        "values": copy.deepcopy(operator["values"]),
    }
