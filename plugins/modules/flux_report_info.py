#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: flux_report_info
short_description: Read the Flux Operator's FluxReport and say whether Flux is healthy
version_added: 0.1.0
description:
  - Reads the FluxReport (its data lives in C(spec)) and returns the distribution version and
    status, each component's readiness, reconciler statistics (running, failing, suspended) per
    kind, and the cluster sync state, plus RV(healthy) and the list of RV(problems).
  - Problems are - the report itself not ready at its generation, Flux not installed, a component
    not ready, a kind with failing reconcilers, the sync not ready.
author:
  - c5c3.gitops developers (@c5c3)
extends_documentation_fragment:
  - c5c3.gitops.attributes
  - c5c3.gitops.attributes.k8s_group
  - c5c3.gitops.k8s_auth
options:
  namespace:
    description: Namespace of the FluxReport (where the Flux Operator runs).
    type: str
    default: flux-system
  name:
    description: Name of the FluxReport (the operator accepts only C(flux)).
    type: str
    default: flux
  fail_on_unhealthy:
    description: Fail, listing the problems, when anything is unhealthy or the report is missing.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    details: Read-only; behaves the same in check mode.
  diff_mode:
    support: none
seealso:
  - module: c5c3.gitops.flux_wait
"""

EXAMPLES = r"""
- name: Check that Flux is healthy on the hub
  c5c3.gitops.flux_report_info:
    kubeconfig: "{{ fleet.hub.kubeconfig }}"
    fail_on_unhealthy: true

- name: Read the report
  c5c3.gitops.flux_report_info:
  register: _flux

- name: Show failing HelmReleases
  ansible.builtin.debug:
    msg: "{{ _flux.report.reconcilers | selectattr('kind', 'equalto', 'HelmRelease') | map(attribute='failing') | first }}"
"""

RETURN = r"""
exists:
  description: Whether the FluxReport exists.
  returned: always
  type: bool
healthy:
  description: True when RV(problems) is empty.
  returned: always
  type: bool
problems:
  description: What is unhealthy, one line each.
  returned: always
  type: list
  elements: str
  sample: ["component helm-controller not ready: Deployment is not ready", "2 HelmRelease failing"]
report:
  description: The report, structured (empty when it does not exist).
  returned: always
  type: dict
  contains:
    ready: {description: "Readiness of the report object (state, reason, message, generation, ...).", type: dict, returned: success}
    distribution: {description: "version, status, entitlement, managed_by.", type: dict, returned: success}
    components: {description: "name, ready, status, image per Flux controller.", type: list, returned: success}
    reconcilers: {description: "api_version, kind, running, failing, suspended, total_size per kind.", type: list, returned: success}
    sync: {description: "id, path, ready, source, status of the cluster sync (null without sync).", type: dict, returned: success}
    cluster: {description: "Cluster info as reported (serverVersion, platform, nodes).", type: dict, returned: success}
    operator: {description: "Operator info as reported (version, platform, apiVersion).", type: dict, returned: success}
    last_handled_reconcile_at: {description: status.lastHandledReconcileAt., type: str, returned: success}
api_requests:
  description: API requests made (one).
  returned: always
  type: int
"""

from ansible_collections.c5c3.gitops.plugins.module_utils import flux_kinds
from ansible_collections.c5c3.gitops.plugins.module_utils.flux_report import summarize
from ansible_collections.c5c3.gitops.plugins.module_utils.k8s_client import K8S_AUTH_ARGSPEC
from ansible_collections.c5c3.gitops.plugins.module_utils.kube_module import KubeModule, ModuleFailed


def argspec():
    spec = dict(K8S_AUTH_ARGSPEC)
    spec.update(
        namespace=dict(type="str", default="flux-system"),
        name=dict(type="str", default="flux"),
        fail_on_unhealthy=dict(type="bool", default=False),
    )
    return spec


def report(module):
    p = module.params
    client = module.client(workers=1)
    obj = client.get(flux_kinds.lookup("FluxReport"), p["namespace"], p["name"])
    result = summarize(obj, p["namespace"], p["name"])
    result.update(changed=False, api_requests=client.api_requests)
    if p["fail_on_unhealthy"] and not result["healthy"]:
        raise ModuleFailed("Flux is not healthy: %s" % "; ".join(result["problems"]), **result)
    return result


def main():
    module = KubeModule(argument_spec=argspec(), supports_check_mode=True)
    module.run(report)


if __name__ == "__main__":
    main()
