# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)
"""flux_reconcile's logic: annotate, then wait until the controller says it handled the request.

A reconcile request is the annotation ``reconcile.fluxcd.io/requestedAt: <token>``; the
controller copies the token to ``status.lastHandledReconcileAt`` when it has acted on it (and
``forceAt``/``resetAt`` to ``lastHandledForceAt``/``lastHandledResetAt`` for HelmReleases).
Annotations do not bump metadata.generation, so a Ready=True from before the request would pass
the generation check: until the tokens show up, the object is held as progressing.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime

from ansible_collections.c5c3.gitops.plugins.module_utils import flux_kinds, readiness
from ansible_collections.c5c3.gitops.plugins.module_utils.waiter import Waiter, normalize_objects

REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
FORCE_AT = "reconcile.fluxcd.io/forceAt"
RESET_AT = "reconcile.fluxcd.io/resetAt"
HANDLED = {REQUESTED_AT: "lastHandledReconcileAt", FORCE_AT: "lastHandledForceAt", RESET_AT: "lastHandledResetAt"}
# Kinds without a controller that would ever answer a request (the kind table says which).
NOT_RECONCILED = frozenset(flux_kinds.kinds_where(reconcilable=False))


class ReconcileError(Exception):
    """A request could not be made (object missing, API error)."""


def new_token(now=None):
    """Like the flux CLI: an RFC 3339 timestamp with sub-second precision (unique per request)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _key(r):
    return (r["kind"], r.get("namespace") or "", r["name"])


def source_of(obj):
    """The sources a flux reconcile --with-source would refresh first, in order (may be empty).

    HelmRelease: chartRef (OCIRepository/HelmChart), or its chart template's repository and
    then the HelmChart generated from it; Kustomization: spec.sourceRef. OCI HelmRepositories
    are never reconciled (no status), so they are skipped.
    """
    kind = obj.get("kind")
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    spec = obj.get("spec") or {}
    out = []
    if kind == "HelmRelease":
        chart_ref = spec.get("chartRef")
        if chart_ref:
            out.append(readiness.ref(chart_ref["kind"], chart_ref.get("namespace") or ns, chart_ref["name"]))
        else:
            src = (((spec.get("chart") or {}).get("spec") or {}).get("sourceRef")) or {}
            src_ns = src.get("namespace") or ns
            if src.get("name"):
                out.append(readiness.ref(src.get("kind") or "HelmRepository", src_ns, src["name"]))
            chart = (obj.get("status") or {}).get("helmChart")  # "namespace/name"
            if chart and "/" in chart:
                chart_ns, chart_name = chart.split("/", 1)
            else:  # helm-controller's naming when the status does not say yet
                chart_ns, chart_name = src_ns, "%s-%s" % (ns, meta.get("name"))
            out.append(readiness.ref("HelmChart", chart_ns, chart_name))
    elif kind == "Kustomization":
        src = spec.get("sourceRef") or {}
        if src.get("name"):
            out.append(readiness.ref(src.get("kind") or "GitRepository", src.get("namespace") or ns, src["name"]))
    return out


class Reconciler(object):
    """Request reconciliation of objects (optionally their sources first) and wait for it."""

    def __init__(self, source, waiter_factory=Waiter):
        self.source = source
        self.waiter_factory = waiter_factory
        self.sent = 0  # requests that reached their object (a failure after one has changed something)

    def _get(self, r):
        obj = self.source.get(flux_kinds.lookup(r["kind"], r.get("api_version")), r.get("namespace"), r["name"])
        if obj is None:
            raise ReconcileError("%s not found" % readiness.ref_str(r))
        return obj

    def plan(self, objects, with_source):
        """Stages of refs to request, sources first; each ref once, in the earliest stage.

        Returns (stages, target keys, skipped sources). A source that does not exist (e.g. a
        HelmChart the controller has not created yet) or an OCI HelmRepository (never
        reconciled) is skipped and reported, not an error: the object's own status tells.
        """
        objects = normalize_objects(objects)
        stages, skipped = [], []
        if with_source:
            repos, charts = [], []
            for r in objects:
                for src in source_of(self._get(r)):
                    found = self.source.get(flux_kinds.lookup(src["kind"]), src["namespace"], src["name"])
                    if found is None:
                        skipped.append(dict(src, reason="not found"))
                        continue
                    if src["kind"] == "HelmRepository" and (found.get("spec") or {}).get("type") == "oci":
                        skipped.append(dict(src, reason="OCI HelmRepository (not reconciled)"))
                        continue
                    (charts if src["kind"] == "HelmChart" else repos).append(src)
            stages.extend([repos, charts])
        stages.append(objects)
        seen, out = set(), []
        for stage in stages:
            uniq = []
            for r in stage:
                if _key(r) not in seen and r["kind"] not in NOT_RECONCILED:
                    seen.add(_key(r))
                    uniq.append(r)
            if uniq:
                out.append(uniq)
        return out, set(_key(r) for r in objects), skipped

    def run(self, objects, with_source=False, force=False, reset=False, wait=True, timeout=300,
            check_mode=False, token=None, watch_timeout=None):
        token = token or new_token()
        stages, targets, skipped = self.plan(objects, with_source)
        requested, rows = [], []
        deadline_left = timeout
        clock = None
        for stage in stages:
            expect = {}
            for r in stage:
                annotations = {REQUESTED_AT: token}
                if flux_kinds.fact(r["kind"], "force_reset") and _key(r) in targets:
                    if force:
                        annotations[FORCE_AT] = token
                    if reset:
                        annotations[RESET_AT] = token
                expect[_key(r)] = dict((HANDLED[a], token) for a in annotations)
                requested.append(dict(r, annotations=annotations, source=_key(r) not in targets))
                if not check_mode:
                    info = flux_kinds.lookup(r["kind"], r.get("api_version"))
                    patched = self.source.merge_patch(info, r.get("namespace"), r["name"],
                                                      {"metadata": {"annotations": annotations}})
                    if patched is None:
                        raise ReconcileError("%s not found" % readiness.ref_str(r))
                    self.sent += 1
            if check_mode or not wait:
                continue
            kwargs = {"override": _handled(expect, token)}
            if watch_timeout:
                kwargs["watch_timeout"] = watch_timeout
            waiter = self.waiter_factory(self.source, **kwargs)
            clock = clock or waiter.clock
            started = waiter.clock()
            result = waiter.wait(stage, timeout=max(0, deadline_left), missing_grace=0)
            deadline_left -= waiter.clock() - started
            rows.extend(result["objects"])
            if not result["ok"]:
                return dict(ok=False, token=token, requested=requested, skipped_sources=skipped, objects=rows,
                            message=result["message"], outcome=result["outcome"])
        if check_mode:
            # Report what is there now; nothing was sent.
            current = self.waiter_factory(self.source).wait(normalize_objects(objects), once=True)
            rows = current["objects"]
        return dict(ok=True, token=token, requested=requested, skipped_sources=skipped, objects=rows,
                    message="%d reconcile request(s) %s" % (
                        len(requested), "would be sent" if check_mode else ("handled" if wait else "sent")),
                    outcome="handled" if wait and not check_mode else "requested")


def _handled(expect, token):
    def override(key, obj):
        if obj is None or key not in expect:
            return None
        status = obj.get("status") or {}
        pending = sorted(field for field, value in expect[key].items() if status.get(field) != value)
        if not pending:
            return None
        meta = obj.get("metadata") or {}
        return readiness.Verdict(
            readiness.PROGRESSING, "ReconcileRequested",
            "request %s not handled yet (%s)" % (token, ", ".join("status.%s" % f for f in pending)),
            meta.get("generation"), (status.get("observedGeneration")))
    return override
