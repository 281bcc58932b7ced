"""One run at a time on a hub (issue 12 §6): the run Lease through real playbooks.

A holder playbook takes the Lease and keeps it (its renewer renews every few seconds) until the
test lets it go; a second run in the meantime either fails naming the holder (short wait) or waits
and then runs green. A killed holder's Lease expires and the next run takes it over.
"""
import json
import os
import signal
import subprocess
import time

import pytest

import pf_helpers as h

pytestmark = pytest.mark.integration
HOLD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "files", "hold_lease.yml")


def start_holder(fleet, marker, duration):
    argv = [os.path.join(h.BIN, "ansible-playbook"), HOLD, "-i", os.path.join(h.ROOT, "inventories", "local"),
            "-e", "hub_kubeconfig=%s" % fleet.kubeconfig(fleet.hub), "-e", "marker=%s" % marker,
            "-e", "lease_duration=%d" % duration]
    log = open(marker + ".log", "w")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, text=True, env=h.env(), start_new_session=True)
    deadline = time.monotonic() + 300
    while not os.path.exists(marker + ".holder"):  # the holder writes it once the Lease is taken
        assert proc.poll() is None, open(marker + ".log").read()
        assert time.monotonic() < deadline, "the holder did not take the Lease in time"
        time.sleep(0.5)
    with open(marker + ".holder") as fh:
        return proc, json.load(fh)


def lease(fleet):
    return h.HubState(fleet).get("/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/c5c3-gitops")


def test_second_run_fails_naming_the_holder_then_waits_and_runs_green(local_fleet, tmp_path):
    marker = str(tmp_path / "release")
    holder, info = start_holder(local_fleet, marker, duration=15)
    try:
        inv = h.inventory(local_fleet, str(tmp_path / "inv"))
        started = time.monotonic()
        refused = h.playbook("bootstrap.yml", inv, "-e", "preflight_lease_wait_timeout=3")
        assert refused.returncode != 0
        assert "Lease kube-system/c5c3-gitops: the hub is in use by another run (held by %s" % info["identity"] in refused.stdout
        assert "already exists" not in refused.stdout
        # longer than the Lease duration: the holder's renewer kept it alive meanwhile
        assert time.monotonic() - started > 15
        assert lease(local_fleet)["spec"]["holderIdentity"] == info["identity"]

        waiting = h.playbook("bootstrap.yml", inv, "-e", "preflight_lease_wait_timeout=300", background=True)
        seen = []
        for line in waiting.stdout:  # let go once the second run has reached the Lease
            seen.append(line)
            if "Take the hub for this run" in line:
                break
        open(marker, "w").close()
        rest, _unused = waiting.communicate(timeout=900)
        out = "".join(seen) + rest
        assert waiting.returncode == 0, out[-3000:]
        # Whether the second run still saw the holder depends on who is faster once the marker is
        # there; when it waited, it named the holder (Ansible wraps warnings: whitespace squeezed).
        flat = " ".join(out.split())
        if "waiting for Lease" in flat:
            assert "waiting for Lease kube-system/c5c3-gitops: held by %s" % info["identity"] in flat
        assert holder.wait(timeout=120) == 0
        spec = lease(local_fleet)["spec"]
        assert not spec.get("holderIdentity"), spec  # released at the end of the second run
    finally:
        if holder.poll() is None:
            os.killpg(holder.pid, signal.SIGTERM)


def test_a_killed_runs_lease_expires_and_is_taken_over(local_fleet, tmp_path):
    marker = str(tmp_path / "release")
    holder, info = start_holder(local_fleet, marker, duration=5)
    # the run and its renewer die without releasing anything
    os.killpg(holder.pid, signal.SIGKILL)
    holder.wait(timeout=60)
    os.kill(info["renewer_pid"], signal.SIGKILL)
    assert lease(local_fleet)["spec"]["holderIdentity"] == info["identity"]
    inv = h.inventory(local_fleet, str(tmp_path / "inv"))
    hub = local_fleet.kubeconfig(local_fleet.hub)
    took = h.module(inv, "hub_lease", {"kubeconfig": hub, "wait_timeout": 120, "renew": False, "identity": "itest-taker"})
    assert took.returncode == 0, took.stdout
    assert "took over from %s, whose lease had expired" % info["identity"] in took.stdout
    assert lease(local_fleet)["spec"]["holderIdentity"] == "itest-taker"
    released = h.module(inv, "hub_lease", {"kubeconfig": hub, "state": "released", "identity": "itest-taker"})
    assert released.returncode == 0 and not lease(local_fleet)["spec"].get("holderIdentity")
