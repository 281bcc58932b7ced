"""Bad input is refused: one clear error naming the offending item, a non-zero exit, nothing written
(issue 12, "Tests that keep it so").

Every case of cases.CASES runs playbooks/site.yml (or render.yml) on a copy of the local
inventory with one thing wrong, against the running local fleet. Per case: the one failed task's
message is exactly the expected one (printed on the [ERROR] line and in the fatal result), the
exit is non-zero, every object of every resource on the hub keeps its resourceVersion (and no
object appears), a render leaves its output directory as it was, and a secret of the input is
nowhere in the output (-vvv for the cases that carry one).

The cases run in a small pool (BADINPUT_WORKERS, default 3): none of them may write, so a
per-case snapshot stays meaningful while others run (a case that wrote would show in its own
before/after, whoever else ran meanwhile), and one snapshot around the whole pool checks the lot.
"""
import os
import re
import resource
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "preflight"))

import pf_helpers as h  # noqa: E402
import bi_helpers as b  # noqa: E402
from cases import CASES  # noqa: E402
from tree_snapshot import snapshot  # noqa: E402

from ansible_collections.c5c3.gitops.plugins.module_utils.fleet_helm import COMPONENT_FIELDS  # noqa: E402

pytestmark = pytest.mark.integration

WORKERS = int(os.environ.get("BADINPUT_WORKERS", "3"))
# BADINPUT_CASES: a regex of case ids to run (all by default), for working on a few cases.
SELECTED = [c for c in CASES if re.search(os.environ.get("BADINPUT_CASES", ""), c["id"])]


class Outcome:
    def __init__(self, case, ctx, rc, output, before, after, render_before, render_after, seconds):
        self.case, self.ctx, self.rc, self.output = case, ctx, rc, output
        self.before, self.after = before, after
        self.render_before, self.render_after = render_before, render_after
        self.seconds = seconds


def _context(fleet, case_dir, inv):
    return {"dir": case_dir, "inv": inv, "kc": inv + "-kubeconfigs", "port": h.dead_port(), "url": fleet.urls,
            "sources": ", ".join(sorted(s["name"] for s in b.fleet_sources())),
            "fields": ", ".join(sorted(COMPONENT_FIELDS))}


def _run_case(fleet, base, case, good_tree):
    case_dir = os.path.join(base, case["id"])
    inv = os.path.join(case_dir, "inv")
    ctx = _context(fleet, case_dir, inv)
    b.build_inventory(fleet, case, inv, ctx)
    for rel in case.get("drop_files") or ():
        os.remove(os.path.join(inv, rel))
    args = list(case.get("args") or ())
    out = os.path.join(case_dir, "out")
    if case.get("playbook") == "render.yml":
        args += ["-e", "gitops_render_dir=" + out]
        if case.get("prerender"):
            shutil.copytree(good_tree, out, symlinks=True)
    state = b.FullHubState(fleet)
    render_before = snapshot(out)
    before = state.snapshot()
    start = time.monotonic()
    rc, output = b.playbook(case.get("playbook") or "site.yml", inv, *args)
    seconds = time.monotonic() - start
    with open(os.path.join(case_dir, "output.log"), "w") as fh:
        fh.write(output)
    after = state.snapshot()
    return Outcome(case, ctx, rc, output, before, after, render_before, snapshot(out), seconds)


@pytest.fixture(scope="module")
def outcomes(local_fleet, tmp_path_factory):
    base = str(tmp_path_factory.mktemp("badinput"))
    good_tree = None
    if any(c.get("prerender") for c in SELECTED):
        # A tree rendered from the good inventory: a bad render must leave it exactly as it was.
        good_tree = os.path.join(base, "good-tree")
        inv = h.inventory(local_fleet, os.path.join(base, "good-inv"))
        run = h.playbook("render.yml", inv, "-e", "gitops_render_dir=" + good_tree)
        assert run.returncode == 0, run.stdout[-3000:]
    state = b.FullHubState(local_fleet)
    before = state.snapshot()
    start = time.monotonic()
    cpu = _children_cpu()
    with ThreadPoolExecutor(WORKERS) as pool:
        results = list(pool.map(lambda c: _run_case(local_fleet, base, c, good_tree), SELECTED))
    elapsed = time.monotonic() - start
    after = state.snapshot()
    slowest = sorted(results, key=lambda o: -o.seconds)[:5]
    print("\nbad input: %d cases in %.1fs (%.0fs CPU of the runs) with %d workers; slowest: %s" % (
        len(results), elapsed, _children_cpu() - cpu, WORKERS, ", ".join("%s %.1fs" % (o.case["id"], o.seconds) for o in slowest)))
    return {"cases": {o.case["id"]: o for o in results}, "before": before, "after": after}


def _children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _diff(before, after):
    return sorted(set(before.items()) ^ set(after.items()))[:10]


def test_the_table_is_broad():
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    assert len(ids) >= 25
    assert sum(1 for c in CASES if c.get("playbook") == "render.yml") >= 3


@pytest.mark.parametrize("case", SELECTED, ids=[c["id"] for c in SELECTED])
def test_bad_input_is_refused(outcomes, case):
    o = outcomes["cases"][case["id"]]
    out = o.output
    tail = out[-4000:]
    assert o.rc is not None and o.rc != 0, tail
    printed, fatal = b.failures(out)
    # one failed task, and its message is exactly the expected one, on the [ERROR] line as in the result
    assert len(fatal) == 1, (fatal, tail)
    msg = fatal[0][1].get("msg")
    pattern = b.expected_pattern(case["expect"], o.ctx)
    assert re.match(pattern, msg or ""), "expected:\n%s\ngot:\n%s" % (b.fmt(case["expect"], o.ctx), msg)
    assert printed == [msg], (printed, msg)
    # the play stopped at the check: no later task ran
    assert "TASK [c5c3.gitops.flux_operator" not in out and "TASK [c5c3.gitops.gitops_render : Render" not in out
    # nothing written on the hub: every object of every resource keeps its resourceVersion
    assert o.after == o.before, _diff(o.before, o.after)
    if case.get("playbook") == "render.yml":
        assert o.render_after == o.render_before, "the render directory changed"
    if case.get("secret"):
        assert case["secret"] not in out
        assert "-vvv" not in (case.get("args") or ()) or "<TASK" in out or "task path:" in out.lower()


def test_nothing_written_by_the_whole_suite(outcomes):
    assert outcomes["after"] == outcomes["before"], _diff(outcomes["before"], outcomes["after"])
