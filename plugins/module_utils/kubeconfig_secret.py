# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)
"""A spoke's kubeconfig Secret on the hub: read, check, probe the spoke, then write.

Order matters and is the point of this module: nothing is written to the hub until the
kubeconfig has passed ``kubeconfig_check`` (no exec/auth-provider/local files) and has been used
to reach the spoke (``preflight``: probe, credential hygiene, access reviews). No function here returns or raises with credential text; ``secret_values``
lists every credential string so the caller can register them as no_log values.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import hashlib
import os

from ansible_collections.c5c3.gitops.plugins.module_utils.kubeconfig_check import KubeconfigError, check_kubeconfig
from ansible_collections.c5c3.gitops.plugins.module_utils.apply import CLUSTER_LABEL, MANAGED_BY, MANAGED_BY_VALUE, STAGE_LABEL
from ansible_collections.c5c3.gitops.plugins.module_utils.kube import client_from_kubeconfig

WATCH_LABEL = "reconcile.fluxcd.io/watch"
SECRET_KEY = "value"
# C5C3's operators (multicluster-runtime's kubeconfig provider) find target clusters by this.
MCR_LABEL = "sigs.k8s.io/multicluster-runtime-kubeconfig"
MCR_KEY = "kubeconfig"
MCR_NAMESPACES_KEY = "namespaces"
MCR_NAMESPACE = "c5c3-clusters"
_CREDENTIAL_KEYS = ("token", "client-key-data", "client-certificate-data", "password", "username")


class KubeconfigSecretError(Exception):
    """The kubeconfig is unusable or the spoke cannot be reached with it; nothing was written."""


def resolve_path(path, base=None):
    """A kubeconfig path from the inventory: ~ expanded, relative paths taken from ``base``."""
    path = os.path.expanduser(path)
    if not os.path.isabs(path) and base:
        path = os.path.join(base, path)
    return path


def load(text, label):
    """Parse kubeconfig text; errors never quote the text (YAML errors would)."""
    try:
        import yaml
    except ImportError:  # pragma: no cover
        raise KubeconfigSecretError("PyYAML is required on the controller")
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = " at line %d" % (mark.line + 1) if mark is not None else ""
        raise KubeconfigSecretError("%s: not valid YAML%s" % (label, where))
    return data


def secret_values(kubeconfig):
    """Every credential string of the kubeconfig (users' tokens, keys, certs, passwords)."""
    out = set()
    for item in (kubeconfig or {}).get("users") or []:
        user = (item or {}).get("user") or {}
        for key in _CREDENTIAL_KEYS:
            value = user.get(key)
            if isinstance(value, str) and len(value) >= 8:
                out.add(value)
    return out


def scrub(message, secrets):
    for value in secrets:
        message = message.replace(value, "<redacted>")
    return message


def checksum(text):
    if isinstance(text, str):
        text = text.encode("utf-8")
    return hashlib.sha256(text).hexdigest()


def secret_manifest(cluster, name, namespace, text, extra_labels=None):
    if isinstance(text, str):
        text = text.encode("utf-8")
    labels = {MANAGED_BY: MANAGED_BY_VALUE, STAGE_LABEL: "clusters", CLUSTER_LABEL: cluster, WATCH_LABEL: "Enabled"}
    labels.update(extra_labels or {})
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "data": {SECRET_KEY: base64.b64encode(text).decode("ascii")},
    }


def mcr_secret_manifest(cluster, name, namespace, text, namespaces=None, extra_labels=None):
    """The multicluster-runtime form: key ``kubeconfig``, optional comma-separated ``namespaces``."""
    if isinstance(text, str):
        text = text.encode("utf-8")
    labels = {MANAGED_BY: MANAGED_BY_VALUE, STAGE_LABEL: "clusters", CLUSTER_LABEL: cluster, MCR_LABEL: "true"}
    labels.update(extra_labels or {})
    data = {MCR_KEY: base64.b64encode(text).decode("ascii")}
    if namespaces:
        data[MCR_NAMESPACES_KEY] = base64.b64encode(",".join(namespaces).encode("utf-8")).decode("ascii")
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "data": data,
    }


def check(kubeconfig, context, cluster):
    try:
        return check_kubeconfig(kubeconfig, context=context, label="cluster %s kubeconfig" % cluster)
    except KubeconfigError as exc:
        raise KubeconfigSecretError(str(exc))


def spoke_client(kubeconfig, context, timeout, cluster=None):
    """A client for the spoke built from the dict only (no K8S_AUTH_* environment fallbacks)."""
    return client_from_kubeconfig(kubeconfig, context=context, cluster=cluster, timeout=timeout, workers=2)
