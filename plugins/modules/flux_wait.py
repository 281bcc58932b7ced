#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: flux_wait
short_description: Wait until Flux objects are ready at their current generation, failing fast
version_added: 0.1.0
description:
  - Waits for a set of objects (listed, and/or matched by label selectors) to become ready, with
    one O(timeout) for the whole set. This is the gate between the stages of a deployment.
  - An object is ready only when its C(Ready) condition is C(True) B(and) that condition's
    C(observedGeneration) (else C(status.observedGeneration)) equals C(metadata.generation); a
    C(Ready=True) left over from before a spec change does not pass.
  - Fails at once (O(fail_fast)) when an object can no longer become ready - C(Stalled=True)
    (for example C(RetriesExceeded)), a HelmRelease C(InstallFailed)/C(UpgradeFailed) that used
    up C(remediation.retries), a Kustomization C(BuildFailed)/C(HealthCheckFailed), a suspended
    object, a Deployment past its progress deadline - with the object's own reason and message.
  - C(DependencyNotReady) is waited on and reported with the chain of C(spec.dependsOn) that
    holds it. An object that does not exist yet is waited for up to O(missing_grace) seconds.
  - "Kinds: FluxInstance, FluxReport, Kustomization, HelmRelease, GitRepository, OCIRepository,
    HelmRepository (C(type: oci) has no status and is ready by existing), HelmChart, Deployment
    (rollout complete); Secret, ConfigMap and Namespace are ready by existing, so the
    RV(c5c3.gitops.flux_apply#module:applied) list of M(c5c3.gitops.flux_apply) can be passed as is."
  - Uses one LIST and one WATCH per kind and namespace (and selector), not per-object polling;
    a watch that expires (410 Gone) is re-listed, a dropped connection is reopened.
author:
  - c5c3.gitops developers (@c5c3)
extends_documentation_fragment:
  - c5c3.gitops.attributes
  - c5c3.gitops.attributes.k8s_group
  - c5c3.gitops.k8s_auth
options:
  objects:
    description:
      - Objects to wait for. Each item has C(kind), C(name), C(namespace) (not for cluster-scoped
        kinds) and optionally C(api_version) (or C(apiVersion)) to address another API version.
      - C(revision) (optional) gates that object on a Flux revision, see O(revision).
      - C(chart_version) (optional, HelmRelease only) gates that release on a chart version, see
        O(chart_version).
      - Other keys are ignored, so the RV(c5c3.gitops.flux_apply#module:applied) items of
        M(c5c3.gitops.flux_apply) are accepted directly.
    type: list
    elements: dict
    default: []
  selectors:
    description:
      - Wait for every object of C(kind) in C(namespace) matching C(label_selector) (empty for all).
      - A selector that matches nothing counts as missing and fails after O(missing_grace).
    type: list
    elements: dict
    default: []
  timeout:
    description: Seconds to wait for the whole set (not per object).
    type: int
    default: 300
  missing_grace:
    description:
      - Seconds an absent object (or an empty selector) may take to appear before it is reported
        as missing. Capped by O(timeout).
    type: int
    default: 30
  fail_fast:
    description:
      - Fail as soon as one object is in a terminal state, or is still missing after
        O(missing_grace). With C(false), wait until all are ready or O(timeout) passes.
    type: bool
    default: true
  revision:
    description:
      - "Revision gating. The Flux revision (C(<ref>@sha1:<sha>), as RV(c5c3.gitops.gitops_publish#module:revision)
        returns it; a bare sha also matches) that every source (GitRepository, OCIRepository, Bucket,
        HelmChart) and Kustomization in O(objects) must be at to count as ready, on top of being
        ready at its generation - C(status.artifact.revision) for sources,
        C(status.lastAppliedRevision) for Kustomizations. Other kinds ignore it."
      - An item of O(objects) may carry its own C(revision).
      - A Kustomization failure reported for an older revision (C(lastAttemptedRevision)) is waited on,
        not failed fast, since the new revision may fix it.
    type: str
  chart_version:
    description:
      - The chart version (C(0.2.0), a leading C(v) is ignored) every HelmRelease in O(objects)
        must run to count as ready, on top of being ready at its generation (the release's
        C(status.history[0].chartVersion)). Other kinds ignore it; an item of O(objects) may carry
        its own C(chart_version).
      - This is the gate of a chart release (a new version pushed inside the release's SemVer
        range, then a reconcile request); it passes only once Helm runs that version.
      - A failure reported while the release attempted another version (C(status.lastAttemptedRevision))
        is waited on, not failed fast.
    type: str
  watch_timeout:
    description:
      - Server-side timeout of one watch request. When it ends the watch is reopened from the
        last resourceVersion; there is no reason to change it except to test reconnects.
    type: int
    default: 290
attributes:
  check_mode:
    support: full
    details: Lists the objects once and reports their current state; does not wait and does not fail.
  diff_mode:
    support: none
notes:
  - C(changed) is always C(false).
  - API requests grow with the number of (kind, namespace, selector) pairs, not with the number
    of objects or with time; RV(api_requests) counts them.
seealso:
  - module: c5c3.gitops.flux_apply
  - module: c5c3.gitops.flux_reconcile
"""

EXAMPLES = r"""
- name: Wait for what the apply sink applied
  c5c3.gitops.flux_wait:
    kubeconfig: "{{ fleet.hub.kubeconfig }}"
    objects: "{{ _applied.applied }}"
    timeout: 600

- name: Wait for every service HelmRelease of the control-plane cluster
  c5c3.gitops.flux_wait:
    selectors:
      - kind: HelmRelease
        namespace: control-plane
        label_selector: gitops.c5c3.io/stage=services

- name: Wait until Flux applied the published commit
  c5c3.gitops.flux_wait:
    objects:
      - {kind: GitRepository, name: flux-system, namespace: flux-system}
      - {kind: Kustomization, name: flux-system, namespace: flux-system}
    revision: "{{ _published.revision }}"

- name: Wait until a release runs the chart version just pushed
  c5c3.gitops.flux_wait:
    objects:
      - {kind: HelmRelease, name: keystone-operator, namespace: control-plane}
    chart_version: 0.3.0

- name: Wait for the Flux Operator and the FluxInstance
  c5c3.gitops.flux_wait:
    objects:
      - {kind: Deployment, name: flux-operator, namespace: flux-system}
      - {kind: FluxInstance, name: flux, namespace: flux-system}
    missing_grace: 120
"""

RETURN = r"""
objects:
  description: Every object waited on, sorted by kind, namespace and name.
  returned: always
  type: list
  elements: dict
  contains:
    kind: {description: Kind., type: str, returned: always}
    name: {description: Name., type: str, returned: always}
    namespace: {description: Namespace (null when cluster-scoped)., type: str, returned: always}
    api_version: {description: API version used., type: str, returned: always}
    state: {description: "One of C(ready), C(progressing), C(failed), C(missing).", type: str, returned: always}
    reason: {description: "Reason of the deciding condition (or the gate's own, e.g. C(StaleGeneration)).", type: str, returned: always}
    message: {description: Message of the deciding condition., type: str, returned: always}
    generation: {description: metadata.generation seen., type: int, returned: always}
    observed_generation: {description: Generation the controller reported on., type: int, returned: always}
    ready_after: {description: Seconds from the start until it was seen ready (null if not ready)., type: float, returned: always}
    revision: {description: "Revision the object reports (sources: artifact, Kustomizations: last applied; null for other kinds).", type: str, returned: always}
    chart_version: {description: "Chart version a HelmRelease runs (C(status.history[0].chartVersion)); null for other kinds.", type: str, returned: always}
    blocked_by: {description: "Not-ready dependencies (C(spec.dependsOn)) holding it, as {kind, namespace, name}.", type: list, returned: always}
    notes: {description: "Reported without deciding the state - a HelmRelease C(Drifted=True), a Kustomization C(Healthy=True).", type: list, returned: always}
  sample:
    - {kind: HelmRelease, name: keystone-operator, namespace: control-plane, api_version: helm.toolkit.fluxcd.io/v2,
       state: ready, reason: InstallSucceeded, message: Helm install succeeded, generation: 1,
       observed_generation: 1, ready_after: 12.4, blocked_by: []}
not_ready:
  description: The entries of RV(objects) that are not ready.
  returned: always
  type: list
  elements: dict
summary:
  description: Counts by state and C(total).
  returned: always
  type: dict
  sample: {total: 12, ready: 11, progressing: 0, failed: 1, missing: 0}
chains:
  description: "Dependency chains of not-ready objects, e.g. C(HelmRelease a/x -> HelmRelease a/y (failed: InstallFailed))."
  returned: always
  type: list
  elements: str
outcome:
  description: "C(ready), C(failed) (fail-fast), C(missing), C(timeout) or C(reported) (check mode)."
  returned: always
  type: str
elapsed:
  description: Seconds spent.
  returned: always
  type: float
api_requests:
  description: API requests made (LIST, WATCH, GET), for comparison with polling.
  returned: always
  type: int
watch_restarts:
  description: Watches reopened after a server-side timeout or a dropped connection.
  returned: always
  type: int
relists:
  description: Re-LISTs after an expired watch (410 Gone).
  returned: always
  type: int
figures:
  description: "For people - C(ready), C(total), C(elapsed), C(outcome), the C(slowest) objects, C(waiting_for)
    (not ready ones) and one C(line) saying it all."
  returned: always
  type: dict
  sample: {ready: 12, total: 12, elapsed: 8.2, outcome: ready, waiting_for: [],
           slowest: [{object: HelmRelease control-plane/nova-operator, ready_after: 8.1}],
           line: "12 of 12 ready in 8.2s; slowest: HelmRelease control-plane/nova-operator 8.1s"}
"""

from ansible_collections.c5c3.gitops.plugins.module_utils.k8s_client import K8S_AUTH_ARGSPEC
from ansible_collections.c5c3.gitops.plugins.module_utils.kube_module import KubeModule, ModuleFailed
from ansible_collections.c5c3.gitops.plugins.module_utils.waiter import WaitError, Waiter, normalize_objects
from ansible_collections.c5c3.gitops.plugins.module_utils.wait_summary import figures


def argspec():
    spec = dict(K8S_AUTH_ARGSPEC)
    spec.update(
        objects=dict(type="list", elements="dict", default=[]),
        selectors=dict(type="list", elements="dict", default=[]),
        timeout=dict(type="int", default=300),
        missing_grace=dict(type="int", default=30),
        fail_fast=dict(type="bool", default=True),
        watch_timeout=dict(type="int", default=290),
        revision=dict(type="str"),
        chart_version=dict(type="str"),
    )
    return spec


def wait(module):
    p = module.params
    result = Waiter(module.client(workers=4), watch_timeout=p["watch_timeout"]).wait(
        normalize_objects(p["objects"]), p["selectors"], timeout=p["timeout"],
        missing_grace=p["missing_grace"], fail_fast=p["fail_fast"], once=module.check_mode,
        revision=p["revision"], chart_version=p["chart_version"])
    ok = result.pop("ok")
    result["figures"] = figures(result)
    message = result.pop("message")
    if ok or module.check_mode:
        return dict(result, changed=False, msg=message)
    raise ModuleFailed(message, changed=False, **result)


def main():
    module = KubeModule(argument_spec=argspec(), supports_check_mode=True,
                        required_one_of=[("objects", "selectors")])
    module.run(wait, expected=(WaitError,), failure=lambda m: dict(changed=False))


if __name__ == "__main__":
    main()
