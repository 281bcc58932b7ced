"""Flux simulator: plays the Flux Operator and the Flux controllers against the hub, on status only.

Watches (list + watch, no polling) the hub's Flux objects, the kubeconfig Secrets (label
reconcile.fluxcd.io/watch=Enabled) and Deployments; a fixed pool of workers reconciles the keys of
a de-duplicating work queue (one key is never processed by two workers at once). Status is written
with merge patches on the /status subresource. Spokes are reached for real with the kubeconfig of
the object's `spec.kubeConfig.secretRef`.

Per-object test hooks (annotations), see docs/local-fleet.md:
    simulator.c5c3.io/fail: install|upgrade|"true"   inject failures
    simulator.c5c3.io/fail-message: text              message of the injected failure
    simulator.c5c3.io/delay: "3s"                     slow readiness (Reconciling for that long)
    simulator.c5c3.io/stale: "true"                   leave the old Ready=True after a spec change
"""
from __future__ import annotations

import base64
import collections
import datetime
import gzip
import hashlib
import heapq
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

LOG = logging.getLogger("simulator")

ANN = "simulator.c5c3.io/"
ANN_FAIL, ANN_FAIL_MSG, ANN_DELAY, ANN_STALE = ANN + "fail", ANN + "fail-message", ANN + "delay", ANN + "stale"
REQ_AT = "reconcile.fluxcd.io/requestedAt"
FORCE_AT = "reconcile.fluxcd.io/forceAt"
RESET_AT = "reconcile.fluxcd.io/resetAt"
WATCH_LABEL = "reconcile.fluxcd.io/watch"

FLUX_VERSION = os.environ.get("LOCAL_FLEET_FLUX_VERSION", "v2.7.3")
OPERATOR_VERSION = "v0.58.1"
DEFAULT_COMPONENTS = ["source-controller", "kustomize-controller", "helm-controller", "notification-controller"]
SERVER_VERSION = "v1.20.2"

# kind -> (group, version, plural)
KINDS = {
    "HelmRelease": ("helm.toolkit.fluxcd.io", "v2", "helmreleases"),
    "Kustomization": ("kustomize.toolkit.fluxcd.io", "v1", "kustomizations"),
    "HelmRepository": ("source.toolkit.fluxcd.io", "v1", "helmrepositories"),
    "GitRepository": ("source.toolkit.fluxcd.io", "v1", "gitrepositories"),
    "OCIRepository": ("source.toolkit.fluxcd.io", "v1", "ocirepositories"),
    "HelmChart": ("source.toolkit.fluxcd.io", "v1", "helmcharts"),
    "FluxInstance": ("fluxcd.controlplane.io", "v1", "fluxinstances"),
    "FluxReport": ("fluxcd.controlplane.io", "v1", "fluxreports"),
    "ResourceSet": ("fluxcd.controlplane.io", "v1", "resourcesets"),
}
PLURAL_OF = {k: v[2] for k, v in KINDS.items()}
SOURCE_KINDS = ("HelmRepository", "GitRepository", "OCIRepository", "HelmChart")
NO_STATUS_GENERATION = ("FluxInstance", "FluxReport", "ResourceSet")
REPORT_KINDS = ("FluxInstance", "ResourceSet", "GitRepository", "OCIRepository", "HelmRepository",
                "HelmChart", "Kustomization", "HelmRelease")


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_duration(text: str | None) -> float:
    """Go-style duration ("3s", "1m30s", "500ms", "2") -> seconds."""
    if not text:
        return 0.0
    text = str(text).strip()
    try:
        return float(text)
    except ValueError:
        pass
    total, pos = 0.0, 0
    for m in re.finditer(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text):
        total += float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]
        pos = m.end()
    return total if pos else 0.0


def digest(obj) -> str:
    return "sha256:" + hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def rv_int(obj) -> int:
    try:
        return int(obj["metadata"]["resourceVersion"])
    except (KeyError, TypeError, ValueError):
        return 0


def cond(obj, ctype):
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


def is_ready(obj) -> bool:
    """Generation-aware readiness, as Flux's own dependency checks read it."""
    if obj is None:
        return False
    c = cond(obj, "Ready")
    if c is None or c.get("status") != "True":
        return False
    gen = obj["metadata"].get("generation")
    st = obj.get("status") or {}
    if obj.get("kind") in NO_STATUS_GENERATION:  # Flux Operator kinds: the condition carries it
        return c.get("observedGeneration") == gen
    return st.get("observedGeneration") == gen


# ------------------------------------------------------------------------------------ rate limiter
class TokenBucket:
    def __init__(self, qps: float, burst: int):
        self.qps, self.burst = qps, burst
        self.tokens = float(burst)
        self.last = time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> None:
        while True:
            with self.lock:
                t = time.monotonic()
                self.tokens = min(self.burst, self.tokens + (t - self.last) * self.qps)
                self.last = t
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                wait = (1 - self.tokens) / self.qps
            time.sleep(wait)


# -------------------------------------------------------------------------------------- work queue
class WorkQueue:
    """client-go style: a key is queued at most once and processed by at most one worker."""

    def __init__(self):
        self.cv = threading.Condition()
        self.queue: collections.deque = collections.deque()
        self.queued: set = set()
        self.processing: set = set()
        self.dirty: set = set()
        self.timers: list = []  # heap of (due, seq, key)
        self.seq = 0
        self.closed = False

    def add(self, key) -> None:
        with self.cv:
            if key in self.processing:
                self.dirty.add(key)
                return
            if key not in self.queued:
                self.queued.add(key)
                self.queue.append(key)
                self.cv.notify()

    def add_after(self, key, delay: float) -> None:
        if delay <= 0:
            self.add(key)
            return
        with self.cv:
            self.seq += 1
            heapq.heappush(self.timers, (time.monotonic() + delay, self.seq, key))
            self.cv.notify_all()

    def get(self):
        with self.cv:
            while True:
                if self.closed:
                    return None
                t = time.monotonic()
                while self.timers and self.timers[0][0] <= t:
                    _unused, _unused, key = heapq.heappop(self.timers)
                    if key in self.processing:
                        self.dirty.add(key)
                    elif key not in self.queued:
                        self.queued.add(key)
                        self.queue.append(key)
                if self.queue:
                    key = self.queue.popleft()
                    self.queued.discard(key)
                    self.processing.add(key)
                    return key
                timeout = (self.timers[0][0] - t) if self.timers else None
                self.cv.wait(timeout)

    def done(self, key) -> None:
        with self.cv:
            self.processing.discard(key)
            if key in self.dirty:
                self.dirty.discard(key)
                if key not in self.queued:
                    self.queued.add(key)
                    self.queue.append(key)
                    self.cv.notify()

    def close(self) -> None:
        with self.cv:
            self.closed = True
            self.cv.notify_all()

    def idle(self) -> bool:
        with self.cv:
            return not self.queue and not self.processing


# ------------------------------------------------------------------------------------------ store
class Store:
    """Latest known object per (kind, namespace, name), plus a reverse index of references."""

    def __init__(self):
        self.lock = threading.RLock()
        self.objs: dict = {}
        self.refs: dict = {}      # key -> set of keys it references
        self.referrers: dict = {}  # referenced key -> set of keys

    def get(self, key):
        with self.lock:
            return self.objs.get(key)

    def by_kind(self, kind):
        with self.lock:
            return [o for (k, _unused, _unused), o in self.objs.items() if k == kind]

    def upsert(self, key, obj, refs=()) -> bool:
        """Store obj unless an object with a newer resourceVersion is already there."""
        with self.lock:
            cur = self.objs.get(key)
            if cur is not None and rv_int(cur) > rv_int(obj):
                return False
            self.objs[key] = obj
            self._set_refs(key, set(refs))
            return True

    def delete(self, key) -> None:
        with self.lock:
            self.objs.pop(key, None)
            self._set_refs(key, set())

    def _set_refs(self, key, refs) -> None:
        old = self.refs.get(key, set())
        for r in old - refs:
            s = self.referrers.get(r)
            if s:
                s.discard(key)
        for r in refs - old:
            self.referrers.setdefault(r, set()).add(key)
        if refs:
            self.refs[key] = refs
        else:
            self.refs.pop(key, None)

    def referrers_of(self, key):
        with self.lock:
            return list(self.referrers.get(key, ()))


def references(kind, obj) -> list:
    """Keys (kind, ns, name) an object depends on: dependencies, sources, kubeconfig Secret."""
    ns = obj["metadata"].get("namespace")
    spec = obj.get("spec") or {}
    out = []
    if kind in ("HelmRelease", "Kustomization"):
        for d in spec.get("dependsOn") or []:
            out.append((kind, d.get("namespace") or ns, d.get("name")))
        sref = (spec.get("kubeConfig") or {}).get("secretRef") or {}
        if sref.get("name"):
            out.append(("Secret", ns, sref["name"]))
    if kind == "HelmRelease":
        src = ((spec.get("chart") or {}).get("spec") or {}).get("sourceRef") or spec.get("chartRef") or {}
        if src.get("name"):
            out.append((src.get("kind", "HelmRepository"), src.get("namespace") or ns, src["name"]))
        for vf in spec.get("valuesFrom") or []:
            if vf.get("kind") == "Secret":
                out.append(("Secret", ns, vf.get("name")))
    elif kind == "Kustomization":
        src = spec.get("sourceRef") or {}
        if src.get("name"):
            out.append((src.get("kind", "GitRepository"), src.get("namespace") or ns, src["name"]))
    elif kind in ("GitRepository", "HelmRepository", "OCIRepository"):
        if (spec.get("secretRef") or {}).get("name"):
            out.append(("Secret", ns, spec["secretRef"]["name"]))
    elif kind == "HelmChart":
        src = spec.get("sourceRef") or {}
        if src.get("name"):
            out.append((src.get("kind", "HelmRepository"), ns, src["name"]))
    elif kind == "FluxInstance":
        ps = (spec.get("sync") or {}).get("pullSecret")
        if ps:
            out.append(("Secret", ns, ps))
    return out


class Outcome(Exception):
    """A reconcile result that is not a success: Ready=False with reason/message."""

    def __init__(self, reason, message, *, wait=False, requeue=None, stalled=False):
        super().__init__(message)
        self.reason, self.message, self.wait, self.requeue, self.stalled = reason, message, wait, requeue, stalled


# ------------------------------------------------------------------------------------- simulator
class Simulator:
    def __init__(self, state_dir: str, workers: int = 16, qps: float = 400.0):
        self.state_dir = state_dir
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
        self.namespaces_ok: set = set()  # (kubeconfig digest, namespace) known to exist
        self.memo: dict = {}        # key -> fingerprint of the last terminal reconcile
        self.seen: set = set()      # keys looked at since the simulator started
        self.delay_due: dict = {}   # key -> (fingerprint, monotonic due)
        self.backoff: dict = {}     # key -> seconds
        self.report_dirty = threading.Event()
        self.synced = threading.Event()
        self.watch_ready: dict = {}

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
            if kind == "Deployment" and self._is_operator_deployment(obj):
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

    def _next_backoff(self, key) -> float:
        b = min(30.0, self.backoff.get(key, 0.5) * 2)
        self.backoff[key] = b
        return b

    def reconcile(self, key):
        kind = key[0]
        obj = self.store.get(key)
        if obj is None:
            return
        if kind == "Deployment":
            return self.reconcile_deployment(obj)
        if kind not in KINDS or kind == "FluxReport":
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
        if self.memo.get(key) == fp:
            return
        if key not in self.seen:
            self.seen.add(key)
            if self.settled(kind, obj):
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
        handler = getattr(self, "reconcile_" + kind.lower())
        terminal = handler(key, obj)
        if terminal:
            self.memo[key] = fp
            self.backoff.pop(key, None)
            self.delay_due.pop(key, None)
        else:
            # not terminal (e.g. DependencyNotReady): the memo of an earlier success no longer
            # describes the object, so a dependency Ready again at the same generation must be
            # re-checked (the same fix as on branch fleetgit's sim/runtime.py)
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
                parts.append((ref, is_ready(o), o["metadata"].get("generation"),
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

    # --------------------------------------------------------------------------- HelmRelease
    def reconcile_helmrelease(self, key, obj) -> bool:
        ns, name = key[1], key[2]
        spec = obj.get("spec") or {}
        st = obj.get("status") or {}
        ann = obj["metadata"].get("annotations") or {}
        gen = obj["metadata"].get("generation")
        status = self.handled(obj, {})
        if ann.get(FORCE_AT) and ann.get(FORCE_AT) == ann.get(REQ_AT):
            force = ann[FORCE_AT] != st.get("lastHandledForceAt")
        else:
            force = False
        if ann.get(RESET_AT) and ann.get(RESET_AT) == ann.get(REQ_AT) and ann[RESET_AT] != st.get("lastHandledResetAt"):
            status["lastHandledResetAt"] = ann[RESET_AT]
            reset = True
        else:
            reset = False

        target_ns = spec.get("targetNamespace") or ns
        release = spec.get("releaseName") or (f"{spec['targetNamespace']}-{name}" if spec.get("targetNamespace") else name)
        if len(release) > 53:
            release = release[:40] + "-" + hashlib.sha256(release.encode()).hexdigest()[:12]
        storage_ns = spec.get("storageNamespace") or target_ns
        skind, sns, sname = self.source_of("HelmRelease", obj)
        chart_spec = (spec.get("chart") or {}).get("spec") or {}
        chart_name = chart_spec.get("chart") or (sname or "chart")
        chart_name = chart_name.rstrip("/").rsplit("/", 1)[-1]
        chart_version = chart_spec.get("version") or "*"
        helmchart = f"{sns}/{ns}-{name}"
        values = spec.get("values") or {}
        cfg_digest = digest(values)

        try:
            self.check_dependencies("HelmRelease", obj)
            # source: HelmRepository (chart template), OCIRepository/HelmChart (chartRef)
            src = self.store.get((skind, sns, sname)) if sname else None
            if skind == "OCIRepository" or spec.get("chartRef"):
                if src is None:
                    raise Outcome("ArtifactFailed", f"could not get Source object: {PLURAL_OF.get(skind, skind.lower() + 's')}."
                                  f"source.toolkit.fluxcd.io \"{sname}\" not found", requeue=self._next_backoff(key))
                if not is_ready(src):
                    raise Outcome("SourceNotReady", f"{skind} '{sns}/{sname}' is not ready", wait=True)
                if skind == "OCIRepository":
                    url = (src.get("spec") or {}).get("url", "")
                    chart_name = url.rstrip("/").rsplit("/", 1)[-1] or chart_name
                    ref = (src.get("spec") or {}).get("ref") or {}
                    chart_version = ref.get("tag") or ref.get("semver") or "latest"
            else:
                if src is None:
                    raise Outcome("SourceNotReady", f"HelmChart '{helmchart}' is not ready: failed to get source: "
                                  f"{PLURAL_OF.get(skind, 'helmrepositories')}.source.toolkit.fluxcd.io "
                                  f"\"{sname}\" not found", wait=True)
                if (src.get("spec") or {}).get("type") != "oci" and not is_ready(src):
                    rc = cond(src, "Ready")
                    raise Outcome("SourceNotReady", f"HelmChart '{helmchart}' is not ready: "
                                  f"{(rc or {}).get('message') or 'latest generation of object has not been reconciled'}",
                                  wait=True)
            kc_digest, api = self.kubeconfig_for(obj, "HelmRelease")
        except Outcome as out:
            return self._hr_fail(key, obj, out, status)

        history = list(st.get("history") or [])
        last = history[0] if history else None
        if last is not None and (last.get("name") != release or last.get("namespace") != target_ns):
            history, last = [], None  # release target changed: a new install
        failures = {"installFailures": st.get("installFailures") or 0,
                    "upgradeFailures": st.get("upgradeFailures") or 0, "failures": st.get("failures") or 0}
        new_target = (last is None or last.get("chartVersion") != chart_version
                      or last.get("configDigest") != cfg_digest or last.get("chartName") != chart_name)
        attempted_changed = (st.get("lastAttemptedRevision") != chart_version
                             or st.get("lastAttemptedConfigDigest") != cfg_digest)
        if reset or attempted_changed:
            failures = {"installFailures": 0, "upgradeFailures": 0, "failures": 0}
        stalled = cond(obj, "Stalled")
        if stalled and stalled.get("status") == "True" and failures["failures"] > 0:
            # retries exhausted: stays Stalled until chart/values change or a reset request,
            # but the new generation is observed (so waiters fail fast instead of waiting)
            status["observedGeneration"] = gen
            status["conditions"] = self.conditions(obj, [
                {k: c[k] for k in ("type", "status", "reason", "message")}
                for c in (st.get("conditions") or []) if c["type"] in ("Ready", "Released", "Stalled")])
            self.patch_status(key, obj, status)
            return True
        action = "install" if last is None else "upgrade"
        needs_release = last is None or new_target or force
        status.update({"storageNamespace": storage_ns, "helmChart": helmchart,
                       "lastAttemptedGeneration": gen, "lastAttemptedRevision": chart_version,
                       "lastAttemptedConfigDigest": cfg_digest})
        if force:
            status["lastHandledForceAt"] = ann[FORCE_AT]
        chart_ref = f"{chart_name}@{chart_version}"

        fail = (ann.get(ANN_FAIL) or "").lower()
        if needs_release and fail in (action, "true", "all"):
            return self._hr_release_failed(key, obj, status, action, release, target_ns, chart_ref, failures, history)

        url = api.configuration.host
        try:
            self._ensure_namespace(kc_digest, api, url, target_ns)
            if storage_ns != target_ns:
                self._ensure_namespace(kc_digest, api, url, storage_ns)
            if needs_release:
                version = self._write_release(api, url, release, target_ns, storage_ns, chart_name, chart_version,
                                              values, cfg_digest, action, (last or {}).get("version", 0))
                t = now_iso()
                snap = {"name": release, "namespace": target_ns, "version": version, "status": "deployed",
                        "chartName": chart_name, "chartVersion": chart_version, "appVersion": chart_version,
                        "configDigest": cfg_digest, "firstDeployed": (last or {}).get("firstDeployed", t)
                        if action == "upgrade" else t, "lastDeployed": t,
                        "digest": digest([release, version, chart_ref, cfg_digest])}
                if last is not None and action == "upgrade":
                    history[0] = dict(history[0], status="superseded")
                history = ([snap] + history)[: max(1, int(spec.get("maxHistory") or 5))]
            else:
                # in sync: verify the spoke (the real controller reads the release storage)
                self.spoke_call(api, f"{url}/api/v1/namespaces/{storage_ns}/secrets", client.CoreV1Api(api).list_namespaced_secret,
                                storage_ns, label_selector=f"owner=helm,name={release}", limit=1, _preload_content=False)
        except (ConnectionError, ApiException) as exc:
            msg = self.api_error(exc) if isinstance(exc, ApiException) else str(exc)
            out = Outcome("StateError", f"Could not determine release state: query: failed to query with labels: {msg}",
                          requeue=self._next_backoff(key))
            return self._hr_fail(key, obj, out, status)

        head = history[0]
        reason = "InstallSucceeded" if action == "install" else "UpgradeSucceeded"
        if not needs_release:
            rc = cond(obj, "Released")
            reason = (rc or {}).get("reason") if (rc or {}).get("status") == "True" else reason
        msg = (f"Helm {'install' if reason == 'InstallSucceeded' else 'upgrade'} succeeded for release "
               f"{target_ns}/{release}.v{head['version']} with chart {head['chartName']}@{head['chartVersion']}")
        if not needs_release and cond(obj, "Ready") and cond(obj, "Ready").get("status") == "True":
            msg = cond(obj, "Ready").get("message") or msg
        status.update({"observedGeneration": gen, "history": history, "lastAttemptedReleaseAction": action
                       if needs_release else st.get("lastAttemptedReleaseAction", action),
                       "lastReleaseRevision": head["version"],
                       "installFailures": failures["installFailures"] or None,
                       "upgradeFailures": failures["upgradeFailures"] or None, "failures": failures["failures"] or None})
        desired = [{"type": "Ready", "status": "True", "reason": reason, "message": msg},
                   {"type": "Released", "status": "True", "reason": reason, "message": msg}]
        if (spec.get("test") or {}).get("enable"):
            desired.append({"type": "TestSuccess", "status": "True", "reason": "TestSucceeded",
                            "message": f"Helm test succeeded for release {target_ns}/{release}.v{head['version']} "
                                       f"with chart {chart_ref}: no test hooks"})
        status["conditions"] = self.conditions(obj, desired, drop=("Reconciling", "Stalled", "Remediated"))
        self.patch_status(key, obj, status)
        return True

    def _hr_fail(self, key, obj, out: Outcome, status) -> bool:
        drop = ("Stalled",)
        desired = [{"type": "Ready", "status": "False", "reason": out.reason, "message": out.message},
                   {"type": "Reconciling", "status": "True",
                    "reason": "Progressing" if out.wait else "ProgressingWithRetry", "message": "Fulfilling prerequisites"
                    if out.wait else out.message}]
        if not out.wait:
            status["observedGeneration"] = obj["metadata"].get("generation")
        status["conditions"] = self.conditions(obj, desired, drop=drop)
        self.patch_status(key, obj, status)
        if out.requeue:
            self.queue.add_after(key, out.requeue)
        return False

    def _hr_release_failed(self, key, obj, status, action, release, target_ns, chart_ref, failures, history) -> bool:
        spec = obj.get("spec") or {}
        ann = obj["metadata"].get("annotations") or {}
        Action = action.capitalize()
        retries = int(((spec.get(action) or {}).get("remediation") or {}).get("retries") or 0)
        failures = dict(failures)
        failures[f"{action}Failures"] += 1
        failures["failures"] += 1
        err = ann.get(ANN_FAIL_MSG) or f"simulated failure ({ANN_FAIL}={ann.get(ANN_FAIL)})"
        msg = f"Helm {action} failed for release {target_ns}/{release} with chart {chart_ref}: {err}"
        reason = f"{Action}Failed"
        status.update({"observedGeneration": obj["metadata"].get("generation"), "lastAttemptedReleaseAction": action,
                       "installFailures": failures["installFailures"] or None,
                       "upgradeFailures": failures["upgradeFailures"] or None, "failures": failures["failures"]})
        desired = [{"type": "Ready", "status": "False", "reason": reason, "message": msg},
                   {"type": "Released", "status": "False", "reason": reason, "message": msg}]
        exhausted = retries >= 0 and failures[f"{action}Failures"] > retries
        if exhausted:
            desired.append({"type": "Stalled", "status": "True", "reason": "RetriesExceeded",
                            "message": f"Failed to {action} after {failures[f'{action}Failures']} attempt(s)"})
            drop = ("Reconciling",)
        else:
            rem = ("Helm uninstall succeeded for release " if action == "install" else "Helm rollback to previous "
                   "release ") + f"{target_ns}/{release}"
            desired.append({"type": "Remediated", "status": "True",
                            "reason": "UninstallSucceeded" if action == "install" else "RollbackSucceeded",
                            "message": rem + (f".v{history[0]['version']}" if history else f".v1 with chart {chart_ref}")})
            desired.append({"type": "Reconciling", "status": "True", "reason": "ProgressingWithRetry", "message": msg})
            drop = ("Stalled",)
        status["conditions"] = self.conditions(obj, desired, drop=drop)
        self.patch_status(key, obj, status)
        if not exhausted:
            self.queue.add_after(key, float(os.environ.get("LOCAL_FLEET_SIM_RETRY_INTERVAL", "1")))
            return False
        return True

    def _ensure_namespace(self, kc_digest, api, url, ns):
        if (kc_digest, ns) in self.namespaces_ok:
            return
        core = client.CoreV1Api(api)
        try:
            self.spoke_call(api, f"{url}/api/v1/namespaces", core.create_namespace,
                            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}, _preload_content=False)
        except ApiException as exc:
            if exc.status != 409:
                raise
        self.namespaces_ok.add((kc_digest, ns))

    def _write_release(self, api, url, release, target_ns, storage_ns, chart, version, values, cfg_digest, action,
                       last_version) -> int:
        """Record the release like Helm's secret storage driver (type helm.sh/release.v1)."""
        core = client.CoreV1Api(api)
        n = int(last_version or 0) + 1
        for _unused in range(5):
            t = now_iso()
            rel = {"name": release, "namespace": target_ns, "version": n,
                   "info": {"first_deployed": t, "last_deployed": t, "deleted": "", "status": "deployed",
                            "description": f"{action.capitalize()} complete (simulated by c5c3 local fleet)"},
                   "chart": {"metadata": {"name": chart, "version": version, "appVersion": version, "apiVersion": "v2"},
                             "templates": [], "values": {}},
                   "config": values, "manifest": ""}
            payload = base64.b64encode(gzip.compress(json.dumps(rel).encode())).decode()
            body = {"apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
                    "metadata": {"name": f"sh.helm.release.v1.{release}.v{n}", "namespace": storage_ns,
                                 "labels": {"name": release, "owner": "helm", "status": "deployed", "version": str(n),
                                            "app.kubernetes.io/managed-by": "c5c3-local-fleet-simulator"},
                                 "annotations": {ANN + "chart": chart, ANN + "chart-version": version,
                                                 ANN + "values-digest": cfg_digest, ANN + "action": action}},
                    "data": {"release": base64.b64encode(payload.encode()).decode()}}
            try:
                self.spoke_call(api, f"{url}/api/v1/namespaces/{storage_ns}/secrets", core.create_namespaced_secret,
                                storage_ns, body, _preload_content=False)
            except ApiException as exc:
                if exc.status != 409:
                    raise
                # someone (an earlier run) already wrote this version: continue after the highest one
                resp = self.spoke_call(api, url, core.list_namespaced_secret, storage_ns,
                                       label_selector=f"owner=helm,name={release}", _preload_content=False)
                versions = [int(i["metadata"]["labels"].get("version", 0)) for i in json.loads(resp.data)["items"]]
                n = max(versions + [n]) + 1
                continue
            if n > 1:  # the previous release is superseded, as Helm marks it
                try:
                    self.spoke_call(api, url, core.patch_namespaced_secret, f"sh.helm.release.v1.{release}.v{n - 1}",
                                    storage_ns, {"metadata": {"labels": {"status": "superseded"}}}, _preload_content=False)
                except ApiException as exc:
                    if exc.status != 404:
                        raise
            return n
        raise RuntimeError(f"could not record release {storage_ns}/{release}")

    # ------------------------------------------------------------------------- Kustomization
    def reconcile_kustomization(self, key, obj) -> bool:
        spec = obj.get("spec") or {}
        ann = obj["metadata"].get("annotations") or {}
        gen = obj["metadata"].get("generation")
        status = self.handled(obj, {})
        try:
            self.check_dependencies("Kustomization", obj)
            skind, sns, sname = self.source_of("Kustomization", obj)
            src = self.store.get((skind, sns, sname))
            if src is None:
                raise Outcome("ArtifactFailed", f"Source '{skind}/{sns}/{sname}' not found", requeue=self._next_backoff(key))
            art = (src.get("status") or {}).get("artifact")
            if not is_ready(src) or not art:
                raise Outcome("ArtifactFailed", "Source artifact not found, retrying in 30s", wait=True, requeue=30)
            revision = art.get("revision", "")
            status["lastAttemptedRevision"] = revision
            kc_digest, api = self.kubeconfig_for(obj, "Kustomization")
            if kc_digest != "hub":
                url = api.configuration.host
                try:
                    self.spoke_call(api, f"{url}/version", client.VersionApi(api).get_code, _preload_content=False)
                except (ConnectionError, ApiException) as exc:
                    msg = self.api_error(exc) if isinstance(exc, ApiException) else str(exc)
                    raise Outcome("ReconciliationFailed", f"failed to build kube client: {msg}",
                                  requeue=self._next_backoff(key))
            if ann.get(ANN_FAIL):
                raise Outcome("ReconciliationFailed", ann.get(ANN_FAIL_MSG) or
                              f"simulated failure ({ANN_FAIL}={ann.get(ANN_FAIL)})", requeue=self._next_backoff(key))
        except Outcome as out:
            desired = [{"type": "Ready", "status": "False", "reason": out.reason, "message": out.message},
                       {"type": "Reconciling", "status": "True",
                        "reason": "Progressing" if out.wait else "ProgressingWithRetry",
                        "message": "Fulfilling prerequisites" if out.wait else out.message}]
            status["conditions"] = self.conditions(obj, desired, drop=("Healthy",) if out.wait else ())
            self.patch_status(key, obj, status)
            if out.requeue:
                self.queue.add_after(key, out.requeue)
            return False
        desired = [{"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded",
                    "message": f"Applied revision: {revision}"}]
        if spec.get("wait") or spec.get("healthChecks"):
            desired.append({"type": "Healthy", "status": "True", "reason": "HealthCheckSucceeded",
                            "message": "Health check passed in 0s"})
        status.update({"observedGeneration": gen, "lastAppliedRevision": revision,
                       "conditions": self.conditions(obj, desired, drop=("Reconciling", "Stalled"))})
        self.patch_status(key, obj, status)
        return True

    # -------------------------------------------------------------------------------- sources
    def _source_ready(self, key, obj, revision, message, extra=None) -> bool:
        kind, ns, name = key
        spec = obj.get("spec") or {}
        status = self.handled(obj, {})
        sref = (spec.get("secretRef") or {}).get("name")
        if sref and self.store.get(("Secret", ns, sref)) is None:
            try:
                self.call(self.core.read_namespaced_secret, sref, ns, _preload_content=False)
            except ApiException as exc:
                if exc.status != 404:
                    raise
                msg = f"failed to get secret '{ns}/{sref}': secrets \"{sref}\" not found"
                status.update({"observedGeneration": obj["metadata"].get("generation"),
                               "conditions": self.conditions(obj, [
                                   {"type": "Ready", "status": "False", "reason": "AuthenticationFailed", "message": msg},
                                   {"type": "FetchFailed", "status": "True", "reason": "AuthenticationFailed",
                                    "message": msg}], drop=("Reconciling",))})
                self.patch_status(key, obj, status)
                self.queue.add_after(key, self._next_backoff(key))
                return False
        art_digest = "sha256:" + hashlib.sha256(revision.encode()).hexdigest()
        prev = (obj.get("status") or {}).get("artifact") or {}
        artifact = {"path": f"{kind.lower()}/{ns}/{name}/{art_digest[7:19]}.tar.gz",
                    "url": f"http://source-controller.flux-system.svc.cluster.local./{kind.lower()}/{ns}/{name}/"
                           f"{art_digest[7:19]}.tar.gz",
                    "revision": revision, "digest": art_digest,
                    "lastUpdateTime": prev.get("lastUpdateTime") if prev.get("revision") == revision else now_iso(),
                    "size": 1024}
        status.update({"observedGeneration": obj["metadata"].get("generation"), "artifact": artifact,
                       "url": artifact["url"] if kind != "HelmChart" else None,
                       "conditions": self.conditions(obj, [
                           {"type": "Ready", "status": "True", "reason": "Succeeded" if kind != "HelmChart" else "ChartPullSucceeded",
                            "message": message},
                           {"type": "ArtifactInStorage", "status": "True", "reason": "Succeeded", "message": message}],
                           drop=("Reconciling", "FetchFailed", "Stalled"))})
        if extra:
            status.update(extra)
        self.patch_status(key, obj, status)
        return True

    def reconcile_gitrepository(self, key, obj) -> bool:
        spec = obj.get("spec") or {}
        ref = spec.get("ref") or {}
        name = ref.get("name") or ref.get("tag") or ref.get("branch") or ref.get("semver") or "master"
        if ref.get("tag") and not ref.get("name"):
            name = ref["tag"]
        sha = ref.get("commit") or hashlib.sha1(json.dumps([spec.get("url"), ref], sort_keys=True).encode()).hexdigest()
        rev = f"{name}@sha1:{sha}" if not ref.get("commit") or ref.get("branch") else f"sha1:{sha}"
        return self._source_ready(key, obj, rev, f"stored artifact for revision '{rev}'")

    def reconcile_ocirepository(self, key, obj) -> bool:
        spec = obj.get("spec") or {}
        ref = spec.get("ref") or {}
        tag = ref.get("tag") or ref.get("semver") or "latest"
        d = ref.get("digest") or "sha256:" + hashlib.sha256(json.dumps([spec.get("url"), ref], sort_keys=True).encode()).hexdigest()
        rev = f"{tag}@{d}"
        return self._source_ready(key, obj, rev, f"stored artifact for digest '{rev}'")

    def reconcile_helmrepository(self, key, obj) -> bool:
        spec = obj.get("spec") or {}
        d = "sha256:" + hashlib.sha256(json.dumps([spec.get("url"), obj["metadata"].get("generation")]).encode()).hexdigest()
        return self._source_ready(key, obj, d, f"stored artifact: revision '{d}'")

    def reconcile_helmchart(self, key, obj) -> bool:
        spec = obj.get("spec") or {}
        chart = spec.get("chart", "chart").rstrip("/").rsplit("/", 1)[-1]
        version = spec.get("version") or "*"
        return self._source_ready(key, obj, version, f"pulled '{chart}' chart with version '{version}'",
                                  extra={"observedChartName": chart})

    def reconcile_resourceset(self, key, obj) -> bool:
        status = self.handled(obj, {})
        ready = {"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded",
                 "message": "Reconciliation finished in 0s"}
        status["conditions"] = self.conditions(obj, [ready], drop=("Reconciling",))
        self.patch_status(key, obj, status)
        return True

    # --------------------------------------------------------------------- Flux Operator
    def flux_components(self, fi):
        spec = fi.get("spec") or {}
        dist = spec.get("distribution") or {}
        version = self.resolve_version(dist.get("version"))
        registry = (dist.get("registry") or "ghcr.io/fluxcd").rstrip("/")
        comps = spec.get("components") or DEFAULT_COMPONENTS
        out = []
        for c in comps:
            out.append({"name": c, "repository": f"{registry}/{c}", "tag": version,
                        "digest": "sha256:" + hashlib.sha256(f"{registry}/{c}:{version}".encode()).hexdigest()})
        return version, out

    @staticmethod
    def resolve_version(v):
        if not v or v in ("*", "2.x", "2.x.x", "v2.x"):
            return FLUX_VERSION
        v = str(v)
        m = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)", v)
        if m:
            return "v" + ".".join(m.groups())
        m = re.fullmatch(r"v?(\d+)\.(\d+)\.x", v)
        if m:
            return f"v{m.group(1)}.{m.group(2)}.0"
        return FLUX_VERSION

    def reconcile_fluxinstance(self, key, obj) -> bool:
        version, comps = self.flux_components(obj)
        st = obj.get("status") or {}
        rev = f"{version}@{digest(comps)}"
        status = self.handled(obj, {"components": comps,
                                    "lastAppliedRevision": rev, "lastAttemptedRevision": rev,
                                    "lastArtifactRevision": st.get("lastArtifactRevision")})
        ann = obj["metadata"].get("annotations") or {}
        if ann.get(FORCE_AT):
            status["lastHandledForceAt"] = ann[FORCE_AT]
        if ann.get(ANN_FAIL):
            msg = ann.get(ANN_FAIL_MSG) or f"simulated failure ({ANN_FAIL}={ann.get(ANN_FAIL)})"
            status["conditions"] = self.conditions(obj, [
                {"type": "Ready", "status": "False", "reason": "ReconciliationFailed", "message": msg},
                {"type": "Reconciling", "status": "True", "reason": "ProgressingWithRetry", "message": msg}])
            self.patch_status(key, obj, status)
            self.report_dirty.set()
            return True
        self.ensure_sync_objects(obj)
        status["conditions"] = self.conditions(obj, [{"type": "Ready", "status": "True",
                                                      "reason": "ReconciliationSucceeded",
                                                      "message": "Reconciliation finished in 1s"}],
                                               drop=("Reconciling", "Stalled"))
        self.patch_status(key, obj, status)
        self.report_dirty.set()
        return True

    @staticmethod
    def sync_objects(fi):
        """The source and Kustomization the Flux Operator generates from FluxInstance.spec.sync,
        both named after the instance's namespace (as the operator names them)."""
        sync = (fi.get("spec") or {}).get("sync") or {}
        if not sync.get("url"):
            return []
        ns = fi["metadata"]["namespace"]
        labels = {"app.kubernetes.io/managed-by": "flux-operator",
                  "fluxcd.controlplane.io/name": fi["metadata"]["name"],
                  "fluxcd.controlplane.io/namespace": ns}
        kind = sync.get("kind") or "GitRepository"
        ref = str(sync.get("ref") or "")
        src_spec = {"interval": sync.get("interval") or "1m", "url": sync["url"]}
        if kind == "GitRepository":
            src_spec["ref"] = {"name": ref} if ref.startswith("refs/") else {"branch": ref or "main"}
        elif kind == "OCIRepository":
            src_spec["ref"] = {"tag": ref or "latest"}
        if sync.get("pullSecret"):
            src_spec["secretRef"] = {"name": sync["pullSecret"]}
        out = [{"kind": kind, "metadata": {"name": ns, "namespace": ns, "labels": labels}, "spec": src_spec}]
        out.append({"kind": "Kustomization", "metadata": {"name": ns, "namespace": ns, "labels": labels},
                    "spec": {"interval": sync.get("interval") or "10m", "path": sync.get("path") or "./",
                             "prune": True, "sourceRef": {"kind": kind, "name": ns}}})
        return out

    def ensure_sync_objects(self, fi):
        """Create or update the generated sync objects, as the operator does on every reconcile."""
        for want in self.sync_objects(fi):
            kind, md = want["kind"], want["metadata"]
            if kind not in KINDS:
                continue
            g, v, p = KINDS[kind]
            body = {"apiVersion": f"{g}/{v}", **want}
            cur = self.store.get((kind, md["namespace"], md["name"]))
            try:
                if cur is None:
                    self.call(self.custom.create_namespaced_custom_object, g, v, md["namespace"], p, body,
                              _preload_content=False)
                elif (cur.get("spec") or {}) != want["spec"]:
                    self.call(self.custom.patch_namespaced_custom_object, g, v, md["namespace"], p, md["name"],
                              [{"op": "replace", "path": "/spec", "value": want["spec"]}], _preload_content=False)
            except ApiException as exc:
                if exc.status != 409:  # created meanwhile: the watch brings it in
                    raise

    @staticmethod
    def _is_operator_deployment(obj) -> bool:
        md = obj["metadata"]
        return (md.get("namespace") == "flux-system"
                or (md.get("labels") or {}).get("app.kubernetes.io/name") == "flux-operator")

    def reconcile_deployment(self, obj):
        md = obj["metadata"]
        spec = obj.get("spec") or {}
        st = obj.get("status") or {}
        replicas = spec.get("replicas", 1)
        gen = md.get("generation")
        ok = (st.get("observedGeneration") == gen and st.get("readyReplicas", 0) == replicas
              and st.get("availableReplicas", 0) == replicas and st.get("updatedReplicas", 0) == replicas)
        if ok and any(c.get("type") == "Available" and c.get("status") == "True" for c in st.get("conditions") or []):
            return
        t = now_iso()
        name = md["name"]
        rs_hash = hashlib.sha256(json.dumps(spec.get("template") or {}, sort_keys=True).encode()).hexdigest()[:10]
        status = {"observedGeneration": gen, "replicas": replicas, "updatedReplicas": replicas,
                  "readyReplicas": replicas, "availableReplicas": replicas, "unavailableReplicas": None,
                  "conditions": [
                      {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                       "message": "Deployment has minimum availability.", "lastUpdateTime": t, "lastTransitionTime": t},
                      {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                       "message": f'ReplicaSet "{name}-{rs_hash}" has successfully progressed.',
                       "lastUpdateTime": t, "lastTransitionTime": t}]}
        try:
            resp = self.call(self.apps.patch_namespaced_deployment_status, name, md["namespace"], {"status": status},
                             _preload_content=False)
        except ApiException as exc:
            if exc.status == 404:
                return
            raise
        new = json.loads(resp.data)
        self.store.upsert(("Deployment", md["namespace"], name), new)
        self.report_dirty.set()

    # ------------------------------------------------------------------------------ report
    def _report_loop(self):
        while not self.stop.is_set():
            if not self.report_dirty.wait(30):
                self.report_dirty.set()  # refresh at least every 30s, like the operator's report interval
                continue
            if self.stop.is_set():
                return
            self.report_dirty.clear()
            try:
                self.update_report()
            except Exception:  # noqa: BLE001
                LOG.error("FluxReport update failed:\n%s", traceback.format_exc())
                self.stop.wait(2)
                self.report_dirty.set()
            self.stop.wait(0.5)  # debounce: at most two report writes per second

    def build_report(self):
        ns = "flux-system"
        instances = [o for o in self.store.by_kind("FluxInstance") if o["metadata"]["namespace"] == ns]
        fi = instances[0] if instances else None
        spec = {"cluster": {"platform": "linux/amd64", "serverVersion": SERVER_VERSION, "nodes": 0},
                "operator": {"apiVersion": "fluxcd.controlplane.io/v1", "platform": "linux/amd64",
                             "version": OPERATOR_VERSION}}
        if fi is not None and is_ready(fi):
            version, comps = self.flux_components(fi)
            dist = (fi.get("spec") or {}).get("distribution") or {}
            spec["distribution"] = {"entitlement": "Issued by controlplane" if "controlplane" in str(dist.get("registry", ""))
                                    else "Unknown", "managedBy": f"FluxInstance/{fi['metadata']['name']}",
                                    "status": "Installed", "version": version}
            spec["components"] = [{"name": c["name"], "image": f"{c['repository']}:{c['tag']}@{c['digest']}",
                                   "ready": True, "status": "Current Deployment replicas: 1"} for c in comps]
        else:
            spec["distribution"] = {"entitlement": "Unknown", "status": "Not Installed"}
            spec["components"] = []
        recs = []
        for kind in REPORT_KINDS:
            objs = self.store.by_kind(kind)
            if not objs:
                continue
            running = failing = suspended = 0
            for o in objs:
                if (o.get("spec") or {}).get("suspend"):
                    suspended += 1
                elif (cond(o, "Ready") or {}).get("status") == "False":
                    failing += 1
                else:
                    running += 1
            g, v, _unused = KINDS[kind]
            recs.append({"apiVersion": f"{g}/{v}", "kind": kind,
                         "stats": {"running": running, "failing": failing, "suspended": suspended}})
        spec["reconcilers"] = recs
        sync = (fi.get("spec") or {}).get("sync") if fi else None
        if sync:
            ks = self.store.get(("Kustomization", ns, fi["metadata"]["name"])) or \
                self.store.get(("Kustomization", ns, "flux-system"))
            src = sync.get("url", "")
            if ks is not None:
                rc = cond(ks, "Ready") or {}
                spec["sync"] = {"id": f"kustomization/{ks['metadata']['name']}", "path": sync.get("path", ""),
                                "ready": is_ready(ks), "source": src, "status": rc.get("message", "")}
            else:
                ps = sync.get("pullSecret")
                missing = ps and self.store.get(("Secret", ns, ps)) is None
                spec["sync"] = {"id": f"kustomization/{fi['metadata']['name']}", "path": sync.get("path", ""),
                                "ready": False, "source": src,
                                "status": f"secret '{ns}/{ps}' not found" if missing else
                                "not reconciled: the simulator does not fetch sync sources"}
        return ns, spec

    def update_report(self):
        ns, spec = self.build_report()
        if ("Namespace", None, ns) not in self.store.objs:
            return
        g, v, p = KINDS["FluxReport"]
        key = ("FluxReport", ns, "flux")
        cur = self.store.get(key)
        if cur is None:
            body = {"apiVersion": f"{g}/{v}", "kind": "FluxReport",
                    "metadata": {"name": "flux", "namespace": ns,
                                 "labels": {"app.kubernetes.io/managed-by": "flux-operator"}},
                    "spec": spec}
            try:
                resp = self.call(self.custom.create_namespaced_custom_object, g, v, ns, p, body, _preload_content=False)
                cur = json.loads(resp.data)
                self.store.upsert(key, cur)
            except ApiException as exc:
                if exc.status != 409:
                    raise
                cur = json.loads(self.call(self.custom.get_namespaced_custom_object, g, v, ns, p, "flux",
                                           _preload_content=False).data)
        if (cur.get("spec") or {}) != spec:
            resp = self.call(self.custom.patch_namespaced_custom_object, g, v, ns, p, "flux",
                             {"spec": spec}, _preload_content=False)
            cur = json.loads(resp.data)
            self.store.upsert(key, cur)
        status = self.handled(cur, {"conditions": self.conditions(cur, [
            {"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded",
             "message": "Reporting finished in 5ms"}])})
        self.patch_status(key, cur, status)

    # -------------------------------------------------------------------------------- run
    def run(self) -> int:
        kinds = list(KINDS) + ["Secret", "Deployment", "Namespace"]
        threads = [threading.Thread(target=self._watch_loop, args=(k,), name=f"watch-{k}", daemon=True) for k in kinds]
        threads += [threading.Thread(target=self._worker, name=f"worker-{i}", daemon=True)
                    for i in range(self.workers_n)]
        threads.append(threading.Thread(target=self._report_loop, name="report", daemon=True))
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


def run(state_dir: str, workers: int = 16) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(threadName)s %(message)s")
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    sim = Simulator(state_dir, workers=workers, qps=float(os.environ.get("LOCAL_FLEET_SIM_QPS", "400")))

    def _stop(signum, frame):
        sim.stop.set()
        sim.report_dirty.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    return sim.run()
