"""Faults during site.yml on the local fleet (issue 12, "Tests that keep it so"; docs/faults.md).

One direct-delivery copy of inventories/local for the whole module; each test starts from a
converged fleet (converging only when the test before it left it otherwise) and says what the
collection guarantees under its fault:

- a run killed with SIGKILL mid-stage: its renewer gives the Lease back within seconds; the
  re-run converges without waiting, a further run changes nothing;
- a HelmRelease deleted by hand and another one's spec edited by hand (suspend, interval): the
  next run recreates / restores them, reports the stage changed and gates them Ready;
- the hub's kube-apiserver frozen (SIGSTOP) mid-stage for less than the request timeout: the run
  waits it out and ends green, changing nothing;
- two site.yml runs at once: exactly one runs, the other fails at the Lease naming the holder's
  pid, no Helm "already exists";
- a spoke's kube-apiserver stopped after convergence: the run fails in the preflight naming the
  spoke, its URL and "connection refused"; the hub is not written at all (resourceVersions).
"""
import re
import time

import pytest

import faults_helpers as fh
from faults_helpers import h

pytestmark = pytest.mark.integration

APPLY_INFRA = "TASK [c5c3.gitops.fleet_apply : Apply stage infrastructure of wave 0]"  # one wave: the hub and every spoke
LEASE_TAKEN = "Lease kube-system/c5c3-gitops: the hub is in use by another run (held by "
# Well below the hub client's request timeout (30 s), so every request in flight waits it out.
FREEZE = 12
# The runs a test strikes at skip the closing status report (it only reads); the runs that show
# the fleet converged (changed=0) include it, and with it its "fleet is healthy" check.
QUICK = ("-e", "gitops_status_report=false")


@pytest.fixture(scope="module")
def site(local_fleet, tmp_path_factory):
    return fh.Site(local_fleet, h.inventory(local_fleet, str(tmp_path_factory.mktemp("faults") / "inv")))


def test_killed_run_gives_the_lease_back_and_a_rerun_converges(site):
    site.converged = False
    run = site.background("-e", "preflight_lease_duration=15", *QUICK)
    try:
        run.wait_for(APPLY_INFRA)
        holder = site.lease()["holderIdentity"]
        assert " pid %d run " % run.proc.pid in holder, holder
    finally:
        run.kill()
    # The renewer (its own session, not in the killed group) sees its ansible-playbook gone and
    # releases the Lease: the holder is cleared, which expiry would not do.
    took = fh.wait_until(lambda: not site.lease().get("holderIdentity"), 30, "the killed run's Lease released")
    assert took < 10, "the Lease was released %.1fs after the kill" % took
    assert site.lease()["leaseDurationSeconds"] == 1

    rc, out = site.run(*QUICK)
    assert fh.green(rc, out), out[-4000:]
    assert "waiting for Lease" not in fh.flat(out) and "took over" not in fh.flat(out)
    if fh.changed(out):  # it finished the killed run's work: the next run must find nothing to do
        rc, out = site.run()
        assert fh.green(rc, out) and fh.changed(out) == 0, out[-4000:]
    site.converged = True


def test_hand_deleted_and_hand_edited_releases_are_restored(site):
    site.converge()
    site.converged = False
    gone, edited = fh.hr_path("control-plane", "valkey-operator"), fh.hr_path("control-plane", "mariadb-operator")
    uid = site.get(gone)["metadata"]["uid"]
    site.hub.raw.request("DELETE", gone)
    fh.wait_until(lambda: site.get(gone) is None, 120, "HelmRelease control-plane/valkey-operator deleted")
    # `kubectl edit` under its own field manager: fields the model means but another manager set
    site.hub.raw.request("PATCH", edited, {"fieldManager": "kubectl-edit"}, body={"spec": {"suspend": True, "interval": "99m"}},
                         content_type="application/merge-patch+json")
    assert site.get(edited)["spec"]["suspend"] is True

    rc, out = site.run(*QUICK)
    assert fh.green(rc, out), out[-4000:]
    assert fh.task_block(out, APPLY_INFRA[6:-1]).lstrip().startswith("changed: [hub]"), fh.task_block(out, APPLY_INFRA[6:-1])
    assert re.search(r"stage infrastructure: (\d+) of \1 ready", fh.flat(out)), out[-4000:]
    recreated = site.get(gone)
    assert recreated["metadata"]["uid"] != uid and fh.ready_at_generation(recreated), recreated.get("status")
    restored = site.get(edited)
    assert restored["spec"]["suspend"] is False and restored["spec"]["interval"] == "30m", restored["spec"]
    assert fh.ready_at_generation(restored), restored.get("status")
    site.converged = True  # the next test's run shows that nothing is left to change


def test_hub_frozen_mid_stage_is_waited_out(site, local_fleet):
    site.converge()
    site.converged = False
    run = site.background()
    try:
        run.wait_for(APPLY_INFRA)
        with fh.frozen(local_fleet, local_fleet.hub):
            seen = len(run.lines)
            time.sleep(FREEZE)  # the fault itself: the hub answers nothing for FREEZE seconds
            assert run.proc.poll() is None, "the run ended while the hub was frozen:\n" + "".join(run.lines)[-3000:]
            during = "".join(run.lines[seen:])
        rc, out = run.finish()
    finally:
        run.kill()
    assert "Report stage infrastructure" not in during, during  # it was held in the stage
    assert fh.green(rc, out), out[-4000:]
    assert fh.changed(out) == 0, out[-4000:]
    assert not site.lease().get("holderIdentity")
    site.converged = True


def test_two_site_runs_at_once_one_refuses_naming_the_holder(site):
    site.converge()
    site.converged = False
    runs = [site.background("-e", "preflight_lease_wait_timeout=5", *QUICK) for _unused in range(2)]
    try:
        results = [run.finish() for run in runs]
    finally:
        for run in runs:
            run.kill()
    winners = [i for i, (rc, _out) in enumerate(results) if rc == 0]
    assert len(winners) == 1, [out[-2000:] for _rc, out in results]
    won, lost = runs[winners[0]], results[1 - winners[0]][1]
    assert fh.green(*results[winners[0]]) and fh.changed(results[winners[0]][1]) == 0, results[winners[0]][1][-4000:]
    assert LEASE_TAKEN in fh.flat(lost) and " pid %d run " % won.proc.pid in fh.flat(lost), lost[-3000:]
    assert "Take the hub for this run" in lost and "TASK [c5c3.gitops.flux_operator" not in lost, lost[-3000:]
    for _rc, out in results:
        assert "already exists" not in out
    assert not site.lease().get("holderIdentity")
    site.converged = True


def test_spoke_down_fails_before_any_hub_write(site, local_fleet):
    site.converge()
    spoke = "storage"
    site.converged = False
    with fh.stopped(local_fleet, spoke):
        before = site.hub.snapshot()
        start = time.monotonic()
        rc, out = site.run(*QUICK, timeout=600)
        took = time.monotonic() - start
        after = site.hub.snapshot()
    assert rc != 0, out[-4000:]
    text = fh.flat(out)
    assert "preflight failed for 1 cluster(s), nothing was written" in text, out[-4000:]
    assert "cluster %s: cannot connect to %s: connection refused" % (spoke, local_fleet.urls[spoke]) in text, out[-4000:]
    assert "TASK [c5c3.gitops.preflight : Take the hub for this run]" not in out
    assert after == before, {k: (before.get(k), after.get(k)) for k in set(before) | set(after) if before.get(k) != after.get(k)}
    assert took < 120, "a refused spoke took %.0fs to fail" % took
