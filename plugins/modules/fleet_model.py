#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)
# This file holds only the documentation; the work happens in plugins/action/fleet_model.py.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: fleet_model
short_description: Build and validate the Flux objects of a CobaltCore fleet from the inventory
version_added: 0.1.0
description:
  - Reads every inventory host as a cluster (groups V(management) - exactly one, the hub -,
    V(control_plane), V(hypervisor), V(storage)), merges the component and Kustomization
    catalogs with the per-cluster overrides from host and group vars, validates the result and
    builds every Flux object once, for both sinks (c5c3.gitops.gitops_render and the apply sink).
  - "Per-cluster variables read: C(gitops_hub_namespace), C(gitops_kubeconfig) (path, relative
    paths are relative to the host's inventory directory), C(gitops_kubeconfig_content) (string or
    dict, typically vault-encrypted), C(gitops_kubeconfig_context), C(gitops_component_overrides),
    C(gitops_components_extra), C(gitops_kustomization_overrides), C(gitops_kustomizations_extra),
    and on the hub C(gitops_flux_instance) and the presence (never the value) of
    C(gitops_sync_identity), C(gitops_sync_identity_pub), C(gitops_sync_known_hosts)."
  - Fails with one message naming the offending item on an unknown group or cluster, a dependsOn
    naming a missing object or one of another kind, a dependency cycle, an invalid SemVer range,
    duplicate or illegal (non DNS-1123) names, a FluxInstance not named V(flux), or a kubeconfig
    that uses C(exec) or C(auth-provider) credentials, local files, or has no server.
  - Runs on the controller only and contacts no cluster. The result holds no secret value.
  - See docs/fleet-model.md of the collection for the catalogs and the rendered tree.
author:
  - c5c3.gitops developers (@c5c3)
attributes:
  check_mode:
    support: full
    description: Builds the same data in check mode; it never changes anything.
  diff_mode:
    support: none
    description: Returns data, changes nothing, so there is nothing to diff.
  action:
    support: full
    description: Runs as an action plugin on the controller; it reads every host's variables.
options:
  components:
    description: Component catalog, a list of components per group (role default C(fleet_components)).
    type: dict
    required: true
  kustomizations:
    description: Kustomization entries per group (role default C(fleet_kustomizations)).
    type: dict
    default: {}
  sources:
    description: HelmRepository, GitRepository and OCIRepository sources (role default C(fleet_sources)).
    type: list
    elements: dict
    required: true
  flux_instance:
    description:
      - FluxInstance settings (role default C(fleet_flux_instance)); the hub's
        C(gitops_flux_instance) is deep-merged over them. The name must be V(flux).
    type: dict
    required: true
  helmrelease_defaults:
    description:
      - Spec fields every HelmRelease gets (any HelmRelease spec field, e.g. interval, install,
        upgrade, timeout, maxHistory, driftDetection). A component's own field of the same name
        is deep-merged over it; a null there removes the key.
    type: dict
    default: {}
  kustomization_defaults:
    description: Defaults of every Kustomization (interval, prune, timeout, sourceRef).
    type: dict
    default: {}
  secret_store:
    description:
      - Secret store the render sink's ExternalSecret placeholders read from (api_version, kind,
        name, refresh_interval, remote_keys). Empty renders no placeholders.
    type: dict
    default: {}
  namespaces:
    description:
      - Namespaces on the hub as objects of the model (role default C(fleet_namespaces)), each a
        name or C({name, labels, annotations}); applied in stage C(sources). The namespaces the
        hub's HelmReleases live in are added on their own.
    type: list
    elements: raw
    default: []
  hub_release_namespaces:
    description:
      - Where the hub's own HelmReleases live (role default C(fleet_hub_release_namespaces)).
        V(hub) puts them in the FluxInstance namespace, V(component) in each component's own
        C(namespace), as upstream CobaltCore does (C(valuesFrom) is resolved there). A
        component's C(releaseNamespace) wins either way; spoke releases always live in their
        cluster's hub namespace, next to its kubeconfig Secret.
    type: str
    default: hub
    choices: [hub, component]
  require_kubeconfigs:
    description:
      - Fail when a cluster has no readable kubeconfig. Leave V(false) for rendering, where the
        clusters need not exist; kubeconfigs that are present are checked either way.
    type: bool
    default: false
  delivery:
    description:
      - Who writes the delivered objects (everything but the bootstrap objects - the Flux Operator
        release, the sync Secret, the FluxInstance, the kubeconfig Secrets).
      - V(git) (the default), Flux from the sync repository the publish sink writes; V(direct), the apply
        sink. In V(direct) mode a FluxInstance sync path holding delivered objects is refused.
      - One of V(git) and V(direct); the model refuses anything else naming C(gitops_delivery), the
        inventory variable it comes from.
    type: str
    default: git
  kubeconfig_writer:
    description:
      - Who writes the spoke kubeconfig Secrets. V(registration) (the cluster_registration role) or
        V(eso) (ExternalSecrets in C(infrastructure/cluster-configs/), which the tree then carries).
      - The model refuses any other value naming C(gitops_kubeconfig_writer).
    type: str
    default: registration
notes:
  - The catalogs are plain data, so a user can replace any of them in group_vars.
seealso:
  - module: c5c3.gitops.gitops_render
"""

EXAMPLES = r"""
- name: Build the fleet
  c5c3.gitops.fleet_model:
    components: "{{ fleet_components }}"
    kustomizations: "{{ fleet_kustomizations }}"
    sources: "{{ fleet_sources }}"
    flux_instance: "{{ fleet_flux_instance }}"
    helmrelease_defaults: "{{ fleet_helmrelease_defaults }}"
    kustomization_defaults: "{{ fleet_kustomization_defaults }}"
    secret_store: "{{ fleet_secret_store }}"
  register: _fleet

- name: Show which objects the hub will hold
  ansible.builtin.debug:
    msg: "{{ _fleet.fleet.objects | map(attribute='object.metadata.name') | list }}"
"""

RETURN = r"""
fleet:
  description: The fleet as data (shape fixed in docs/architecture.md).
  returned: success
  type: dict
  contains:
    hub:
      description: The hub cluster (name, namespace, kubeconfig path, kubeconfig_source, context).
      type: dict
    clusters:
      description:
        - Every cluster sorted by name, with group, hub_namespace, kubeconfig_secret, kubeconfig
          (path or null), kubeconfig_source (V(path), V(content) or null), context and server
          (from the checked kubeconfig, null when none was available).
      type: list
      elements: dict
    objects:
      description:
        - Every Flux object in apply order (stage, kind, namespace, name) as C({stage, path, object}).
          C(path) is the file of the GitOps tree it is rendered to.
      type: list
      elements: dict
    secrets:
      description:
        - Secrets the apply sink creates, without values - C({kind (kubeconfig|git-sync), name,
          namespace, stage, cluster, labels, keys, vars, values_defined}). C(vars) names the
          variables holding the values.
      type: list
      elements: dict
    manifests:
      description:
        - Objects only the render sink writes - C({path, object}) - hub namespaces of spokes,
          spoke-side namespaces, ExternalSecret placeholders, entries' extra manifests.
      type: list
      elements: dict
    bootstrap:
      description: The Flux Operator chart for the bootstrap stage (release_name, namespace, chart_ref, repo_url, version, values), or null.
      type: dict
    sync:
      description: The FluxInstance sync path in the tree and the sourceRef every Kustomization uses.
      type: dict
"""
