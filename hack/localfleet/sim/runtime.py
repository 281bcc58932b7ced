"""Flux simulator runtime: watches, work queue, store, rate limit, status I/O, dispatch by kind.

Watches (list + watch, no polling) the hub's Flux objects, the kubeconfig Secrets (label
reconcile.fluxcd.io/watch=Enabled) and Deployments; a fixed pool of workers reconciles the keys of
a de-duplicating work queue (one key is never processed by two workers at once). Status is written
with merge patches on the /status subresource. Spokes are reached for real with the kubeconfig of
the object's `spec.kubeConfig.secretRef`.

The controllers live in one module each (source, kustomize, helm, operator); the table in
sim/__init__.py maps a kind to its reconcile function. A reconcile function gets this runtime and
(key, obj) and returns True when its result is terminal for the object's current fingerprint.
"""
from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
import signal
import threading
import time
import traceback

import yaml
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from .common import (ANN, ANN_DELAY, ANN_STALE, FORCE_AT, KINDS, NO_STATUS_GENERATION, PLURAL_OF, REQ_AT, RESET_AT,
                     WATCH_LABEL, Outcome, cond, is_ready, now_iso, parse_duration, references)
from .workqueue import Store, TokenBucket, WorkQueue
from .. import helmreal

LOG = logging.getLogger("simulator")


class Runtime:
    def __init__(self, state_dir: str, controllers: dict, background=(), workers: int = 16, qps: float = 400.0):
        """controllers: kind -> Controller (sim/__init__.py); background: (name, fn(rt)) loops."""
        self.state_dir = state_dir
        self.controllers = controllers
        self.background = list(background)
        with open(os.path.join(state_dir, "state.json"), encoding="utf-8") as fh:
            self.state = json.load(fh)
        self.hub_name = self.state["hub"]
        hub_kc = os.path.join(state_dir, "kubeconfigs", f"{self.hub_name}.yaml")
        self.workers_n = workers
        self.hub = self._client_from_file(hub_kc)
        self.custom = client.CustomObjectsApi(self.hub)
        self.core = client.CoreV1Api(self.hub)
        self.apps = client.AppsV1Api(self.hub)
        self.limiter = TokenBucket(qps, int(qps))
        self.store = Store()
        self.queue = WorkQueue()
        self.stop = threading.Event()
        self.spokes: dict = {}      # kubeconfig digest -> ApiClient
        self.spokes_lock = threading.Lock()
        self.spoke_kubeconfigs: dict = {}  # kubeconfig digest -> kubeconfig bytes (kubectl)
        self.namespaces_ok: set = set()  # (kubeconfig digest, namespace) known to exist
        self.memo: dict = {}        # key -> fingerprint of the last terminal reconcile
        self.seen: set = set()      # keys looked at since the simulator started
        self.delay_due: dict = {}   # key -> (fingerprint, monotonic due)
        self.backoff: dict = {}     # key -> seconds
        self.resync_at: dict = {}   # key -> monotonic time its spec.interval is due (see resync_after)
        self.report_dirty = threading.Event()
        self.synced = threading.Event()
        self.watch_ready: dict = {}
        # HelmReleases with charts from the local registry go through the real helm CLI (sim/helm.py)
        self.helmreal = helmreal.Driver.from_state(state_dir, self.state)
        with open(hub_kc, "rb") as fh:
            self.spoke_kubeconfigs["hub"] = fh.read()  # helm's --kubeconfig for HelmReleases on the hub

    # ---------------------------------------------------------------------------- clients
    def _client_from_file(self, path):
        with open(path, encoding="utf-8") as fh:
            return self._client_from_dict(yaml.safe_load(fh))

    def _client_from_dict(self, kc: dict):
        cfg = client.Configuration()
        config.kube_config.KubeConfigLoader(config_dict=kc).load_and_set(cfg)
        cfg.connection_pool_maxsize = max(4, self.workers_n + 4)
        cfg.retries = 0
        return client.ApiClient(cfg)

    def spoke_client(self, kc_bytes: bytes):
        key = hashlib.sha256(kc_bytes).hexdigest()
        with self.spokes_lock:
            api = self.spokes.get(key)
            if api is None:
                kc = yaml.safe_load(kc_bytes)
                if not isinstance(kc, dict) or not kc.get("clusters"):
                    raise Outcome("RESTClientError", "invalid kubeconfig: no clusters defined")
                api = self._client_from_dict(kc)
                self.spokes[key] = api
                self.spoke_kubeconfigs[key] = kc_bytes
        return key, api

    def call(self, fn, *args, **kwargs):
        self.limiter.take()
        kwargs.setdefault("_request_timeout", 10)
        return fn(*args, **kwargs)

    # ------------------------------------------------------------------------------ watches
    def _lister(self, kind):
        if kind in KINDS:
            g, v, p = KINDS[kind]
            return lambda **kw: self.custom.list_cluster_custom_object(g, v, p, **kw)
        if kind == "Secret":
            return lambda **kw: self.core.list_secret_for_all_namespaces(
                label_selector=f"{WATCH_LABEL}=Enabled", **kw)
        if kind == "Deployment":
            return self.apps.list_deployment_for_all_namespaces
        if kind == "Namespace":
            return self.core.list_namespace
        raise KeyError(kind)

    def _watch_loop(self, kind):
        lister = self._lister(kind)
        while not self.stop.is_set():
            try:
                resp = lister(_preload_content=False, _request_timeout=30)
                data = json.loads(resp.data)
                rv = data["metadata"]["resourceVersion"]
                seen = set()
                for item in data.get("items") or []:
                    key = (kind, item["metadata"].get("namespace"), item["metadata"]["name"])
                    seen.add(key)
                    self._observe(kind, key, item)
                with self.store.lock:
                    gone = [k for k in self.store.objs if k[0] == kind and k not in seen]
                for key in gone:
                    self._forget(key)
                self.watch_ready[kind] = True
                w = watch.Watch()
                for ev in w.stream(lister, resource_version=rv, timeout_seconds=300,
                                   allow_watch_bookmarks=True, _request_timeout=330):
                    if self.stop.is_set():
                        w.stop()
                        break
                    typ, obj = ev["type"], ev["raw_object"]
                    if typ == "ERROR":
                        if obj.get("code") == 410:
                            break  # expired: relist
                        raise RuntimeError(f"watch error: {obj}")
                    if typ == "BOOKMARK":
                        continue
                    key = (kind, obj["metadata"].get("namespace"), obj["metadata"]["name"])
                    if typ == "DELETED":
                        self._forget(key)
                    else:
                        self._observe(kind, key, obj)
            except ApiException as exc:
                if self.stop.is_set():
                    return
                if exc.status == 410:
                    continue
                if exc.status == 404 and not self.watch_ready.get(kind):
                    self.stop.wait(0.2)  # CRD not created yet (up installs CRDs while we start)
                    continue
                LOG.warning("watch %s: %s; relisting in 1s", kind, exc.reason)
                self.stop.wait(1)
            except Exception as exc:  # noqa: BLE001 - keep the watch alive
                if self.stop.is_set():
                    return
                LOG.warning("watch %s: %s; relisting in 1s", kind, exc)
                self.stop.wait(1)

    def _observe(self, kind, key, obj):
        if not self.store.upsert(key, obj, references(kind, obj)):
            return
        self._enqueue_related(key)
        if kind in ("Secret", "Namespace", "Deployment"):
            ctl = self.controllers.get(kind)
            if ctl is not None and (ctl.wants is None or ctl.wants(obj)):
                self.queue.add(key)
            if kind == "Namespace":
                self.report_dirty.set()
            return
        self.queue.add(key)
        self.report_dirty.set()

    def _forget(self, key):
        self.store.delete(key)
        self.memo.pop(key, None)
        self.seen.discard(key)
        self.delay_due.pop(key, None)
        self.backoff.pop(key, None)
        self.resync_at.pop(key, None)
        self._enqueue_related(key)
        self.report_dirty.set()

    def _enqueue_related(self, key):
        for ref in self.store.referrers_of(key):
            self.queue.add(ref)

    # ------------------------------------------------------------------------------ workers
    def _worker(self):
        while True:
            key = self.queue.get()
            if key is None:
                return
            try:
                self.reconcile(key)
            except Exception:  # noqa: BLE001
                LOG.error("reconcile %s failed:\n%s", key, traceback.format_exc())
                self.queue.add_after(key, self._next_backoff(key))
            finally:
                self.queue.done(key)

    def resync_after(self, key, seconds: float) -> None:
        """Reconcile key again after `seconds` even if nothing changed (a controller's spec.interval)."""
        self.resync_at[key] = time.monotonic() + seconds
        self.queue.add_after(key, seconds)

    def _next_backoff(self, key) -> float:
        b = min(30.0, self.backoff.get(key, 0.5) * 2)
        self.backoff[key] = b
        return b

    def reconcile(self, key):
        kind = key[0]
        obj = self.store.get(key)
        if obj is None:
            return
        ctl = self.controllers.get(kind)
        if ctl is not None and ctl.plain:
            ctl.reconcile(self, key, obj)
            return
        if kind not in KINDS or ctl is None:
            if kind == "FluxReport":
                self.report_dirty.set()
            return
        if obj["metadata"].get("deletionTimestamp"):
            return
        spec = obj.get("spec") or {}
        if spec.get("suspend"):
            return
        ann = obj["metadata"].get("annotations") or {}
        st = obj.get("status") or {}
        gen = obj["metadata"].get("generation")
        if kind == "HelmRepository" and spec.get("type") == "oci":
            return  # source-controller leaves OCI HelmRepositories without status since Flux 2.2
        observed = ((cond(obj, "Ready") or {}).get("observedGeneration") if kind in NO_STATUS_GENERATION
                    else st.get("observedGeneration"))
        if (ann.get(ANN_STALE) == "true" and cond(obj, "Ready") is not None
                and observed not in (None, -1, gen)):
            return  # injected fault: keep the old Ready at the old generation
        fp = self.fingerprint(kind, obj)
        if self.memo.get(key) == fp and time.monotonic() < self.resync_at.get(key, float("inf")):
            return
        if key not in self.seen:
            self.seen.add(key)
            if not ctl.resyncs and self.settled(kind, obj):
                # already reconciled (e.g. before a simulator restart): do not redo its work
                self.memo[key] = fp
                return
        delay = parse_duration(ann.get(ANN_DELAY))
        if delay > 0:
            due = self.delay_due.get(key)
            if due is None or due[0] != fp:
                self.delay_due[key] = (fp, time.monotonic() + delay)
                self.patch_status(key, obj, self.progressing_status(kind, obj))
                self.queue.add_after(key, delay)
                return
            if time.monotonic() < due[1]:
                self.queue.add_after(key, due[1] - time.monotonic())
                return
        terminal = ctl.reconcile(self, key, obj)
        if terminal:
            self.memo[key] = fp
            self.backoff.pop(key, None)
            self.delay_due.pop(key, None)
        else:
            # not terminal (e.g. DependencyNotReady): the memo of an earlier success no longer
            # describes the object, so a dependency returning to the very same state it had then
            # (re-created, or Ready again at the same generation) must be re-checked, as Flux's
            # requeue with the dependency retry interval does (issue 12 §8)
            self.memo.pop(key, None)

    @staticmethod
    def settled(kind, obj) -> bool:
        """Ready at its generation with every reconcile/force/reset request handled."""
        if not is_ready(obj):
            return False
        ann = obj["metadata"].get("annotations") or {}
        st = obj.get("status") or {}
        return (ann.get(REQ_AT) in (None, st.get("lastHandledReconcileAt"))
                and ann.get(FORCE_AT) in (None, st.get("lastHandledForceAt"))
                and ann.get(RESET_AT) in (None, st.get("lastHandledResetAt")))

    def fingerprint(self, kind, obj):
        ann = obj["metadata"].get("annotations") or {}
        parts = [obj["metadata"].get("generation"), obj["metadata"].get("uid"),
                 ann.get(REQ_AT), ann.get(FORCE_AT), ann.get(RESET_AT),
                 tuple(sorted((k, v) for k, v in ann.items() if k.startswith(ANN)))]
        for ref in references(kind, obj):
            o = self.store.get(ref)
            if o is None:
                parts.append((ref, None))
            elif ref[0] == "Secret":
                parts.append((ref, o["metadata"].get("resourceVersion")))
            else:
                parts.append((ref, o["metadata"].get("uid"), is_ready(o), o["metadata"].get("generation"),
                              ((o.get("status") or {}).get("artifact") or {}).get("revision")))
        return tuple(parts)

    # --------------------------------------------------------------------------- status io
    def patch_status(self, key, obj, status: dict) -> None:
        """Merge-patch status (None values delete keys); skip when nothing would change."""
        cur = obj.get("status") or {}
        if all(cur.get(k) == v for k, v in status.items() if v is not None) and \
                all(k not in cur for k, v in status.items() if v is None):
            return
        kind, ns, name = key
        g, v, p = KINDS[kind]
        try:
            resp = self.call(self.custom.patch_namespaced_custom_object_status, g, v, ns, p, name,
                             {"status": status}, _preload_content=False)
        except ApiException as exc:
            if exc.status == 404:
                return
            raise
        new = json.loads(resp.data)
        self.store.upsert(key, new, references(kind, new))

    @staticmethod
    def conditions(obj, desired: list[dict], drop=()) -> list[dict]:
        """Merge desired conditions into the object's, keeping lastTransitionTime when unchanged."""
        gen = obj["metadata"].get("generation")
        old = {c["type"]: c for c in ((obj.get("status") or {}).get("conditions") or [])}
        out = {t: c for t, c in old.items() if t not in drop}
        ts = now_iso()
        for c in desired:
            prev = old.get(c["type"])
            new = {"type": c["type"], "status": c["status"], "reason": c["reason"],
                   "message": c.get("message", ""), "observedGeneration": gen,
                   "lastTransitionTime": prev["lastTransitionTime"]
                   if prev and prev.get("status") == c["status"] and prev.get("lastTransitionTime") else ts}
            if prev and all(prev.get(k) == new[k] for k in ("status", "reason", "message", "observedGeneration")):
                new = prev
            out[c["type"]] = new
        order = ["Ready", "Reconciling", "Stalled", "Released", "Remediated", "TestSuccess", "Healthy",
                 "ArtifactInStorage"]
        return sorted(out.values(), key=lambda c: (order.index(c["type"]) if c["type"] in order else 99, c["type"]))

    def progressing_status(self, kind, obj) -> dict:
        msg = "Fulfilling prerequisites" if kind in ("HelmRelease", "Kustomization") else "reconciliation in progress"
        return {"conditions": self.conditions(obj, [
            {"type": "Reconciling", "status": "True", "reason": "Progressing", "message": msg},
            {"type": "Ready", "status": "Unknown", "reason": "Progressing", "message": "Reconciliation in progress"},
        ])}

    @staticmethod
    def handled(obj, status: dict) -> dict:
        ann = obj["metadata"].get("annotations") or {}
        if ann.get(REQ_AT):
            status["lastHandledReconcileAt"] = ann[REQ_AT]
        return status

    # -------------------------------------------------------------------------- kubeconfig
    def kubeconfig_for(self, obj, kind):
        """(digest, ApiClient) of the target cluster; Outcome with the controller's reason if not."""
        ns = obj["metadata"]["namespace"]
        sref = ((obj.get("spec") or {}).get("kubeConfig") or {}).get("secretRef")
        if not sref:
            return "hub", self.hub
        name = sref.get("name")
        reason = "RESTClientError" if kind == "HelmRelease" else "ReconciliationFailed"
        prefix = (f"could not get KubeConfig secret '{ns}/{name}'" if kind == "HelmRelease"
                  else f"unable to read KubeConfig secret '{ns}/{name}' error")
        secret = self.store.get(("Secret", ns, name))
        if secret is None:
            # not labelled for watching? read it directly (the real controllers read via cache or API)
            try:
                resp = self.call(self.core.read_namespaced_secret, name, ns, _preload_content=False)
                secret = json.loads(resp.data)
            except ApiException as exc:
                if exc.status == 404:
                    raise Outcome(reason, f'{prefix}: Secret "{name}" not found', requeue=self._next_backoff(
                        (kind, ns, obj["metadata"]["name"])))
                raise
        data = secret.get("data") or {}
        key = sref.get("key")
        if key:
            raw = data.get(key)
            if raw is None:
                raise Outcome(reason, f"secret '{ns}/{name}' does not contain a '{key}' key with a kubeconfig")
        else:
            raw = data.get("value") or data.get("value.yaml")
            if raw is None:
                raise Outcome(reason, f"secret '{ns}/{name}' does not contain a 'value' key with a kubeconfig")
        try:
            return self.spoke_client(base64.b64decode(raw))
        except Outcome:
            raise
        except Exception as exc:  # noqa: BLE001
            raise Outcome(reason, f"failed to construct kubeconfig from secret '{ns}/{name}': {exc}")

    @staticmethod
    def api_error(exc) -> str:
        if isinstance(exc, ApiException):
            try:
                body = json.loads(exc.body)
                return body.get("message") or exc.reason
            except (TypeError, ValueError):
                return f"{exc.status} {exc.reason}"
        text = str(exc)
        if "Connection refused" in text:
            return "connect: connection refused"
        m = re.search(r"(Failed to establish a new connection: \[Errno \d+\] [^'\")]+|"
                      r"Connection refused|timed out|Name or service not known|certificate verify failed[^'\")]*)", text)
        return m.group(1) if m else text

    def spoke_call(self, api, url_hint, fn, *args, **kwargs):
        try:
            return self.call(fn, *args, **kwargs)
        except ApiException:
            raise
        except Exception as exc:  # noqa: BLE001 - urllib3 connection errors
            raise ConnectionError(f'Get "{url_hint}": dial tcp {url_hint.split("/")[2]}: {self.api_error(exc)}') from exc

    # ------------------------------------------------------------------------- dependencies
    def check_dependencies(self, kind, obj):
        ns = obj["metadata"]["namespace"]
        for d in (obj.get("spec") or {}).get("dependsOn") or []:
            dns, dname = d.get("namespace") or ns, d.get("name")
            dep = self.store.get((kind, dns, dname))
            if dep is None:
                plural = PLURAL_OF[kind] + "." + KINDS[kind][0]
                raise Outcome("DependencyNotReady",
                              f"unable to get '{dns}/{dname}' dependency: {plural} \"{dname}\" not found",
                              wait=True, requeue=5)
            if not is_ready(dep):
                raise Outcome("DependencyNotReady", f"dependency '{dns}/{dname}' is not ready", wait=True, requeue=5)

    def source_of(self, kind, obj):
        ns = obj["metadata"]["namespace"]
        spec = obj.get("spec") or {}
        if kind == "HelmRelease":
            ref = ((spec.get("chart") or {}).get("spec") or {}).get("sourceRef") or spec.get("chartRef") or {}
            skind = ref.get("kind", "HelmRepository")
        else:
            ref = spec.get("sourceRef") or {}
            skind = ref.get("kind", "GitRepository")
        return skind, ref.get("namespace") or ns, ref.get("name")

    def run(self) -> int:
        kinds = list(KINDS) + ["Secret", "Deployment", "Namespace"]
        threads = [threading.Thread(target=self._watch_loop, args=(k,), name=f"watch-{k}", daemon=True) for k in kinds]
        threads += [threading.Thread(target=self._worker, name=f"worker-{i}", daemon=True)
                    for i in range(self.workers_n)]
        threads += [threading.Thread(target=loop, args=(self,), name=name, daemon=True) for name, loop in self.background]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while len(self.watch_ready) < len(kinds) and not self.stop.is_set():
            if time.monotonic() > deadline:
                LOG.error("watches not established after 60s: %s", sorted(set(kinds) - set(self.watch_ready)))
                return 1
            self.stop.wait(0.05)
        ready_file = os.path.join(self.state_dir, "simulator.ready")
        with open(ready_file, "w", encoding="utf-8") as fh:
            fh.write(f"{os.getpid()}\n")
        LOG.info("simulator ready: watching %s on hub %s with %d workers", ", ".join(kinds), self.hub_name,
                 self.workers_n)
        self.stop.wait()
        self.queue.close()
        LOG.info("simulator stopping")
        return 0


def run(state_dir: str, controllers: dict, background=(), workers: int = 16) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(threadName)s %(message)s")
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    sim = Runtime(state_dir, controllers, background, workers=workers, qps=float(os.environ.get("LOCAL_FLEET_SIM_QPS", "400")))

    def _stop(signum, frame):
        sim.stop.set()
        sim.report_dirty.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    return sim.run()
