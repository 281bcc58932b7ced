"""Helpers of the bad-input suite: the case's inventory (a copy of the local one, changed as the
case says), one playbook run, the failure message it printed, and a snapshot of every object of
every resource on the hub (resourceVersions) to prove that nothing was written."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import textwrap

import yaml

import pf_helpers as h

ROOT = h.ROOT
FLEET_DEFAULTS = os.path.join(ROOT, "roles", "fleet", "defaults", "main.yml")

# Objects that change without anyone applying anything: the API servers' own identity Leases and
# the leader-election Leases of the control plane, Events (a record of what happened, not state);
# ComponentStatuses are computed on every read, not stored.
_NOISY = ("events", "events.events.k8s.io", "componentstatuses")


class FullHubState(h.HubState):
    """Every object of every listable resource on the hub, (resource, namespace, name) ->
    resourceVersion. The resources are discovered from the API server, so a kind nobody thought
    of (a CRD the run would have created, an OCIRepository, a ServiceAccount) counts too."""

    _resources = {}  # state_dir -> the discovered resources (one discovery per fleet)

    def __init__(self, fleet):
        super().__init__(fleet)
        if fleet.state_dir not in self._resources:
            self._resources[fleet.state_dir] = self._discover()
        self.resources = self._resources[fleet.state_dir]

    def _discover(self):
        out = []
        groups = [("", "v1", "/api/v1")]
        for group in (self.get("/apis") or {}).get("groups") or []:
            pref = group["preferredVersion"]["groupVersion"]
            groups.append((group["name"], pref, "/apis/" + pref))
        for group, _version, base in groups:
            for res in (self.get(base) or {}).get("resources") or []:
                if "/" in res["name"] or "list" not in res.get("verbs", ()):
                    continue
                full = res["name"] if not group else "%s.%s" % (res["name"], group)
                if full in _NOISY:
                    continue
                out.append((full, "%s/%s" % (base, res["name"])))
        return sorted(out)

    def snapshot(self, skip_leases=("kube-system/kube-controller-manager", "kube-system/kube-scheduler")):
        out = {}
        for full, path in self.resources:
            for item in (self.get(path) or {}).get("items") or []:
                md = item["metadata"]
                ns = md.get("namespace") or ""
                if full.startswith("leases.") and ("%s/%s" % (ns, md["name"]) in skip_leases or md["name"].startswith("apiserver-")):
                    continue
                out[(full, ns, md["name"])] = md["resourceVersion"]
        return out


def fleet_sources():
    """The catalog's fleet_sources (a case that adds a source sets the whole list)."""
    with open(FLEET_DEFAULTS) as fh:
        return yaml.safe_load(fh)["fleet_sources"]


_PLACEHOLDER = re.compile(r"\{(\w+)(?:\[([\w-]+)\])?\}")


def fmt(text, ctx):
    """{key} and {key[item]} of ``ctx`` in ``text``; any other brace stays as it is."""
    def one(m):
        if m.group(1) not in ctx:
            return m.group(0)
        value = ctx[m.group(1)]
        return str(value[m.group(2)] if m.group(2) else value)
    return _PLACEHOLDER.sub(one, text)


def _fill(value, ctx):
    """Placeholders {dir}, {kc}, {port}, ... of the context in every string of ``value``."""
    if callable(value):
        value = value(ctx)
    if isinstance(value, str):
        return fmt(value, ctx)
    if isinstance(value, dict):
        return {k: _fill(v, ctx) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, ctx) for v in value]
    return value


def build_inventory(fleet, case, dest, ctx):
    """inventories/local for the running fleet (direct delivery, pf_helpers.inventory), then the
    case's changes: ``kubeconfigs`` {cluster: fn(fleet, ctx) -> dict} replaces a kubeconfig,
    ``host_vars`` {cluster: vars} adds host vars, ``group_vars`` {group: vars} an extra group_vars
    file, ``files`` {relative path: text} files beside the inventory, ``hosts`` fn(tree) edits
    hosts.yml."""
    kcs = {c: fn(fleet, ctx) for c, fn in (case.get("kubeconfigs") or {}).items()}
    inv = h.inventory(fleet, dest, kubeconfigs=kcs, host_vars=_fill(case.get("host_vars"), ctx))
    for group, gvars in (case.get("group_vars") or {}).items():
        path = os.path.join(inv, "group_vars", group, "zz-badinput.yml")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as fh:
            yaml.safe_dump(_fill(gvars, ctx), fh)
    for rel, text in (case.get("files") or {}).items():
        path = os.path.join(ctx["dir"], rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as fh:
            fh.write(_fill(text, ctx))
    if case.get("hosts"):
        hosts = os.path.join(inv, "hosts.yml")
        with open(hosts) as fh:
            tree = yaml.safe_load(fh)
        case["hosts"](tree["all"]["children"])
        with open(hosts, "w") as fh:
            yaml.safe_dump(tree, fh)
    return inv


_ERROR = re.compile(r"^\[ERROR\]: Task failed: (?:Action|Module) failed: ", re.M)
_FATAL = re.compile(r"^fatal: \[([^\]]+)\]: FAILED! => *\n((?:[ ].*\n|\n)+)", re.M)


def failures(out):
    """-> (the messages of the [ERROR] lines, [(host, result)] of every fatal result)."""
    printed = []
    for m in _ERROR.finditer(out):
        rest = out[m.end():]
        end = rest.find("\nOrigin: ")
        printed.append(rest[:end] if end >= 0 else rest.split("\n", 1)[0])
    fatal = [(m.group(1), yaml.safe_load(textwrap.dedent(m.group(2)))) for m in _FATAL.finditer(out)]
    return printed, fatal


TIMESTAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


def expected_pattern(template, ctx):
    """The case's expected message, filled with the context, as a full-match regex ({ts}: an
    RFC 3339 timestamp; nothing else varies)."""
    parts = template.split("{ts}")
    return "".join(x if i % 2 else re.escape(fmt(x, ctx)) for i, x in enumerate(_join(parts))) + r"\Z"


def _join(parts):
    out = []
    for i, part in enumerate(parts):
        if i:
            out.append(TIMESTAMP)
        out.append(part)
    return out


def playbook(name, inv, *args, timeout=240):
    """-> (exit code or None on timeout, output). A run that outlives ``timeout`` (bad input the
    collection took: it went on to deploy) is killed with its whole process group."""
    proc = h.playbook(name, inv, *args, background=True)
    try:
        out, _unused = proc.communicate(timeout=timeout)
        return proc.returncode, out
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        out, _unused = proc.communicate()
        return None, out + "\n[still running after %ds: killed]" % timeout
