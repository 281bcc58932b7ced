"""The run Lease (plugins/module_utils/lease.py) against an in-memory API with resourceVersions."""
import copy
import datetime
import os

import pytest

from ansible_collections.c5c3.gitops.plugins.module_utils import lease as ls

T0 = datetime.datetime(2026, 12, 1, 21, 0, tzinfo=datetime.timezone.utc)


class Err(Exception):
    def __init__(self, status, message=""):
        super().__init__(message or str(status))
        self.status = status


class Store:
    """One namespace's Leases; PUT needs the current resourceVersion (409 otherwise)."""

    def __init__(self):
        self.obj = None
        self.rv = 0
        self.writes = []
        self.before_write = None  # hook: a concurrent writer

    def request(self, method, path, query=None, body=None):
        if method == "GET":
            if self.obj is None:
                raise Err(404)
            return 200, copy.deepcopy(self.obj)
        if self.before_write:
            hook, self.before_write = self.before_write, None
            hook(self)
        if method == "POST":
            if self.obj is not None:
                raise Err(409, "already exists")
        elif method == "PUT":
            if self.obj is None or body["metadata"].get("resourceVersion") != self.obj["metadata"]["resourceVersion"]:
                raise Err(409, "the object has been modified")
        self.rv += 1
        self.obj = copy.deepcopy(body)
        self.obj["metadata"]["resourceVersion"] = str(self.rv)
        self.writes.append((method, self.obj["spec"].get("holderIdentity")))
        return 201 if method == "POST" else 200, copy.deepcopy(self.obj)


class Clock:
    def __init__(self, t=T0):
        self.t = t

    def __call__(self):
        return self.t

    def sleep(self, seconds):
        self.t += datetime.timedelta(seconds=seconds)


def client(store, clock):
    return ls.LeaseClient(store, clock=clock, sleep=clock.sleep)


def held(store, holder, renew, duration=60):
    store.rv += 1
    store.obj = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                 "metadata": {"name": "c5c3-gitops", "namespace": "kube-system", "resourceVersion": str(store.rv)},
                 "spec": {"holderIdentity": holder, "leaseDurationSeconds": duration,
                          "acquireTime": ls.microtime(renew), "renewTime": ls.microtime(renew)}}


def test_decide():
    assert ls.decide(None, "me", T0)[0] == "create"
    lease = {"spec": {"holderIdentity": "other", "leaseDurationSeconds": 60, "renewTime": ls.microtime(T0)}}
    assert ls.decide(lease, "me", T0 + datetime.timedelta(seconds=59))[0] == "wait"
    assert ls.decide(lease, "me", T0 + datetime.timedelta(seconds=60))[0] == "take"  # expired: crashed holder
    assert ls.decide(lease, "other", T0)[0] == "take"  # our own
    assert ls.decide({"spec": {"leaseDurationSeconds": 1}}, "me", T0)[0] == "take"  # released
    assert ls.decide({"spec": {"holderIdentity": "other"}}, "me", T0)[0] == "take"  # no times: not alive


def test_time_round_trip():
    assert ls.parse_time(ls.microtime(T0)) == T0
    assert ls.parse_time("2026-12-01T21:00:00Z") == T0
    assert ls.parse_time("garbage") is None


def test_acquire_creates_then_renew_and_release():
    store, clock = Store(), Clock()
    got = client(store, clock).acquire("me")
    assert got["waited"] == 0 and got["took_over"] is None
    assert store.obj["spec"]["holderIdentity"] == "me" and store.obj["spec"]["leaseTransitions"] == 1
    clock.sleep(20)
    client(store, clock).renew("me")
    assert ls.parse_time(store.obj["spec"]["renewTime"]) == clock.t
    assert store.obj["spec"]["acquireTime"] == ls.microtime(T0)
    assert client(store, clock).release("me") is True
    assert "holderIdentity" not in store.obj["spec"]
    assert client(store, clock).release("me") is False  # not ours any more


def test_second_run_waits_for_release():
    store, clock = Store(), Clock()
    held(store, "run-1", T0)

    def sleep(seconds):
        clock.sleep(seconds)
        if clock.t >= T0 + datetime.timedelta(seconds=10) and store.obj["spec"].get("holderIdentity") == "run-1":
            ls.LeaseClient(store, clock=clock).release("run-1")
    seen = []
    c = ls.LeaseClient(store, clock=clock, sleep=sleep)
    got = c.acquire("run-2", wait=60, poll=2, on_wait=lambda h, s: seen.append(h))
    assert store.obj["spec"]["holderIdentity"] == "run-2"
    assert 10 <= got["waited"] <= 12 and seen == ["run-1"] and got["took_over"] is None


def test_second_run_fails_naming_the_holder_after_its_wait():
    store, clock = Store(), Clock()
    held(store, "alice@ctl pid 42 run abcd", T0, duration=3600)
    with pytest.raises(ls.LeaseError) as err:
        client(store, clock).acquire("run-2", wait=30, poll=5)
    msg = str(err.value)
    assert "Lease kube-system/c5c3-gitops: the hub is in use by another run (held by alice@ctl pid 42 run abcd" in msg
    assert "waited 30s" in msg and err.value.holder == "alice@ctl pid 42 run abcd"
    assert store.writes == []


def test_expired_lease_of_a_crashed_run_is_taken_over():
    store, clock = Store(), Clock(T0 + datetime.timedelta(seconds=61))
    held(store, "crashed", T0)
    got = client(store, clock).acquire("me", wait=0)
    assert got["took_over"] == "crashed" and store.obj["spec"]["holderIdentity"] == "me"


def test_lost_race_rereads_instead_of_overwriting():
    store, clock = Store(), Clock(T0 + datetime.timedelta(seconds=61))
    held(store, "crashed", T0)
    # another run takes over between our read and our write: our PUT gets 409, we re-read and wait
    store.before_write = lambda s: held(s, "faster", clock.t)
    with pytest.raises(ls.LeaseError, match="held by faster"):
        client(store, clock).acquire("me", wait=0)
    assert store.obj["spec"]["holderIdentity"] == "faster"


def test_concurrent_create_loses_with_409_and_waits():
    store, clock = Store(), Clock()
    store.before_write = lambda s: held(s, "faster", clock.t)
    with pytest.raises(ls.LeaseError, match="held by faster"):
        client(store, clock).acquire("me", wait=0)


def test_renew_of_a_lost_lease_fails():
    store, clock = Store(), Clock()
    held(store, "other", T0)
    with pytest.raises(ls.LeaseError, match="was lost \\(now held by other\\)"):
        client(store, clock).renew("me")


def test_renew_loop_renews_then_releases_when_the_owner_exits():
    store, clock = Store(), Clock()
    client(store, clock).acquire("me")
    ticks = {"n": 0}

    def mono():
        return ticks["n"]

    def sleep(_s):
        ticks["n"] += 1
        clock.sleep(1)
    alive = lambda owner: ticks["n"] < 50  # noqa: E731
    why = ls.renew_loop(client(store, clock), "me", 60, (1, "x"), 20, 3600, clock=mono, sleep=sleep, alive=alive)
    assert why == "owner-exited"
    assert [w for w in store.writes if w == ("PUT", "me")] == [("PUT", "me")] * 2  # renewed at 20 and 40
    assert "holderIdentity" not in store.obj["spec"]  # released


def test_renew_loop_stops_when_lost():
    store, clock = Store(), Clock()
    held(store, "other", T0)
    why = ls.renew_loop(client(store, clock), "me", 60, (1, "x"), 0, 3600, clock=lambda: 5, sleep=lambda s: None,
                        alive=lambda o: True)
    assert why == "lost" and store.obj["spec"]["holderIdentity"] == "other"


def test_find_owner_finds_this_test_runner_or_nothing():
    # pytest is no Ansible process: nothing above us matches the markers
    assert ls.find_owner(os.getpid(), markers=("no-such-program-xyz",)) is None
    me = ls.find_owner(os.getpid(), markers=("pytest", "python"))
    assert me is not None and ls.owner_alive(me)
    assert not ls.owner_alive((me[0], "0"))  # another start time: a reused pid is not the owner


def test_an_exited_but_unreaped_owner_is_not_alive():
    import subprocess
    import sys
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    owner = (child.pid, ls._proc_stat(child.pid)[1])
    deadline = 200
    while ls._proc_stat(child.pid)[2] != "Z" and deadline:  # exited, not reaped: a zombie
        deadline -= 1
        __import__("time").sleep(0.05)
    assert not ls.owner_alive(owner)
    child.wait()
    assert not ls.owner_alive(owner)


def test_renew_rereads_after_a_conflict_of_its_own_lost_answer():
    store, clock = Store(), Clock()
    client(store, clock).acquire("me")

    def our_renewal_landed(s):  # the first PUT went through, its answer was lost; the retry is stale
        s.rv += 1
        s.obj["metadata"]["resourceVersion"] = str(s.rv)
    store.before_write = our_renewal_landed
    clock.sleep(20)
    client(store, clock).renew("me")
    assert ls.parse_time(store.obj["spec"]["renewTime"]) == clock.t


def test_renew_loop_keeps_going_through_transient_errors():
    class Flaky:
        def __init__(self):
            self.calls = 0

        def renew(self, identity, duration):
            self.calls += 1
            if self.calls == 1:
                raise ls.LeaseError("kept changing")
            if self.calls == 2:
                raise Err(503)

        def release(self, identity):
            pass
    flaky = Flaky()
    ticks = {"n": 0}

    def sleep(_s):
        ticks["n"] += 1
    why = ls.renew_loop(flaky, "me", 60, (1, "x"), 0, 3600, clock=lambda: ticks["n"], sleep=sleep,
                        alive=lambda o: ticks["n"] < 5)
    assert why == "owner-exited" and flaky.calls >= 3
