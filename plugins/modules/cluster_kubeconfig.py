#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: cluster_kubeconfig
short_description: Register a spoke cluster on the hub as a Flux kubeconfig Secret, after checking it works
version_added: 0.1.0
description:
  - Reads a spoke's kubeconfig (O(kubeconfig_path) or O(kubeconfig_content)), refuses what Flux
    cannot use from a Secret (exec plugins, auth-providers, files referenced by path), connects
    to the spoke with it (C(GET /version) and a namespace list) and only then writes the Secret
    C(<cluster>-kubeconfig) (key C(value)) into the cluster's hub namespace on the hub,
    creating the namespace if needed.
  - The Secret carries C(reconcile.fluxcd.io/watch=Enabled), so Flux reconciles the objects
    that use it when it changes (rotation), and the ownership labels of the collection.
  - The kubeconfig never appears in the output, in error messages or in diffs; diffs show a hash.
  - The hub connection comes from the usual options (O(kubeconfig) is the B(hub's) kubeconfig).
author: c5c3.gitops developers
extends_documentation_fragment:
  - c5c3.gitops.k8s_auth
options:
  cluster:
    description: Name of the spoke cluster (inventory host name).
    type: str
    required: true
  namespace:
    description: The cluster's hub namespace. Defaults to O(cluster).
    type: str
  secret_name:
    description: Name of the Secret. Defaults to C(<cluster>-kubeconfig).
    type: str
  kubeconfig_path:
    description: Path of the spoke's kubeconfig file on the controller.
    type: path
  kubeconfig_content:
    description:
      - The spoke's kubeconfig as text (e.g. from a vault-encrypted variable). Pass a dict
        through C(to_nice_yaml) first.
    type: str
  spoke_context:
    description: Context of the spoke kubeconfig to check and use. Defaults to its current-context.
    type: str
  verify_spoke:
    description: Connect to the spoke before writing. Turn off only for clusters the controller cannot reach.
    type: bool
    default: true
  spoke_timeout:
    description: Timeout in seconds of each request to the spoke.
    type: int
    default: 10
  labels:
    description: Extra labels on the Secret.
    type: dict
    default: {}
  field_manager:
    description: Field manager of the server-side apply.
    type: str
    default: c5c3.gitops
attributes:
  check_mode:
    support: full
    details: Checks and probes the spoke, then a dry-run apply on the hub; nothing is written.
  diff_mode:
    support: full
    details: Shows labels and a hash of the kubeconfig, never its content.
"""

EXAMPLES = r"""
- name: Register the control-plane cluster
  c5c3.gitops.cluster_kubeconfig:
    kubeconfig: /etc/c5c3/management.yaml        # the hub
    cluster: control-plane
    kubeconfig_path: /etc/c5c3/control-plane.yaml

- name: Register a cluster from a vault variable
  c5c3.gitops.cluster_kubeconfig:
    cluster: storage
    kubeconfig_content: "{{ vault_storage_kubeconfig }}"
"""

RETURN = r"""
secret:
  description: Where the Secret is.
  returned: always
  type: dict
  sample: {name: control-plane-kubeconfig, namespace: control-plane, key: value}
spoke:
  description: What was learned about the spoke (no credentials).
  returned: always
  type: dict
  sample: {server: "https://10.0.0.5:6443", version: v1.31.2, auth: client-certificate, context: admin}
created:
  description: Whether the Secret did not exist before (false on a rotation).
  returned: always
  type: bool
checksum:
  description: SHA-256 of the kubeconfig as stored; changes on rotation.
  returned: always
  type: str
"""

import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.c5c3.gitops.plugins.module_utils import kubeconfig_secret as ks
from ansible_collections.c5c3.gitops.plugins.module_utils.apply import Applier, ApplyError
from ansible_collections.c5c3.gitops.plugins.module_utils.k8s_client import (
    K8S_AUTH_ARGSPEC,
    K8sClientError,
    build_api_client,
    request_timeout,
)


def argspec():
    spec = dict(K8S_AUTH_ARGSPEC)
    spec.update(
        cluster=dict(type="str", required=True),
        namespace=dict(type="str"),
        secret_name=dict(type="str"),
        kubeconfig_path=dict(type="path"),
        kubeconfig_content=dict(type="str", no_log=True),
        spoke_context=dict(type="str"),
        verify_spoke=dict(type="bool", default=True),
        spoke_timeout=dict(type="int", default=10),
        labels=dict(type="dict", default={}),
        field_manager=dict(type="str", default="c5c3.gitops"),
    )
    return spec


def run(module):
    p = module.params
    cluster = p["cluster"]
    namespace = p["namespace"] or cluster
    name = p["secret_name"] or "%s-kubeconfig" % cluster
    if p["kubeconfig_path"]:
        try:
            with open(p["kubeconfig_path"], "rb") as handle:
                text = handle.read()
        except (IOError, OSError) as exc:
            raise ks.KubeconfigSecretError("cluster %s: cannot read kubeconfig_path %s: %s" % (cluster, p["kubeconfig_path"], exc.strerror))
    else:
        text = p["kubeconfig_content"]
    module.no_log_values.add(text.decode("utf-8", "replace") if isinstance(text, bytes) else text)
    kubeconfig = ks.load(text, "cluster %s kubeconfig" % cluster)
    secrets = ks.secret_values(kubeconfig if isinstance(kubeconfig, dict) else {})
    module.no_log_values.update(secrets)  # Ansible masks these in anything we return

    info = ks.check(kubeconfig, p["spoke_context"], cluster)
    spoke = dict(server=info["server"], auth=info["auth"], context=info["context"], version=None)
    if p["verify_spoke"]:
        try:
            raw = ks.spoke_client(kubeconfig, info["context"], p["spoke_timeout"])
        except Exception as exc:  # kubernetes' loader raises assorted types for bad certs/data
            raise ks.KubeconfigSecretError("cluster %s: the kubeconfig cannot be loaded: %s" % (cluster, ks.scrub(str(exc), secrets)))
        spoke["version"] = ks.probe(raw, cluster, info["server"], secrets)

    manifest = ks.secret_manifest(cluster, name, namespace, text, p["labels"])
    applier = Applier(build_api_client(p), field_manager=p["field_manager"], force_conflicts=True, workers=1,
                      timeout=request_timeout(p), check_mode=module.check_mode, diff=module._diff)
    try:
        result = applier.run([manifest])
    except ApplyError as exc:
        raise ks.KubeconfigSecretError("cluster %s: writing Secret %s/%s on the hub failed: %s" % (cluster, namespace, name, ks.scrub(str(exc), secrets)))
    out = dict(
        changed=result["changed"],
        created=bool(result["applied"]) and result["applied"][0]["created"],
        secret=dict(name=name, namespace=namespace, key=ks.SECRET_KEY),
        spoke=spoke,
        checksum=ks.checksum(text),
    )
    if module._diff:
        out["diff"] = result["diff"]  # Secret data is already a redacted hash there
    return out


def main():
    module = AnsibleModule(
        argument_spec=argspec(),
        supports_check_mode=True,
        mutually_exclusive=[("kubeconfig_path", "kubeconfig_content")],
        required_one_of=[("kubeconfig_path", "kubeconfig_content")],
    )
    try:
        result = run(module)
    except (ks.KubeconfigSecretError, K8sClientError) as exc:
        module.fail_json(msg=str(exc))
    except Exception:  # a bug: the traceback could carry kubeconfig text, so leave it out
        module.fail_json(msg="cluster_kubeconfig failed unexpectedly (%s); rerun with verify_spoke to narrow it down"
                         % traceback.format_exc().strip().splitlines()[-1].split(":")[0])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
