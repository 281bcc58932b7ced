# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)
"""Connection options; pairs with K8S_AUTH_ARGSPEC in plugins/module_utils/kube_auth.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - Path to a kubeconfig file, or the kubeconfig itself as a dictionary or as its YAML text
        (for a kubeconfig kept in a vault-encrypted variable; it is then never written to disk).
      - Given inline, its credentials (tokens, client keys and certificates, passwords) and a text
        as a whole are registered as no_log values before anything is logged, so they never
        appear in the output at any verbosity or in diffs; the rest stays readable.
      - Defaults to E(K8S_AUTH_KUBECONFIG), then C(~/.kube/config).
    type: raw
  context:
    description: The kubeconfig context to use. Defaults to E(K8S_AUTH_CONTEXT), then the current context.
    type: str
  host:
    description: URL of the API server, when not using a kubeconfig. Defaults to E(K8S_AUTH_HOST).
    type: str
  api_key:
    description: Bearer token for O(host). Defaults to E(K8S_AUTH_API_KEY).
    type: str
  validate_certs:
    description: Whether to verify the API server's certificate. Defaults to E(K8S_AUTH_VERIFY_SSL).
    type: bool
    aliases: [verify_ssl]
  ca_cert:
    description: CA bundle to verify the API server with. Defaults to E(K8S_AUTH_SSL_CA_CERT).
    type: path
    aliases: [ssl_ca_cert]
  client_cert:
    description: Client certificate file. Defaults to E(K8S_AUTH_CERT_FILE).
    type: path
    aliases: [cert_file]
  client_key:
    description: Client key file. Defaults to E(K8S_AUTH_KEY_FILE).
    type: path
    aliases: [key_file]
  request_timeout:
    description: Timeout in seconds of a single API request (not of a wait).
    type: int
    default: 30
notes:
  - Requests are retried (bounded, with backoff) on C(429), on C(5xx) and dropped connections when
    they are idempotent, and when a connection could not be opened. Every failure names the cluster
    (server URL and kubeconfig context), the request and what to check (connection refused, DNS,
    TLS verification, C(401) wrong or expired credential, C(403) the missing permission, timeouts).
requirements:
  - python >= 3.9
  - urllib3
  - PyYAML
  - the Python C(kubernetes) library only for kubeconfigs with a legacy C(auth-provider)
"""
