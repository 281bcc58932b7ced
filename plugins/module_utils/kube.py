# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)
"""The one Kubernetes client of the collection: JSON over HTTPS with urllib3, nothing else.

Importing the kubernetes package costs 0.4-1 s per module run (it loads every API model), more
than a no-op apply of a whole stage; every module here needs only JSON REST calls on paths from
``flux_kinds``, so ``KubeClient`` talks urllib3 directly (thread-safe pool, one per module run).

- connection from any kubeconfig form or host/api_key: ``kube_auth.connection``
- retries, bounded, with exponential backoff: 429 for every request (the server did not act on
  it; Retry-After honoured), 5xx and dropped connections only for idempotent requests (GET,
  HEAD, PUT, DELETE, server-side apply and merge patches), a refused or timed-out *connect* for
  every request (nothing was sent)
- watch streams that ``close()`` from another thread
- one error type, ``KubeError``, whose message names the cluster, the request and what to check

It is the source the gate (waiter.Waiter) and flux_reconcile read from, and the sink flux_apply
and cluster_kubeconfig write through.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import threading
import time

try:
    from urllib.parse import urlencode
except ImportError:  # pragma: no cover - Python 2
    from urllib import urlencode

from ansible_collections.c5c3.gitops.plugins.module_utils import flux_kinds
from ansible_collections.c5c3.gitops.plugins.module_utils.kube_auth import connection
from ansible_collections.c5c3.gitops.plugins.module_utils.kube_errors import KubeError, WatchGone, transport_error

APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"
_IDEMPOTENT = frozenset(["GET", "HEAD", "PUT", "DELETE", "OPTIONS"])
_RETRY_STATUS = frozenset([500, 502, 503, 504])
DEFAULT_RETRIES = 3
DEFAULT_BACKOFF = (0.25, 2.0)  # first delay, cap (doubling in between)
MAX_RETRY_AFTER = 5.0


class KubeClient(object):
    """Requests against one cluster; ``api_requests`` counts every request sent (retries too)."""

    def __init__(self, conn, timeout=30, workers=8, retries=DEFAULT_RETRIES, backoff=DEFAULT_BACKOFF, sleep=time.sleep):
        import urllib3
        self.conn = conn
        self.server = conn.server
        self.label = conn.label
        self.timeout = timeout
        self.retries = max(0, int(retries))
        self.backoff = backoff
        self.sleep = sleep
        self.api_requests = 0
        self._lock = threading.Lock()
        self._urllib3 = urllib3
        self.pool = urllib3.PoolManager(maxsize=max(1, workers), retries=False, **conn.tls)

    @property
    def secrets(self):
        return self.conn.secrets

    def close(self):
        try:
            self.pool.clear()
        finally:
            self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _count(self):
        with self._lock:
            self.api_requests += 1

    # ------------------------------------------------------------------ requests
    def request(self, method, path, query=None, body=None, content_type="application/json", timeout=None):
        """Send one request (retried as the module doc says); returns (status, parsed JSON body)."""
        response = self._send(method, path, query, body, content_type, timeout, stream=False)
        return response.status, _payload(response.data)

    def _send(self, method, path, query, body, content_type, timeout, stream):
        url = self.server + path
        if query:
            url += "?" + urlencode(list(query.items()) if isinstance(query, dict) else list(query))
        headers = dict(self.conn.headers, Accept="application/json")
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = json.dumps(body).encode("utf-8")
        idempotent = method in _IDEMPOTENT or content_type in (APPLY_PATCH, MERGE_PATCH)
        if timeout is None:
            timeout = self._urllib3.Timeout(connect=self.timeout, read=self.timeout)
        elif isinstance(timeout, tuple):
            timeout = self._urllib3.Timeout(connect=timeout[0], read=timeout[1])
        attempt = 0
        while True:
            delay = None
            self._count()
            try:
                response = self.pool.request(method, url, body=data, headers=headers, timeout=timeout,
                                             preload_content=not stream, redirect=False)
            except Exception as exc:  # urllib3/ssl/socket: classified by kube_errors
                err = transport_error(exc, self.label, method, path, self.server, self.timeout)
                if attempt < self.retries and (idempotent or _not_sent(exc)) and err.category in ("refused", "timeout", "connection"):
                    delay = self._delay(attempt)
                else:
                    raise err
            else:
                if response.status < 400:
                    return response
                raw = response.data if not stream else response.read()
                if stream:
                    response.release_conn()
                err = self.error(response.status, raw, method, path)
                if attempt < self.retries and (response.status == 429 or (response.status in _RETRY_STATUS and idempotent)):
                    delay = _retry_after(response) or self._delay(attempt)
                else:
                    raise err
            attempt += 1
            self.sleep(delay)

    def _delay(self, attempt):
        first, cap = self.backoff
        return min(cap, first * (2 ** attempt))

    def error(self, status, raw, method, path):
        payload = _payload(raw)
        message = payload.get("message") if isinstance(payload, dict) else None
        reason = payload.get("reason") if isinstance(payload, dict) else None
        return KubeError(status, message or "", reason=reason, cluster=self.label, method=method, path=path, url=self.server)

    # ------------------------------------------------------------------ the source interface (waiter, reconcile)
    def get(self, info, namespace, name):
        """The object, or None when it does not exist."""
        try:
            return self.request("GET", flux_kinds.object_path(info, namespace, name))[1]
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise

    def list(self, info, namespace=None, label_selector=None):
        """(items with kind/apiVersion filled in, the list's resourceVersion)."""
        query = {"labelSelector": label_selector} if label_selector else None
        data = self.request("GET", flux_kinds.collection_path(info, namespace), query)[1]
        items = data.get("items") or []
        for item in items:
            item.setdefault("kind", info["kind"])
            item.setdefault("apiVersion", info["api_version"])
        return items, (data.get("metadata") or {}).get("resourceVersion")

    def merge_patch(self, info, namespace, name, patch):
        """Merge-patch an object; None when it does not exist."""
        try:
            return self.request("PATCH", flux_kinds.object_path(info, namespace, name), body=patch,
                                content_type=MERGE_PATCH)[1]
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise

    def watch(self, info, namespace, resource_version, label_selector=None, timeout_seconds=290):
        """A watch stream from ``resource_version``: iterate (event_type, object); close() from anywhere."""
        query = [("watch", "true"), ("allowWatchBookmarks", "true"),
                 ("timeoutSeconds", str(int(max(1, timeout_seconds))))]
        if resource_version:
            query.append(("resourceVersion", resource_version))
        if label_selector:
            query.append(("labelSelector", label_selector))
        path = flux_kinds.collection_path(info, namespace)
        try:
            # Read timeout a little past the server's own, so a silently dead connection ends too.
            response = self._send("GET", path, query, None, None, (self.timeout, timeout_seconds + 15), stream=True)
        except KubeError as exc:
            if exc.status == 410:
                raise WatchGone(exc.detail or "watch expired")
            raise
        return WatchStream(response, self, path)


class WatchStream(object):
    """Newline-delimited watch events of a urllib3 response; close() unblocks a pending read."""

    def __init__(self, raw, client=None, path=None):
        self._raw = raw
        self._client = client
        self._path = path
        self._closed = False

    def __iter__(self):
        buf = b""
        try:
            for chunk in self._raw.stream(amt=None, decode_content=False):
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if line.strip():
                        yield self._event(line)
            if buf.strip():
                yield self._event(buf)
        except (WatchGone, KubeError):
            raise
        except Exception as exc:
            if self._closed:
                return
            if self._client is not None:
                raise transport_error(exc, self._client.label, "GET", self._path, self._client.server)
            raise

    def _event(self, line):
        event = json.loads(line)
        etype, obj = event.get("type"), event.get("object") or {}
        if etype == "ERROR":
            if obj.get("code") == 410 or obj.get("reason") in ("Expired", "Gone"):
                raise WatchGone(obj.get("message") or "watch expired")
            client = self._client
            raise KubeError(obj.get("code") or 0, "watch error: %s" % (obj.get("message") or obj), reason=obj.get("reason"),
                            cluster=client.label if client else None, method="GET", path=self._path)
        return etype, obj

    def close(self):
        self._closed = True
        for step in ("shutdown", "close", "release_conn"):
            try:
                getattr(self._raw, step)()
            except Exception:  # already closed or an older urllib3 without shutdown()
                pass


def _payload(raw):
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        return {"message": raw.decode("utf-8", "replace")[:500] if isinstance(raw, bytes) else str(raw)[:500]}


def _not_sent(exc):
    """True when the request never left: the connection could not be opened."""
    seen = exc
    while seen is not None:
        if type(seen).__name__ in ("NewConnectionError", "ConnectTimeoutError", "NameResolutionError", "ConnectionRefusedError"):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _retry_after(response):
    value = (response.headers or {}).get("Retry-After")
    try:
        return min(MAX_RETRY_AFTER, max(0.0, float(value)))
    except (TypeError, ValueError):
        return None


def client_from_params(params, cluster=None, workers=8, timeout=None, use_env=True, **kwargs):
    """A KubeClient for the shared auth options of a module."""
    conn = connection(params, cluster=cluster, use_env=use_env)
    return KubeClient(conn, timeout=timeout or (params or {}).get("request_timeout") or 30, workers=workers, **kwargs)


def client_from_kubeconfig(kubeconfig, context=None, cluster=None, timeout=30, workers=2, **kwargs):
    """A KubeClient from a kubeconfig alone (mapping, text or path) - no K8S_AUTH_* fallbacks."""
    conn = connection({"kubeconfig": kubeconfig, "context": context}, cluster=cluster, use_env=False)
    return KubeClient(conn, timeout=timeout, workers=workers, **kwargs)
