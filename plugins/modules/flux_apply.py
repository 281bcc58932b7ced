#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: flux_apply
short_description: Server-side apply many Kubernetes objects in one task, with label-scoped prune
version_added: 0.1.0
description:
  - Applies a set of objects with Kubernetes server-side apply under one field manager, in
    parallel, without API discovery. This is the apply sink of the collection; it takes the
    C(objects) of the C(fleet) returned by M(c5c3.gitops.fleet_model) as they are.
  - An object counts as changed when it was created or its C(metadata.resourceVersion) moved; a
    server-side apply that changes nothing keeps the resourceVersion, so a second run reports
    C(changed=false).
  - Optionally prunes objects that are no longer in the set. Prune only ever considers objects
    that carry the label C(app.kubernetes.io/managed-by=c5c3.gitops) (and the given stage and
    labels); anything without it is never touched.
  - Does not wait for readiness; gate on the returned RV(applied) with M(c5c3.gitops.flux_wait).
  - Missing namespaces of namespaced objects are created (bare, without ownership labels).
author:
  - c5c3.gitops developers (@c5c3)
extends_documentation_fragment:
  - c5c3.gitops.attributes
  - c5c3.gitops.attributes.k8s_group
  - c5c3.gitops.k8s_auth
options:
  objects:
    description:
      - Objects to apply. Each item is a manifest (C(apiVersion), C(kind), C(metadata), ...)
        or a fleet entry C({stage, path, object}).
      - Secret manifests are accepted; their data is never returned and diffs show only a hash.
        Set C(no_log) on the task that carries them, since the task arguments contain the data.
    type: list
    elements: dict
    required: true
  namespace:
    description: Namespace for namespaced objects that do not name one.
    type: str
  field_manager:
    description: Field manager of the server-side apply.
    type: str
    default: c5c3.gitops
  force_conflicts:
    description: Take over fields owned by other managers (server-side apply C(force=true)).
    type: bool
    default: true
  create_namespaces:
    description: Create missing namespaces of namespaced objects.
    type: bool
    default: true
  workers:
    description: Parallel API requests.
    type: int
    default: 8
  prune:
    description: Delete owned objects that are no longer in O(objects).
    type: dict
    default: {}
    suboptions:
      enabled:
        description: Whether to prune.
        type: bool
        default: false
      stage:
        description: Only objects labelled C(gitops.c5c3.io/stage=<stage>) are candidates.
        type: str
      labels:
        description: Further labels a candidate must carry (the ownership label is always required).
        type: dict
        default: {}
      kinds:
        description: Kinds that may be pruned.
        type: list
        elements: str
        default: [HelmRelease, Kustomization]
      keep:
        description:
          - Objects never to prune although not in O(objects), e.g. the whole fleet when
            O(objects) is one stage (an object moving between stages is not deleted on the way).
          - Items are C({kind, namespace, name}), manifests, C(metadata) dicts or fleet entries;
            without C(kind) every kind of that name is kept.
        type: list
        elements: dict
        default: []
attributes:
  check_mode:
    support: full
    details: Server-side apply with C(dryRun=All); the result is compared with the live object. Nothing is written.
  diff_mode:
    support: full
    details: Labels, annotations and spec of each changed or pruned object; Secret values redacted to a hash.
notes:
  - Talks to the API with raw server-side apply PATCH requests from a thread pool; kinds resolve
    through a built-in table (Flux, Flux Operator, core kinds) or the object's C(apiVersion).
"""

EXAMPLES = r"""
- name: Apply the infrastructure stage of the fleet
  c5c3.gitops.flux_apply:
    kubeconfig: "{{ fleet.hub.kubeconfig }}"
    objects: "{{ fleet.objects | selectattr('stage', 'equalto', 'infrastructure') }}"
    prune:
      enabled: true
      stage: infrastructure
  register: _applied

- name: Wait for exactly what was applied
  c5c3.gitops.flux_wait:
    kubeconfig: "{{ fleet.hub.kubeconfig }}"
    objects: "{{ _applied.applied }}"

- name: Apply the Git sync Secret
  c5c3.gitops.flux_apply:
    objects:
      - apiVersion: v1
        kind: Secret
        metadata: {name: flux-system, namespace: flux-system}
        stringData:
          identity: "{{ vault_git_identity }}"
  no_log: true
"""

RETURN = r"""
applied:
  description: Every object applied, in input order (a list M(c5c3.gitops.flux_wait) takes as is).
  returned: always
  type: list
  elements: dict
  contains:
    kind: {description: Kind., type: str, returned: always}
    apiVersion: {description: API version., type: str, returned: always}
    name: {description: Name., type: str, returned: always}
    namespace: {description: Namespace (null for cluster-scoped objects)., type: str, returned: always}
    generation: {description: metadata.generation after the apply., type: int, returned: always}
    changed: {description: Whether the object was created or changed., type: bool, returned: always}
    created: {description: Whether the object did not exist before., type: bool, returned: always}
  sample:
    - {kind: HelmRelease, apiVersion: helm.toolkit.fluxcd.io/v2, name: keystone-operator,
       namespace: control-plane, generation: 1, changed: true, created: true}
pruned:
  description: Objects deleted by prune (or that would be, in check mode).
  returned: always
  type: list
  elements: dict
namespaces_created:
  description: Namespaces this task created.
  returned: always
  type: list
  elements: str
"""

from ansible_collections.c5c3.gitops.plugins.module_utils.apply import Applier, ApplyError
from ansible_collections.c5c3.gitops.plugins.module_utils.k8s_client import K8S_AUTH_ARGSPEC
from ansible_collections.c5c3.gitops.plugins.module_utils.kube_module import KubeModule


def argspec():
    spec = dict(K8S_AUTH_ARGSPEC)
    spec.update(
        objects=dict(type="list", elements="dict", required=True),
        namespace=dict(type="str"),
        field_manager=dict(type="str", default="c5c3.gitops"),
        force_conflicts=dict(type="bool", default=True),
        create_namespaces=dict(type="bool", default=True),
        workers=dict(type="int", default=8),
        prune=dict(
            type="dict",
            default={},
            options=dict(
                enabled=dict(type="bool", default=False),
                stage=dict(type="str"),
                labels=dict(type="dict", default={}),
                kinds=dict(type="list", elements="str", default=["HelmRelease", "Kustomization"]),
                keep=dict(type="list", elements="dict", default=[]),
            ),
        ),
    )
    return spec


def apply(module):
    p = module.params
    applier = Applier(module.client(workers=p["workers"]), field_manager=p["field_manager"],
                      force_conflicts=p["force_conflicts"], workers=p["workers"], check_mode=module.check_mode,
                      diff=module._diff, create_namespaces=p["create_namespaces"])
    result = applier.run(p["objects"], default_namespace=p["namespace"], prune=p["prune"])
    diff = result.pop("diff")
    if module._diff:
        result["diff"] = diff
    return result


def main():
    module = KubeModule(argument_spec=argspec(), supports_check_mode=True)
    module.run(apply, expected=(ApplyError,), failure=lambda m: dict(applied=[], pruned=[]))


if __name__ == "__main__":
    main()
