# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)
"""Figures of one wait for people to read: how many became ready in how long, who is still waited for.

Pure: takes the waiter's result dict (objects with state/ready_after, chains, elapsed, outcome).
flux_wait returns it as ``figures``; roles/fleet_apply prints ``figures.line`` per stage.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

SLOWEST = 3
WAITING = 5


def _where(row):
    return "%s %s/%s" % (row["kind"], row["namespace"], row["name"]) if row.get("namespace") else "%s %s" % (row["kind"], row["name"])


def figures(result):
    """{ready, total, elapsed, outcome, slowest, waiting_for, line} of a waiter result."""
    rows = result.get("objects") or []
    ready = [r for r in rows if r.get("state") == "ready"]
    timed = sorted((r for r in ready if r.get("ready_after") is not None), key=lambda r: -r["ready_after"])
    waiting = [r for r in rows if r.get("state") != "ready"]
    out = {
        "ready": len(ready), "total": len(rows), "elapsed": result.get("elapsed"), "outcome": result.get("outcome"),
        "slowest": [{"object": _where(r), "ready_after": r["ready_after"]} for r in timed[:SLOWEST]],
        "waiting_for": ["%s (%s: %s)" % (_where(r), r.get("state"), r.get("reason")) for r in waiting[:WAITING]],
    }
    line = "%d of %d ready in %.1fs" % (out["ready"], out["total"], out["elapsed"] or 0.0)
    if out["outcome"] and out["outcome"] != "ready":
        line += " (%s)" % out["outcome"]
    if out["slowest"]:
        line += "; slowest: " + ", ".join("%s %.1fs" % (s["object"], s["ready_after"]) for s in out["slowest"])
    if waiting:
        line += "; waiting for: " + ", ".join(out["waiting_for"])
        if len(waiting) > WAITING:
            line += " and %d more" % (len(waiting) - WAITING)
    chains = result.get("chains") or []
    if chains:
        line += "; blocked: " + " | ".join(chains[:3])
    out["line"] = line
    return out
