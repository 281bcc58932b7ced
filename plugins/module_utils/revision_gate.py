# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)
"""Revision gating: an object is ready only at the revision that was pushed.

On top of readiness.evaluate() (Ready at the current generation): a source is ready only when its
``status.artifact.revision`` is the expected one, a Kustomization only when its
``status.lastAppliedRevision`` is. A failure reported for an older revision (a Kustomization
whose ``lastAttemptedRevision`` is not the expected one) is not final: the new commit may fix it,
so it is waited on; a failure at the expected revision fails fast as usual. Pure Python.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.c5c3.gitops.plugins.module_utils import readiness

SOURCE_KINDS = frozenset(["GitRepository", "OCIRepository", "Bucket", "HelmChart"])
REVISION_KINDS = SOURCE_KINDS | frozenset(["Kustomization"])


def digest(revision):
    """The part of a Flux revision that names the content: ``main@sha1:abc`` -> ``sha1:abc``.

    Flux writes the ref as spec.ref says (``main`` or ``refs/heads/main``); the sha decides."""
    revision = str(revision or "")
    return revision.rsplit("@", 1)[-1] if "@" in revision else revision


def same(actual, expected):
    if not actual or not expected:
        return False
    a, e = digest(actual), digest(expected)
    if ":" not in e:  # a bare sha
        return a.split(":", 1)[-1] == e
    return a == e


def observed(obj, kind):
    """(applied/artifact revision, attempted revision) reported by the controller."""
    status = (obj or {}).get("status") or {}
    if kind == "Kustomization":
        return status.get("lastAppliedRevision"), status.get("lastAttemptedRevision")
    revision = (status.get("artifact") or {}).get("revision")
    return revision, revision


def check(obj, kind, expected, verdict):
    """The verdict of ``obj`` (readiness.evaluate) refined by the expected revision."""
    if obj is None or verdict.state == readiness.MISSING or kind not in REVISION_KINDS or not expected:
        return verdict
    applied, attempted = observed(obj, kind)
    if verdict.ready:
        if same(applied, expected):
            return verdict
        return readiness.Verdict(
            readiness.PROGRESSING, "RevisionNotApplied",
            "Ready at generation %s but at revision %s; waiting for %s" % (verdict.generation, applied or "(none)", expected),
            verdict.generation, verdict.observed_generation)
    if verdict.terminal and verdict.reason not in ("Suspended",) and attempted and not same(attempted, expected):
        return readiness.Verdict(
            readiness.PROGRESSING, verdict.reason,
            "%s (reported for revision %s; waiting for %s)" % (verdict.message, attempted, expected),
            verdict.generation, verdict.observed_generation, verdict.blocked_by)
    return verdict
