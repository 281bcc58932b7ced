# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)
"""One run at a time on a hub: a ``coordination.k8s.io/v1`` Lease, as leader election does it.

The Lease ``<namespace>/<name>`` (default ``kube-system/c5c3-gitops``) names the run that holds
the hub in ``spec.holderIdentity`` (user, host, process, run id) and is renewed while the run
lasts (``renewTime``). Another run waits (bounded) until the holder releases it or lets it expire
(``renewTime + leaseDurationSeconds`` in the past: the holder crashed), then takes it over; at the
end of its wait it fails naming the holder. Every write carries the ``resourceVersion`` it read,
so two runs taking over the same expired Lease cannot both win (the loser gets 409 and re-reads).

``decide`` and the time helpers are pure; ``LeaseClient`` does the I/O through a client with
``request(method, path, query=None, body=None)`` whose errors carry ``status``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import time

API = "/apis/coordination.k8s.io/v1"
DEFAULT_NAMESPACE = "kube-system"
DEFAULT_NAME = "c5c3-gitops"
MANAGED_BY = "app.kubernetes.io/managed-by"


class LeaseError(Exception):
    """The Lease could not be taken (held by another run past the wait) or was lost."""

    def __init__(self, message, holder=None):
        super(LeaseError, self).__init__(message)
        self.holder = holder
        self.result = {"holder": holder}  # fields of the module's failure


class LeaseLost(LeaseError):
    """Another run holds the Lease now: stop renewing."""


# --------------------------------------------------------------------------- pure

def now_utc():
    return datetime.datetime.now(datetime.timezone.utc)


def microtime(dt):
    return dt.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value):
    """MicroTime or Time (RFC 3339, with or without fraction) -> aware datetime, or None."""
    if not value or not isinstance(value, str):
        return None
    text = value.rstrip("Z")
    for fmt in ("%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S"):
        try:
            return datetime.datetime.strptime(text, fmt).replace(tzinfo=datetime.timezone.utc)
        except ValueError:
            continue
    return None


def expires_at(spec):
    renew = parse_time((spec or {}).get("renewTime")) or parse_time((spec or {}).get("acquireTime"))
    duration = (spec or {}).get("leaseDurationSeconds")
    if renew is None or not isinstance(duration, int):
        return None
    return renew + datetime.timedelta(seconds=duration)


def decide(lease, identity, now):
    """What to do with the Lease as read: ``create`` (absent), ``take`` (free, expired or ours) or
    ``wait`` (held by another run that is alive). Returns (action, holder, expires)."""
    if lease is None:
        return "create", None, None
    spec = lease.get("spec") or {}
    holder = spec.get("holderIdentity") or None
    expires = expires_at(spec)
    if holder is None or holder == identity:
        return "take", holder, expires
    if expires is None or expires <= now:
        return "take", holder, expires  # the holder stopped renewing: crashed or killed
    return "wait", holder, expires


def desired_spec(prior_spec, identity, duration, now):
    """The spec of a Lease held by ``identity`` from ``now`` (a takeover counts a transition)."""
    prior_spec = prior_spec or {}
    same = prior_spec.get("holderIdentity") == identity
    spec = {
        "holderIdentity": identity,
        "leaseDurationSeconds": int(duration),
        "acquireTime": prior_spec.get("acquireTime") if same and prior_spec.get("acquireTime") else microtime(now),
        "renewTime": microtime(now),
        "leaseTransitions": int(prior_spec.get("leaseTransitions") or 0) + (0 if same else 1),
    }
    return spec


def describe_holder(holder, spec, now):
    expires = expires_at(spec)
    parts = ["held by %s" % holder]
    if spec.get("acquireTime"):
        parts.append("since %s" % spec["acquireTime"])
    if expires is not None:
        parts.append("expires in %ds unless renewed" % max(0, int((expires - now).total_seconds())))
    return ", ".join(parts)


# --------------------------------------------------------------------------- I/O

class LeaseClient(object):
    def __init__(self, raw, namespace=DEFAULT_NAMESPACE, name=DEFAULT_NAME, clock=now_utc, sleep=time.sleep):
        self.raw = raw
        self.namespace = namespace
        self.name = name
        self.clock = clock
        self.sleep = sleep

    @property
    def where(self):
        return "Lease %s/%s" % (self.namespace, self.name)

    def _path(self, name=None):
        base = "%s/namespaces/%s/leases" % (API, self.namespace)
        return base + ("/" + name if name else "")

    def get(self):
        try:
            return self.raw.request("GET", self._path(self.name))[1]
        except Exception as exc:
            if getattr(exc, "status", None) == 404:
                return None
            raise

    def _write(self, lease, spec):
        """Create or replace with the read resourceVersion; False when someone else wrote first."""
        try:
            if lease is None:
                body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                        "metadata": {"name": self.name, "namespace": self.namespace,
                                     "labels": {MANAGED_BY: "c5c3.gitops"}},
                        "spec": spec}
                return self.raw.request("POST", self._path(), body=body)[1]
            body = dict(lease, spec=spec)
            return self.raw.request("PUT", self._path(self.name), body=body)[1]
        except Exception as exc:
            if getattr(exc, "status", None) in (409,):
                return False
            raise

    def acquire(self, identity, duration=60, wait=600, poll=2.0, on_wait=None):
        """Take the Lease for ``identity``, waiting up to ``wait`` seconds for another holder.

        Returns {lease, waited, took_over (the previous holder, when its lease had expired)}.
        Raises LeaseError naming the holder when the wait ends.
        """
        start = self.clock()
        deadline = start + datetime.timedelta(seconds=max(0, wait))
        announced = None
        while True:
            now = self.clock()
            lease = self.get()
            action, holder, _expires = decide(lease, identity, now)
            if action in ("create", "take"):
                written = self._write(lease, desired_spec((lease or {}).get("spec"), identity, duration, now))
                if written:
                    took_over = holder if holder and holder != identity else None
                    return {"lease": written, "waited": (now - start).total_seconds(), "took_over": took_over}
                continue  # another run wrote between our read and our write: read again
            spec = (lease or {}).get("spec") or {}
            if now >= deadline:
                raise LeaseError("%s: the hub is in use by another run (%s); waited %ds. Wait for that run to end, "
                                 "or, if it is gone, for the lease to expire"
                                 % (self.where, describe_holder(holder, spec, now), int((now - start).total_seconds())),
                                 holder)
            if on_wait is not None and announced != holder:
                on_wait(holder, spec)
                announced = holder
            # Like client-go's leader election: re-read every retry period (no watch on one object's
            # renewals: every renewal of the holder would wake us up anyway).
            self.sleep(max(0.05, min(poll, (deadline - now).total_seconds())))

    def renew(self, identity, duration=60, attempts=3):
        """Renew a Lease we hold; LeaseLost when another run holds it now.

        A 409 is re-read, not taken as lost: a renewal whose answer was lost (and whose retry then
        carried a stale resourceVersion) has still renewed it.
        """
        for _attempt in range(attempts):
            lease = self.get()
            holder = ((lease or {}).get("spec") or {}).get("holderIdentity")
            if lease is None or holder != identity:
                raise LeaseLost("%s was lost (now held by %s)" % (self.where, holder or "nobody"), holder)
            written = self._write(lease, desired_spec(lease["spec"], identity, duration, self.clock()))
            if written:
                return written
        raise LeaseError("%s kept changing while renewing" % self.where)

    def release(self, identity):
        """Give the Lease up if we hold it (holder cleared, so the next run need not wait). Returns
        True when it was ours."""
        for _attempt in range(5):
            lease = self.get()
            spec = (lease or {}).get("spec") or {}
            if lease is None or spec.get("holderIdentity") != identity:
                return False
            released = dict(spec, renewTime=microtime(self.clock()), leaseDurationSeconds=1)
            released.pop("holderIdentity", None)
            if self._write(lease, released):
                return True
        return False


# --------------------------------------------------------------------------- the renewer process

def _proc_stat(pid):
    """(ppid, starttime, state) of a Linux process, or None when it does not exist."""
    try:
        with open("/proc/%d/stat" % pid) as handle:
            data = handle.read()
    except (IOError, OSError):
        return None
    fields = data[data.rindex(")") + 2:].split()  # after "pid (comm) "
    return int(fields[1]), fields[19], fields[0]


def _cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except (IOError, OSError):
        return ""


def find_owner(pid, markers=("ansible-playbook", "ansible-runner")):
    """The run this module belongs to: the top-most of the contiguous Ansible ancestors (task
    workers are forks of ansible-playbook with the same command line and end with their task),
    as (pid, starttime); None when there is none (or no /proc)."""
    found = None
    seen = 0
    while pid and pid > 1 and seen < 64:
        stat = _proc_stat(pid)
        if stat is None:
            break
        if any(m in _cmdline(pid) for m in markers):
            found = (pid, stat[1])
        elif found is not None:
            break
        pid = stat[0]
        seen += 1
    return found


def owner_alive(owner):
    stat = _proc_stat(owner[0])
    # same start time: not a reused pid; a zombie (exited, not yet reaped by its parent) is gone
    return stat is not None and stat[1] == owner[1] and stat[2] not in ("Z", "X")


def renew_loop(lease_client, identity, duration, owner, interval, max_hold, clock=time.monotonic, sleep=time.sleep,
               alive=owner_alive):
    """Renew every ``interval`` seconds while ``owner`` lives (checked every second), then release.

    Stops without releasing when the Lease was lost. Returns why it stopped: ``owner-exited``,
    ``lost`` or ``max-hold``.
    """
    start = clock()
    last = start
    while True:
        if not alive(owner):
            try:
                lease_client.release(identity)
            except Exception:
                pass  # the Lease then expires by itself
            return "owner-exited"
        if clock() - start > max_hold:
            return "max-hold"
        if clock() - last >= interval:
            try:
                lease_client.renew(identity, duration)
                last = clock()
            except LeaseLost:
                return "lost"
            except Exception:
                pass  # transient hub trouble: try again next second, the Lease has slack
        sleep(1.0)
