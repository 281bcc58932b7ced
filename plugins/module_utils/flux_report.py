# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)
"""flux_report_info's logic: the FluxReport (data in ``spec``) -> structured report + problems.

Pure: takes the object as the API returns it (or None), no Ansible, no kubernetes imports.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.c5c3.gitops.plugins.module_utils import readiness


def summarize(obj, namespace="flux-system", name="flux"):
    """Return {exists, healthy, problems, report} for a FluxReport object (None = absent)."""
    if obj is None:
        return {
            "exists": False, "healthy": False, "report": {},
            "problems": ["FluxReport %s/%s not found (is the Flux Operator installed and a FluxInstance applied?)"
                         % (namespace, name)],
        }
    spec = obj.get("spec") or {}
    verdict = readiness.evaluate(obj, "FluxReport")
    distribution = spec.get("distribution") or {}
    components = spec.get("components") or []
    reconcilers = spec.get("reconcilers") or []
    sync = spec.get("sync")
    problems = []

    if not verdict.ready:
        problems.append("report not ready: %s: %s" % (verdict.reason, verdict.message))
    dist_status = distribution.get("status") or ""
    if not distribution.get("version") or "not installed" in dist_status.lower():
        problems.append("Flux distribution not installed (%s)" % (dist_status or "no status"))
    for comp in components:
        if not comp.get("ready"):
            problems.append("component %s not ready: %s" % (comp.get("name"), comp.get("status") or "no status"))
    stats = []
    for rec in reconcilers:
        s = rec.get("stats") or {}
        row = {
            "api_version": rec.get("apiVersion"), "kind": rec.get("kind"),
            "running": s.get("running", 0), "failing": s.get("failing", 0), "suspended": s.get("suspended", 0),
            "total_size": s.get("totalSize"),
        }
        stats.append(row)
        if row["failing"]:
            problems.append("%d %s failing" % (row["failing"], row["kind"]))
    if sync is not None and not sync.get("ready"):
        problems.append("sync %s not ready: %s" % (sync.get("id") or sync.get("source"), sync.get("status")))

    report = {
        "name": (obj.get("metadata") or {}).get("name"),
        "namespace": (obj.get("metadata") or {}).get("namespace"),
        "ready": verdict.to_dict(),
        "distribution": {
            "version": distribution.get("version"), "status": distribution.get("status"),
            "entitlement": distribution.get("entitlement"), "managed_by": distribution.get("managedBy"),
        },
        "components": [{"name": c.get("name"), "ready": bool(c.get("ready")), "status": c.get("status"),
                        "image": c.get("image")} for c in components],
        "reconcilers": stats,
        "sync": None if sync is None else {
            "id": sync.get("id"), "path": sync.get("path"), "ready": bool(sync.get("ready")),
            "source": sync.get("source"), "status": sync.get("status")},
        "cluster": spec.get("cluster"),
        "operator": spec.get("operator"),
        "last_handled_reconcile_at": (obj.get("status") or {}).get("lastHandledReconcileAt"),
    }
    return {"exists": True, "healthy": not problems, "problems": problems, "report": report}
