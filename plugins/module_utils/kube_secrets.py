# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)
"""Which strings of the connection options are credentials (for the module's no_log_values).

A kubeconfig given inline (a mapping, or the YAML text itself, typically from a vault variable)
holds the hub's token or client key. The option cannot be ``no_log=True``: Ansible would then
mask *every* leaf of the mapping - ``v1``, the context and cluster names, the server URL - as a
substring of every value the module returns (``source.toolkit.fluxcd.io/********``). Instead,
like kubernetes.core, the credential values are picked out and registered as no_log values
before anything is logged (see kube_module.KubeModule), so ``invocation.module_args`` shows the
kubeconfig with its credentials masked and everything else readable.

Pure Python, no Ansible imports.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Keys whose string values are credentials wherever they appear in a kubeconfig (users[].user,
# auth-provider config, exec env, ...). The CA is public, but masking it costs nothing.
SENSITIVE_KEYS = frozenset([
    "token", "password", "secret", "client-key-data", "client-certificate-data",
    "certificate-authority-data", "id-token", "refresh-token", "access-token", "client-secret",
    "api_key", "apiKey",
])
PEM_MARKER = "-----BEGIN"


def looks_like_content(value):
    """True when a string option holds kubeconfig/PEM text rather than a file path."""
    if not isinstance(value, str) or not value.strip():
        return False
    text = value.lstrip()
    return "\n" in value or text.startswith(("{", PEM_MARKER, "apiVersion:", "kind:", "clusters:", "users:"))


def _walk(data, out):
    if isinstance(data, dict):
        for key, value in data.items():
            if key in SENSITIVE_KEYS and isinstance(value, str):
                _add(out, value)
            elif key == "value" and isinstance(value, str) and isinstance(data.get("name"), str):
                _add(out, value)  # exec env entries {name, value}: any of them may be a credential
            else:
                _walk(value, out)
    elif isinstance(data, (list, tuple)):
        for item in data:
            _walk(item, out)


def _add(out, value):
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str) and value.strip():
        out.add(value)
        if value.strip() != value:
            out.add(value.strip())


def _parse(text):
    try:
        import yaml
    except ImportError:  # pragma: no cover - PyYAML ships with ansible-core
        return None
    try:
        return yaml.safe_load(text)
    except Exception:  # invalid YAML: the whole text is still masked by the caller
        return None


def kubeconfig_secrets(value):
    """The credential strings of a kubeconfig option value (path, mapping or YAML text).

    A path yields nothing (the file is read later, its values never enter the arguments). Text
    yields itself as a whole plus every credential parsed from it; a mapping its credentials.
    """
    out = set()
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        if not looks_like_content(value):
            return out
        _add(out, value)
        value = _parse(value)
    _walk(value, out)
    return out


def inline_pem_secrets(value):
    """ca_cert/client_cert/client_key given as PEM text (not a path): the whole text."""
    out = set()
    if isinstance(value, str) and PEM_MARKER in value:
        _add(out, value)
    return out


def auth_secrets(params, kubeconfig_options=("kubeconfig",)):
    """Every credential string in ``params``: kubeconfig options, api_key, inline PEM material.

    ``kubeconfig_options`` names the options holding a kubeconfig (path, mapping or text); an
    option holding a *mapping of* kubeconfigs (cluster -> kubeconfig) is walked value by value.
    """
    out = set()
    for name in kubeconfig_options:
        value = (params or {}).get(name)
        if isinstance(value, dict) and not _is_kubeconfig(value):
            for item in value.values():
                out |= kubeconfig_secrets(item)
        else:
            out |= kubeconfig_secrets(value)
    api_key = (params or {}).get("api_key")
    if isinstance(api_key, str):
        _add(out, api_key)
    for name in ("client_key", "client_cert", "key_file", "cert_file"):
        out |= inline_pem_secrets((params or {}).get(name))
    return out


def _is_kubeconfig(value):
    return any(key in value for key in ("clusters", "users", "contexts", "current-context", "apiVersion", "kind"))
