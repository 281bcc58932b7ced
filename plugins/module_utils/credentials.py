# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)
"""Credential hygiene of a kubeconfig, and the words for what went wrong reaching a cluster.

Pure functions, no I/O and no Ansible imports, so unit tests drive them with generated
certificates and tokens:

- ``inspect(kubeconfig, context, now, warn_days)``: the client certificate's validity window
  (``notBefore``/``notAfter``) and whether the key belongs to it, a JWT bearer token's ``exp``/``nbf``,
  the CA bundle (parsable, not expired). Returns ``errors`` (the run must stop before any write)
  and ``warnings`` (expiry within ``warn_days``), never a credential value.
- ``classify(status, message)``: one clear sentence for a transport or HTTP failure (401 says
  "unauthorized", a refused connection "cannot connect", a TLS verify failure names the CA).
- ``access_reviews`` / ``missing_access``: what Flux needs on a spoke as SelfSubjectAccessReview
  bodies, and which of them the server denied.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import datetime
import json
import re

DEFAULT_WARN_DAYS = 30

# What Flux's controllers do on a spoke through its kubeconfig Secret (helm-controller installs
# charts with their CRDs, namespaces, workloads and RBAC; kustomize-controller applies manifests
# and prunes; Helm keeps release records as Secrets in the storage namespace). Cluster-wide
# (no namespace): the releases target many namespaces.
FLUX_SPOKE_ACCESS = (
    {"verb": "create", "resource": "namespaces"},
    {"verb": "patch", "resource": "namespaces"},
    {"verb": "create", "group": "apiextensions.k8s.io", "resource": "customresourcedefinitions"},
    {"verb": "patch", "group": "apiextensions.k8s.io", "resource": "customresourcedefinitions"},
    {"verb": "create", "group": "apps", "resource": "deployments"},
    {"verb": "create", "resource": "serviceaccounts"},
    {"verb": "create", "resource": "services"},
    {"verb": "create", "resource": "configmaps"},
    {"verb": "create", "resource": "secrets"},
    {"verb": "list", "resource": "secrets"},
    {"verb": "delete", "resource": "secrets"},
    {"verb": "create", "group": "rbac.authorization.k8s.io", "resource": "clusterroles"},
    {"verb": "create", "group": "rbac.authorization.k8s.io", "resource": "clusterrolebindings"},
)
# What a run of this collection does on the hub itself.
HUB_ACCESS = (
    {"verb": "create", "resource": "namespaces"},
    {"verb": "create", "resource": "secrets"},
    {"verb": "patch", "resource": "secrets"},
    {"verb": "create", "group": "apiextensions.k8s.io", "resource": "customresourcedefinitions"},
    {"verb": "patch", "group": "helm.toolkit.fluxcd.io", "resource": "helmreleases"},
    {"verb": "patch", "group": "kustomize.toolkit.fluxcd.io", "resource": "kustomizations"},
    {"verb": "create", "group": "coordination.k8s.io", "resource": "leases"},
)


class CredentialError(ValueError):
    """A credential that cannot be inspected (unparsable data)."""


# --------------------------------------------------------------------------- kubeconfig access

def _named(items, key):
    return dict((i.get("name"), i.get(key) or {}) for i in items or [] if isinstance(i, dict))


def selected(kubeconfig, context=None):
    """(cluster entry, user entry) of the context (defaults to current-context); {} when absent."""
    kubeconfig = kubeconfig if isinstance(kubeconfig, dict) else {}
    ctx = _named(kubeconfig.get("contexts"), "context").get(context or kubeconfig.get("current-context")) or {}
    return (_named(kubeconfig.get("clusters"), "cluster").get(ctx.get("cluster")) or {},
            _named(kubeconfig.get("users"), "user").get(ctx.get("user")) or {})


def _b64(value, what):
    try:
        return base64.b64decode(value, validate=False)
    except (binascii.Error, TypeError, ValueError):
        raise CredentialError("%s is not valid base64" % what)


def _utc(dt):
    return dt if dt.tzinfo else dt.replace(tzinfo=datetime.timezone.utc)


def _cert_window(cert):
    after = getattr(cert, "not_valid_after_utc", None) or _utc(cert.not_valid_after)
    before = getattr(cert, "not_valid_before_utc", None) or _utc(cert.not_valid_before)
    return before, after


def load_certs(pem, what):
    """Every certificate of a PEM bundle (bytes); CredentialError when there is none."""
    from cryptography import x509
    blocks = re.findall(b"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", pem, re.S)
    if not blocks:
        raise CredentialError("%s holds no PEM certificate" % what)
    try:
        return [x509.load_pem_x509_certificate(b) for b in blocks]
    except ValueError:
        raise CredentialError("%s holds a certificate that cannot be parsed" % what)


def iso(dt):
    return dt.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _window_findings(what, not_before, not_after, now, warn_days, errors, warnings):
    if not_after <= now:
        errors.append("%s expired at %s" % (what, iso(not_after)))
    elif not_before is not None and not_before > now:
        errors.append("%s is not valid before %s" % (what, iso(not_before)))
    elif not_after - now <= datetime.timedelta(days=warn_days):
        days = (not_after - now).total_seconds() / 86400.0
        warnings.append("%s expires in %.1f days (%s)" % (what, days, iso(not_after)))


def _public_bytes(key):
    from cryptography.hazmat.primitives import serialization
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def jwt_claims(token):
    """The claims of a JWT (unverified: only the expiry is of interest), or None for opaque tokens."""
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 3:
        return None
    try:
        decoded = []
        for part in parts[:2]:
            decoded.append(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)).decode("utf-8")))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    header, claims = decoded
    if not isinstance(header, dict) or "alg" not in header or not isinstance(claims, dict):
        return None
    return claims


def _epoch(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return datetime.datetime.fromtimestamp(value, tz=datetime.timezone.utc)


def inspect(kubeconfig, context=None, now=None, warn_days=DEFAULT_WARN_DAYS):
    """Credential findings of the context's user and cluster.

    :returns: dict ``errors`` (list of sentences), ``warnings`` (list), ``credential``
        ({kind, expires (ISO or None), subject}) and ``ca`` ({certificates, expires}). No values.
    """
    now = _utc(now or datetime.datetime.now(datetime.timezone.utc))
    cluster, user = selected(kubeconfig, context)
    errors, warnings = [], []
    credential = {"kind": None, "expires": None, "subject": None}
    ca = {"certificates": 0, "expires": None, "verified": not cluster.get("insecure-skip-tls-verify", False)}
    try:
        if user.get("client-certificate-data"):
            credential["kind"] = "client-certificate"
            certs = load_certs(_b64(user["client-certificate-data"], "client-certificate-data"), "client-certificate-data")
            cert = certs[0]
            not_before, not_after = _cert_window(cert)
            credential["expires"] = iso(not_after)
            credential["subject"] = cert.subject.rfc4514_string()
            _window_findings("the client certificate (%s)" % credential["subject"], not_before, not_after, now, warn_days,
                             errors, warnings)
            if user.get("client-key-data"):
                from cryptography.hazmat.primitives import serialization
                try:
                    key = serialization.load_pem_private_key(_b64(user["client-key-data"], "client-key-data"), password=None)
                except (ValueError, TypeError):
                    raise CredentialError("client-key-data is not an unencrypted PEM private key")
                if _public_bytes(key.public_key()) != _public_bytes(cert.public_key()):
                    errors.append("client-key-data does not belong to client-certificate-data (the key and the certificate do not match)")
        elif user.get("token"):
            claims = jwt_claims(user["token"])
            credential["kind"] = "jwt" if claims is not None else "token"
            if claims is not None:
                exp, nbf = _epoch(claims.get("exp")), _epoch(claims.get("nbf"))
                credential["subject"] = claims.get("sub") if isinstance(claims.get("sub"), str) else None
                if exp is not None:
                    credential["expires"] = iso(exp)
                    _window_findings("the bearer token (JWT)", nbf, exp, now, warn_days, errors, warnings)
        elif user.get("username"):
            credential["kind"] = "basic"
        if cluster.get("certificate-authority-data"):
            certs = load_certs(_b64(cluster["certificate-authority-data"], "certificate-authority-data"),
                               "certificate-authority-data")
            ca["certificates"] = len(certs)
            windows = [_cert_window(c) for c in certs]
            usable = [w for w in windows if w[1] > now]
            if not usable:
                errors.append("the CA (certificate-authority-data) expired at %s" % iso(max(w[1] for w in windows)))
            else:
                first = min(usable, key=lambda w: w[1])
                ca["expires"] = iso(first[1])
                _window_findings("the CA (certificate-authority-data)", None, first[1], now, warn_days, [], warnings)
        if cluster.get("insecure-skip-tls-verify"):
            warnings.append("insecure-skip-tls-verify is set: the server's identity is not checked")
    except CredentialError as exc:
        errors.append(str(exc))
    return {"errors": errors, "warnings": warnings, "credential": credential, "ca": ca}


# --------------------------------------------------------------------------- failures, in words

_CHECKS = {
    "connect": "is the API server running and is the server URL right?",
    "tls": "does certificate-authority-data belong to this server?",
    "auth": "the token or client certificate is wrong, expired or revoked",
}


# KubeError categories (kube_errors) -> the wording here
_CATEGORY = {
    "refused": lambda s, t: ("connect", "cannot connect to %s: connection refused; %s" % (s, _CHECKS["connect"])),
    "dns": lambda s, t: ("connect", "cannot connect to %s: the host name does not resolve; %s" % (s, _CHECKS["connect"])),
    "timeout": lambda s, t: ("timeout", "cannot connect to %s: timed out; %s" % (s, _CHECKS["connect"])),
    "connection": lambda s, t: ("connect", "cannot connect to %s: %s" % (s, _short(t))),
    "tls": lambda s, t: ("tls", "TLS: the certificate of %s is not valid for its address; check the server URL or tls-server-name" % s)
    if "host name" in t or "mismatch" in t else ("tls", "TLS: the certificate of %s is not signed by the kubeconfig's CA; %s"
                                                   % (s, _CHECKS["tls"])),
    "client-cert": lambda s, t: ("tls", "TLS handshake with %s failed (the server refused the client certificate?): %s"
                                 % (s, _short(t))),
}


def classify(status, message, server, category=None):
    """One sentence for a failed request to ``server``: (kind, text). ``message`` is already scrubbed;
    ``category`` is the transport's own classification (KubeError.category), when it has one."""
    text = message or ""
    low = text.lower()
    if not status and category in _CATEGORY:
        return _CATEGORY[category](server, text)
    if status == 401:
        return "unauthorized", "unauthorized: %s rejected the credentials (401); %s" % (server, _CHECKS["auth"])
    if status == 403:
        return "forbidden", "forbidden (403) on %s: %s" % (server, text)
    if status and status >= 400:
        return "http", "%s answered HTTP %s: %s" % (server, status, text)
    if "certificate_verify_failed" in low or "certificate verify failed" in low:
        if "hostname" in low or "ip address mismatch" in low or "doesn't match" in low:
            return "tls", "TLS: the certificate of %s is not valid for its address; check the server URL or tls-server-name" % server
        return "tls", ("TLS: the certificate of %s is not signed by the kubeconfig's CA; %s"
                       % (server, _CHECKS["tls"]))
    if "ssl" in low and ("wrong version number" in low or "record layer" in low):
        return "tls", "TLS: %s does not speak HTTPS (wrong port?)" % server
    if "timed out" in low or "timeout" in low:
        return "timeout", "cannot connect to %s: timed out; %s" % (server, _CHECKS["connect"])
    if "refused" in low:
        return "connect", "cannot connect to %s: connection refused; %s" % (server, _CHECKS["connect"])
    if "name or service not known" in low or "nodename nor servname" in low or "failed to resolve" in low \
            or "temporary failure in name resolution" in low:
        return "connect", "cannot connect to %s: the host name does not resolve; %s" % (server, _CHECKS["connect"])
    if "ssl" in low or "tls" in low:
        return "tls", "TLS handshake with %s failed: %s" % (server, _short(text))
    return "connect", "cannot connect to %s: %s" % (server, _short(text))


def _short(text):
    """The innermost reason of a urllib3/requests chain, without the pool's object reprs."""
    match = re.search(r"\[Errno [^\]]+\][^'\")]*", text)
    if match:
        return match.group(0).strip()
    return re.sub(r"<[^<>]* at 0x[0-9a-fA-F]+>", "", text).strip()[:300]


# --------------------------------------------------------------------------- access reviews

def describe_access(item):
    group = item.get("group") or ""
    resource = item["resource"] + ("." + group if group else "")
    where = " in namespace %s" % item["namespace"] if item.get("namespace") else ""
    return "%s %s%s" % (item["verb"], resource, where)


def normalize_access(items):
    out = []
    for index, item in enumerate(items or []):
        if not isinstance(item, dict) or not item.get("verb") or not item.get("resource"):
            raise CredentialError("required_access[%d]: needs verb and resource" % index)
        out.append(dict((k, item[k]) for k in ("verb", "group", "resource", "namespace", "subresource") if item.get(k)))
    return out


def access_review(item):
    """A SelfSubjectAccessReview body for one requirement."""
    attributes = {"verb": item["verb"], "resource": item["resource"], "group": item.get("group") or ""}
    for key in ("namespace", "subresource"):
        if item.get(key):
            attributes[key] = item[key]
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attributes}}


def missing_access(items, responses):
    """Requirements whose review did not come back ``allowed: true`` (a denial or no answer)."""
    out = []
    for item, response in zip(items, responses):
        status = (response or {}).get("status") or {}
        if status.get("allowed") is not True:
            out.append(describe_access(item))
    return out
