"""Benchmark of the apply sink: site.yml against kubectl and a per-object kubernetes.core.k8s loop.

    .venv/bin/python bench/converge.py [--spokes 50] [--skip-loop] [--state-dir DIR]

On a local fleet of its own (hack/local-fleet up --state-dir, brought down at the end unless
--keep), for two fleets - the example-size fleet (the four clusters of the local fleet) and a
generated fleet of N spokes (default 50; the generated spokes share the three real spoke API
servers through copies of their kubeconfigs) - it measures, in one run:

  kubectl   `kubectl apply --server-side` of the same objects site.yml applies (rendered from the
            fleet model), first apply and no-op re-apply; then the objects are deleted again
  site      `ansible-playbook playbooks/site.yml`, first converge and no-op re-run; the gating
            tasks (flux_wait) are timed by the profile_tasks callback and reported apart
  loop      (example fleet only) a playbook with one kubernetes.core.k8s task looping over the
            same objects, the way most playbooks apply manifests, as a no-op re-run

Ratios: (site - gating) / kubectl for first and no-op runs, and (site no-op - gating) / loop no-op.
Results go to bench/results/converge-<timestamp>.json as well.

    .venv/bin/python bench/converge.py --delivery [--spokes 50]

compares the delivery modes instead, side by side, each on a fresh local fleet of its own (with
its Git server): site.yml first converge, no-op re-run, and a change (one chart version bump per
control-plane cluster) to green - in git mode from the pushed commit (end of the publish task)
to the last gate returning ("commit-to-green"), in direct mode from the first apply to the last
gate; and per gate (flux_wait task) the lag from the last object seen Ready to the gate
returning (elapsed - max ready_after of the module's result; p50/p95/max over all gates).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_BIN = os.path.join(ROOT, ".venv", "bin")
GROUP_CYCLE = ("control_plane", "hypervisor", "storage")
REAL_SPOKE = {"control_plane": "control-plane", "hypervisor": "hypervisor", "storage": "storage"}

DUMP_PLAY = """---
- name: Dump the fleet objects
  hosts: management
  connection: local
  gather_facts: false
  roles:
    - role: c5c3.gitops.fleet
  tasks:
    - name: Write the objects
      ansible.builtin.copy:
        content: "{{ {'objects': gitops_fleet.objects | map(attribute='object') | list,
                      'namespaces': gitops_fleet.clusters | map(attribute='hub_namespace') | unique | list} | to_json }}"
        dest: "{{ dump_to }}"
        mode: "0600"
"""

LOOP_PLAY = """---
- name: Per-object kubernetes.core.k8s loop
  hosts: management
  connection: local
  gather_facts: false
  tasks:
    - name: Apply one object
      kubernetes.core.k8s:
        kubeconfig: "{{ hub_kubeconfig }}"
        state: present
        definition: "{{ item }}"
      loop: "{{ (lookup('ansible.builtin.file', objects_file) | from_json).objects }}"
      loop_control:
        label: "{{ item.kind }} {{ item.metadata.namespace | default('') }}/{{ item.metadata.name }}"
"""


def log(msg):
    print("bench: %s" % msg, file=sys.stderr, flush=True)


def env():
    e = dict(os.environ)
    e["PATH"] = VENV_BIN + os.pathsep + e.get("PATH", "")
    e["VIRTUAL_ENV"] = os.path.join(ROOT, ".venv")
    e["ANSIBLE_CONFIG"] = os.path.join(ROOT, "ansible.cfg")
    e["ANSIBLE_NOCOLOR"] = "1"
    return e


def run(cmd, check=True, extra_env=None, quiet=True, stderr_apart=False):
    e = env()
    e.update(extra_env or {})
    start = time.monotonic()
    # stderr_apart: stdout is a document (the json callback), Ansible's warnings must not mix in.
    proc = subprocess.run(cmd, check=False, cwd=ROOT, env=e, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE if stderr_apart else subprocess.STDOUT, text=True)
    elapsed = time.monotonic() - start
    if check and proc.returncode != 0:
        sys.stderr.write((proc.stderr or "")[-3000:])
        sys.stderr.write(proc.stdout[-6000:])
        raise SystemExit("bench: command failed (%d): %s" % (proc.returncode, " ".join(cmd)))
    if not quiet:
        sys.stderr.write(proc.stdout)
    return elapsed, proc.stdout


def write_inventory(directory, state_dir, spokes):
    """hosts.yml for the hub plus ``spokes`` spokes; None = the local fleet's own four clusters."""
    os.makedirs(os.path.join(directory, "group_vars", "all"), exist_ok=True)
    kube = os.path.join(state_dir, "kubeconfigs")
    groups = {"management": {"management": {"gitops_kubeconfig": os.path.join(kube, "management.yaml")}},
              "control_plane": {}, "hypervisor": {}, "storage": {}}
    if spokes is None:
        for group, name in REAL_SPOKE.items():
            groups[group][name] = {"gitops_kubeconfig": os.path.join(kube, name + ".yaml")}
    else:
        copies = os.path.join(directory, "kubeconfigs")
        os.makedirs(copies, exist_ok=True)
        for i in range(spokes):
            group = GROUP_CYCLE[i % 3]
            name = "%s-%02d" % (REAL_SPOKE[group], i)
            path = os.path.join(copies, name + ".yaml")
            shutil.copyfile(os.path.join(kube, REAL_SPOKE[group] + ".yaml"), path)
            groups[group][name] = {"gitops_kubeconfig": path}
    inv = {"all": {"children": {g: {"hosts": h} for g, h in groups.items()},
                   "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}
    with open(os.path.join(directory, "hosts.yml"), "w", encoding="utf-8") as fh:
        json.dump(inv, fh, indent=1)  # JSON is YAML
    extra = {
        "flux_operator_chart_ref": os.path.join(ROOT, "tests", "charts", "flux-operator-local"),
        "flux_operator_chart_version": "",
        "gitops_sync_identity": "bench", "gitops_sync_identity_pub": "bench", "gitops_sync_known_hosts": "bench",
        # The kubectl comparison measures the apply sink: direct delivery, sync outside the tree.
        # (--delivery overrides both in group_vars/all/delivery.yml.)
        "gitops_delivery": "direct", "gitops_flux_instance": {"sync": {"path": "bootstrap/{hub}"}},
    }
    with open(os.path.join(directory, "group_vars", "all", "bench.yml"), "w", encoding="utf-8") as fh:
        json.dump(extra, fh, indent=1)
    return directory


def site(inventory, label):
    """Run site.yml; returns (total seconds, gating seconds, changed count)."""
    elapsed, out = run(["ansible-playbook", "playbooks/site.yml", "-i", inventory],
                       extra_env={"ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks",
                                  "ANSIBLE_PROFILE_TASKS_TASK_OUTPUT_LIMIT": "all"})
    gating = 0.0
    # profile_tasks summary lines: "<role> : <task name> ---------- 1.23s"
    for m in re.finditer(r"^(.*?) -{2,} (\d+\.\d+)s\s*$", out, re.M):
        name = m.group(1)
        if re.search(r": Wait for (the )?", name):
            gating += float(m.group(2))
    changed = re.search(r"management\s+:\s+ok=\d+\s+changed=(\d+)", out)
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "results", "site-%s.log" % label.replace(" ", "-")), "w", encoding="utf-8") as fh:
        fh.write(out)  # the profile_tasks summary at the end shows where the time went
    log("%-28s %7.2fs (gating %.2fs, changed=%s)" % (label, elapsed, gating, changed.group(1) if changed else "?"))
    return elapsed, gating, int(changed.group(1)) if changed else None


def dump_objects(inventory, workdir):
    play = os.path.join(workdir, "dump.yml")
    with open(play, "w", encoding="utf-8") as fh:
        fh.write(DUMP_PLAY)
    target = os.path.join(workdir, "objects.json")
    run(["ansible-playbook", play, "-i", inventory, "-e", "dump_to=%s" % target,
         "-e", "fleet_require_kubeconfigs=false"])
    with open(target, encoding="utf-8") as fh:
        data = json.load(fh)
    # The FluxInstance and the sync GitRepository stand-in are bootstrap's; kubectl gets the rest
    # plus the hub namespaces it needs, i.e. what the apply stages of site.yml write.
    ns = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in data["namespaces"]]
    objs = [o for o in data["objects"] if o["kind"] != "FluxInstance"]
    manifest = os.path.join(workdir, "objects.yaml")
    with open(manifest, "w", encoding="utf-8") as fh:
        for obj in ns + objs:
            if obj["kind"] != "Namespace":
                # Suspended, so the simulator leaves kubectl's copies alone (it would otherwise
                # record Helm releases, e.g. the hub's flux-operator, that outlive the deletion).
                obj = dict(obj, spec=dict(obj.get("spec") or {}, suspend=True))
            fh.write("---\n" + json.dumps(obj) + "\n")
    with open(target, "w", encoding="utf-8") as fh:
        json.dump({"objects": objs}, fh)
    return manifest, target, len(objs)


def kubectl(hub, manifest, label):
    cmd = ["kubectl", "--kubeconfig", hub, "apply", "--server-side", "--force-conflicts",
           "--field-manager", "bench-kubectl", "-f", manifest]
    elapsed, _unused = run(cmd)
    log("%-28s %7.2fs" % (label, elapsed))
    return elapsed


def kubectl_delete(hub, manifest):
    # Namespaces stay (deleting them would take the kubeconfig Secrets with them); objects go.
    with open(manifest, encoding="utf-8") as fh:
        docs = [json.loads(d) for d in fh.read().split("---\n") if d.strip()]
    only = os.path.join(os.path.dirname(manifest), "delete.yaml")
    with open(only, "w", encoding="utf-8") as fh:
        for d in docs:
            if d["kind"] != "Namespace":
                fh.write("---\n" + json.dumps(d) + "\n")
    run(["kubectl", "--kubeconfig", hub, "delete", "--wait=true", "--ignore-not-found", "-f", only])


def loop(inventory, hub, objects_file, workdir, label):
    play = os.path.join(workdir, "loop.yml")
    with open(play, "w", encoding="utf-8") as fh:
        fh.write(LOOP_PLAY)
    elapsed, _unused = run(["ansible-playbook", play, "-i", inventory, "-e", "hub_kubeconfig=%s" % hub,
                            "-e", "objects_file=%s" % objects_file])
    log("%-28s %7.2fs" % (label, elapsed))
    return elapsed


# --------------------------------------------------------------------------- delivery modes

BUMP = {"keystone-operator": {"version": ">=0.2.0 <1.0.0"}}


def _ts(text):
    # ansible.posix.json durations: "2026-12-01T21:50:00.123456Z"
    from datetime import datetime
    return datetime.strptime(text.rstrip("Z")[:26], "%Y-%m-%dT%H:%M:%S.%f").timestamp()


def site_json(inventory, label):
    """site.yml with the json callback -> (total s, [(task name, start, end, result)], changed)."""
    elapsed, out = run(["ansible-playbook", "playbooks/site.yml", "-i", inventory],
                       extra_env={"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"}, stderr_apart=True)
    data = json.loads(out)
    tasks = []
    for play in data["plays"]:
        for task in play["tasks"]:
            result = (task.get("hosts") or {}).get("management") or {}
            d = task["task"]["duration"]
            # role tasks are named "<role> : <task>" by the callback
            tasks.append((task["task"]["name"].split(" : ")[-1], _ts(d["start"]), _ts(d["end"]), result))
    changed = data["stats"].get("management", {}).get("changed")
    log("%-34s %7.2fs (changed=%s)" % (label, elapsed, changed))
    return elapsed, tasks, changed


def gate_lags(tasks):
    """Per flux_wait task that waited: seconds from the last object seen Ready to the gate returning."""
    lags = []
    for _name, _s, _e, result in tasks:
        objs = result.get("objects")
        if result.get("outcome") == "ready" and objs and all("ready_after" in o for o in objs):
            lags.append(max(0.0, result["elapsed"] - max(o["ready_after"] or 0.0 for o in objs)))
    return lags


def to_green(tasks, mode):
    """git: end of the publish task -> end of the last gate; direct: start of the first apply -> end of the last gate."""
    gates = [t for t in tasks if t[3].get("outcome") is not None]
    if mode == "git":
        # One publish task, or one per wave ("Publish to the sync repository the tree after wave N").
        start = [t[2] for t in tasks if t[0].startswith("Publish ")]
    else:
        start = [t[1] for t in tasks if t[0].startswith("Apply stage")]
    if not start or not gates:
        return None
    return max(t[2] for t in gates) - min(start)


def slowest(tasks, n=6):
    """The n longest tasks of a run: [(seconds, name)], to see where a mode spends its time."""
    return sorted(((round(e - s, 2), name) for name, s, e, _unused in tasks), reverse=True)[:n]


def pct(values, q):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def delivery_inventory(directory, state_dir, spokes, mode):
    write_inventory(directory, state_dir, spokes)
    git = os.path.join(state_dir, "git")
    extra = {"gitops_delivery": mode}
    if mode == "git":
        def read(name):
            with open(os.path.join(git, name), encoding="utf-8") as fh:
                return fh.read()
        extra.update(gitops_sync_identity=read("identity"), gitops_sync_identity_pub=read("identity.pub"),
                     gitops_sync_known_hosts=read("known_hosts"),
                     gitops_flux_instance={"sync": {"url": read("url").strip(), "ref": "refs/heads/main"}})
    else:
        extra["gitops_flux_instance"] = {"sync": {"path": "bootstrap/{hub}"}}
    with open(os.path.join(directory, "group_vars", "all", "delivery.yml"), "w", encoding="utf-8") as fh:
        json.dump(extra, fh, indent=1)
    return directory


def bump(directory, on):
    """A chart version bump on every control-plane cluster (group_vars), or none."""
    os.makedirs(os.path.join(directory, "group_vars", "control_plane"), exist_ok=True)
    with open(os.path.join(directory, "group_vars", "control_plane", "bump.yml"), "w", encoding="utf-8") as fh:
        json.dump({"gitops_component_overrides": BUMP if on else {}}, fh)


def bench_delivery(mode, name, spokes, workroot):
    state_dir = os.path.join(workroot, "fleet-%s-%s" % (mode, name))
    log("%s %s: starting a local fleet in %s" % (name, mode, state_dir))
    run([os.path.join(ROOT, "hack", "local-fleet"), "up", "--state-dir", state_dir])
    try:
        inventory = delivery_inventory(os.path.join(workroot, "%s-%s" % (name, mode)), state_dir, spokes, mode)
        bump(inventory, False)
        r = {"fleet": name, "delivery": mode}
        r["first"], first, _unused = site_json(inventory, "%s %s first" % (name, mode))
        r["noop"], noop, r["noop_changed"] = site_json(inventory, "%s %s no-op" % (name, mode))
        bump(inventory, True)
        r["change"], change, _unused = site_json(inventory, "%s %s change" % (name, mode))
        r["change_to_green"] = to_green(change, mode)
        r["first_to_green"] = to_green(first, mode)
        r["slowest_tasks"] = dict((label, slowest(tasks)) for label, tasks in (("first", first), ("noop", noop), ("change", change)))
        lags = gate_lags(first) + gate_lags(noop) + gate_lags(change)
        r.update(gates=len(lags), lag_p50=pct(lags, 0.5), lag_p95=pct(lags, 0.95), lag_max=max(lags) if lags else None)
        return r
    finally:
        run([os.path.join(ROOT, "hack", "local-fleet"), "down", "--state-dir", state_dir], check=False)


def delivery_main(args):
    workroot = tempfile.mkdtemp(prefix="c5c3-bench-delivery-")
    results = []
    fleets = ([] if args.skip_example else [("example", None)]) + ([("%d-spoke" % args.spokes, args.spokes)] if args.spokes else [])
    for name, spokes in fleets:
        for mode in ("git", "direct"):
            results.append(bench_delivery(mode, name, spokes, workroot))
    print()
    print("%-10s %-7s %9s %9s %8s %10s %10s %6s %9s %9s %9s" % (
        "fleet", "mode", "first", "no-op", "changed", "change", "to green", "gates", "lag p50", "lag p95", "lag max"))
    for r in results:
        print("%-10s %-7s %8.2fs %8.2fs %8s %9.2fs %9s %6d %8.3fs %8.3fs %8.3fs" % (
            r["fleet"], r["delivery"], r["first"], r["noop"], r["noop_changed"], r["change"],
            "%.2fs" % r["change_to_green"] if r["change_to_green"] is not None else "-",
            r["gates"], r["lag_p50"] or 0, r["lag_p95"] or 0, r["lag_max"] or 0))
    print("to green: git = pushed commit -> last gate returned; direct = first apply -> last gate returned")
    print()
    print("slowest tasks of the change run:")
    for r in results:
        print("  %-10s %-7s %s" % (r["fleet"], r["delivery"], "; ".join("%s %.1fs" % (n, t) for t, n in r["slowest_tasks"]["change"][:4])))
    print()
    print("git / direct, same fleet, same run:")
    by = {(r["fleet"], r["delivery"]): r for r in results}
    for name, _spokes in fleets:
        g, d = by[(name, "git")], by[(name, "direct")]
        cells = []
        for key, label in (("first", "first converge"), ("noop", "no-op re-run"), ("change", "change run"),
                           ("change_to_green", "change to green")):
            if g.get(key) and d.get(key):
                cells.append("%s %.2fx" % (label, g[key] / d[key]))
        print("  %-10s %s" % (name, ", ".join(cells)))
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    out = os.path.join(ROOT, "bench", "results", "delivery-%s.json" % time.strftime("%Y%m%dT%H%M%S"))
    with open(out, "w", encoding="utf-8") as fh:
        json.dump(results, fh, indent=2)
    print("results: %s" % os.path.relpath(out, ROOT))
    shutil.rmtree(workroot, ignore_errors=True)


def bench_fleet(name, state_dir, spokes, with_loop, workroot):
    workdir = os.path.join(workroot, name)
    inventory = write_inventory(workdir, state_dir, spokes)
    hub = os.path.join(state_dir, "kubeconfigs", "management.yaml")
    manifest, objects_file, count = dump_objects(inventory, workdir)
    log("%s: %d objects" % (name, count))
    r = {"fleet": name, "objects": count}
    r["kubectl_first"] = kubectl(hub, manifest, "%s kubectl first" % name)
    r["kubectl_noop"] = kubectl(hub, manifest, "%s kubectl no-op" % name)
    kubectl_delete(hub, manifest)
    r["site_first"], r["site_first_gating"], _unused = site(inventory, "%s site.yml first" % name)
    r["site_noop"], r["site_noop_gating"], r["site_noop_changed"] = site(inventory, "%s site.yml no-op" % name)
    if with_loop:
        r["loop_noop"] = loop(inventory, hub, objects_file, workdir, "%s k8s loop no-op" % name)
    r["ratio_first"] = (r["site_first"] - r["site_first_gating"]) / r["kubectl_first"]
    r["ratio_noop"] = (r["site_noop"] - r["site_noop_gating"]) / r["kubectl_noop"]
    if with_loop:
        r["ratio_noop_vs_loop"] = (r["site_noop"] - r["site_noop_gating"]) / r["loop_noop"]
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("--spokes", type=int, default=50)
    ap.add_argument("--skip-loop", action="store_true", help="skip the per-object kubernetes.core.k8s loop")
    ap.add_argument("--skip-example", action="store_true")
    ap.add_argument("--state-dir", help="use this running local fleet (left running)")
    ap.add_argument("--keep", action="store_true", help="leave the bench's own fleet running")
    ap.add_argument("--delivery", action="store_true", help="git vs direct delivery: change-to-green and gate lag")
    args = ap.parse_args()
    if args.delivery:
        return delivery_main(args)
    for tool in ("kubectl",):
        if not shutil.which(tool):
            raise SystemExit("bench: %s is required" % tool)
    workroot = tempfile.mkdtemp(prefix="c5c3-bench-")
    state_dir = args.state_dir
    started = False
    results = []
    try:
        if not state_dir:
            state_dir = os.path.join(workroot, "fleet")
            log("starting a local fleet in %s" % state_dir)
            run([os.path.join(ROOT, "hack", "local-fleet"), "up", "--state-dir", state_dir])
            started = True
        if not args.skip_example:
            results.append(bench_fleet("example", state_dir, None, not args.skip_loop, workroot))
        if args.spokes:
            results.append(bench_fleet("%d-spoke" % args.spokes, state_dir, args.spokes, False, workroot))
    finally:
        if started and not args.keep:
            run([os.path.join(ROOT, "hack", "local-fleet"), "down", "--state-dir", state_dir], check=False)
    print()
    print("%-10s %7s %9s %9s %9s %9s %9s %9s %8s %8s %9s" % (
        "fleet", "objects", "kctl 1st", "kctl noop", "site 1st", "(gating)", "site noop", "(gating)",
        "1st x", "noop x", "vs loop"))
    for r in results:
        print("%-10s %7d %8.2fs %8.2fs %8.2fs %8.2fs %8.2fs %8.2fs %7.2fx %7.2fx %9s" % (
            r["fleet"], r["objects"], r["kubectl_first"], r["kubectl_noop"], r["site_first"], r["site_first_gating"],
            r["site_noop"], r["site_noop_gating"], r["ratio_first"], r["ratio_noop"],
            "%.3fx" % r["ratio_noop_vs_loop"] if "ratio_noop_vs_loop" in r else "-"))
        if "loop_noop" in r:
            print("%-10s per-object kubernetes.core.k8s loop, no-op: %.2fs" % ("", r["loop_noop"]))
    print("ratios: (site.yml - gating) / kubectl apply --server-side; 'vs loop' = (site.yml no-op - gating) / k8s loop no-op")
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    out = os.path.join(ROOT, "bench", "results", "converge-%s.json" % time.strftime("%Y%m%dT%H%M%S"))
    with open(out, "w", encoding="utf-8") as fh:
        json.dump(results, fh, indent=2)
    print("results: %s" % os.path.relpath(out, ROOT))
    shutil.rmtree(workroot, ignore_errors=True)


if __name__ == "__main__":
    main()
