# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)
"""The gate's watch loop: wait for a set of objects to become ready, generation-aware.

One LIST + one WATCH per (kind, namespace[, label selector]) pair, however many objects the
pair holds; every verdict comes from readiness.evaluate(). One monotonic deadline covers the
whole set. A watch that ends (server timeout) resumes from the last resourceVersion; one that
expired (410 Gone) re-lists; a dropped connection is retried with a short backoff.

The source of objects is pluggable so the unit tests can drive the loop with a fake:
``list(info, namespace, label_selector) -> (items, resource_version)``,
``watch(info, namespace, resource_version, label_selector, timeout_seconds) -> stream``
(an iterable of (event_type, object) with ``close()``), ``get(info, namespace, name) -> obj|None``
and an ``api_requests`` counter. kube.KubeClient is the real one; its errors are KubeError.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import threading
import time

try:
    import queue
except ImportError:  # pragma: no cover - Python 2 is not supported, keeps sanity's compile test quiet
    import Queue as queue  # noqa: N813

from ansible_collections.c5c3.gitops.plugins.module_utils import flux_kinds, readiness, revision_gate
from ansible_collections.c5c3.gitops.plugins.module_utils.kube_errors import KubeError, WatchGone

SourceError = KubeError  # the name the gate's callers used for API errors

DEFAULT_WATCH_TIMEOUT = 290  # server-side watch timeout per request; below kube's 30 min cap
MAX_CHAIN_DEPTH = 10


class WaitError(Exception):
    """Bad input to the waiter (unknown kind, selector without kind, ...)."""


# --------------------------------------------------------------------------- the loop

class _Pair(object):
    """One (kind, namespace, selector) stream and the objects it currently holds."""

    def __init__(self, info, namespace, selector, selects):
        self.info = info
        self.namespace = namespace
        self.selector = selector
        self.selects = selects  # every object it holds is waited on (a selector entry)
        self.synced = False
        self.items = {}
        self.stream = None
        self.relists = 0
        self.rewatches = 0

    @property
    def label(self):
        text = "%s in %s" % (self.info["kind"], self.namespace)
        return text + (" (%s)" % self.selector if self.selector else "")


def _key(kind, namespace, name):
    return (kind, namespace or "", name)


def _rv(obj):
    return (obj.get("metadata") or {}).get("resourceVersion")


def _fmt(seconds):
    return "%.1fs" % seconds


class Waiter(object):
    """Wait for ``objects`` and ``selectors``; see wait()."""

    def __init__(self, source, clock=time.monotonic, watch_timeout=DEFAULT_WATCH_TIMEOUT,
                 reconnect_backoff=(0.1, 2.0), override=None):
        self.source = source
        self.clock = clock
        self.watch_timeout = watch_timeout
        self.backoff = reconnect_backoff
        # override(key, obj) -> Verdict|None is asked before readiness.evaluate (flux_reconcile
        # uses it to hold objects until their reconcile request was handled).
        self.override = override
        self._queue = queue.Queue()
        self._stop = threading.Event()

    # ---------------------------------------------------------------- input
    def _plan(self, objects, selectors, revision=None, chart_version=None):
        pairs, targets = {}, {}
        self._revisions = {}  # key -> expected Flux revision (revision_gate)
        self._chart_versions = {}  # key -> chart version a HelmRelease must run (readiness.check_chart_version)
        for obj in objects or []:
            kind, name = obj.get("kind"), obj.get("name")
            if not kind or not name:
                raise WaitError("every object needs kind and name: %r" % (obj,))
            info = self._info(kind, obj.get("api_version") or obj.get("apiVersion"))
            ns = obj.get("namespace") if info["namespaced"] else None
            if info["namespaced"] and not ns:
                raise WaitError("%s %s needs a namespace" % (kind, name))
            pkey = (kind, info["api_version"], ns, None)
            pairs.setdefault(pkey, _Pair(info, ns, None, False))
            targets[_key(kind, ns, name)] = pkey
            want = obj.get("revision") or (revision if kind in revision_gate.REVISION_KINDS else None)
            if want:
                if kind not in revision_gate.REVISION_KINDS:
                    raise WaitError("%s %s: revision applies only to %s" % (
                        kind, name, ", ".join(sorted(revision_gate.REVISION_KINDS))))
                self._revisions[_key(kind, ns, name)] = want
            want_chart = obj.get("chart_version") or (chart_version if kind == "HelmRelease" else None)
            if want_chart:
                if kind != "HelmRelease":
                    raise WaitError("%s %s: chart_version applies only to HelmRelease" % (kind, name))
                self._chart_versions[_key(kind, ns, name)] = str(want_chart)
        for sel in selectors or []:
            kind = sel.get("kind")
            if not kind:
                raise WaitError("every selector needs a kind: %r" % (sel,))
            info = self._info(kind, sel.get("api_version") or sel.get("apiVersion"))
            ns = sel.get("namespace") if info["namespaced"] else None
            if info["namespaced"] and not ns:
                raise WaitError("selector on %s needs a namespace" % kind)
            selector = sel.get("label_selector") or None
            pkey = (kind, info["api_version"], ns, selector)
            pair = pairs.setdefault(pkey, _Pair(info, ns, selector, True))
            pair.selects = True
        return pairs, targets

    @staticmethod
    def _info(kind, api_version):
        try:
            return flux_kinds.lookup(kind, api_version)
        except flux_kinds.UnknownKindError as exc:
            raise WaitError(str(exc))

    # ---------------------------------------------------------------- streams
    def _pump(self, pkey, pair):
        """Thread body: LIST, then WATCH from its resourceVersion, forever, into the queue."""
        rv, need_list, delay = None, True, self.backoff[0]
        while not self._stop.is_set():
            try:
                if need_list:
                    items, rv = self.source.list(pair.info, pair.namespace, pair.selector)
                    self._queue.put(("sync", pkey, items, rv))
                    need_list = False
                stream = self.source.watch(pair.info, pair.namespace, rv, pair.selector, self.watch_timeout)
                pair.stream = stream
                if self._stop.is_set():
                    stream.close()
                    return
                for etype, obj in stream:
                    if self._stop.is_set():
                        return
                    rv = _rv(obj) or rv
                    if etype != "BOOKMARK":
                        self._queue.put(("event", pkey, etype, obj))
                if self._stop.is_set():
                    return
                delay = self.backoff[0]
                pair.rewatches += 1  # ended by the server's timeout: resume from rv
            except WatchGone:
                need_list = True
                pair.relists += 1
            except KubeError as exc:
                # The client already retried (bounded). Before the first LIST answered, fail with
                # its clear message (dead port, wrong token, no permission) instead of waiting for
                # the deadline; once streaming, a dropped watch or a restarting server is waited out.
                if self._stop.is_set():
                    return
                if exc.retryable and pair.synced:
                    pair.rewatches += 1
                    self._stop.wait(delay)
                    delay = min(delay * 2, self.backoff[1])
                    continue
                self._queue.put(("error", pkey, exc, None))
                return
            except Exception:  # a stream that broke in an unexpected way: reopen it
                if self._stop.is_set():
                    return
                pair.rewatches += 1
                self._stop.wait(delay)
                delay = min(delay * 2, self.backoff[1])

    def _stop_all(self, pairs, threads):
        self._stop.set()
        for pair in pairs.values():
            if pair.stream is not None:
                pair.stream.close()
        for thread in threads:
            thread.join(timeout=2)

    # ---------------------------------------------------------------- the wait
    def wait(self, objects=None, selectors=None, timeout=300, missing_grace=30, fail_fast=True, once=False,
             revision=None, chart_version=None):
        """Wait until every object is ready, one fails (fail_fast), or ``timeout`` seconds pass.

        ``revision``: Flux revision every source and Kustomization among ``objects`` must be at
        (an object's own ``revision`` key wins); see revision_gate.

        ``chart_version``: the chart version every HelmRelease among ``objects`` must run
        (status.history[0].chartVersion; an object's own ``chart_version`` key wins).

        ``once``: list each pair one time and report (check mode); no watch, no waiting.
        Returns a dict (see WaitResult keys in docs/readiness.md); never raises for
        not-ready objects, only for bad input (WaitError) or API errors (KubeError).
        """
        start = self.clock()
        deadline = start + max(0, timeout)
        grace_end = start + max(0, min(missing_grace, timeout))
        pairs, targets = self._plan(objects, selectors, revision, chart_version)
        self._selected = {}  # key -> pair key, objects held by selector pairs
        self._verdicts, self._objs, self._ready_at = {}, {}, {}
        self._not_ready, self._failed, self._missing = set(), set(), set()
        self._targets, self._pairs, self._start = targets, pairs, start

        threads = []
        if once:
            for pkey, pair in pairs.items():
                items = self.source.list(pair.info, pair.namespace, pair.selector)[0]
                self._sync(pkey, items)
        else:
            for pkey, pair in pairs.items():
                thread = threading.Thread(target=self._pump, args=(pkey, pair), name="watch %s" % pair.label)
                thread.daemon = True
                thread.start()
                threads.append(thread)

        outcome = None
        try:
            while not once:
                now = self.clock()
                if now >= deadline:
                    outcome = "timeout"
                    break
                wake = deadline if now >= grace_end else min(deadline, grace_end)
                try:
                    item = self._queue.get(timeout=max(0.0, wake - now))
                except queue.Empty:
                    item = None
                while item is not None:
                    self._handle(item)
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        item = None
                outcome = self._decide(self.clock() >= grace_end, fail_fast)
                if outcome:
                    break
            if once:
                outcome = self._decide(True, False) or "reported"
        finally:
            if threads:
                self._stop_all(pairs, threads)
        return self._result(outcome, self.clock() - start, once)

    def _handle(self, item):
        what, pkey, a, b = item
        if what == "error":
            raise a
        if what == "sync":
            self._sync(pkey, a)
        elif what == "event":
            self._event(pkey, a, b)

    def _sync(self, pkey, items):
        pair = self._pairs[pkey]
        seen = {}
        for obj in items:
            seen[(obj.get("metadata") or {}).get("name")] = obj
        # A re-list replaces the pair's view: what is gone was deleted while we were away.
        for name in set(pair.items) - set(seen):
            self._event(pkey, "DELETED", pair.items[name])
        for obj in seen.values():
            self._event(pkey, "MODIFIED", obj)
        if not pair.synced:
            pair.synced = True
            for key, target_pair in self._targets.items():
                if target_pair == pkey and key[2] not in pair.items and key not in self._verdicts:
                    self._set(key, None)

    def _event(self, pkey, etype, obj):
        pair = self._pairs[pkey]
        name = (obj.get("metadata") or {}).get("name")
        key = _key(pair.info["kind"], pair.namespace, name)
        if etype == "DELETED":
            pair.items.pop(name, None)
            if pair.selects and key not in self._targets:
                self._selected.pop(key, None)
                self._forget(key)
                return
            if key in self._targets or key in self._selected:
                self._objs[key] = None
                self._set(key, None)
            return
        pair.items[name] = obj
        if pair.selects and key not in self._targets:
            self._selected[key] = pkey
        if key in self._targets or key in self._selected:
            self._objs[key] = obj
            self._set(key, obj)

    def _forget(self, key):
        for bucket in (self._verdicts, self._objs, self._ready_at):
            bucket.pop(key, None)
        for bucket in (self._not_ready, self._failed, self._missing):
            bucket.discard(key)

    def _set(self, key, obj):
        verdict = self.override(key, obj) if self.override else None
        if verdict is None:
            verdict = readiness.evaluate(obj, key[0])
        if key in self._revisions:
            verdict = revision_gate.check(obj, key[0], self._revisions[key], verdict)
        if key in self._chart_versions:
            verdict = readiness.check_chart_version(obj, self._chart_versions[key], verdict)
        was_ready = key in self._verdicts and self._verdicts[key].ready
        self._verdicts[key] = verdict
        # Sets kept current per event, so deciding costs O(1) however many objects are waited on.
        for bucket, member in ((self._not_ready, not verdict.ready), (self._failed, verdict.terminal),
                               (self._missing, verdict.state == readiness.MISSING)):
            if member:
                bucket.add(key)
            else:
                bucket.discard(key)
        if verdict.ready and not was_ready:
            self._ready_at[key] = round(self.clock() - self._start, 3)
        elif not verdict.ready:
            self._ready_at.pop(key, None)

    def _all_keys(self):
        keys = list(self._targets)
        keys.extend(k for k in self._selected if k not in self._targets)
        return keys

    def _empty_selectors(self):
        return [pair for pair in self._pairs.values()
                if pair.selects and pair.synced and not pair.items]

    def _decide(self, grace_over, fail_fast):
        if not all(pair.synced for pair in self._pairs.values()):
            return None
        if fail_fast and self._failed:
            return "failed"
        if grace_over and fail_fast and (self._missing or self._empty_selectors()):
            return "missing"
        if not self._not_ready and not self._empty_selectors():
            return "ready"
        return None

    # ---------------------------------------------------------------- dependencies
    def _lookup(self, r, fetched):
        """The current object behind a dependency ref: from a stream's cache, else one GET."""
        key = _key(r["kind"], r["namespace"], r["name"])
        if key in self._objs:
            return self._objs[key]
        for pair in self._pairs.values():
            if pair.info["kind"] == r["kind"] and (pair.namespace or "") == (r["namespace"] or "") \
                    and pair.selector is None and pair.synced:
                return pair.items.get(r["name"])
        if key not in fetched:
            try:
                fetched[key] = self.source.get(flux_kinds.lookup(r["kind"]), r["namespace"], r["name"])
            except (KubeError, flux_kinds.UnknownKindError):
                fetched[key] = None
        return fetched[key]

    def _blockers(self, key, obj, verdict, fetched):
        """Direct dependencies of a not-ready object that are themselves not ready."""
        refs = list(verdict.blocked_by)
        if obj is not None:
            refs.extend(d for d in readiness.depends_on(obj, key[0]) if d not in refs)
        out = []
        for r in refs:
            dep = self._lookup(r, fetched)
            dv = readiness.evaluate(dep, r["kind"])
            if not dv.ready:
                out.append((r, dep, dv))
        return out

    def _chains(self, key, obj, verdict, fetched, seen, depth=0):
        """Every path from ``key`` to a not-ready dependency that is not itself blocked."""
        paths = []
        for r, dep, dv in self._blockers(key, obj, verdict, fetched):
            dkey = _key(r["kind"], r["namespace"], r["name"])
            step = (r, dv)
            if dkey in seen or depth >= MAX_CHAIN_DEPTH:
                paths.append([step])
                continue
            deeper = self._chains(dkey, dep, dv, fetched, seen | {dkey}, depth + 1)
            paths.extend([[step] + p for p in deeper] or [[step]])
        return paths

    # ---------------------------------------------------------------- result
    def _result(self, outcome, elapsed, once):
        fetched = {}
        rows, not_ready, chains = [], [], []
        counts = dict((s, 0) for s in readiness.STATES)
        for key in sorted(self._all_keys()):
            verdict = self._verdicts.get(key)
            if verdict is None:  # its stream never synced before the deadline
                verdict = readiness.Verdict(readiness.PROGRESSING, "NotObserved",
                                            "no answer from the API server yet")
            obj = self._objs.get(key)
            row = {
                "kind": key[0], "namespace": key[1] or None, "name": key[2],
                "api_version": (self._pairs.get(self._targets.get(key) or self._selected.get(key)).info["api_version"]),
                "state": verdict.state, "reason": verdict.reason, "message": verdict.message,
                "generation": verdict.generation, "observed_generation": verdict.observed_generation,
                "ready_after": self._ready_at.get(key) if verdict.ready else None,
                "revision": revision_gate.observed(obj, key[0])[0] if obj is not None and key[0] in revision_gate.REVISION_KINDS else None,
                "chart_version": readiness.release_chart_version(obj)[0] if key[0] == "HelmRelease" else None,
                "blocked_by": [],
                "notes": list(verdict.notes),
            }
            counts[verdict.state] += 1
            if not verdict.ready:
                for path in self._chains(key, obj, verdict, fetched, {key}):
                    first = path[0][0]
                    if first not in row["blocked_by"]:
                        row["blocked_by"].append(first)
                    text = " -> ".join(
                        ["%s %s/%s" % key] +
                        ["%s (%s: %s)" % (readiness.ref_str(r), v.state, v.reason) for r, v in path])
                    if text not in chains:
                        chains.append(text)
                not_ready.append(row)
            rows.append(row)
        for pair in self._empty_selectors():
            chains.append("selector %s matched no objects" % pair.label)
        summary = dict(counts, total=len(rows))
        ok = outcome == "ready"
        return {
            "ok": ok,
            "outcome": outcome,
            "elapsed": round(elapsed, 3),
            "api_requests": getattr(self.source, "api_requests", None),
            "objects": rows,
            "summary": summary,
            "not_ready": not_ready,
            "chains": chains,
            "watch_restarts": sum(p.rewatches for p in self._pairs.values()),
            "relists": sum(p.relists for p in self._pairs.values()),
            "message": self._message(outcome, elapsed, rows, not_ready, chains, summary),
        }

    @staticmethod
    def _message(outcome, elapsed, rows, not_ready, chains, summary):
        if outcome == "ready":
            return "all %d objects ready after %s" % (summary["total"], _fmt(elapsed))
        head = {
            "failed": "failed after %s (fail-fast)" % _fmt(elapsed),
            "missing": "objects still missing after %s grace" % _fmt(elapsed),
            "timeout": "timed out after %s" % _fmt(elapsed),
            "reported": "current state (not waited)",
        }.get(outcome, outcome or "")
        lines = ["%d of %d objects not ready, %s:" % (len(not_ready), summary["total"], head)]
        order = {readiness.FAILED: 0, readiness.MISSING: 1, readiness.PROGRESSING: 2}
        for row in sorted(not_ready, key=lambda r: (order.get(r["state"], 3), r["kind"], r["namespace"] or "", r["name"])):
            where = "%s/%s" % (row["namespace"], row["name"]) if row["namespace"] else row["name"]
            text = "- %s %s: %s, %s" % (row["kind"], where, row["state"], row["reason"])
            if row["message"]:
                text += ": %s" % row["message"]
            lines.append(text)
        if chains:
            lines.append("what blocks what:")
            lines.extend("  %s" % c for c in chains)
        return "\n".join(lines)


def normalize_objects(items):
    """Accept flux_wait objects and flux_apply's ``applied`` items alike: keep the identity."""
    out = []
    for item in items or []:
        row = {
            "kind": item.get("kind"),
            "name": item.get("name") or (item.get("metadata") or {}).get("name"),
            "namespace": item.get("namespace") or (item.get("metadata") or {}).get("namespace"),
            "api_version": item.get("api_version") or item.get("apiVersion"),
        }
        if item.get("revision"):
            row["revision"] = item["revision"]
        if item.get("chart_version"):
            row["chart_version"] = str(item["chart_version"])
        out.append(row)
    return out
