"""Command line of hack/local-fleet (see docs/local-fleet.md)."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from . import fleet


def _state_dir(args) -> str:
    return os.path.abspath(args.state_dir or os.environ.get("LOCAL_FLEET_STATE") or fleet.DEFAULT_STATE_DIR)


def _lock(state_dir: str) -> None:
    """Serialise up/down/simulator start|stop on one state directory (concurrent sessions)."""
    import fcntl
    parent = os.path.dirname(state_dir)
    os.makedirs(parent, exist_ok=True)
    fh = open(os.path.join(parent, f".{os.path.basename(state_dir)}.lock"), "w")  # noqa: SIM115 - held until exit
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"local-fleet: waiting for another local-fleet command on {state_dir}", file=sys.stderr)
        fcntl.flock(fh, fcntl.LOCK_EX)
    _lock.handle = fh  # keep it open (and locked) for the life of the process


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hack/local-fleet", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)

    def with_state(p):
        p.add_argument("--state-dir", help=f"state directory (default: $LOCAL_FLEET_STATE or {fleet.DEFAULT_STATE_DIR})")
        return p

    p_up = with_state(sub.add_parser("up", help="start etcd, one kube-apiserver per cluster, CRDs, simulator"))
    p_up.add_argument("--inventory", default=fleet.DEFAULT_INVENTORY, help="inventory dir or file (default: inventories/local)")
    p_up.add_argument("--no-simulator", action="store_true", help="do not start the Flux simulator")
    with_state(sub.add_parser("down", help="stop exactly the processes `up` started and remove the state"))
    p_st = with_state(sub.add_parser("status", help="clusters, URLs, PIDs and readiness"))
    p_st.add_argument("--json", action="store_true")
    sub.add_parser("install", help="build/cache kube-apiserver and etcd only")
    p_sim = with_state(sub.add_parser("simulator", help="the Flux simulator process"))
    p_sim.add_argument("action", choices=["start", "stop", "run"])
    p_sim.add_argument("--workers", type=int, default=int(os.environ.get("LOCAL_FLEET_SIM_WORKERS", "16")))
    args = parser.parse_args(argv)

    try:
        if args.cmd in ("up", "down") or (args.cmd == "simulator" and args.action in ("start", "stop")):
            _lock(_state_dir(args))
        if args.cmd == "install":
            return subprocess.call([os.path.join(fleet.HERE, "install.sh")])
        if args.cmd == "up":
            fleet.up(args.inventory, _state_dir(args), with_simulator=not args.no_simulator)
            return 0
        if args.cmd == "down":
            fleet.down(_state_dir(args))
            return 0
        if args.cmd == "status":
            st = fleet.status(_state_dir(args))
            if st is None:
                if args.json:
                    print(json.dumps({"state_dir": _state_dir(args), "up": False}))
                else:
                    print(f"no fleet in {_state_dir(args)}")
                return 3
            if args.json:
                print(json.dumps(st, indent=2))
            else:
                print(f"state directory: {st['state_dir']}")
                print(f"{'CLUSTER':<16} {'HUB':<4} {'URL':<26} {'PID':>8}  READY  KUBECONFIG")
                for c in st["clusters"]:
                    print(f"{c['name']:<16} {'*' if c['hub'] else '':<4} {c['url']:<26} {c['pid']!s:>8}  "
                          f"{'yes' if c['ready'] else 'NO':<5}  {c['kubeconfig']}")
                e, s, r = st["etcd"], st["simulator"], st["registry"]
                print(f"{'etcd':<16} {'':<4} {e['url'] or '':<26} {e['pid']!s:>8}  {'yes' if e['running'] else 'NO'}")
                print(f"{'registry':<16} {'':<4} {r['url'] or '':<26} {r['pid']!s:>8}  {'yes' if r['running'] else 'NO':<5}  {r['log'] or ''}")
                print(f"{'simulator':<16} {'':<4} {'':<26} {s['pid']!s:>8}  {'yes' if s['running'] else 'NO':<5}  {s['log'] or ''}")
                g = st.get("git")
                if g:
                    print(f"{'git (sshd)':<16} {'':<4} {'127.0.0.1:' + str(g['port']):<26} {g['pid']!s:>8}  "
                          f"{'yes' if g['ready'] else 'NO':<5}  {g['url']}  (identity, known_hosts: {g['files']})")
            return 0 if st["ready"] else 1
        if args.cmd == "simulator":
            sd = _state_dir(args)
            if args.action == "start":
                fleet.start_simulator(sd)
            elif args.action == "stop":
                fleet.stop_simulator(sd)
            else:
                from . import sim
                return sim.run(sd, workers=args.workers)
            return 0
    except fleet.FleetError as exc:
        print(f"local-fleet: ERROR: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 2
