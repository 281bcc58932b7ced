"""Runtime building blocks: client-side rate limit, de-duplicating work queue, object store."""
from __future__ import annotations

import collections
import heapq
import threading
import time

from .common import rv_int


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
