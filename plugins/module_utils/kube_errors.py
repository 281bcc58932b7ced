# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)
"""The one error type of the Kubernetes layer, and its one message per kind of failure.

Every failure of a request - the connection (refused, DNS, TLS, timeout, dropped), the
credential (401), the permission (403) or the API's own answer (404, 409, 422, 5xx) - becomes a
``KubeError`` that names the cluster (kubeconfig context and server URL), the request and what to
check. Modules print ``str(error)``; callers decide by ``status`` / ``category``.

Pure Python: no Ansible, no kubernetes imports; urllib3 exceptions are recognised by class name
and errno so this file imports nothing heavy.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import re

# category -> what to check (appended to the message)
HINTS = {
    "refused": "is the API server running, and are the host and port of the server URL right?",
    "dns": "check the host name of the server URL in the kubeconfig and the controller's DNS",
    "tls": "check the CA (certificate-authority-data / ca_cert) and tls-server-name of the kubeconfig; "
           "validate_certs=false only for throw-away test clusters",
    "client-cert": "the API server rejected the client certificate at the TLS handshake: check "
                   "client-certificate-data / client-key-data (signed by the cluster's client CA, not expired)",
    "timeout": "is the server reachable from the controller (firewall, proxy, VPN)? if it is just slow, raise request_timeout",
    "connection": "the connection dropped; retried where safe - check the network path and the API server's health",
    "unauthorized": "the credential (token or client certificate) is wrong or expired: renew the kubeconfig",
    "forbidden": "grant the permission to the kubeconfig's user (RBAC), or use a kubeconfig that has it",
    "throttled": "the API server kept answering 429 (too many requests): retry later or lower workers",
    "server": "the API server failed; it may be overloaded or restarting",
    "config": "fix the connection options or the kubeconfig",
}
# HTTP status -> category
_STATUS = {401: "unauthorized", 403: "forbidden", 404: "not-found", 409: "conflict", 410: "gone",
           422: "invalid", 429: "throttled"}
# categories that are the API's answer about an object, not about the connection or credential
_ANSWERS = frozenset(["not-found", "conflict", "gone", "invalid", "http"])
_VERBS = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
_PATH = re.compile(r"^/(?:api/v1|apis/(?P<group>[^/]+)/[^/]+)(?:/namespaces/(?P<ns>[^/]+))?/(?P<plural>[^/?]+)(?:/(?P<name>[^/?]+))?")


class KubeError(Exception):
    """A request to a cluster failed. ``str()`` is the whole message; attributes for callers.

    ``status``: HTTP status (0 when no answer came); ``category``: refused, dns, tls, client-cert,
    timeout, connection, unauthorized, forbidden, not-found, conflict, gone, invalid, throttled,
    server, http or config; ``reason``: the API Status reason; ``cluster``: how the cluster is
    named (context and server URL); ``method``/``path``/``url``: the request; ``detail``: the
    server's or the library's own message.

    ``KubeError(status, message)`` (positional) still works, as the old ApiError did.
    """

    def __init__(self, status=0, message="", reason=None, category=None, cluster=None, method=None, path=None,
                 url=None, hint=None):
        self.status = int(status or 0)
        self.detail = message or ""
        self.reason = reason
        self.category = category or category_of(self.status)
        self.cluster = cluster
        self.method = method
        self.path = path
        self.url = url
        self.hint = hint
        super(KubeError, self).__init__(self._render())

    @property
    def retryable(self):
        """Worth retrying later (throttling, server failures, no answer at all)."""
        return self.category in ("refused", "timeout", "connection", "throttled", "server") or self.status >= 500

    def _render(self):
        if self.category in _ANSWERS and self.detail:
            # The API's verdict on one object: its own message says it all; callers name the object.
            return "%s (HTTP %s%s)" % (self.detail, self.status, " %s" % self.reason if self.reason else "")
        request = ("%s %s" % (self.method, self.path)) if self.method and self.path else (self.path or "")
        where = self.cluster or self.url
        head = _headline(self)
        text = "cluster %s: %s" % (where, head) if where else head
        if request:
            text += " (%s)" % request
        if self.detail and self.detail.lower() not in head.lower():
            text += ": %s" % self.detail
        hint = self.hint if self.hint is not None else HINTS.get(self.category)
        if hint:
            text += " - %s" % hint
        return text

    def __reduce__(self):  # picklable across thread pools and multiprocessing
        return (_rebuild, (self.__dict__,))


def _rebuild(state):
    err = KubeError.__new__(KubeError)
    err.__dict__.update(state)
    Exception.__init__(err, err._render())
    return err


def category_of(status):
    if not status:
        return "connection"
    if status in _STATUS:
        return _STATUS[status]
    return "server" if status >= 500 else "http"


def describe_request(method, path):
    """'patch helmreleases.helm.toolkit.fluxcd.io in namespace x' for a 403 message."""
    match = _PATH.match(path or "")
    if not match:
        return "%s %s" % (_VERBS.get(method, method.lower() if method else "call"), path)
    verb = _VERBS.get(method, (method or "").lower())
    if method == "GET" and not match.group("name"):
        verb = "list"
    resource = match.group("plural") + ("." + match.group("group") if match.group("group") else "")
    text = "%s %s" % (verb, resource)
    if match.group("ns"):
        text += " in namespace %s" % match.group("ns")
    return text


def _headline(err):
    cat = err.category
    if cat == "forbidden":
        return "forbidden (403): the credential may not %s" % describe_request(err.method, err.path)
    return {
        "unauthorized": "unauthorized (401): the credential was rejected",
        "refused": "connection refused",
        "dns": "cannot resolve the server's host name",
        "tls": "TLS verification of the server failed",
        "client-cert": "TLS handshake failed",
        "timeout": "no answer in time",
        "connection": "connection failed",
        "config": "cannot connect",
        "throttled": "too many requests (429)",
    }.get(cat) or "HTTP %s%s" % (err.status, " %s" % err.reason if err.reason else "")


# --------------------------------------------------------------------------- transport failures

def _chain(exc):
    seen = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = getattr(exc, "reason", None) if isinstance(getattr(exc, "reason", None), BaseException) else (
            exc.__cause__ or exc.__context__)
    return seen


def classify(exc):
    """(category, detail) of a transport exception (urllib3, ssl, socket); never raises."""
    chain = _chain(exc)
    names = set(type(e).__name__ for e in chain)
    text = " | ".join(str(e) for e in chain)
    lowered = text.lower()
    for e in chain:
        code = getattr(e, "errno", None)
        if code == errno.ECONNREFUSED or isinstance(e, ConnectionRefusedError):
            return "refused", "connection refused"
    if "NameResolutionError" in names or "gaierror" in names or "name or service not known" in lowered \
            or "failed to resolve" in lowered or "nodename nor servname" in lowered:
        return "dns", _short(chain, "name resolution failed")
    if "SSLError" in names or "SSLCertVerificationError" in names or "certificate" in lowered or "ssl" in lowered:
        if "certificate_verify_failed" in lowered or "mismatch" in lowered or "doesn't match" in lowered \
                or "self-signed" in lowered or "self signed" in lowered or "unable to get local issuer" in lowered:
            return "tls", _ssl_detail(lowered, chain)
        return "client-cert", _short(chain, "TLS handshake failed")
    if "ReadTimeoutError" in names or "ConnectTimeoutError" in names or "timeout" in lowered or "timed out" in lowered:
        return "timeout", _short(chain, "timed out")
    return "connection", _short(chain, "connection failed")


def _ssl_detail(lowered, chain):
    if "mismatch" in lowered or "doesn't match" in lowered:
        return "the server's certificate is not valid for this host name"
    if "self-signed" in lowered or "self signed" in lowered or "unable to get local issuer" in lowered:
        return "the server's certificate is not signed by the configured CA"
    if "expired" in lowered:
        return "the server's certificate has expired"
    return _short(chain, "certificate verify failed")


def _short(chain, default):
    """The innermost message, without urllib3's connection-object prefix."""
    for e in reversed(chain):
        text = str(e).strip()
        if text:
            text = re.sub(r"^<?[A-Za-z.]*Connection(?:Pool)?\b[^:]*:\s*", "", text)
            return text[:300]
    return default


def transport_error(exc, cluster, method, path, url, timeout=None):
    """A KubeError for an exception raised while sending/receiving ``method path``."""
    category, detail = classify(exc)
    if category == "timeout" and timeout:
        detail = "%s (request_timeout %ss)" % (detail, timeout)
    return KubeError(0, detail, category=category, cluster=cluster, method=method, path=path, url=url)


class WatchGone(Exception):
    """The watch's resourceVersion is too old (410 Gone / Expired): re-list."""
