"""Test helpers: create Flux objects on the hub, write their status like a controller would,
and run the collection's modules through ansible (the real entry point)."""
import json
import os
import subprocess
import threading
import time

from kubernetes import client, config

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
ANSIBLE = os.path.join(ROOT, ".venv", "bin", "ansible")
HR = ("helm.toolkit.fluxcd.io", "v2", "helmreleases")
KS = ("kustomize.toolkit.fluxcd.io", "v1", "kustomizations")
GROUPS = {"HelmRelease": HR, "Kustomization": KS,
          "GitRepository": ("source.toolkit.fluxcd.io", "v1", "gitrepositories")}


def now_rfc3339():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def cond(ctype, status, reason, message, generation):
    return {"type": ctype, "status": status, "reason": reason, "message": message,
            "observedGeneration": generation, "lastTransitionTime": now_rfc3339()}


class Hub(object):
    def __init__(self, kubeconfig):
        self.kubeconfig = kubeconfig
        cfg = client.Configuration()
        config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
        cfg.connection_pool_maxsize = 32
        self.api = client.ApiClient(cfg)
        self.core = client.CoreV1Api(self.api)
        self.co = client.CustomObjectsApi(self.api)

    def create_namespace(self, name):
        self.core.create_namespace({"metadata": {"name": name}})

    # ---------------------------------------------------------------- objects
    def helmrelease(self, ns, name, labels=None, depends_on=None, install_retries=None, annotations=None):
        source_ref = {"kind": "HelmRepository", "name": "charts", "namespace": "flux-system"}
        spec = {"interval": "10m", "releaseName": name, "chart": {"spec": {"chart": name, "sourceRef": source_ref}}}
        if depends_on:
            spec["dependsOn"] = [d if isinstance(d, dict) else {"name": d} for d in depends_on]
        if install_retries is not None:
            spec["install"] = {"remediation": {"retries": install_retries}}
        body = {"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
                "metadata": {"name": name, "namespace": ns, "labels": labels or {},
                             "annotations": annotations or {}}, "spec": spec}
        return self.co.create_namespaced_custom_object(HR[0], HR[1], ns, HR[2], body)

    def kustomization(self, ns, name, depends_on=None):
        spec = {"interval": "10m", "path": "./clusters/x", "prune": True,
                "sourceRef": {"kind": "GitRepository", "name": "flux-system", "namespace": "flux-system"}}
        if depends_on:
            spec["dependsOn"] = [{"name": d} for d in depends_on]
        body = {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                "metadata": {"name": name, "namespace": ns}, "spec": spec}
        return self.co.create_namespaced_custom_object(KS[0], KS[1], ns, KS[2], body)

    def get(self, kind, ns, name):
        g = GROUPS[kind]
        return self.co.get_namespaced_custom_object(g[0], g[1], ns, g[2], name)

    def bump_generation(self, kind, ns, name):
        """A spec change: metadata.generation goes up, status stays as it was."""
        g = GROUPS[kind]
        return self.co.patch_namespaced_custom_object(g[0], g[1], ns, g[2], name,
                                                      {"spec": {"interval": "%dm" % (11 + int(time.time()) % 40)}})

    def set_status(self, kind, ns, name, status):
        g = GROUPS[kind]
        return self.co.patch_namespaced_custom_object_status(g[0], g[1], ns, g[2], name, {"status": status})

    def ready(self, kind, ns, name, observed=None, extra=None):
        gen = self.get(kind, ns, name)["metadata"]["generation"]
        og = gen if observed is None else observed
        status = {"observedGeneration": og,
                  "conditions": [cond("Ready", "True", "InstallSucceeded" if kind == "HelmRelease"
                                      else "ReconciliationSucceeded", "Release reconciliation succeeded", og)]}
        status.update(extra or {})
        return self.set_status(kind, ns, name, status)

    def not_ready(self, kind, ns, name, reason, message, stalled=None, extra=None):
        gen = self.get(kind, ns, name)["metadata"]["generation"]
        conds = [cond("Ready", "False", reason, message, gen)]
        if stalled:
            conds.append(cond("Stalled", "True", stalled[0], stalled[1], gen))
        status = {"observedGeneration": gen, "conditions": conds}
        status.update(extra or {})
        return self.set_status(kind, ns, name, status)

    # ---------------------------------------------------------------- a controller stand-in
    def answer_reconcile_requests(self, ns, stop, make_ready=True):
        """Thread: copy reconcile.fluxcd.io/* tokens to status.lastHandled*, as Flux does."""
        from kubernetes import watch

        def run():
            try:
                serve()
            except Exception:  # the fleet went away under the test's stand-in: nothing to answer
                if not stop.is_set():
                    raise

        def serve():
            w = watch.Watch()
            for event in w.stream(self.co.list_namespaced_custom_object, HR[0], HR[1], ns, HR[2],
                                  timeout_seconds=60):
                if stop.is_set():
                    w.stop()
                    return
                obj = event["object"]
                ann = obj["metadata"].get("annotations") or {}
                st = obj.get("status") or {}
                want = {}
                for a, f in (("requestedAt", "lastHandledReconcileAt"), ("forceAt", "lastHandledForceAt"),
                             ("resetAt", "lastHandledResetAt")):
                    token = ann.get("reconcile.fluxcd.io/" + a)
                    if token and st.get(f) != token:
                        want[f] = token
                if want:
                    gen = obj["metadata"]["generation"]
                    want["observedGeneration"] = gen
                    if make_ready:
                        want["conditions"] = [cond("Ready", "True", "UpgradeSucceeded", "handled", gen)]
                    self.set_status("HelmRelease", ns, obj["metadata"]["name"], want)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    # ---------------------------------------------------------------- the modules
    def module(self, name, args, check=False, timeout=120):
        """Run c5c3.gitops.<name> through ansible; return (result, started, finished) (monotonic)."""
        args = dict(args, kubeconfig=self.kubeconfig)
        cmd = [ANSIBLE, "localhost", "-c", "local", "-m", "c5c3.gitops.%s" % name, "-a", json.dumps(args)]
        if check:
            cmd.append("--check")
        env = dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="json",
                   ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
        started = time.monotonic()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, timeout=timeout, check=False)
        finished = time.monotonic()
        try:
            out = json.loads(proc.stdout)
            result = out["plays"][0]["tasks"][0]["hosts"]["localhost"]
        except (ValueError, KeyError, IndexError):
            raise AssertionError("no JSON result from ansible (rc %s):\n%s\n%s" % (proc.returncode, proc.stdout, proc.stderr))
        return result, started, finished


def at(delay, fn, *args, **kwargs):
    """Run fn after ``delay`` seconds in a thread; returns a dict that gets 't' (monotonic) set
    just before fn writes, so tests can measure from the moment a condition appeared."""
    mark = {}

    def run():
        mark["t"] = time.monotonic()
        mark["result"] = fn(*args, **kwargs)

    timer = threading.Timer(delay, run)
    timer.daemon = True
    timer.start()
    mark["timer"] = timer
    return mark
