#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: cluster_prune
short_description: Remove the kubeconfig Secrets and hub namespaces of clusters that left the fleet
version_added: 0.2.0
description:
  - Lists, on the hub, the Secrets and namespaces that cluster registration
    (M(c5c3.gitops.cluster_kubeconfig)) labelled as its own (C(app.kubernetes.io/managed-by=c5c3.gitops),
    C(gitops.c5c3.io/stage=clusters), C(gitops.c5c3.io/cluster)) whose cluster is not in O(clusters),
    and deletes them - each cluster's only after its Kustomizations and HelmReleases are gone (Flux
    needs the kubeconfig to uninstall), waiting up to O(wait_timeout) seconds; a cluster still in
    use is kept and reported. A namespace is deleted only when nothing but owned objects is left in it.
  - Objects without all of the ownership labels are never candidates, whatever else matches.
  - Check mode lists what would be pruned (and what still uses it); diff mode shows it, Secret data as a redacted hash.
author:
  - c5c3.gitops developers (@c5c3)
extends_documentation_fragment:
  - c5c3.gitops.attributes
  - c5c3.gitops.attributes.k8s_group
  - c5c3.gitops.k8s_auth
options:
  clusters:
    description: Names of the clusters of the fleet (kept); everything registered for any other cluster is pruned.
    type: list
    elements: str
    required: true
  wait_timeout:
    description: Seconds to wait per cluster for its Flux objects to be gone before pruning.
    type: int
    default: 300
  secret_format:
    description:
      - V(flux) - the Flux kubeconfig Secrets and hub namespaces on the hub (Secrets with the
        multicluster-runtime label are never candidates).
      - V(multicluster-runtime) - only the C5C3 target-cluster Secrets (label
        C(sigs.k8s.io/multicluster-runtime-kubeconfig=true)) on the cluster of the connection options;
        O(clusters) then names the targets to keep.
    type: str
    choices: [flux, multicluster-runtime]
    default: flux
attributes:
  check_mode:
    support: full
    details: Lists the candidates; deletes nothing.
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Prune what removed clusters left on the hub
  c5c3.gitops.cluster_prune:
    clusters: "{{ gitops_fleet.clusters | map(attribute='name') }}"
"""

RETURN = r"""
pruned:
  description: Deleted (would be, in check mode) objects - C(cluster), C(kind), C(namespace), C(name), C(after) (check mode - objects that must go first).
  returned: always
  type: list
  elements: dict
kept:
  description: Clusters whose objects were kept this time, with the C(reason).
  returned: always
  type: list
  elements: dict
"""

from ansible_collections.c5c3.gitops.plugins.module_utils import cluster_prune as cp
from ansible_collections.c5c3.gitops.plugins.module_utils.k8s_client import K8S_AUTH_ARGSPEC
from ansible_collections.c5c3.gitops.plugins.module_utils.kube_module import KubeModule


def run(module):
    p = module.params
    result = cp.Pruner(module.client(workers=2), check_mode=module.check_mode, wait_timeout=p["wait_timeout"],
                       secret_format=p["secret_format"]).run(p["clusters"])
    for kept in result["kept"]:
        module.warn("cluster %s left the fleet but its registration is kept for now: %s" % (kept["cluster"], kept["reason"]))
    out = dict(changed=bool(result["pruned"]), pruned=result["pruned"], kept=result["kept"])
    if module._diff:
        out["diff"] = result["diff"]
    return out


def main():
    spec = dict(K8S_AUTH_ARGSPEC)
    spec.update(clusters=dict(type="list", elements="str", required=True), wait_timeout=dict(type="int", default=300),
                secret_format=dict(type="str", choices=["flux", "multicluster-runtime"], default="flux"))
    module = KubeModule(argument_spec=spec, supports_check_mode=True)
    module.run(run, expected=(cp.PruneError,))


if __name__ == "__main__":
    main()
