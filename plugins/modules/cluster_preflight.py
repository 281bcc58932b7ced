#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: cluster_preflight
short_description: Check every cluster of the fleet, in parallel, before the first write of a run
version_added: 0.2.0
description:
  - For every spoke of O(clusters) and for the hub (the connection options), in parallel - reads
    the kubeconfig, refuses on spokes what Flux cannot use from a Secret (exec plugins,
    auth-providers, local files), inspects the credentials (client certificate C(notAfter) and key
    pair, a JWT token's C(exp), the CA bundle), reaches the API server (C(GET /version), which also
    checks the CA against the server) and asks it with C(SelfSubjectAccessReview)s whether the
    credential may do what Flux (spokes) or the run (hub) needs.
  - Fails with one line per bad cluster, naming it (C(unauthorized) for a rejected credential,
    C(cannot connect) for a dead address, the missing permissions, the expiry date). Writes nothing,
    ever; warns when a credential expires within O(expiry_warning_days).
  - Never returns or logs a credential.
author:
  - c5c3.gitops developers (@c5c3)
extends_documentation_fragment:
  - c5c3.gitops.attributes
  - c5c3.gitops.attributes.k8s_group
  - c5c3.gitops.k8s_auth
options:
  clusters:
    description:
      - The C(clusters) of the fleet (C(c5c3.gitops.fleet_model)); spokes are the entries with a
        C(kubeconfig_secret). Their C(kubeconfig) paths are read unless O(kubeconfig_contents) has the cluster.
    type: list
    elements: dict
    default: []
  kubeconfig_contents:
    description: Kubeconfig texts (or mappings) by cluster name, e.g. from vault variables.
    type: dict
  kubeconfig_base_dir:
    description: Directory that relative kubeconfig paths are relative to (the inventory directory).
    type: path
  hub_name:
    description: Name of the hub cluster in messages.
    type: str
    default: hub
  check_hub:
    description: Check the hub connection (O(kubeconfig)/O(context)) as well.
    type: bool
    default: true
  verify:
    description: Reach each cluster. Off, only the kubeconfigs and credentials are inspected.
    type: bool
    default: true
  check_access:
    description: Ask each cluster with SelfSubjectAccessReviews whether the credential has the access in O(spoke_access) / O(hub_access).
    type: bool
    default: true
  spoke_access:
    description:
      - What the spoke credential must be allowed (C(verb), C(resource), optional C(group), C(namespace)).
        Defaults to what Flux's helm- and kustomize-controller do on a spoke (namespaces, CRDs,
        deployments, service accounts, services, config maps, secrets, cluster RBAC).
    type: list
    elements: dict
  hub_access:
    description: What the hub credential must be allowed; defaults to what a run of this collection does on the hub.
    type: list
    elements: dict
  expiry_warning_days:
    description: Warn when a certificate or token expires within this many days (an expired one fails).
    type: int
    default: 30
  spoke_timeout:
    description: Timeout in seconds of each request.
    type: int
    default: 10
  workers:
    description: Clusters checked in parallel.
    type: int
    default: 8
attributes:
  check_mode:
    support: full
    details: The module never writes; it runs the same in check mode.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Check every cluster before the first write
  c5c3.gitops.cluster_preflight:
    clusters: "{{ gitops_fleet.clusters }}"
    kubeconfig_base_dir: "{{ inventory_dir }}"
    hub_name: "{{ gitops_fleet.hub.name }}"
    expiry_warning_days: 14
"""

RETURN = r"""
clusters:
  description: >-
    Per cluster C(cluster), C(role) (hub or spoke), C(server), C(version), C(auth), C(credential)
    (C(kind), C(expires), C(subject)), C(ca) (C(certificates), C(expires), C(verified)), C(warnings).
  returned: always
  type: list
  elements: dict
"""

from ansible_collections.c5c3.gitops.plugins.module_utils import credentials as cr
from ansible_collections.c5c3.gitops.plugins.module_utils import kubeconfig_secret as ks
from ansible_collections.c5c3.gitops.plugins.module_utils import preflight as pf
from ansible_collections.c5c3.gitops.plugins.module_utils.k8s_client import K8S_AUTH_ARGSPEC
from ansible_collections.c5c3.gitops.plugins.module_utils.kube_auth import auth_params
from ansible_collections.c5c3.gitops.plugins.module_utils.kube import client_from_kubeconfig
from ansible_collections.c5c3.gitops.plugins.module_utils.kube_module import KubeModule, ModuleFailed


def argspec():
    spec = dict(K8S_AUTH_ARGSPEC)
    spec.update(
        clusters=dict(type="list", elements="dict", default=[]),
        # Not no_log: Ansible would mask every leaf of the mappings in the whole result; KubeModule
        # registers the texts and their credentials as no_log values instead.
        kubeconfig_contents=dict(type="dict", no_log=False),
        kubeconfig_base_dir=dict(type="path"),
        hub_name=dict(type="str", default="hub"),
        check_hub=dict(type="bool", default=True),
        verify=dict(type="bool", default=True),
        check_access=dict(type="bool", default=True),
        spoke_access=dict(type="list", elements="dict"),
        hub_access=dict(type="list", elements="dict"),
        expiry_warning_days=dict(type="int", default=30),
        spoke_timeout=dict(type="int", default=10),
        workers=dict(type="int", default=8),
    )
    return spec


def run(module):
    p = module.params
    hub = None
    if p["check_hub"]:
        a = auth_params(p)
        if not (a.get("host") or a.get("api_key")):
            hub = {"name": p["hub_name"], "kubeconfig": a.get("kubeconfig") or "~/.kube/config", "context": a.get("context")}
    items = pf.items_from_fleet(p["clusters"], p["kubeconfig_contents"], p["kubeconfig_base_dir"], hub)

    def factory(source, context, timeout, cluster=None):
        # one retry: a refused or timed-out connect is reported, not waited out
        return client_from_kubeconfig(source, context=context, cluster=cluster, timeout=timeout, workers=4, retries=1)
    check = pf.Check(factory, warn_days=p["expiry_warning_days"],
                     spoke_access=cr.FLUX_SPOKE_ACCESS if p["spoke_access"] is None else p["spoke_access"],
                     hub_access=cr.HUB_ACCESS if p["hub_access"] is None else p["hub_access"],
                     check_access=p["check_access"], probe=p["verify"], timeout=p["spoke_timeout"], workers=p["workers"])
    results = check.all(items, no_log=module.no_log_values.add)
    for r in results:
        for warning in r["warnings"]:
            module.warn(warning)
    return {"changed": False, "clusters": [dict((k, v) for k, v in r.items() if k != "errors") for r in results]}


def body(module):
    try:
        return run(module)
    except pf.PreflightError as exc:
        for r in exc.results:
            for warning in r["warnings"]:
                module.warn(warning)
        raise ModuleFailed(str(exc), clusters=[dict(cluster=r["cluster"], errors=r["errors"]) for r in exc.results])


def main():
    module = KubeModule(argument_spec=argspec(), supports_check_mode=True,
                        kubeconfig_options=("kubeconfig", "kubeconfig_contents"))
    module.run(body, expected=(cr.CredentialError, ks.KubeconfigSecretError), bug_traceback=False)


if __name__ == "__main__":
    main()
