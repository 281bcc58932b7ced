"""The readiness predicates against the YAML fixtures (one file per case, expectation inside)."""
import glob
import os

import pytest
import yaml

from ansible_collections.c5c3.gitops.plugins.module_utils import readiness

FIXTURES = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "fixtures", "*.yaml")))


def _load(path):
    with open(path) as handle:
        return yaml.safe_load(handle)


@pytest.mark.parametrize("path", FIXTURES, ids=[os.path.basename(p)[:-5] for p in FIXTURES])
def test_fixture(path):
    case = _load(path)
    expect = case["expect"]
    verdict = readiness.evaluate(case["object"])
    if "chart_version" in case:  # flux_wait chart_version: the release must run that chart version
        verdict = readiness.check_chart_version(case["object"], case["chart_version"], verdict)
    assert verdict.state == expect["state"], verdict
    for field in ("reason", "generation", "observed_generation", "blocked_by", "notes"):
        if field in expect:
            assert getattr(verdict, field) == expect[field], verdict
    if "message_contains" in expect:
        assert expect["message_contains"] in verdict.message, verdict
    if "notes_contains" in expect:
        assert any(expect["notes_contains"] in n for n in verdict.notes), verdict


def test_every_kind_and_state_has_a_fixture():
    kinds, states = set(), set()
    for path in FIXTURES:
        case = _load(path)
        kinds.add(case["object"]["kind"])
        states.add(case["expect"]["state"])
    assert {"FluxInstance", "FluxReport", "Kustomization", "HelmRelease", "GitRepository", "OCIRepository",
            "HelmRepository", "HelmChart", "Deployment"} <= kinds
    assert {"ready", "progressing", "failed"} <= states


def test_missing_object():
    verdict = readiness.evaluate(None)
    assert verdict.state == readiness.MISSING and not verdict.ready


def test_kind_argument_overrides_absent_kind():
    # Items of a typed LIST (Deployments) carry no kind; the waiter passes it.
    obj = _load(os.path.join(os.path.dirname(__file__), "fixtures", "deployment_ready.yaml"))["object"]
    del obj["kind"]
    assert readiness.evaluate(obj, "Deployment").ready
    assert not readiness.evaluate(obj).ready  # unknown kind without observedGeneration in conditions


def test_stale_ready_becomes_ready_once_observed():
    obj = _load(os.path.join(os.path.dirname(__file__), "fixtures",
                             "helmrelease_stale_ready_condition_generation.yaml"))["object"]
    assert not readiness.evaluate(obj).ready
    obj["status"]["conditions"][0]["observedGeneration"] = 2
    assert readiness.evaluate(obj).ready


def test_retries_boundary():
    obj = _load(os.path.join(os.path.dirname(__file__), "fixtures", "helmrelease_install_failed_retrying.yaml"))["object"]
    for failures, state in ((1, "progressing"), (3, "progressing"), (4, "failed")):
        obj["status"]["installFailures"] = failures
        assert readiness.evaluate(obj).state == state, failures


def test_depends_on_defaults_namespace():
    obj = {"kind": "HelmRelease", "metadata": {"name": "a", "namespace": "x"},
           "spec": {"dependsOn": [{"name": "b"}, {"name": "c", "namespace": "y"}]}}
    assert readiness.depends_on(obj) == [readiness.ref("HelmRelease", "x", "b"), readiness.ref("HelmRelease", "y", "c")]


def test_verdict_rejects_unknown_state():
    with pytest.raises(ValueError):
        readiness.Verdict("done")


def test_chart_version_ignores_a_missing_object_and_an_empty_expectation():
    missing = readiness.evaluate(None)
    assert readiness.check_chart_version(None, "0.2.0", missing) is missing
    obj = _load(os.path.join(os.path.dirname(__file__), "fixtures", "helmrelease_chart_version_pending.yaml"))["object"]
    verdict = readiness.evaluate(obj)
    assert readiness.check_chart_version(obj, "", verdict) is verdict
    assert readiness.release_chart_version(obj) == ("0.1.0", "0.1.0")
