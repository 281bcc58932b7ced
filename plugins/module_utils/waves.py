# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)
"""Rollout waves: which objects of the fleet change in which wave, and the fleet after wave N.

Every cluster is in a wave (``gitops_wave``, a whole number, default 0). A change to what the
fleet runs is rolled out wave by wave, lowest first; wave N+1 changes only once wave N is
delivered and green (docs/site.md, "Waves"). This module is the pure part:

- ``assign_waves(fleet)`` (called by the model): every object and manifest gets ``wave`` (its
  cluster's wave; objects of no cluster, e.g. the sources, belong to the first wave, since every
  later wave may need them) and every Flux object the label ``gitops.c5c3.io/wave`` (the apply
  sink prunes per wave by it). A ``dependsOn`` on an object of a later wave is refused.
- ``plan(previous, fleet)``: per wave the objects added, changed and removed, given the previous
  state (entries ``{path, object}``: the rendered tree at the sync repository's HEAD, a previous
  render, or what was applied) and the new fleet.
- ``fleet_after_wave(previous, fleet, wave)``: the fleet as it is once wave N is rolled out -
  waves <= N at the new content, later waves still at their previous content (absent where they
  had none). Same shape as the model's fleet, so both sinks take it as is.

An object that left the fleet is removed in the wave of its cluster; when its cluster left the
inventory, in the wave its ``gitops.c5c3.io/wave`` label names (if that wave still exists), else
in the last wave. Pure Python, no Ansible imports.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import json
import posixpath

from ansible_collections.c5c3.gitops.plugins.module_utils import fleet_objects as fo

WAVE_LABEL = "gitops.c5c3.io/wave"
# Kinds the model builds as "objects" (applied to the hub); everything else is a render-only manifest.
FLUX_KINDS = ("FluxInstance", "HelmRepository", "GitRepository", "OCIRepository", "Kustomization", "HelmRelease")
_SKIP_FILES = ("kustomization.yaml",)


class WaveError(ValueError):
    """Bad wave input; the message names the offending cluster or object."""


def parse_wave(value, cluster):
    """``gitops_wave`` of a cluster -> int >= 0 (None -> 0). Strings of digits (INI inventories) are accepted."""
    if value is None:
        return 0
    if isinstance(value, bool):
        raise WaveError("cluster %s: gitops_wave must be a whole number >= 0, got %r" % (cluster, value))
    if isinstance(value, int):
        wave = value
    elif isinstance(value, str) and value.strip().isdigit():
        wave = int(value.strip())
    else:
        raise WaveError("cluster %s: gitops_wave must be a whole number >= 0, got %r" % (cluster, value))
    if wave < 0:
        raise WaveError("cluster %s: gitops_wave must be a whole number >= 0, got %r" % (cluster, value))
    return wave


def identity(obj, path=""):
    """(kind, namespace, name, scope): Flux objects live on the hub and are unique by name; other
    manifests (namespaces on the spokes, ...) are applied per directory, so their file is part of it."""
    md = obj.get("metadata") or {}
    kind = obj.get("kind") or ""
    return (kind, md.get("namespace") or "", md.get("name") or "", "" if kind in FLUX_KINDS else path)


def _key(entry):
    return identity(entry["object"], entry.get("path") or "")


def describe(ident):
    kind, namespace, name = ident[:3]
    return "%s %s/%s" % (kind, namespace, name) if namespace else "%s %s" % (kind, name)


def _labels(obj):
    return (obj.get("metadata") or {}).get("labels") or {}


def wave_numbers(clusters):
    return sorted({c["wave"] for c in clusters})


def wave_list(clusters):
    """[{wave, clusters: [names]}] in rollout order."""
    return [{"wave": w, "clusters": sorted(c["name"] for c in clusters if c["wave"] == w)} for w in wave_numbers(clusters)]


def _new_wave(obj, by_cluster, first):
    cluster = _labels(obj).get(fo.LABEL_CLUSTER)
    if cluster is None:
        return first
    if cluster not in by_cluster:
        raise WaveError("%s names cluster %r, which is not in the fleet" % (describe(identity(obj)), cluster))
    return by_cluster[cluster]


def _previous_wave(obj, by_cluster, numbers):
    """Wave of an object of the previous state that the new fleet may no longer have."""
    labels = _labels(obj)
    cluster = labels.get(fo.LABEL_CLUSTER)
    if cluster is None:
        return numbers[0]
    if cluster in by_cluster:
        return by_cluster[cluster]
    label = labels.get(WAVE_LABEL)
    if isinstance(label, str) and label.isdigit() and int(label) in numbers:
        return int(label)
    return numbers[-1]


def assign_waves(fleet):
    """Set ``wave`` on every object and manifest of ``fleet`` (in place), label the Flux objects,
    refuse a dependsOn on a later wave; returns the wave list of ``wave_list``."""
    clusters = fleet["clusters"]
    by_cluster = {c["name"]: c["wave"] for c in clusters}
    first = wave_numbers(clusters)[0]
    waves_of = {}
    for entry in fleet.get("objects") or []:
        obj = entry["object"]
        entry["wave"] = _new_wave(obj, by_cluster, first)
        obj["metadata"].setdefault("labels", {})[WAVE_LABEL] = str(entry["wave"])
        waves_of[identity(obj)] = entry["wave"]
    for entry in fleet.get("manifests") or []:
        entry["wave"] = _new_wave(entry["object"], by_cluster, first)
    for entry in fleet.get("objects") or []:
        obj = entry["object"]
        for dep in (obj.get("spec") or {}).get("dependsOn") or []:
            target = (obj["kind"], dep.get("namespace") or obj["metadata"].get("namespace") or "", dep.get("name") or "", "")
            if waves_of.get(target, entry["wave"]) > entry["wave"]:
                raise WaveError(
                    "%s (wave %d) depends on %s, which is in the later wave %d: it would wait for a "
                    "wave that only starts after its own; move the clusters into one wave or drop the dependency"
                    % (describe(identity(obj)), entry["wave"], describe(target), waves_of[target])
                )
    return wave_list(clusters)


def entries_from_tree(files):
    """A rendered tree {path: text} -> entries {path, object}; generated kustomization.yaml files are skipped."""
    import yaml  # PyYAML; imported here so the module loads without it (the model does not need it)

    out = []
    for path in sorted(files):
        if posixpath.basename(path) in _SKIP_FILES or not path.endswith((".yaml", ".yml")):
            continue
        try:
            docs = list(yaml.safe_load_all(files[path]))
        except yaml.YAMLError as exc:
            raise WaveError("previous tree: %s is not valid YAML (%s)" % (path, getattr(exc, "problem", None) or exc))
        for doc in docs:
            if isinstance(doc, dict) and doc.get("kind") and (doc.get("metadata") or {}).get("name"):
                out.append({"path": path, "object": doc})
    return out


def _canonical(entry):
    return json.dumps([entry.get("path"), entry["object"]], sort_keys=True, default=str)


def _index(entries, what):
    out = {}
    for entry in entries or []:
        ident = _key(entry)
        if ident in out and _canonical(out[ident]) != _canonical(entry):
            raise WaveError("%s: %s appears twice with different content (%s, %s)" % (what, describe(ident), out[ident]["path"], entry["path"]))
        out[ident] = entry
    return out


def _is_bootstrap(entry):
    """Written by Ansible at bootstrap (the FluxInstance): by the entry's writer, or for a previous
    state without one (objects read back from a cluster) by its stage label."""
    if "writer" in entry:
        return entry["writer"] == fo.WRITER_BOOTSTRAP
    return _labels(entry["object"]).get(fo.LABEL_STAGE) in fo.BOOTSTRAP_STAGES


def _previous_entries(previous):
    return [e for e in previous or [] if not _is_bootstrap(e)]


def _new_entries(fleet):
    """What the fleet delivers: its objects and manifests except the bootstrap-written ones (the
    FluxInstance), which Ansible writes before any wave and never are in the tree."""
    return [e for e in list(fleet.get("objects") or []) + list(fleet.get("manifests") or []) if not _is_bootstrap(e)]


def _waves_of_all(previous, new, fleet):
    by_cluster = {c["name"]: c["wave"] for c in fleet["clusters"]}
    numbers = wave_numbers(fleet["clusters"])
    out = {}
    for ident in set(previous) | set(new):
        if ident in new:
            out[ident] = new[ident].get("wave", _new_wave(new[ident]["object"], by_cluster, numbers[0]))
        else:
            out[ident] = _previous_wave(previous[ident]["object"], by_cluster, numbers)
    return out


def _cluster_of(entry):
    return _labels(entry["object"]).get(fo.LABEL_CLUSTER)


def plan(previous, fleet):
    """-> [{wave, clusters, added, changed, removed}] in rollout order; the lists hold
    ``{kind, namespace, name, cluster, path}`` sorted by kind, namespace, name. A wave with three
    empty lists is already at target."""
    old = _index(_previous_entries(previous), "previous state")
    new = _index(_new_entries(fleet), "fleet")
    waves_of = _waves_of_all(old, new, fleet)
    out = {w["wave"]: dict(w, added=[], changed=[], removed=[]) for w in wave_list(fleet["clusters"])}
    for ident in sorted(waves_of):
        before, after = old.get(ident), new.get(ident)
        if before is not None and after is not None and _canonical(before) == _canonical(after):
            continue
        action = "added" if before is None else ("removed" if after is None else "changed")
        entry = after or before
        out[waves_of[ident]][action].append({
            "kind": ident[0], "namespace": ident[1] or None, "name": ident[2],
            "cluster": _cluster_of(entry), "path": entry["path"],
        })
    return [out[w] for w in sorted(out)]


def at_target(wave_plan):
    return not (wave_plan["added"] or wave_plan["changed"] or wave_plan["removed"])


def summarize(wave_plan, limit=5):
    """One line per wave: ``wave 1 (a, b): 1 changed (HelmRelease a/x)`` or ``... at target``."""
    head = "wave %d (%s)" % (wave_plan["wave"], ", ".join(wave_plan["clusters"]))
    if at_target(wave_plan):
        return head + ": at target"
    parts = []
    for action in ("added", "changed", "removed"):
        items = wave_plan[action]
        if items:
            names = ", ".join(describe((i["kind"], i["namespace"], i["name"])) for i in items[:limit])
            more = ", +%d more" % (len(items) - limit) if len(items) > limit else ""
            parts.append("%d %s (%s%s)" % (len(items), action, names, more))
    return head + ": " + "; ".join(parts)


def check_wave(fleet, wave):
    """The fleet's wave numbers; a ``wave`` that is not one of them is a WaveError."""
    numbers = wave_numbers(fleet["clusters"])
    if wave not in numbers:
        raise WaveError("wave %r is not a wave of the fleet (waves: %s)" % (wave, ", ".join(str(n) for n in numbers)))
    return numbers


def fleet_after_wave(previous, fleet, wave):
    """The fleet once wave ``wave`` is rolled out (see the module docstring); ``fleet`` is not modified."""
    numbers = check_wave(fleet, wave)
    old = _index(_previous_entries(previous), "previous state")
    new = _index(_new_entries(fleet), "fleet")
    new_objects = {_key(e) for e in fleet.get("objects") or []}
    waves_of = _waves_of_all(old, new, fleet)
    # Bootstrap-written objects are no part of any wave's delivery: as the fleet has them.
    objects = [copy.deepcopy(e) for e in fleet.get("objects") or [] if _is_bootstrap(e)]
    manifests = []
    for ident in sorted(waves_of):
        w = waves_of[ident]
        source = new if w <= wave else old
        if ident not in source:
            continue
        entry = copy.deepcopy(source[ident])
        entry["wave"] = w
        obj = entry["object"]
        stage = entry.get("stage") or _labels(obj).get(fo.LABEL_STAGE)
        is_object = ident in new_objects if ident in new else (obj.get("kind") in FLUX_KINDS and stage in fo.STAGES)
        if is_object:
            entry["stage"] = stage
            entry["writer"] = fo.writer(stage)
            objects.append(entry)
        else:
            entry.pop("stage", None)
            manifests.append(entry)
    objects.sort(key=fo.sort_key)
    manifests.sort(key=lambda m: (m["path"],) + _key(m)[:3])
    out = dict(fleet)
    out["objects"] = objects
    out["manifests"] = manifests
    # Clusters that left the inventory but whose objects a later wave still holds stay in the
    # tree (the hub's sync path keeps pulling in their directories) until their wave removes them.
    known = {c["name"] for c in fleet["clusters"]}
    kept = sorted({_cluster_of(e) for e in objects + manifests if _cluster_of(e) and _cluster_of(e) not in known})
    out["clusters"] = list(fleet["clusters"]) + [
        {"name": name, "group": None, "hub_namespace": None, "kubeconfig_secret": None, "kubeconfig": None,
         "kubeconfig_source": None, "context": None, "server": None, "wave": numbers[-1], "removed": True}
        for name in kept
    ]
    out["rollout"] = {"after_wave": wave, "waves": plan(previous, fleet)}
    return out


def tree_after_wave(fleet, wave, render, into):
    """For git_publish.publish: a function of the files the collection wrote at the branch's head
    ({path: text}) that returns the tree after ``wave`` (``render``: gitops_tree.render_tree) and
    keeps the fleet it rendered in ``into["fleet"]``. A wave the fleet does not have fails now."""
    check_wave(fleet, wave)

    def tree_for(head_files):
        into["fleet"] = fleet_after_wave(entries_from_tree(head_files), fleet, wave)
        return render(into["fleet"])
    return tree_for
