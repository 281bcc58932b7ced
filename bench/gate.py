"""Benchmark of the readiness gate: flux_wait vs kubernetes.core k8s_info wait vs kubectl wait.

    .venv/bin/python bench/gate.py                       # own fleet under /tmp, N = 10 100 1000
    .venv/bin/python bench/gate.py --state-dir DIR       # reuse a running simulator-free fleet
    .venv/bin/python bench/gate.py --sizes 10 100 --trials 3

What it does, in one run, on the hub API server of the local fleet (hack/local-fleet):

* creates N HelmReleases (label bench.c5c3.io/set) per size; before each trial their status is
  reset to Ready=False, the tool is started, and once it has made its first real API request
  (plus --margin, so it is in its wait) all N statuses are written Ready=True at their
  generation from 16 threads. The
  benchmark plays the Flux controller itself (no simulator) so that the moment of the last Ready
  status write is known exactly; latency = tool returned - last status write returned.
* tools:
  - flux_wait (waiter, in-process): plugins/module_utils/waiter.Waiter called directly,
    one selector; measures the gate itself without Ansible's process start-up and teardown.
  - flux_wait (module via ansible): `ansible localhost -m c5c3.gitops.flux_wait` with the selector.
  - k8s_info wait (via ansible): kubernetes.core.k8s_info with label_selectors, wait: true,
    wait_condition Ready=True, wait_sleep 5 (its documented default).
  - kubectl wait: `kubectl wait --for=condition=Ready -l <selector>`.
* API requests: the waiter counts its own; for the ansible-run modules a sitecustomize
  (bench/_count) on PYTHONPATH counts every urllib3 request of the module process (discovery
  included); for kubectl the `-v=6` request log lines are counted.
* verdicts: one HelmRelease with a stale Ready=True (condition at generation 1, object at
  generation 2) and one Stalled=True/RetriesExceeded; each tool gets --verdict-timeout seconds.

It is a script, not a timed test. Results also go to bench/results/gate-<time>.json.
"""
import argparse
import concurrent.futures
import datetime
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
COUNT_DIR = os.path.join(ROOT, "bench", "_count")
ANSIBLE = os.path.join(ROOT, ".venv", "bin", "ansible")
if not os.path.exists(ANSIBLE):
    ANSIBLE = shutil.which("ansible") or "ansible"
subprocess.run([os.path.join(ROOT, "hack", "collection-link")], check=True, stdout=subprocess.DEVNULL)
sys.path.insert(0, os.path.join(ROOT, ".collections"))

from kubernetes import client, config  # noqa: E402

from ansible_collections.c5c3.gitops.plugins.module_utils.kube import client_from_kubeconfig  # noqa: E402
from ansible_collections.c5c3.gitops.plugins.module_utils.waiter import Waiter  # noqa: E402

GROUP, VERSION, PLURAL = "helm.toolkit.fluxcd.io", "v2", "helmreleases"
LABEL = "bench.c5c3.io/set"


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def percentile(values, pct):
    """Nearest-rank percentile (with 5 trials p95 is the worst trial)."""
    ordered = sorted(values)
    rank = max(1, int(round(pct / 100.0 * len(ordered) + 0.4999)))
    return ordered[min(rank, len(ordered)) - 1]


# ------------------------------------------------------------------------------------- the hub
class Hub(object):
    def __init__(self, kubeconfig, workers=16):
        self.kubeconfig = kubeconfig
        cfg = client.Configuration()
        config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
        cfg.connection_pool_maxsize = workers
        self.api = client.ApiClient(cfg)
        self.core = client.CoreV1Api(self.api)
        self.co = client.CustomObjectsApi(self.api)
        self.pool = concurrent.futures.ThreadPoolExecutor(workers)

    def namespace(self, prefix):
        name = "%s-%s" % (prefix, uuid.uuid4().hex[:6])
        self.core.create_namespace({"metadata": {"name": name}})
        return name

    def delete_namespace(self, name):
        try:
            self.core.delete_namespace(name)
        except Exception:  # best effort clean-up of a private fleet
            pass

    def create(self, ns, name, labels):
        body = {"apiVersion": "%s/%s" % (GROUP, VERSION), "kind": "HelmRelease",
                "metadata": {"name": name, "namespace": ns, "labels": labels},
                "spec": {"interval": "10m", "releaseName": name,
                         "chart": {"spec": {"chart": name, "sourceRef": {"kind": "HelmRepository", "name": "charts",
                                                                         "namespace": "flux-system"}}}}}
        return self.co.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, body)

    def status(self, ns, name, status):
        return self.co.patch_namespaced_custom_object_status(GROUP, VERSION, ns, PLURAL, name, {"status": status})

    @staticmethod
    def condition(ctype, value, reason, message, generation):
        return {"type": ctype, "status": value, "reason": reason, "message": message,
                "observedGeneration": generation, "lastTransitionTime": now_rfc3339()}

    def set_all(self, ns, names, ready, generation=1):
        """Write every status in parallel; return the monotonic time the last write returned."""
        if ready:
            cond = self.condition("Ready", "True", "InstallSucceeded", "Helm install succeeded", generation)
        else:
            cond = self.condition("Ready", "False", "Progressing", "Running 'install' action", generation)
        status = {"observedGeneration": generation, "conditions": [cond]}

        def one(name):
            self.status(ns, name, status)
            return time.monotonic()

        return max(self.pool.map(one, names))


# ------------------------------------------------------------------------------------- tools
class Run(object):
    """A started tool. waiting() tells whether it has made its first real (non-discovery) API
    request, i.e. is past start-up and in its wait; finish() -> (returned_at, ok, requests, detail)."""

    def __init__(self, thread, box, waiting):
        self.thread, self.box, self.waiting = thread, box, waiting

    def finish(self):
        self.thread.join()
        return self.box["t"], self.box["ok"], self.box["requests"], self.box.get("detail", "")


def _in_thread(fn, waiting):
    box = {}

    def run():
        box.update(fn())
        box.setdefault("t", time.monotonic())

    thread = threading.Thread(target=run)
    thread.start()
    return Run(thread, box, waiting)


def _count_env(tmp):
    count_file = os.path.join(tmp, "requests-%s" % uuid.uuid4().hex[:8])
    open(count_file, "w").close()
    env = dict(os.environ, GATE_BENCH_COUNT_FILE=count_file,
               PYTHONPATH=COUNT_DIR + os.pathsep + os.environ.get("PYTHONPATH", ""),
               ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="json",
               ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
    return env, count_file


def _urls(path):
    with open(path) as handle:
        return [line.split(" ", 1)[1].strip() for line in handle if " " in line]


def is_discovery(url):
    """/api, /api/v1, /apis, /apis/<group>/<version>, /version, /openapi: API discovery, not work."""
    parts = urllib.parse.urlparse(url).path.rstrip("/").split("/")[1:]
    if not parts or not parts[0]:
        return False
    if parts[0] == "api":
        return len(parts) <= 2
    if parts[0] == "apis":
        return len(parts) <= 3
    return parts[0] in ("version", "openapi")


class Tools(object):
    def __init__(self, hub, tmp):
        self.hub, self.tmp = hub, tmp

    def hub_api(self):
        cfg = client.Configuration()
        config.load_kube_config(config_file=self.hub.kubeconfig, client_configuration=cfg)
        return client.ApiClient(cfg)

    def flux_wait_inproc(self, ns, selector, timeout):
        source = client_from_kubeconfig(self.hub.kubeconfig, timeout=30)

        def run():
            result = Waiter(source).wait(selectors=[{"kind": "HelmRelease", "namespace": ns, "label_selector": selector}],
                                         timeout=timeout, missing_grace=timeout)
            t = time.monotonic()
            # the waiter's own counter; no discovery by design
            return {"t": t, "ok": result["ok"], "requests": ["-"] * source.api_requests,
                    "detail": "%s: %s" % (result["outcome"], result["message"].splitlines()[0])}
        return _in_thread(run, lambda: source.api_requests >= 2)  # LIST sent, WATCH being opened

    def _ansible(self, module, args):
        env, count_file = _count_env(self.tmp)
        cmd = [ANSIBLE, "localhost", "-c", "local", "-m", module, "-a", json.dumps(args)]

        def run():
            proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  universal_newlines=True, check=False)
            t = time.monotonic()
            try:
                res = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
            except (ValueError, KeyError, IndexError):
                res = {"failed": True, "msg": (proc.stdout + proc.stderr)[-300:]}
            ok = not res.get("failed")
            detail = res.get("outcome") or ("ok" if ok else (res.get("msg") or "")[:120].replace("\n", " "))
            return {"t": t, "ok": ok, "requests": _urls(count_file), "detail": detail}
        return _in_thread(run, lambda: any(not is_discovery(u) for u in _urls(count_file)))

    def flux_wait_module(self, ns, selector, timeout):
        return self._ansible("c5c3.gitops.flux_wait", {
            "kubeconfig": self.hub.kubeconfig, "timeout": int(timeout), "missing_grace": int(timeout),
            "selectors": [{"kind": "HelmRelease", "namespace": ns, "label_selector": selector}]})

    def k8s_info(self, ns, selector, timeout):
        return self._ansible("kubernetes.core.k8s_info", {
            "kubeconfig": self.hub.kubeconfig, "api_version": "%s/%s" % (GROUP, VERSION), "kind": "HelmRelease",
            "namespace": ns, "label_selectors": [selector], "wait": True, "wait_sleep": 5,
            "wait_timeout": int(timeout), "wait_condition": {"type": "Ready", "status": "True"}})

    def kubectl(self, ns, selector, timeout):
        cmd = ["kubectl", "--kubeconfig", self.hub.kubeconfig, "-v=6", "wait", "--for=condition=Ready",
               "%s.%s" % (PLURAL, GROUP), "-l", selector, "-n", ns, "--timeout=%ds" % int(timeout)]
        urls = []
        pattern = re.compile(r'round_trippers\.go:\d+\] (?:GET|PUT|POST|PATCH|DELETE) (https?://\S+)'
                             r'|"Response" verb="\w+" url="([^"]+)"')  # classic and structured log formats

        def run():
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
            errors = []
            for line in proc.stderr:
                found = pattern.search(line)
                if found:
                    urls.append(found.group(1) or found.group(2))
                elif "error" in line.lower():
                    errors.append(line.strip())
            proc.wait()
            t = time.monotonic()
            return {"t": t, "ok": proc.returncode == 0, "requests": list(urls),
                    "detail": "rc %d %s" % (proc.returncode, errors[-1][-120:] if errors else "")}
        return _in_thread(run, lambda: any(not is_discovery(u) for u in list(urls)))


TOOLS = [
    ("flux_wait (waiter, in-process)", "flux_wait_inproc"),
    ("flux_wait (module via ansible)", "flux_wait_module"),
    ("k8s_info wait (via ansible)", "k8s_info"),
    ("kubectl wait", "kubectl"),
]


def wait_until_waiting(run, margin, limit=120):
    """Block until the tool made its first real API request, then ``margin`` seconds more (its
    watch/poll loop starts right after that request). Harness-side polling of a local flag."""
    end = time.monotonic() + limit
    while not run.waiting():
        if time.monotonic() > end:
            return False
        time.sleep(0.02)
    time.sleep(margin)
    return True


# ------------------------------------------------------------------------------------- runs
def throughput(hub, tools, sizes, trials, margin, tool_timeout, log):
    rows = []
    for n in sizes:
        ns = hub.namespace("bench-%d" % n)
        selector = "%s=n%d" % (LABEL, n)
        names = ["hr-%04d" % i for i in range(n)]
        list(hub.pool.map(lambda name: hub.create(ns, name, {LABEL: "n%d" % n}), names))
        count = trials if n < 1000 else max(1, trials // 2)
        for label, attr in tools:
            k = 1 if (attr == "kubectl" and n >= 1000) else count
            lat, reqs, disc, bad = [], [], [], []
            for dummy in range(k):
                hub.set_all(ns, names, ready=False)
                run = getattr(Tools(hub, hub.tmp), attr)(ns, selector, tool_timeout)
                # Flip the statuses only once the tool is past its start-up and waiting.
                if not wait_until_waiting(run, margin):
                    bad.append("tool never reached its wait")
                last_write = hub.set_all(ns, names, ready=True)
                returned, ok, requests, detail = run.finish()
                # The watch event can arrive a few ms before the PATCH response that marks the
                # last write; only a clearly earlier return means the tool did not wait.
                if not ok or returned < last_write - 0.1:
                    bad.append(detail or "returned before the last Ready write")
                lat.append(returned - last_write)
                reqs.append(len(requests))
                disc.append(sum(1 for u in requests if u != "-" and is_discovery(u)))
            row = {"n": n, "tool": label, "trials": k, "p50": statistics.median(lat), "p95": percentile(lat, 95),
                   "latencies": lat, "requests": statistics.median(reqs), "requests_all": reqs,
                   "discovery": statistics.median(disc), "problems": bad}
            rows.append(row)
            log("N=%-5d %-32s p50 %6.3fs p95 %6.3fs requests %6d (discovery %d) %s" % (
                n, label, row["p50"], row["p95"], row["requests"], row["discovery"],
                ("PROBLEMS: %s" % bad) if bad else ""))
        hub.delete_namespace(ns)
    return rows


def verdicts(hub, tools, timeout, log):
    ns = hub.namespace("bench-verdict")
    hub.create(ns, "stale", {LABEL: "stale"})
    hub.status(ns, "stale", {"observedGeneration": 1, "conditions": [
        hub.condition("Ready", "True", "InstallSucceeded", "Helm install succeeded", 1)]})
    # a spec change: generation 2, the controller has not looked yet
    hub.co.patch_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "stale", {"spec": {"interval": "11m"}})
    hub.create(ns, "stalled", {LABEL: "stalled"})
    hub.status(ns, "stalled", {"observedGeneration": 1, "installFailures": 1, "conditions": [
        hub.condition("Ready", "False", "InstallFailed", "Helm install failed: context deadline exceeded", 1),
        hub.condition("Stalled", "True", "RetriesExceeded", "Failed to install after 1 attempt(s)", 1)]})
    out = []
    for case in ("stale", "stalled"):
        for label, attr in tools:
            run = getattr(Tools(hub, hub.tmp), attr)(ns, "%s=%s" % (LABEL, case), timeout)
            # Time to verdict counts from the tool's first real API request (process start-up
            # excluded; it is the same for every run of a tool and swamps the signal under load).
            wait_until_waiting(run, 0)
            first_request = time.monotonic()
            returned, ok, requests, detail = run.finish()
            took = max(0.0, returned - first_request)
            if ok:
                verdict = "ready"
            elif took >= timeout - 0.5:
                verdict = "not ready (ran its %ds timeout)" % timeout
            else:
                verdict = "failed (%s)" % detail[:60]
            right = (not ok) and (case == "stale" or took < timeout - 0.5)
            out.append({"case": case, "tool": label, "verdict": verdict, "seconds": took, "requests": len(requests),
                        "right": right})
            log("%-8s %-32s %-48s %6.2fs %s" % (case, label, verdict[:48], took, "right" if right else "WRONG"))
    hub.delete_namespace(ns)
    return out


def table(rows, checks):
    lines = ["", "Latency from the last Ready status write to return, and API requests per wait:", ""]
    lines.append("| N | tool | trials | p50 s | p95 s | API requests (of which discovery) "
                 "| p95 vs flux_wait module | requests vs flux_wait module |")
    lines.append("|---:|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        base = [r for r in rows if r["n"] == row["n"] and r["tool"].startswith("flux_wait (module")][0]
        lines.append("| %d | %s | %d | %.3f | %.3f | %d (%d) | %s | %s |" % (
            row["n"], row["tool"], row["trials"], row["p50"], row["p95"], row["requests"], row["discovery"],
            "%.1fx" % (row["p95"] / base["p95"]) if base["p95"] > 0 else "-",
            "%.1fx" % (row["requests"] / float(base["requests"])) if base["requests"] else "-"))
    lines += ["", "Verdicts (one HelmRelease each):", ""]
    lines.append("| case | tool | verdict | s from first request to verdict | right? |")
    lines.append("|---|---|---|---:|---|")
    for c in checks:
        name = {"stale": "stale Ready=True (cond. gen 1, object gen 2)", "stalled": "Stalled=True RetriesExceeded"}[c["case"]]
        lines.append("| %s | %s | %s | %.2f | %s |" % (
            name, c["tool"], c["verdict"], c["seconds"], "yes" if c["right"] else "**no**"))
    problems = [(r["n"], r["tool"], r["problems"]) for r in rows if r["problems"]]
    if problems:
        lines += ["", "Trials where a tool failed or returned before the last write:"]
        lines += ["- N=%d %s: %s" % p for p in problems]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--state-dir", help="running local fleet (without simulator) to use; default: start one")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--trials", type=int, default=5, help="trials per tool (halved at N >= 1000; kubectl 1)")
    parser.add_argument("--tools", nargs="+", choices=[t[1] for t in TOOLS], default=[t[1] for t in TOOLS])
    parser.add_argument("--margin", type=float, default=0.5,
                        help="seconds between a tool's first real API request and the status flip")
    parser.add_argument("--tool-timeout", type=int, default=300)
    parser.add_argument("--verdict-timeout", type=int, default=10)
    args = parser.parse_args()

    def log(msg):
        print(msg, flush=True)

    started = time.monotonic()
    state, own = args.state_dir, False
    if not state:
        state, own = tempfile.mkdtemp(prefix="gate-bench-", dir="/tmp"), True
        log("starting a private local fleet (no simulator) in %s" % state)
        subprocess.run([os.path.join(ROOT, "hack", "local-fleet"), "up", "--state-dir", state, "--no-simulator"],
                       cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    tmp = tempfile.mkdtemp(prefix="gate-bench-count-")
    try:
        with open(os.path.join(state, "state.json")) as handle:
            fleet = json.load(handle)
        hub_name = fleet["hub"] if isinstance(fleet["hub"], str) else fleet["hub"]["name"]
        hub = Hub(os.path.join(state, "kubeconfigs", "%s.yaml" % hub_name))
        hub.tmp = tmp
        tools = [t for t in TOOLS if t[1] in args.tools]
        if not [t for t in tools if t[1] == "flux_wait_module"]:
            parser.error("flux_wait_module is the baseline of the ratios; keep it in --tools")
        rows = throughput(hub, tools, args.sizes, args.trials, args.margin, args.tool_timeout, log)
        checks = verdicts(hub, tools, args.verdict_timeout, log)
        text = table(rows, checks)
        print(text)
        print("\ntotal runtime %.0fs; host: %d CPUs, load average %.1f" % (
            time.monotonic() - started, os.cpu_count(), os.getloadavg()[0]))
        out_dir = os.path.join(ROOT, "bench", "results")
        os.makedirs(out_dir, exist_ok=True)
        path = os.path.join(out_dir, "gate-%s.json" % time.strftime("%Y%m%dT%H%M%S"))
        with open(path, "w") as handle:
            json.dump({"throughput": rows, "verdicts": checks, "table": text}, handle, indent=2)
        print("results: %s" % path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if own:
            subprocess.run([os.path.join(ROOT, "hack", "local-fleet"), "down", "--state-dir", state], cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
