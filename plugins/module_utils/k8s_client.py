# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)
"""Connection options shared by every cluster-facing module, and the API client built from them.

The option names follow kubernetes.core's auth options so that users can move a
``module_defaults`` block between the two collections. Documented in the doc fragment
``c5c3.gitops.k8s_auth``; the two must change together.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

try:
    from ansible_collections.c5c3.gitops.plugins.module_utils.kube_secrets import looks_like_content
except ImportError:  # pragma: no cover - running outside the collection layout
    from kube_secrets import looks_like_content  # type: ignore

K8S_AUTH_ARGSPEC = dict(
    # Deliberately not no_log=True: for a mapping, Ansible would mask every leaf ("v1", names,
    # the server URL) as a substring of everything the module returns. KubeModule registers the
    # kubeconfig's credentials (or a kubeconfig text as a whole) as no_log values instead.
    kubeconfig=dict(type="raw", no_log=False),
    context=dict(type="str"),
    host=dict(type="str"),
    api_key=dict(type="str", no_log=True),
    validate_certs=dict(type="bool", aliases=["verify_ssl"]),
    ca_cert=dict(type="path", aliases=["ssl_ca_cert"]),
    client_cert=dict(type="path", aliases=["cert_file"]),
    client_key=dict(type="path", aliases=["key_file"], no_log=False),
    request_timeout=dict(type="int", default=30),
)

# Environment fallbacks, as kubernetes.core reads them (K8S_AUTH_*).
_ENV = {
    "kubeconfig": "K8S_AUTH_KUBECONFIG",
    "context": "K8S_AUTH_CONTEXT",
    "host": "K8S_AUTH_HOST",
    "api_key": "K8S_AUTH_API_KEY",
    "ca_cert": "K8S_AUTH_SSL_CA_CERT",
    "client_cert": "K8S_AUTH_CERT_FILE",
    "client_key": "K8S_AUTH_KEY_FILE",
}


class K8sClientError(Exception):
    """The cluster connection could not be set up (missing library, bad kubeconfig, ...)."""


def auth_params(params):
    """Return the auth options from module params, filled from K8S_AUTH_* variables."""
    out = {}
    for key in K8S_AUTH_ARGSPEC:
        value = params.get(key)
        if value is None and key in _ENV:
            value = os.environ.get(_ENV[key])
        out[key] = value
    kubeconfig = out.get("kubeconfig")
    if isinstance(kubeconfig, bytes):
        kubeconfig = kubeconfig.decode("utf-8")
    if looks_like_content(kubeconfig):  # the kubeconfig's text itself, not a path
        try:
            import yaml
            out["kubeconfig"] = yaml.safe_load(kubeconfig)
        except Exception:  # never quote the text: YAML errors would
            raise K8sClientError("the kubeconfig option holds text that is not a valid kubeconfig (YAML)")
        if not isinstance(out["kubeconfig"], dict):
            raise K8sClientError("the kubeconfig option holds text that is not a kubeconfig mapping")
    if out.get("validate_certs") is None:
        env = os.environ.get("K8S_AUTH_VERIFY_SSL")
        if env is not None:
            out["validate_certs"] = env.lower() in ("1", "true", "yes", "on")
    return out


def build_api_client(params):
    """Build a ``kubernetes.client.ApiClient`` from module params.

    ``kubeconfig`` may be a path or an already-parsed kubeconfig dict (for a kubeconfig that
    lives in a vault variable and must never touch the disk).
    """
    try:
        from kubernetes import client, config
    except ImportError as exc:  # pragma: no cover - depends on the controller's Python
        raise K8sClientError(
            "the Python 'kubernetes' library (and 'jsonpatch') is required on the controller: %s" % exc
        )
    p = auth_params(params)
    configuration = client.Configuration()
    try:
        if p.get("host") or p.get("api_key"):
            configuration.host = p.get("host")
            if p.get("api_key"):
                configuration.api_key = {"authorization": "Bearer %s" % p["api_key"]}
        else:
            kubeconfig = p.get("kubeconfig")
            if isinstance(kubeconfig, dict):
                config.load_kube_config_from_dict(
                    kubeconfig, context=p.get("context"), client_configuration=configuration
                )
            else:
                path = os.path.expanduser(kubeconfig) if kubeconfig else None
                config.load_kube_config(
                    config_file=path, context=p.get("context"), client_configuration=configuration
                )
    except Exception as exc:  # the library raises several unrelated types here
        raise K8sClientError("cannot load cluster credentials: %s" % exc)
    if p.get("ca_cert"):
        configuration.ssl_ca_cert = p["ca_cert"]
    if p.get("client_cert"):
        configuration.cert_file = p["client_cert"]
    if p.get("client_key"):
        configuration.key_file = p["client_key"]
    if p.get("validate_certs") is not None:
        configuration.verify_ssl = p["validate_certs"]
    return client.ApiClient(configuration)


def request_timeout(params):
    """Per-request timeout in seconds (connect and read) for non-watch calls."""
    return params.get("request_timeout") or 30
