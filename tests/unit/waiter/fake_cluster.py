"""An in-memory API server for the waiter: LIST/WATCH/GET with resourceVersions, replay,
410 expiry, server-side watch ends and dropped connections on demand."""
import copy
import threading

from ansible_collections.c5c3.gitops.plugins.module_utils.waiter import WatchGone

_END, _GONE, _DROP = object(), object(), object()


def _matches(obj, selector):
    if not selector:
        return True
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for term in selector.split(","):
        key, dummy, value = term.partition("=")
        if labels.get(key.strip()) != value.strip():
            return False
    return True


class FakeStream(object):
    def __init__(self, cluster, kind, namespace, selector):
        self.cluster, self.kind, self.namespace, self.selector = cluster, kind, namespace, selector
        self.items = []
        self.cond = threading.Condition()
        self.closed = False

    def push(self, item):
        with self.cond:
            self.items.append(item)
            self.cond.notify_all()

    def close(self):
        self.push(_END)

    def __iter__(self):
        while True:
            with self.cond:
                while not self.items:
                    self.cond.wait()
                item = self.items.pop(0)
            if item is _END:
                self.closed = True
                return
            if item is _GONE:
                self.closed = True
                raise WatchGone("too old resource version")
            if item is _DROP:
                self.closed = True
                raise ConnectionResetError("connection reset by peer")
            yield item


class FakeCluster(object):
    def __init__(self):
        self.lock = threading.RLock()
        self.objects = {}
        self.log = []  # (rv, kind, namespace, event_type, obj)
        self.rv = 100
        self.streams = []
        self.calls = []
        self.api_requests = 0
        self.fail_next_watches = []  # exceptions raised by the next watch() calls, in order

    # ----- cluster side
    def put(self, obj):
        with self.lock:
            obj = copy.deepcopy(obj)
            meta = obj.setdefault("metadata", {})
            key = (obj["kind"], meta.get("namespace"), meta["name"])
            etype = "MODIFIED" if key in self.objects else "ADDED"
            self.rv += 1
            meta["resourceVersion"] = str(self.rv)
            self.objects[key] = obj
            self._emit(etype, obj)
            return obj

    def delete(self, kind, namespace, name):
        with self.lock:
            obj = self.objects.pop((kind, namespace, name))
            self.rv += 1
            obj = copy.deepcopy(obj)
            obj["metadata"]["resourceVersion"] = str(self.rv)
            self._emit("DELETED", obj)

    def _emit(self, etype, obj):
        kind, ns = obj["kind"], obj["metadata"].get("namespace")
        self.log.append((self.rv, kind, ns, etype, copy.deepcopy(obj)))
        for stream in list(self.streams):
            if not stream.closed and stream.kind == kind and stream.namespace == ns and _matches(obj, stream.selector):
                stream.push((etype, copy.deepcopy(obj)))

    def _signal(self, item):
        with self.lock:
            for stream in self.streams:
                if not stream.closed:
                    stream.push(item)

    def expire_watches(self):
        self._signal(_GONE)

    def end_watches(self):
        self._signal(_END)

    def drop_watches(self):
        self._signal(_DROP)

    def open_streams(self):
        return [s for s in self.streams if not s.closed]

    # ----- the source interface
    def list(self, info, namespace, label_selector=None):
        with self.lock:
            self.api_requests += 1
            self.calls.append(("list", info["kind"], namespace))
            items = [copy.deepcopy(o) for (k, ns, dummy), o in sorted(self.objects.items())
                     if k == info["kind"] and ns == namespace and _matches(o, label_selector)]
            return items, str(self.rv)

    def watch(self, info, namespace, resource_version, label_selector=None, timeout_seconds=None):
        with self.lock:
            self.api_requests += 1
            self.calls.append(("watch", info["kind"], namespace))
            if self.fail_next_watches:
                raise self.fail_next_watches.pop(0)
            stream = FakeStream(self, info["kind"], namespace, label_selector)
            # Replay what happened after resource_version, like the API server does.
            for rv, kind, ns, etype, obj in self.log:
                if rv > int(resource_version or 0) and kind == info["kind"] and ns == namespace \
                        and _matches(obj, label_selector):
                    stream.push((etype, copy.deepcopy(obj)))
            self.streams.append(stream)
            return stream

    def get(self, info, namespace, name):
        with self.lock:
            self.api_requests += 1
            self.calls.append(("get", info["kind"], namespace))
            obj = self.objects.get((info["kind"], namespace, name))
            return copy.deepcopy(obj) if obj else None

    def count(self, what):
        return sum(1 for c in self.calls if c[0] == what)


def helmrelease(name, namespace="control-plane", generation=1, ready=None, observed=None, reason=None,
                message="", stalled=None, depends_on=None, labels=None, failures=None):
    """A HelmRelease; ready=True/False/None sets (or omits) the Ready condition."""
    obj = {
        "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
        "metadata": {"name": name, "namespace": namespace, "generation": generation, "labels": labels or {}},
        "spec": {"releaseName": name},
        "status": {"conditions": []},
    }
    if depends_on:
        obj["spec"]["dependsOn"] = [{"name": d} if isinstance(d, str) else d for d in depends_on]
    og = generation if observed is None else observed
    if ready is not None:
        obj["status"]["conditions"].append({
            "type": "Ready", "status": "True" if ready else "False", "observedGeneration": og,
            "reason": reason or ("InstallSucceeded" if ready else "Progressing"), "message": message})
    if stalled:
        obj["status"]["conditions"].append({
            "type": "Stalled", "status": "True", "observedGeneration": og,
            "reason": stalled, "message": message})
    if failures is not None:
        obj["status"]["installFailures"] = failures
    return obj
