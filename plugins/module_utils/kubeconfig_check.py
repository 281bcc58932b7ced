# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)
"""Is a kubeconfig usable by Flux from a Secret on the hub?

Flux's kustomize- and helm-controller read a spoke's kubeconfig from a Secret: there is no
``exec`` plugin binary, no cloud ``auth-provider`` and no local file in their pods. A kubeconfig
that relies on any of those loads fine on an operator's laptop and fails only later, on the
hub, as a reconcile error. This module refuses it up front and names the user/context.
Pure Python, no Ansible imports; never puts a credential into an error message.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class KubeconfigError(ValueError):
    """The kubeconfig cannot be used by Flux (or is not a kubeconfig at all)."""


def _named(items, kind, where):
    """kubeconfig lists ``[{name, <kind>: {...}}]`` -> {name: body}."""
    if items is None:
        return {}
    if not isinstance(items, list):
        raise KubeconfigError("%s: '%ss' must be a list" % (where, kind))
    out = {}
    for item in items:
        if not isinstance(item, dict) or not item.get("name"):
            raise KubeconfigError("%s: every entry of '%ss' needs a name" % (where, kind))
        body = item.get(kind)
        out[item["name"]] = body if isinstance(body, dict) else {}
    return out


def check_kubeconfig(kubeconfig, context=None, label="kubeconfig"):
    """Validate a parsed kubeconfig for use by Flux; return what was selected.

    :param kubeconfig: the kubeconfig as a dict (already parsed YAML).
    :param context: context to use; defaults to ``current-context``.
    :param label: how to name this kubeconfig in errors (e.g. the cluster it belongs to).
    :returns: dict ``server``, ``context``, ``cluster`` (kubeconfig cluster entry name), ``user``
        and ``auth`` (``token``, ``client-certificate`` or ``basic``). No credential values.
    :raises KubeconfigError: naming the context/user/cluster entry at fault.
    """
    if not isinstance(kubeconfig, dict):
        raise KubeconfigError("%s: not a kubeconfig (expected a mapping, got %s)" % (label, type(kubeconfig).__name__))
    contexts = _named(kubeconfig.get("contexts"), "context", label)
    clusters = _named(kubeconfig.get("clusters"), "cluster", label)
    users = _named(kubeconfig.get("users"), "user", label)

    name = context or kubeconfig.get("current-context")
    if not name:
        raise KubeconfigError("%s: no context given and no current-context set" % label)
    if name not in contexts:
        raise KubeconfigError("%s: context %r does not exist (contexts: %s)" % (label, name, ", ".join(sorted(contexts)) or "none"))
    ctx = contexts[name]
    cluster_name, user_name = ctx.get("cluster"), ctx.get("user")
    if not cluster_name or cluster_name not in clusters:
        raise KubeconfigError("%s: context %r names cluster %r, which is not in the kubeconfig" % (label, name, cluster_name))
    if not user_name or user_name not in users:
        raise KubeconfigError("%s: context %r names user %r, which is not in the kubeconfig" % (label, name, user_name))

    cluster = clusters[cluster_name]
    server = cluster.get("server")
    if not server or not isinstance(server, str):
        raise KubeconfigError("%s: cluster %r (context %r) has no server URL" % (label, cluster_name, name))
    if not server.startswith(("https://", "http://")):
        raise KubeconfigError("%s: cluster %r (context %r) server %r is not an http(s) URL" % (label, cluster_name, name, server))
    if cluster.get("certificate-authority") and not cluster.get("certificate-authority-data"):
        raise KubeconfigError(
            "%s: cluster %r (context %r) points to a CA file (certificate-authority); Flux reads the "
            "kubeconfig from a Secret and cannot read local files: embed it as certificate-authority-data"
            % (label, cluster_name, name)
        )

    user = users[user_name]
    where = "%s: user %r (context %r)" % (label, user_name, name)
    if user.get("exec"):
        raise KubeconfigError(
            "%s uses exec credentials (%s); Flux cannot run credential plugins: use a token or "
            "client certificate embedded in the kubeconfig" % (where, (user["exec"] or {}).get("command", "plugin"))
        )
    if user.get("auth-provider"):
        raise KubeconfigError(
            "%s uses an auth-provider (%s); Flux cannot use it: use a token or client certificate "
            "embedded in the kubeconfig" % (where, (user["auth-provider"] or {}).get("name", "provider"))
        )
    for key, embedded in (("client-certificate", "client-certificate-data"), ("client-key", "client-key-data"), ("tokenFile", "token")):
        if user.get(key) and not user.get(embedded):
            raise KubeconfigError(
                "%s points to a local file (%s); Flux cannot read local files: embed it as %s" % (where, key, embedded)
            )
    if user.get("token"):
        auth = "token"
    elif user.get("client-certificate-data") and user.get("client-key-data"):
        auth = "client-certificate"
    elif user.get("client-certificate-data") or user.get("client-key-data"):
        raise KubeconfigError("%s has only half of a client certificate: both client-certificate-data and client-key-data are needed" % where)
    elif user.get("username") and user.get("password"):
        auth = "basic"
    else:
        raise KubeconfigError(
            "%s has no usable embedded credentials (token, client-certificate-data + client-key-data, "
            "or username + password)" % where
        )
    return {"server": server, "context": name, "cluster": cluster_name, "user": user_name, "auth": auth}
