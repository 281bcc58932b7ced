"""Helpers of the fault tests (docs/faults.md): site.yml runs in the foreground and in the
background (read line by line, so a test can strike at a given task), the recap, the hub's run
Lease, and the fleet's own processes - the kube-apiservers that `hack/local-fleet up` started for
this test session, found by the pid and command-line marker in its state.json, frozen (SIGSTOP /
SIGCONT), stopped and started again with the same command line."""
from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "preflight"))
import pf_helpers as h  # noqa: E402

sys.path.insert(0, os.path.join(h.ROOT, "hack"))
from localfleet import fleet as lf  # noqa: E402

LEASE_PATH = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/c5c3-gitops"
RECAP = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def flat(text):
    """Whitespace squeezed: Ansible wraps long messages."""
    return " ".join(text.split())


def recap(out):
    """{host: {"ok", "changed", "unreachable", "failed"}} of every PLAY RECAP in the output."""
    hosts = {}
    for m in RECAP.finditer(out):
        row = hosts.setdefault(m.group(1), {"ok": 0, "changed": 0, "unreachable": 0, "failed": 0})
        for key, value in zip(("ok", "changed", "unreachable", "failed"), m.groups()[1:]):
            row[key] += int(value)
    return hosts


def changed(out):
    return sum(row["changed"] for row in recap(out).values())


def green(rc, out):
    rows = recap(out)
    return rc == 0 and rows and not any(row["failed"] or row["unreachable"] for row in rows.values())


def task_block(out, title):
    """The output of the task `TASK [title]` up to the next task header ('' when it did not run)."""
    start = out.find("TASK [%s]" % title)
    if start < 0:
        return ""
    body = out.find("\n", start) + 1
    end = out.find("\nTASK [", body)
    return out[body:end if end >= 0 else len(out)]


def wait_until(condition, timeout, what, interval=0.2):
    """Poll ``condition`` until it is true; the seconds it took. Fails naming ``what``."""
    start = time.monotonic()
    while True:
        if condition():
            return time.monotonic() - start
        assert time.monotonic() - start < timeout, "%s: not after %.0fs" % (what, timeout)
        time.sleep(interval)


class Background:
    """A site.yml run in its own process group whose output is read as it comes."""

    def __init__(self, inv, *args):
        self.proc = h.playbook("site.yml", inv, *args, background=True)
        self.lines = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for(self, text, timeout=600):
        """Block until a line contains ``text``; fails when the run ends first or in time."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not any(text in line for line in self.lines):
                assert self._reader.is_alive(), "the run ended before %r:\n%s" % (text, "".join(self.lines)[-3000:])
                left = deadline - time.monotonic()
                assert left > 0, "no %r after %.0fs:\n%s" % (text, timeout, "".join(self.lines)[-3000:])
                self._cond.wait(min(left, 1.0))

    def finish(self, timeout=900):
        rc = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=60)
        return rc, "".join(self.lines)

    def kill(self):
        """SIGKILL the whole process group (ansible-playbook, its workers and modules)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=60)


class Site:
    """site.yml against one direct-delivery copy of inventories/local; ``converged`` is true while
    the last run ended green and no test has damaged the fleet since (tests converge only when
    it is not)."""

    def __init__(self, fleet, inv):
        self.fleet = fleet
        self.inv = inv
        self.converged = False
        self.hub = h.HubState(fleet)

    def run(self, *args, timeout=900):
        start = time.monotonic()
        proc = h.playbook("site.yml", self.inv, *args, timeout=timeout)
        took = time.monotonic() - start
        print("site.yml %s: rc %d, changed %d, %.0fs" % (" ".join(args), proc.returncode, changed(proc.stdout), took))
        return proc.returncode, proc.stdout

    def background(self, *args):
        return Background(self.inv, *args)

    def converge(self):
        if not self.converged:
            rc, out = self.run()
            assert green(rc, out), out[-4000:]
            self.converged = True

    def lease(self):
        return (self.hub.get(LEASE_PATH) or {}).get("spec") or {}

    def get(self, kind_path):
        return self.hub.get(kind_path)


def hr_path(namespace, name):
    return "/apis/helm.toolkit.fluxcd.io/v2/namespaces/%s/helmreleases/%s" % (namespace, name)


def ready_at_generation(obj):
    ready = [c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"]
    gen = obj["metadata"]["generation"]
    return bool(ready) and ready[0]["status"] == "True" and ready[0].get("observedGeneration", gen) == gen \
        and (obj.get("status") or {}).get("observedGeneration") == gen


# ------------------------------------------------------------------ the fleet's own API servers
def apiserver(fleet, cluster):
    """The process entry of a cluster's kube-apiserver, checked to be the one the fleet started."""
    entry = lf.load_state(fleet.state_dir)["processes"]["kube-apiserver-%s" % cluster]
    assert lf.pid_alive(entry["pid"], entry["expect"]), "kube-apiserver of %s (pid %s) is not running" % (cluster, entry["pid"])
    return entry


@contextlib.contextmanager
def frozen(fleet, cluster):
    """SIGSTOP the cluster's kube-apiserver for the block; SIGCONT however the block ends."""
    pid = apiserver(fleet, cluster)["pid"]
    os.kill(pid, signal.SIGSTOP)
    try:
        yield pid
    finally:
        os.kill(pid, signal.SIGCONT)


@contextlib.contextmanager
def stopped(fleet, cluster):
    """The cluster's kube-apiserver stopped (SIGTERM, gone) for the block, then started again with
    the same command line and environment (same port, same etcd prefix, same credentials) and
    recorded in state.json so that `hack/local-fleet down` stops the new process."""
    entry = apiserver(fleet, cluster)
    pid = entry["pid"]
    with open("/proc/%d/cmdline" % pid, "rb") as fh:
        argv = [a.decode() for a in fh.read().split(b"\0") if a]
    with open("/proc/%d/environ" % pid, "rb") as fh:
        env = dict(kv.decode().split("=", 1) for kv in fh.read().split(b"\0") if b"=" in kv)
    os.kill(pid, signal.SIGTERM)
    try:
        wait_until(lambda: not lf.pid_alive(pid), 60, "kube-apiserver of %s exits on SIGTERM" % cluster)
        yield
    finally:
        new = lf.spawn(argv, entry["log"], env=env)
        state = lf.load_state(fleet.state_dir)
        state["processes"]["kube-apiserver-%s" % cluster]["pid"] = new
        lf.save_state(fleet.state_dir, state)
        fleet.state = state
        token = h.load_kubeconfig(fleet, cluster)["users"][0]["user"]["token"]
        ctx = lf.ssl_context(os.path.join(fleet.state_dir, "pki", "ca.crt"))
        lf.wait_until("kube-apiserver of %s (restarted)" % cluster,
                      lambda: lf.http_ok(fleet.urls[cluster] + "/readyz", token, ctx, timeout=1.0),
                      new, entry["expect"], entry["log"], 120)
