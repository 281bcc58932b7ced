"""Revision gating: ready at the generation AND at the pushed revision (flux_wait revision=)."""
import os
import sys
import threading

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from fake_cluster import FakeCluster  # noqa: E402

from ansible_collections.c5c3.gitops.plugins.module_utils import readiness, revision_gate  # noqa: E402
from ansible_collections.c5c3.gitops.plugins.module_utils.waiter import WaitError, Waiter  # noqa: E402

OLD = "refs/heads/main@sha1:" + "a" * 40
NEW = "refs/heads/main@sha1:" + "b" * 40


def kustomization(applied, attempted=None, ready=True, reason=None, generation=1, name="flux-system"):
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
        "metadata": {"name": name, "namespace": "flux-system", "generation": generation},
        "spec": {"path": "clusters/management"},
        "status": {"lastAppliedRevision": applied, "lastAttemptedRevision": attempted or applied,
                   "observedGeneration": generation,
                   "conditions": [{"type": "Ready", "status": "True" if ready else "False", "observedGeneration": generation,
                                   "reason": reason or ("ReconciliationSucceeded" if ready else "Progressing"),
                                   "message": "Applied revision: %s" % applied}]},
    }


def gitrepository(revision):
    return {
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
        "metadata": {"name": "flux-system", "namespace": "flux-system", "generation": 1},
        "status": {"artifact": {"revision": revision}, "observedGeneration": 1,
                   "conditions": [{"type": "Ready", "status": "True", "observedGeneration": 1, "reason": "Succeeded",
                                   "message": "stored artifact for revision '%s'" % revision}]},
    }


KS = {"kind": "Kustomization", "name": "flux-system", "namespace": "flux-system"}
GR = {"kind": "GitRepository", "name": "flux-system", "namespace": "flux-system"}


def _check(obj, expected):
    return revision_gate.check(obj, obj["kind"], expected, readiness.evaluate(obj))


def test_ready_at_an_older_revision_is_not_ready():
    verdict = _check(kustomization(OLD), NEW)
    assert verdict.state == readiness.PROGRESSING and verdict.reason == "RevisionNotApplied"
    assert OLD in verdict.message and NEW in verdict.message
    assert _check(kustomization(NEW), NEW).ready
    assert _check(gitrepository(NEW), NEW).ready and not _check(gitrepository(OLD), NEW).ready


def test_ref_spelling_does_not_matter_the_sha_does():
    assert revision_gate.same("main@sha1:" + "b" * 40, NEW)
    assert revision_gate.same(NEW, "b" * 40)
    assert not revision_gate.same(OLD, NEW) and not revision_gate.same(None, NEW)


def test_failure_at_an_older_revision_is_waited_on_but_at_the_expected_one_fails():
    failed_old = kustomization(OLD, attempted=OLD, ready=False, reason="BuildFailed")
    verdict = _check(failed_old, NEW)
    assert verdict.state == readiness.PROGRESSING and "waiting for" in verdict.message
    failed_new = kustomization(OLD, attempted=NEW, ready=False, reason="BuildFailed")
    assert _check(failed_new, NEW).state == readiness.FAILED


def test_stale_generation_still_wins_over_a_matching_revision():
    obj = kustomization(NEW, generation=2)
    obj["status"]["conditions"][0]["observedGeneration"] = 1
    assert _check(obj, NEW).reason == "StaleGeneration"


def test_waiter_returns_only_once_the_expected_revision_is_applied():
    cluster = FakeCluster()
    cluster.put(gitrepository(OLD))
    cluster.put(kustomization(OLD))
    timers = [threading.Timer(0.2, cluster.put, [gitrepository(NEW)]),
              threading.Timer(0.4, cluster.put, [kustomization(NEW)])]
    for t in timers:
        t.daemon = True
        t.start()
    result = Waiter(cluster).wait([GR, KS], timeout=10, revision=NEW)
    assert result["ok"], result["message"]
    rows = dict((r["kind"], r) for r in result["objects"])
    assert rows["Kustomization"]["revision"] == NEW and rows["Kustomization"]["ready_after"] >= 0.3


def test_waiter_times_out_naming_the_revision():
    cluster = FakeCluster()
    cluster.put(kustomization(OLD))
    result = Waiter(cluster).wait([KS], timeout=0.3, revision=NEW)
    assert not result["ok"] and result["outcome"] == "timeout"
    assert result["not_ready"][0]["reason"] == "RevisionNotApplied"
    assert NEW in result["message"]


def test_per_object_revision_and_other_kinds_ignore_the_global_one():
    cluster = FakeCluster()
    cluster.put(kustomization(NEW))
    cluster.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}})
    result = Waiter(cluster).wait([dict(KS, revision=NEW), {"kind": "Namespace", "name": "x"}], timeout=5, revision=OLD)
    assert result["ok"], result["message"]
    with pytest.raises(WaitError, match="revision applies only to"):
        Waiter(cluster).wait([{"kind": "Namespace", "name": "x", "revision": NEW}], timeout=1)
