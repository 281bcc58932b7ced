#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: fleet_status_info
short_description: Read the state of every cluster of the fleet - hub objects, spoke releases, credentials, chains
version_added: 0.2.0
description:
  - For every cluster in O(clusters) reads, on the hub, the Kustomizations and HelmReleases of its
    hub namespace (ready at their generation or not, reason and message, last applied revision,
    the chart version actually installed from C(status.history), suspended, C(Drifted)).
  - Reads what the cluster really has through the cluster's own kubeconfig - the
    C(<cluster>-kubeconfig) Secret Flux uses (the hub through the module's connection) - its
    namespaces and its Helm release records (Secrets of type C(helm.sh/release.v1); chart facts
    only, never values), and reports the Secret's age and when the credential expires (client
    certificate C(notAfter), a JWT's C(exp)).
  - Works out which objects are blocked by which C(dependsOn) chain, across clusters.
  - "Requests grow with kinds x namespaces, not with objects: per hub namespace one LIST per kind;
    per spoke one GET (its Secret), one LIST of namespaces, one LIST of release Secrets. Clusters are
    read in parallel; a cluster that does not answer is reported as such and does not hide the others."
  - The result is the report of docs/status.md (RV(status)); M(c5c3.gitops.fleet_status_report)
    writes it as JSON, Markdown, JUnit XML and an SVG picture.
author:
  - c5c3.gitops developers (@c5c3)
extends_documentation_fragment:
  - c5c3.gitops.attributes
  - c5c3.gitops.attributes.k8s_group
  - c5c3.gitops.k8s_auth
options:
  clusters:
    description:
      - The clusters to read, as in C(gitops_fleet.clusters) of M(c5c3.gitops.fleet_model) - each
        with C(name), C(hub_namespace), C(kubeconfig_secret) (null for the hub), optionally C(group)
        and C(hub) (true for the hub, which is read through this module's own connection).
      - A subset (for example one slice of a sliced run) gives the same records for those clusters;
        M(c5c3.gitops.fleet_status_report) merges the slices.
    type: list
    elements: dict
    required: true
  expiry_warning_days:
    description: A credential that expires within this many days is reported as C(expiring).
    type: int
    default: 30
  workers:
    description: Clusters and hub namespaces read at the same time.
    type: int
    default: 8
  spoke_timeout:
    description: Seconds per request to a spoke (an unreachable spoke costs at most about this long).
    type: int
    default: 10
attributes:
  check_mode:
    support: full
    details: Read-only; behaves the same in check mode.
  diff_mode:
    support: none
notes:
  - Needs read access on the hub to Kustomizations, HelmReleases and the kubeconfig Secrets of the hub
    namespaces, and on every spoke (with its Secret's credentials) to list namespaces and Secrets.
seealso:
  - module: c5c3.gitops.fleet_status_report
  - module: c5c3.gitops.flux_report_info
"""

EXAMPLES = r"""
- name: Read the fleet
  c5c3.gitops.fleet_status_info:
    clusters: "{{ gitops_fleet.clusters }}"
  register: _status

- name: Show what is not ready
  ansible.builtin.debug:
    msg: "{{ _status.status.chains }}"
"""

RETURN = r"""
status:
  description: The report (schema in docs/status.md and docs/fleet-status.schema.json).
  returned: always
  type: dict
  contains:
    schema_version: {description: Version of the schema (1)., type: int, returned: always}
    generated_at: {description: When it was read (UTC)., type: str, returned: always}
    clusters: {description: "Per cluster - name, group, hub_namespace, hub_read, objects, kubeconfig_secret, credential, spoke, summary.", type: list,
               returned: always}
    chains: {description: "Every blocking chain, e.g. C(HelmRelease cp/nova -> HelmRelease cp/keystone (failed: InstallFailed)).", type: list,
             returned: always}
    summary: {description: "Counts by state (ready, progressing, blocked, failed), total, clusters, unreachable, credentials_expiring, healthy.",
              type: dict, returned: always}
    requests: {description: API requests made in total., type: int, returned: always}
    elapsed: {description: Seconds spent., type: float, returned: always}
"""

from ansible_collections.c5c3.gitops.plugins.module_utils.k8s_client import K8S_AUTH_ARGSPEC
from ansible_collections.c5c3.gitops.plugins.module_utils.kube_module import KubeModule, ModuleFailed


def argspec():
    spec = dict(K8S_AUTH_ARGSPEC)
    spec.update(
        clusters=dict(type="list", elements="dict", required=True),
        expiry_warning_days=dict(type="int", default=30),
        workers=dict(type="int", default=8),
        spoke_timeout=dict(type="int", default=10),
    )
    return spec


def _hub_kubeconfig(params):
    """The hub's kubeconfig as a mapping (for its credential's expiry), None when not at hand."""
    from ansible_collections.c5c3.gitops.plugins.module_utils.kube_auth import auth_params, load_kubeconfig
    p = auth_params(params)
    if p.get("host") or p.get("api_key"):
        return None
    try:
        return load_kubeconfig(p.get("kubeconfig"))[0]
    except Exception:  # unreadable here: the client reports the real error
        return None


def read(module):
    from ansible_collections.c5c3.gitops.plugins.module_utils.kubeconfig_secret import scrub, spoke_client
    from ansible_collections.c5c3.gitops.plugins.module_utils.status_collect import Collector
    p = module.params
    for i, cluster in enumerate(p["clusters"]):
        missing = [k for k in ("name", "hub_namespace") if not cluster.get(k)]
        if missing:
            raise ModuleFailed("clusters[%d] (%s) needs %s" % (i, cluster.get("name") or "?", ", ".join(missing)))

    def spoke(kubeconfig, name):
        client = spoke_client(kubeconfig, None, p["spoke_timeout"], cluster=name)
        module.no_log_values.update(client.secrets)  # a spoke credential never leaves the module
        return client

    collector = Collector(
        module.client(workers=p["workers"]), spoke, hub_kubeconfig=_hub_kubeconfig(p),
        hub_context=p.get("context"), warn_days=p["expiry_warning_days"], workers=p["workers"],
        scrub=lambda text, secrets=(): scrub(text, secrets))
    status = collector.collect([dict(c, hub=bool(c.get("hub") or not c.get("kubeconfig_secret"))) for c in p["clusters"]])
    return dict(changed=False, status=status)


def main():
    module = KubeModule(argument_spec=argspec(), supports_check_mode=True)
    module.run(read)


if __name__ == "__main__":
    main()
