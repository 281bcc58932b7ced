# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)
"""Which object is blocked by which ``dependsOn`` chain, across clusters (fleet_status_info).

Pure: works on the report's object records only, so a merged report (slices of a sliced run)
gets exactly the same chains as a report read in one go. Each object record carries ``kind``,
``namespace``, ``name``, ``cluster``, ``readiness`` (the gate's verdict: ready, progressing,
failed, missing) and ``depends_on`` (refs). This module sets ``state``, ``blocked_by``,
``chains`` and ``root_causes``.

States (the colours of the picture): ``ready``; ``failed`` (terminal verdict, or a missing
object); ``blocked`` (not ready and a dependency is not ready: waiting on someone else);
``progressing`` (not ready on its own account, e.g. still reconciling).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

READY, PROGRESSING, FAILED, BLOCKED = "ready", "progressing", "failed", "blocked"
STATES = (READY, PROGRESSING, FAILED, BLOCKED)
MAX_DEPTH = 12


def ref_key(ref):
    return (ref.get("kind"), ref.get("namespace") or "", ref.get("name"))


def ref_text(ref):
    return "%s %s/%s" % (ref.get("kind"), ref.get("namespace"), ref.get("name"))


def _own_state(obj):
    verdict = obj.get("readiness")
    if verdict == READY:
        return READY
    if verdict in (FAILED, "missing"):
        return FAILED
    return PROGRESSING


def resolve(clusters):
    """Set state/blocked_by/chains/root_causes on every object of ``clusters`` (in place).

    A dependency that is in no cluster of the report is ``missing`` when its namespace belongs to
    a cluster whose hub objects were read (the object really does not exist), else ``unknown``
    (outside this report). Returns the list of all chains, sorted.
    """
    index, read_namespaces = {}, set()
    for cluster in clusters:
        if (cluster.get("hub_read") or {}).get("ok"):
            read_namespaces.add(cluster.get("hub_namespace"))
        for obj in cluster.get("objects") or []:
            index[ref_key(obj)] = obj

    def dep_state(ref):
        obj = index.get(ref_key(ref))
        if obj is not None:
            return obj, _own_state(obj)
        return None, ("missing" if ref.get("namespace") in read_namespaces else "unknown")

    def paths(obj, seen, depth):
        """Every path from obj to a not-ready dependency that is not itself waiting on another."""
        out = []
        for ref in obj.get("depends_on") or []:
            dep, state = dep_state(ref)
            if state == READY:
                continue
            step = dict(ref, state=state, reason=(dep or {}).get("reason") or ("NotFound" if state == "missing" else ""),
                        cluster=(dep or {}).get("cluster"))
            key = ref_key(ref)
            if dep is None or key in seen or depth >= MAX_DEPTH:
                out.append([step])
                continue
            deeper = paths(dep, seen | {key}, depth + 1)
            out.extend([[step] + p for p in deeper] or [[step]])
        return out

    every = []
    for cluster in clusters:
        for obj in cluster.get("objects") or []:
            own = _own_state(obj)
            obj["blocked_by"], obj["chains"], obj["root_causes"] = [], [], []
            if own == READY:
                obj["state"] = READY
                continue
            found = paths(obj, {ref_key(obj)}, 0)
            for path in found:
                first = dict((k, path[0][k]) for k in ("kind", "namespace", "name", "cluster", "state"))
                if first not in obj["blocked_by"]:
                    obj["blocked_by"].append(first)
                last = path[-1]
                root = dict((k, last[k]) for k in ("kind", "namespace", "name", "cluster", "state", "reason"))
                if root not in obj["root_causes"]:
                    obj["root_causes"].append(root)
                text = " -> ".join([ref_text(obj)] + ["%s (%s%s)" % (ref_text(s), s["state"], ": " + s["reason"] if s["reason"] else "")
                                                      for s in path])
                if text not in obj["chains"]:
                    obj["chains"].append(text)
            # A failure of its own wins over waiting: the object is red, its chain still shown.
            obj["state"] = own if own == FAILED or not found else BLOCKED
            every.extend(obj["chains"])
    return sorted(set(every))
