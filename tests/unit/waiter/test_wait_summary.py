"""flux_wait's figures: counts, the slowest objects, who is still waited for, the blocking chain."""
from ansible_collections.c5c3.gitops.plugins.module_utils.wait_summary import figures


def row(name, state="ready", after=1.0, reason="InstallSucceeded"):
    return {"kind": "HelmRelease", "namespace": "cp", "name": name, "state": state, "reason": reason,
            "ready_after": after if state == "ready" else None}


def test_all_ready_names_the_slowest():
    out = figures({"objects": [row("a", after=1.0), row("b", after=7.5), row("c", after=3.0), row("d", after=0.2)],
                   "elapsed": 7.6, "outcome": "ready", "chains": []})
    assert (out["ready"], out["total"]) == (4, 4)
    assert [s["object"] for s in out["slowest"]] == ["HelmRelease cp/b", "HelmRelease cp/c", "HelmRelease cp/a"]
    assert out["line"] == "4 of 4 ready in 7.6s; slowest: HelmRelease cp/b 7.5s, HelmRelease cp/c 3.0s, HelmRelease cp/a 1.0s"


def test_failure_names_who_and_the_chain():
    chain = "HelmRelease cp/nova -> HelmRelease cp/keystone (failed: InstallFailed)"
    out = figures({"objects": [row("keystone", "failed", reason="InstallFailed"),
                               row("nova", "progressing", reason="DependencyNotReady"), row("glance", after=2.0)],
                   "elapsed": 4.0, "outcome": "failed", "chains": [chain]})
    assert out["line"].startswith("1 of 3 ready in 4.0s (failed); slowest: HelmRelease cp/glance 2.0s; waiting for: ")
    assert "HelmRelease cp/keystone (failed: InstallFailed)" in out["waiting_for"]
    assert out["line"].endswith("blocked: " + chain)


def test_many_waiting_are_cut():
    out = figures({"objects": [row("x%d" % i, "progressing", reason="Progressing") for i in range(8)],
                   "elapsed": 1.0, "outcome": "timeout"})
    assert len(out["waiting_for"]) == 5 and out["line"].endswith("and 3 more")
