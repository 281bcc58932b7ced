#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: flux_reconcile
short_description: Request Flux reconciliation and wait until the controller handled it
version_added: 0.1.0
description:
  - Sets C(reconcile.fluxcd.io/requestedAt) on each object (like C(flux reconcile)) and waits
    until its C(status.lastHandledReconcileAt) carries the same token B(and) the object is ready at
    its current generation (the readiness rules of M(c5c3.gitops.flux_wait), fail-fast included).
  - With O(with_source), the sources are requested and waited for first - for a HelmRelease its
    repository and HelmChart (or its C(chartRef)), for a Kustomization its C(sourceRef).
  - With O(force) / O(reset), HelmReleases also get C(reconcile.fluxcd.io/forceAt) /
    C(reconcile.fluxcd.io/resetAt) with the same token, and the wait includes
    C(status.lastHandledForceAt) / C(status.lastHandledResetAt).
author:
  - c5c3.gitops developers (@c5c3)
extends_documentation_fragment:
  - c5c3.gitops.attributes
  - c5c3.gitops.attributes.k8s_group
  - c5c3.gitops.k8s_auth
options:
  objects:
    description:
      - Objects to reconcile, each with C(kind), C(name), C(namespace) and optionally
        C(api_version). Other keys are ignored (RV(c5c3.gitops.flux_apply#module:applied) items work).
      - Secrets, ConfigMaps and Namespaces are skipped (no controller answers them).
    type: list
    elements: dict
    required: true
  with_source:
    description: Request (and wait for) the objects' sources first.
    type: bool
    default: false
  force:
    description: HelmReleases only - force a one-off install or upgrade (C(forceAt)).
    type: bool
    default: false
  reset:
    description: HelmReleases only - reset the install/upgrade failure counts (C(resetAt)).
    type: bool
    default: false
  wait:
    description: Wait until the requests were handled and the objects are ready.
    type: bool
    default: true
  timeout:
    description: Seconds to wait for everything (sources and objects together).
    type: int
    default: 300
  watch_timeout:
    description: Server-side timeout of one watch request (reopened when it ends).
    type: int
    default: 290
attributes:
  check_mode:
    support: full
    details: Sends nothing; reports the requests it would make (C(changed=true)) and the current state.
  diff_mode:
    support: none
notes:
  - C(changed) is C(true) whenever a request was sent (or would be, in check mode), since every call
    asks the controllers for a reconciliation.
seealso:
  - module: c5c3.gitops.flux_wait
"""

EXAMPLES = r"""
- name: Reconcile the control-plane Kustomizations with their Git source
  c5c3.gitops.flux_reconcile:
    objects:
      - {kind: Kustomization, name: control-plane-apps, namespace: control-plane}
    with_source: true

- name: Retry a HelmRelease that used up its retries
  c5c3.gitops.flux_reconcile:
    objects:
      - {kind: HelmRelease, name: keystone-operator, namespace: control-plane}
    reset: true
    timeout: 600
"""

RETURN = r"""
token:
  description: The request token written to the annotations.
  returned: always
  type: str
  sample: "2026-11-23T12:00:00.123456Z"
requested:
  description: Every object requested (sources first), with the annotations set and whether it was a source.
  returned: always
  type: list
  elements: dict
skipped_sources:
  description: Sources found with O(with_source) but not requested (not found, or an OCI HelmRepository), with C(reason).
  returned: always
  type: list
  elements: dict
objects:
  description: Final state of every object waited on (same fields as M(c5c3.gitops.flux_wait)'s RV(c5c3.gitops.flux_wait#module:objects)).
  returned: always
  type: list
  elements: dict
outcome:
  description: "C(handled), C(requested) (O(wait=false) or check mode), C(failed), C(timeout)."
  returned: always
  type: str
api_requests:
  description: API requests made.
  returned: always
  type: int
"""

from ansible_collections.c5c3.gitops.plugins.module_utils.k8s_client import K8S_AUTH_ARGSPEC
from ansible_collections.c5c3.gitops.plugins.module_utils.kube_module import KubeModule, ModuleFailed
from ansible_collections.c5c3.gitops.plugins.module_utils.reconcile import ReconcileError, Reconciler
from ansible_collections.c5c3.gitops.plugins.module_utils.waiter import WaitError


def argspec():
    spec = dict(K8S_AUTH_ARGSPEC)
    spec.update(
        objects=dict(type="list", elements="dict", required=True),
        with_source=dict(type="bool", default=False),
        force=dict(type="bool", default=False),
        reset=dict(type="bool", default=False),
        wait=dict(type="bool", default=True),
        timeout=dict(type="int", default=300),
        watch_timeout=dict(type="int", default=290),
    )
    return spec


def reconcile(module):
    p = module.params
    client = module.client(workers=4)
    module.reconciler = Reconciler(client)
    result = module.reconciler.run(
        p["objects"], with_source=p["with_source"], force=p["force"], reset=p["reset"], wait=p["wait"],
        timeout=p["timeout"], check_mode=module.check_mode, watch_timeout=p["watch_timeout"])
    ok, message = result.pop("ok"), result.pop("message")
    result.update(changed=bool(result["requested"]), api_requests=client.api_requests)
    if ok:
        return dict(result, msg=message)
    raise ModuleFailed(message, **result)


def main():
    module = KubeModule(argument_spec=argspec(), supports_check_mode=True)
    # A failure after requests were sent has changed something (the annotations).
    module.run(reconcile, expected=(WaitError, ReconcileError),
               failure=lambda m: dict(changed=bool(getattr(m, "reconciler", None) and m.reconciler.sent)))


if __name__ == "__main__":
    main()
