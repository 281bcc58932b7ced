# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)
"""The apply sink: server-side apply of many objects at once, label-scoped prune, redacted diffs.

Pure helpers (normalising input, prune selection, exclusive spec alternatives) come first and
import nothing from Ansible or kubernetes, so unit tests exercise them directly; changed
detection and the redacted diff views are in ``apply_diff``. ``Applier`` does the I/O: REST
calls through the collection's one client (kube.KubeClient) from a thread pool. It does no API
discovery (kinds resolve through ``flux_kinds``) and one LIST per kind serves both changed
detection and prune, so a no-op run costs one PATCH per object plus one LIST per kind.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.c5c3.gitops.plugins.module_utils import flux_kinds
from ansible_collections.c5c3.gitops.plugins.module_utils.apply_diff import (
    describe, dry_run_changed, is_changed, make_diff)
from ansible_collections.c5c3.gitops.plugins.module_utils.kube import MERGE_PATCH
from ansible_collections.c5c3.gitops.plugins.module_utils.kube_errors import KubeError

ApiError = KubeError  # the name callers and tests used for the apply sink's API errors

# Ownership labels and per-kind facts: the one kind table.
MANAGED_BY = flux_kinds.MANAGED_BY
MANAGED_BY_VALUE = flux_kinds.MANAGED_BY_VALUE
STAGE_LABEL = flux_kinds.STAGE_LABEL
CLUSTER_LABEL = flux_kinds.CLUSTER_LABEL
DEFAULT_PRUNE_KINDS = flux_kinds.kinds_where(prune_default=True)


class ApplyError(Exception):
    """Input that cannot be applied, or the API server refused one or more objects."""

    def __init__(self, message, applied=None):
        super(ApplyError, self).__init__(message)
        self.applied = applied or []

    @property
    def result(self):
        """Fields a failing module returns with it (KubeModule.run)."""
        return {"applied": self.applied, "pruned": [], "changed": any(a.get("changed") for a in self.applied)}


# --- pure helpers ---------------------------------------------------------------------------------

def normalize(objects, default_namespace=None):
    """Turn manifests or fleet entries ({stage, path, object}) into a list of entries.

    Each entry: {manifest, info (flux_kinds.lookup), key, stage}. Raises ApplyError naming the
    offending item on missing kind/name, unknown kinds without apiVersion, or duplicates.
    """
    out = []
    seen = {}
    for index, item in enumerate(objects or []):
        if not isinstance(item, dict):
            raise ApplyError("objects[%d]: expected a mapping, got %s" % (index, type(item).__name__))
        stage = None
        manifest = item
        if "object" in item and "kind" not in item:
            manifest = item.get("object")
            stage = item.get("stage")
            if not isinstance(manifest, dict):
                raise ApplyError("objects[%d].object: expected a mapping" % index)
        kind = manifest.get("kind")
        metadata = manifest.get("metadata") or {}
        name = metadata.get("name")
        if not kind or not name:
            raise ApplyError("objects[%d]: every object needs kind and metadata.name" % index)
        try:
            info = flux_kinds.lookup(kind, manifest.get("apiVersion"))
        except flux_kinds.UnknownKindError as exc:
            raise ApplyError("objects[%d]: %s" % (index, exc))
        manifest = copy.deepcopy(manifest)
        manifest["apiVersion"] = info["api_version"]
        namespace = metadata.get("namespace") or (default_namespace if info["namespaced"] else None)
        if info["namespaced"]:
            if not namespace:
                raise ApplyError("objects[%d]: %s %s is namespaced but has no metadata.namespace" % (index, kind, name))
            manifest["metadata"]["namespace"] = namespace
        else:
            namespace = None
            manifest["metadata"].pop("namespace", None)
        key = object_key(info["group"], kind, namespace, name)
        if key in seen:
            raise ApplyError("objects[%d]: %s is listed twice (also objects[%d])" % (index, describe(kind, namespace, name), seen[key]))
        seen[key] = index
        out.append({"manifest": manifest, "info": info, "key": key, "stage": stage or labels_of(manifest).get(STAGE_LABEL)})
    return out


def object_key(group, kind, namespace, name):
    return (group or "", kind, namespace or "", name)


def key_of(obj, group):
    metadata = obj.get("metadata") or {}
    return object_key(group, obj.get("kind"), metadata.get("namespace"), metadata.get("name"))


def labels_of(obj):
    return ((obj or {}).get("metadata") or {}).get("labels") or {}


def is_owned(obj):
    """True only for objects that carry this collection's ownership label."""
    return labels_of(obj).get(MANAGED_BY) == MANAGED_BY_VALUE


def prune_selector(stage=None, labels=None):
    """The label selector of prune candidates: always the ownership label, plus stage/labels."""
    selector = {MANAGED_BY: MANAGED_BY_VALUE}
    if stage:
        selector[STAGE_LABEL] = stage
    for key, value in (labels or {}).items():
        if key == MANAGED_BY and value != MANAGED_BY_VALUE:
            raise ApplyError("prune.labels cannot change %s: prune only touches objects owned by %s" % (MANAGED_BY, MANAGED_BY_VALUE))
        selector[key] = value
    return selector


def selector_string(selector):
    return ",".join("%s=%s" % (k, v) for k, v in sorted(selector.items()))


def matches(obj, selector):
    labels = labels_of(obj)
    return all(labels.get(k) == v for k, v in selector.items())


def keep_keys(keep):
    """Normalise prune.keep items ({kind?, namespace, name}, manifests, metadata or fleet entries)
    to (kind or None, namespace, name); kind None keeps every kind of that name (the safe side)."""
    out = set()
    for item in keep or []:
        if not isinstance(item, dict):
            continue
        if "object" in item and "kind" not in item:
            item = item.get("object") or {}
        md = item.get("metadata") if isinstance(item.get("metadata"), dict) else item
        if md.get("name"):
            out.add((item.get("kind"), md.get("namespace") or "", md["name"]))
    return out


def select_prune(live, desired_keys, selector, kinds, group_of, keep=None):
    """Objects to delete: live objects of ``kinds`` matching ``selector`` that are not desired.

    ``live`` is whatever the server listed; this re-checks every label itself, so an object
    without the ownership label is never returned, whatever the server's filtering did.
    ``group_of`` maps a kind to its API group (for the key). Sorted for stable output.
    """
    out = []
    for obj in live:
        kind = obj.get("kind")
        if kind not in kinds or not is_owned(obj) or not matches(obj, selector):
            continue
        if (obj.get("metadata") or {}).get("deletionTimestamp"):
            continue  # already going away
        if key_of(obj, group_of(kind)) in desired_keys:
            continue
        md = obj["metadata"]
        if keep and ((kind, md.get("namespace") or "", md["name"]) in keep or (None, md.get("namespace") or "", md["name"]) in keep):
            continue
        out.append(obj)
    return sorted(out, key=lambda o: (o.get("kind"), o["metadata"].get("namespace") or "", o["metadata"]["name"]))


def replaced_alternatives(info, manifest, live):
    """Spec fields set on ``live`` that ``manifest`` replaces by an exclusive alternative.

    E.g. a HelmRelease moving from ``spec.chart`` to ``spec.chartRef``: server-side apply drops
    the fields we owned under ``spec.chart`` but keeps what the API server defaulted there
    (``reconcileStrategy``, ...), and the half-removed template is refused (422).
    """
    desired = manifest.get("spec") or {}
    current = (live or {}).get("spec") or {}
    stale = []
    for group in info.get("exclusive_spec") or ():
        if any(f in desired for f in group):
            stale.extend(f for f in group if f not in desired and f in current)
    return stale


def result_entry(info, manifest, response, changed, created):
    metadata = (response or manifest).get("metadata") or {}
    return {
        "kind": manifest["kind"],
        "apiVersion": info["api_version"],
        "name": manifest["metadata"]["name"],
        "namespace": manifest["metadata"].get("namespace"),
        "generation": metadata.get("generation"),
        "changed": changed,
        "created": created,
    }


# --- I/O --------------------------------------------------------------------------------------------

class Applier(object):
    """Server-side apply of a set of objects, then optional prune of owned leftovers."""

    def __init__(self, client, field_manager="c5c3.gitops", force_conflicts=True, workers=8,
                 timeout=None, check_mode=False, diff=False, create_namespaces=True):
        # client: a kube.KubeClient (or anything with its request(); the unit tests' fake server).
        # ``timeout`` is unused (the client has its own), kept for callers that pass it.
        self.raw = client
        self.field_manager = field_manager
        self.force = force_conflicts
        self.workers = max(1, int(workers))
        self.check_mode = check_mode
        self.diff = diff
        self.create_namespaces = create_namespaces

    # listing -----------------------------------------------------------------------------------
    def list_kind(self, info, selector):
        """All objects of a kind cluster-wide matching ``selector``; kind filled in on items."""
        items = []
        query = {"labelSelector": selector_string(selector), "limit": 500}
        while True:
            _unused, data = self.raw.request("GET", flux_kinds.collection_path(info), query)
            for item in data.get("items") or []:
                item.setdefault("kind", info["kind"])
                item.setdefault("apiVersion", info["api_version"])
                items.append(item)
            token = (data.get("metadata") or {}).get("continue")
            if not token:
                return items
            query["continue"] = token

    def get(self, info, namespace, name):
        try:
            return self.raw.request("GET", flux_kinds.object_path(info, namespace, name))[1]
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise

    def _map(self, fn, items):
        if len(items) <= 1 or self.workers == 1:
            return [fn(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(self.workers, len(items))) as pool:
            return list(pool.map(fn, items))

    def prefetch(self, entries):
        """Live state of every desired object: one labelled LIST per kind, GETs for the rest."""
        before = {}
        listed_kinds = {}
        for entry in entries:
            if is_owned(entry["manifest"]):
                listed_kinds.setdefault(entry["info"]["kind"], entry["info"])
        for kind, info in sorted(listed_kinds.items()):
            try:
                for obj in self.list_kind(info, {MANAGED_BY: MANAGED_BY_VALUE}):
                    before[key_of(obj, info["group"])] = obj
            except KubeError as exc:
                if exc.status != 403:
                    raise
                listed_kinds.pop(kind)  # no cluster-wide list right: fall back to GETs
        # Desired objects that the LIST could not have seen: no ownership label in the manifest,
        # or their kind could not be listed. Owned manifests missing from the list are either new
        # or foreign objects about to be adopted; both are changes, no GET needed except for diffs.
        need_get = [e for e in entries if e["key"] not in before and (
            e["info"]["kind"] not in listed_kinds or self.diff or self.check_mode)]

        def fetch(entry):
            m = entry["manifest"]["metadata"]
            return entry["key"], self.get(entry["info"], m.get("namespace"), m["name"])
        for key, obj in self._map(fetch, need_get):
            if obj is not None:
                before[key] = obj
        return before

    # namespaces -----------------------------------------------------------------------------------
    def ensure_namespaces(self, entries):
        """Make sure the namespaces of namespaced objects exist (bare, unlabelled: never pruned).

        Namespaces the input declares itself are left to the apply. Returns (created, missing):
        ``missing`` is only non-empty in check mode (or with create_namespaces off) and lists
        namespaces that do not exist, whose objects cannot be dry-run applied.
        """
        declared = set(e["manifest"]["metadata"]["name"] for e in entries if e["info"]["kind"] == "Namespace")
        wanted = sorted(set(e["manifest"]["metadata"]["namespace"] for e in entries if e["info"]["namespaced"]))
        info = flux_kinds.lookup("Namespace")

        def ensure(ns):
            if self.get(info, None, ns) is not None:
                return None, None
            if self.check_mode or not self.create_namespaces:
                return None, ns
            if ns in declared:
                return None, None
            try:
                self.raw.request("POST", flux_kinds.collection_path(info), body={
                    "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
            except KubeError as exc:
                if exc.status != 409:  # 409: created meanwhile
                    raise
                return None, None
            return ns, None
        created, missing = [], set()
        for made, absent in self._map(ensure, wanted):
            if made:
                created.append(made)
            if absent:
                missing.add(absent)
        return created, missing

    # apply ------------------------------------------------------------------------------------------
    def apply_one(self, entry):
        info, manifest = entry["info"], entry["manifest"]
        m = manifest["metadata"]
        query = {"fieldManager": self.field_manager, "force": "true" if self.force else "false"}
        if self.check_mode:
            query["dryRun"] = "All"
        return self.raw.request("PATCH", flux_kinds.object_path(info, m.get("namespace"), m["name"]), query,
                                body=manifest, content_type="application/apply-patch+yaml")

    def replace_alternatives(self, entry, stale):
        """Remove ``stale`` spec fields and set their replacements in one merge patch.

        One request, so that the object never has neither alternative. In check mode the patch
        is a dry run of the whole manifest (what the apply would leave), since a dry-run apply
        on the unchanged object would be refused like the real one.
        """
        info, manifest = entry["info"], entry["manifest"]
        m = manifest["metadata"]
        spec = dict((f, None) for f in stale)
        query = {"fieldManager": self.field_manager}
        if self.check_mode:
            query["dryRun"] = "All"
            body = dict(manifest, spec=dict(manifest.get("spec") or {}, **spec))
        else:
            desired = manifest.get("spec") or {}
            spec.update((f, desired[f]) for g in info["exclusive_spec"] for f in g if f in desired)
            body = {"spec": spec}
        return self.raw.request("PATCH", flux_kinds.object_path(info, m.get("namespace"), m["name"]), query,
                                body=body, content_type=MERGE_PATCH)

    def run(self, objects, default_namespace=None, prune=None):
        """Apply ``objects``; returns {changed, applied, pruned, diff}. Raises ApplyError."""
        entries = normalize(objects, default_namespace)
        # Namespaces and Secrets first: the rest may reference them (kubeConfig, pullSecret).
        orders = sorted(set(e["info"]["apply_order"] for e in entries))
        batches = [[e for e in entries if e["info"]["apply_order"] == order] for order in orders]
        created_ns, missing_ns = [], set()
        # Connection, credential and permission failures propagate as the KubeError they are:
        # its message names the cluster and the request.
        before = self.prefetch(entries)
        if entries:
            created_ns, missing_ns = self.ensure_namespaces(entries)
        results = {}
        diffs = []
        errors = []

        def apply(entry):
            ns = entry["manifest"]["metadata"].get("namespace")
            if ns and ns in missing_ns:
                # check mode, namespace not there yet: the object would be created with it
                return entry, 201, entry["manifest"], None
            try:
                stale = replaced_alternatives(entry["info"], entry["manifest"], before.get(entry["key"]))
                if stale:
                    status, obj = self.replace_alternatives(entry, stale)
                    if self.check_mode:
                        return entry, status, obj, None
                status, obj = self.apply_one(entry)
                return entry, status, obj, None
            except KubeError as exc:
                return entry, None, None, exc

        for batch in batches:
            for entry, status, obj, exc in self._map(apply, batch):
                if exc is not None:
                    m = entry["manifest"]["metadata"]
                    errors.append("%s: %s" % (describe(entry["info"]["kind"], m.get("namespace"), m["name"]), exc))
                    continue
                prior = before.get(entry["key"])
                if self.check_mode:
                    changed = dry_run_changed(prior, obj)
                else:
                    changed = is_changed(status, prior, obj)
                # 201 is the server's word for "created"; in check mode the prefetch GET decides.
                created = prior is None if self.check_mode else status == 201
                results[entry["key"]] = result_entry(entry["info"], entry["manifest"], obj, changed, created)
                if changed and self.diff:
                    diffs.append(make_diff(entry["key"], prior, obj))
            if errors:
                break  # do not apply dependents of objects that failed
        applied = [results[e["key"]] for e in entries if e["key"] in results]
        if errors:
            raise ApplyError("server-side apply failed for %d object(s): %s" % (len(errors), "; ".join(errors[:10])), applied)

        pruned = []
        if prune and prune.get("enabled"):
            pruned = self.prune(entries, prune, diffs)
        return {
            "changed": any(a["changed"] for a in applied) or bool(pruned) or bool(created_ns),
            "applied": applied,
            "pruned": pruned,
            "namespaces_created": created_ns,
            "diff": diffs,
        }

    # prune ------------------------------------------------------------------------------------------
    def prune(self, entries, prune, diffs):
        kinds = list(prune.get("kinds") or DEFAULT_PRUNE_KINDS)
        selector = prune_selector(prune.get("stage"), prune.get("labels"))
        desired = set(e["key"] for e in entries)
        live = []
        infos = {}
        for kind in kinds:
            try:
                infos[kind] = flux_kinds.lookup(kind)
            except flux_kinds.UnknownKindError as exc:
                raise ApplyError("prune.kinds: %s" % exc)
            if not infos[kind]["prunable"]:
                raise ApplyError("prune.kinds: %s is not prunable (prunable kinds: %s)"
                                 % (kind, ", ".join(flux_kinds.kinds_where(prunable=True))))
            live.extend(self.list_kind(infos[kind], selector))
        doomed = select_prune(live, desired, selector, kinds, lambda k: infos[k]["group"], keep_keys(prune.get("keep")))

        def delete(obj):
            m = obj["metadata"]
            info = infos[obj["kind"]]
            if not self.check_mode:
                # The uid precondition keeps a same-named object recreated meanwhile safe.
                body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background",
                        "preconditions": {"uid": m.get("uid")}}
                try:
                    self.raw.request("DELETE", flux_kinds.object_path(info, m.get("namespace"), m["name"]), body=body)
                except KubeError as exc:
                    if exc.status not in (404, 409):
                        return obj, exc
            return obj, None

        out = []
        errors = []
        for obj, exc in self._map(delete, doomed):
            m = obj["metadata"]
            if exc is not None:
                errors.append("%s: %s" % (describe(obj["kind"], m.get("namespace"), m["name"]), exc))
                continue
            out.append({"kind": obj["kind"], "apiVersion": obj.get("apiVersion"), "name": m["name"],
                        "namespace": m.get("namespace")})
            if self.diff:
                diffs.append(make_diff(key_of(obj, infos[obj["kind"]]["group"]), obj, None))
        if errors:
            raise ApplyError("prune failed for %d object(s): %s" % (len(errors), "; ".join(errors[:10])))
        return out
