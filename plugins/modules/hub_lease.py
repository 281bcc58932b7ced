#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: hub_lease
short_description: Hold the hub for one run at a time with a coordination.k8s.io/v1 Lease
version_added: 0.2.0
description:
  - O(state=acquired) takes the Lease O(namespace)/O(name) on the hub for this run (holder identity
    user, host, process and a run id). When another run holds it, waits up to O(wait_timeout)
    seconds for it to be released or to expire, then fails naming the holder.
  - With O(renew), a background process renews the Lease every O(duration)/3 seconds while the
    calling C(ansible-playbook) (or C(ansible-runner)) process lives, and releases it when that
    process ends, however it ends. A run killed with its renewer stops renewing; its Lease expires
    after O(duration) seconds and the next run takes it over.
  - O(state=released) stops the renewer and releases the Lease if this run holds it.
  - In check mode the Lease is only read (a held Lease is reported as a warning); nothing is written.
author:
  - c5c3.gitops developers (@c5c3)
extends_documentation_fragment:
  - c5c3.gitops.attributes
  - c5c3.gitops.attributes.k8s_group
  - c5c3.gitops.k8s_auth
options:
  state:
    description: Take (V(acquired)) or give up (V(released)) the Lease.
    type: str
    choices: [acquired, released]
    default: acquired
  namespace:
    description: Namespace of the Lease on the hub (exists on every cluster by default).
    type: str
    default: kube-system
  name:
    description: Name of the Lease.
    type: str
    default: c5c3-gitops
  identity:
    description:
      - Holder identity. Defaults to C(<user>@<host> pid <run process> run <random id>); pass the
        RV(identity) of the acquire to O(state=released).
    type: str
  duration:
    description: Lease duration in seconds (C(leaseDurationSeconds)); how long a crashed run blocks the hub.
    type: int
    default: 60
  wait_timeout:
    description: Seconds to wait for another run's Lease; 0 fails at once.
    type: int
    default: 900
  renew:
    description: Start the background renewer (O(state=acquired)).
    type: bool
    default: true
  renewer_pid:
    description: With O(state=released), the RV(renewer_pid) of the acquire, stopped first.
    type: int
  max_hold:
    description: The renewer stops renewing after this many seconds, whatever happens.
    type: int
    default: 21600
attributes:
  check_mode:
    support: full
    details: Reads the Lease and warns when another run holds it; writes nothing.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Take the hub for this run
  c5c3.gitops.hub_lease:
    wait_timeout: 600
  register: _lease

- name: Give the hub back
  c5c3.gitops.hub_lease:
    state: released
    identity: "{{ _lease.identity }}"
    renewer_pid: "{{ _lease.renewer_pid }}"
"""

RETURN = r"""
identity:
  description: The holder identity of this run.
  returned: always
  type: str
holder:
  description: Who holds the Lease after the task.
  returned: always
  type: str
waited:
  description: Seconds spent waiting for another run.
  returned: state=acquired
  type: float
took_over:
  description: The previous holder whose Lease had expired (a crashed run), if any.
  returned: state=acquired
  type: str
renewer_pid:
  description: PID of the background renewer.
  returned: state=acquired and renew
  type: int
"""

import getpass
import os
import signal
import socket
import uuid

from ansible_collections.c5c3.gitops.plugins.module_utils import lease as ls
from ansible_collections.c5c3.gitops.plugins.module_utils.k8s_client import K8S_AUTH_ARGSPEC
from ansible_collections.c5c3.gitops.plugins.module_utils.kube import client_from_params
from ansible_collections.c5c3.gitops.plugins.module_utils.kube_module import KubeModule


def argspec():
    spec = dict(K8S_AUTH_ARGSPEC)
    spec.update(
        state=dict(type="str", choices=["acquired", "released"], default="acquired"),
        namespace=dict(type="str", default=ls.DEFAULT_NAMESPACE),
        name=dict(type="str", default=ls.DEFAULT_NAME),
        identity=dict(type="str"),
        duration=dict(type="int", default=60),
        wait_timeout=dict(type="int", default=900),
        renew=dict(type="bool", default=True),
        renewer_pid=dict(type="int"),
        max_hold=dict(type="int", default=21600),
    )
    return spec


def hub_client(p):
    return client_from_params(p, workers=1)


def start_renewer(p, identity, owner):
    """Fork a detached renewer (double fork, new session, stdio on /dev/null so Ansible does not
    wait for it); returns its pid. Everything it runs is imported before the fork: the module's
    own files are removed once this process exits."""
    hub_client(p).close()  # warm every lazy import of the transport
    read_end, write_end = os.pipe()
    first = os.fork()
    if first == 0:
        try:
            os.setsid()
            second = os.fork()
            if second:
                os.write(write_end, str(second).encode())
                os._exit(0)
            os.close(read_end)
            os.close(write_end)
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            signal.signal(signal.SIGTERM, _stop_renewer)  # unwinds to the finally below
            raw = hub_client(p)
            try:
                ls.renew_loop(ls.LeaseClient(raw, p["namespace"], p["name"]), identity, p["duration"], owner,
                              max(1, p["duration"] // 3), p["max_hold"])
            finally:
                raw.close()  # removes its credential files
        finally:
            os._exit(0)
    os.close(write_end)
    os.waitpid(first, 0)
    data = os.read(read_end, 32)
    os.close(read_end)
    return int(data) if data else None


def default_identity(owner):
    try:
        user = getpass.getuser()
    except Exception:
        user = str(os.getuid())
    return "%s@%s pid %s run %s" % (user, socket.gethostname(), owner[0] if owner else os.getpid(), uuid.uuid4().hex[:8])


def run(module):
    p = module.params
    client = ls.LeaseClient(module.client(workers=1), p["namespace"], p["name"])
    if p["state"] == "released":
        if p["renewer_pid"]:
            try:
                os.kill(p["renewer_pid"], signal.SIGTERM)  # our own renewer, by the pid it reported
            except OSError:
                pass
        identity = p["identity"]
        if not identity:
            module.fail_json(msg="hub_lease: state=released needs the identity of the acquire")
        if module.check_mode:
            return dict(changed=False, identity=identity, holder=None)
        released = client.release(identity)
        return dict(changed=released, identity=identity, holder=None)

    owner = ls.find_owner(os.getppid())
    identity = p["identity"] or default_identity(owner)
    if module.check_mode:
        lease = client.get()
        action, holder, _expires = ls.decide(lease, identity, ls.now_utc())
        if action == "wait":
            module.warn("%s: %s (check mode does not wait)" % (client.where, ls.describe_holder(holder, lease["spec"], ls.now_utc())))
        return dict(changed=False, identity=identity, holder=holder, waited=0.0, took_over=None)

    waits = []

    def on_wait(holder, spec):
        waits.append("waiting for %s: %s" % (client.where, ls.describe_holder(holder, spec, ls.now_utc())))
    got = client.acquire(identity, duration=p["duration"], wait=p["wait_timeout"], on_wait=on_wait)
    for line in waits:
        module.warn(line)
    if got["took_over"]:
        module.warn("%s: took over from %s, whose lease had expired (a run that ended without releasing it)"
                    % (client.where, got["took_over"]))
    out = dict(changed=True, identity=identity, holder=identity, waited=round(got["waited"], 1), took_over=got["took_over"])
    if p["renew"]:
        if owner is None:
            module.warn("hub_lease: no ansible-playbook process found above this module; the lease is not renewed "
                        "and expires after %ds" % p["duration"])
        else:
            out["renewer_pid"] = start_renewer(p, identity, owner)
    return out


def _stop_renewer(*_args):
    """SIGTERM in the detached renewer: unwind (the finally gives the Lease back)."""
    raise SystemExit(0)


def main():
    module = KubeModule(argument_spec=argspec(), supports_check_mode=True)
    module.run(run, expected=(ls.LeaseError,), failure=None)


if __name__ == "__main__":
    main()
