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
    to the spoke with it (C(GET /version), SelfSubjectAccessReviews) and only then writes the Secret
    C(<cluster>-kubeconfig) (key C(value)) into the cluster's hub namespace on the hub,
    creating the namespace if needed.
  - The Secret carries C(reconcile.fluxcd.io/watch=Enabled), so Flux reconciles the objects
    that use it when it changes (rotation), and the ownership labels of the collection.
  - The kubeconfig never appears in the output, in error messages or in diffs; diffs show a hash.
  - The hub connection comes from the usual options (O(kubeconfig) is the B(hub's) kubeconfig).
author:
  - c5c3.gitops developers (@c5c3)
extends_documentation_fragment:
  - c5c3.gitops.attributes
  - c5c3.gitops.attributes.k8s_group
  - c5c3.gitops.k8s_auth
options:
  cluster:
    description:
      - Name of the spoke cluster (inventory host name). One of O(cluster) and O(clusters) is required.
      - With O(cluster), O(kubeconfig_path) or O(kubeconfig_content) gives its kubeconfig.
    type: str
  clusters:
    description:
      - Several spokes in one task (parallel checks and probes, one batched write). Items are the
        C(clusters) entries of the fleet (C(name), C(hub_namespace), C(kubeconfig_secret),
        C(kubeconfig) path, C(context)) or C({name, namespace, secret_name, kubeconfig, context, labels}).
      - Every spoke is checked and reached before any Secret is written; one failure writes nothing.
    type: list
    elements: dict
  kubeconfig_contents:
    description:
      - With O(clusters), kubeconfig texts by cluster name (e.g. from vault variables); they take
        precedence over the item's C(kubeconfig) path. Prefer strings; mappings work too.
    type: dict
  kubeconfig_base_dir:
    description: With O(clusters), the directory relative kubeconfig paths are relative to (the inventory directory).
    type: path
  workers:
    description: Parallel spoke probes and hub requests.
    type: int
    default: 8
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
  check_access:
    description:
      - With O(verify_spoke), ask the spoke with SelfSubjectAccessReviews whether the credential may
        do what Flux needs there (namespaces, CRDs, workloads, RBAC; see M(c5c3.gitops.cluster_preflight)).
    type: bool
    default: true
  expiry_warning_days:
    description: Warn when the spoke's client certificate or JWT token expires within this many days; an expired one fails.
    type: int
    default: 30
  manage_namespaces:
    description:
      - Apply each cluster's hub namespace with the ownership labels (C(gitops.c5c3.io/stage=clusters),
        C(gitops.c5c3.io/cluster)), so that M(c5c3.gitops.cluster_prune) removes it when the cluster
        leaves. A namespace shared by clusters, and system namespaces (C(flux-system), C(kube-*),
        C(default)), are left bare. Off, the namespace is created bare when missing.
    type: bool
    default: true
  secret_format:
    description:
      - V(flux) - the Secret Flux reads on the hub, C(<cluster>-kubeconfig) with key C(value) in the
        cluster's hub namespace.
      - V(multicluster-runtime) - the Secret through which C5C3's operators find their target
        clusters (multicluster-runtime's kubeconfig provider) - named after the cluster, in
        O(namespace) (default C(c5c3-clusters)), label C(sigs.k8s.io/multicluster-runtime-kubeconfig=true),
        key C(kubeconfig) and, with O(allowed_namespaces) (or a C(namespaces) list on an item of O(clusters)),
        key C(namespaces) (comma-separated). Written where the connection options point (the cluster
        running the C5C3 operators).
    type: str
    choices: [flux, multicluster-runtime]
    default: flux
  allowed_namespaces:
    description: With O(secret_format=multicluster-runtime), the namespaces the operators may use on the target (key C(namespaces)).
    type: list
    elements: str
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

- name: Register every spoke of the fleet in one task
  c5c3.gitops.cluster_kubeconfig:
    clusters: "{{ gitops_fleet.clusters | selectattr('kubeconfig_secret') }}"
    kubeconfig_base_dir: "{{ inventory_dir }}"

- name: Register a cluster from a vault variable
  c5c3.gitops.cluster_kubeconfig:
    cluster: storage
    kubeconfig_content: "{{ vault_storage_kubeconfig }}"
"""

RETURN = r"""
clusters:
  description: Per cluster C(cluster), C(changed), C(created), C(secret), C(spoke), C(checksum).
  returned: always
  type: list
  elements: dict
secret:
  description: Where the Secret is (single-cluster form).
  returned: with O(cluster)
  type: dict
  sample: {name: control-plane-kubeconfig, namespace: control-plane, key: value}
spoke:
  description: What was learned about the spoke (no credentials; single-cluster form).
  returned: with O(cluster)
  type: dict
  sample: {server: "https://10.0.0.5:6443", version: v1.31.2, auth: client-certificate, context: admin}
created:
  description: Whether the Secret did not exist before (false on a rotation; single-cluster form).
  returned: with O(cluster)
  type: bool
checksum:
  description: SHA-256 of the kubeconfig as stored; changes on rotation (single-cluster form).
  returned: with O(cluster)
  type: str
"""

from concurrent.futures import ThreadPoolExecutor

from ansible_collections.c5c3.gitops.plugins.module_utils import cluster_prune as cp
from ansible_collections.c5c3.gitops.plugins.module_utils import kubeconfig_secret as ks
from ansible_collections.c5c3.gitops.plugins.module_utils import preflight as pf
from ansible_collections.c5c3.gitops.plugins.module_utils.apply import Applier, ApplyError
from ansible_collections.c5c3.gitops.plugins.module_utils.k8s_client import K8S_AUTH_ARGSPEC
from ansible_collections.c5c3.gitops.plugins.module_utils.kube_errors import KubeError
from ansible_collections.c5c3.gitops.plugins.module_utils.kube_module import KubeModule


def argspec():
    spec = dict(K8S_AUTH_ARGSPEC)
    spec.update(
        cluster=dict(type="str"),
        clusters=dict(type="list", elements="dict"),
        # Not no_log: Ansible would mask every leaf of mapping values (names, "v1", server URLs)
        # in the whole result. KubeModule registers the texts and their credentials instead.
        kubeconfig_contents=dict(type="dict", no_log=False),
        kubeconfig_base_dir=dict(type="path"),
        workers=dict(type="int", default=8),
        namespace=dict(type="str"),
        secret_name=dict(type="str"),
        kubeconfig_path=dict(type="path"),
        kubeconfig_content=dict(type="str", no_log=True),
        spoke_context=dict(type="str"),
        verify_spoke=dict(type="bool", default=True),
        spoke_timeout=dict(type="int", default=10),
        check_access=dict(type="bool", default=True),
        expiry_warning_days=dict(type="int", default=30),
        labels=dict(type="dict", default={}),
        manage_namespaces=dict(type="bool", default=True),
        secret_format=dict(type="str", choices=["flux", "multicluster-runtime"], default="flux"),
        allowed_namespaces=dict(type="list", elements="str"),
        field_manager=dict(type="str", default="c5c3.gitops"),
    )
    return spec


def _requests(module):
    """One request per cluster: from the single-cluster options or from ``clusters``."""
    p = module.params
    mcr = p["secret_format"] == "multicluster-runtime"
    if p["cluster"]:
        items = [dict(name=p["cluster"], namespace=p["namespace"], secret_name=p["secret_name"],
                      path=p["kubeconfig_path"], content=p["kubeconfig_content"], context=p["spoke_context"],
                      labels=p["labels"], namespaces=p["allowed_namespaces"])]
    else:
        contents = p["kubeconfig_contents"] or {}
        base = p["kubeconfig_base_dir"]
        items = []
        for c in p["clusters"]:
            path = c.get("kubeconfig") if c["name"] not in contents else None
            if path:
                path = ks.resolve_path(path, base)
            if mcr:  # one namespace for every target; the Secret is named after the cluster
                namespace, secret_name = p["namespace"], c.get("secret_name")
            else:
                namespace = c.get("hub_namespace") or c.get("namespace")
                secret_name = c.get("kubeconfig_secret") or c.get("secret_name")
            items.append(dict(name=c["name"], namespace=namespace, secret_name=secret_name, path=path,
                              content=contents.get(c["name"]), context=c.get("context"),
                              labels=dict(p["labels"], **(c.get("labels") or {})),
                              namespaces=c.get("namespaces") if c.get("namespaces") is not None else p["allowed_namespaces"]))
    for item in items:
        item["namespace"] = item["namespace"] or (ks.MCR_NAMESPACE if mcr else item["name"])
        item["secret_name"] = item["secret_name"] or (item["name"] if mcr else "%s-kubeconfig" % item["name"])
    return items


def _prepare(module, item, check):
    """Read, check and (optionally) probe one spoke; returns what the write needs. No writes."""
    cluster = item["name"]
    text = pf.read_kubeconfig(cluster, item["path"], item["content"])
    if isinstance(text, dict):
        import yaml
        text = yaml.safe_dump(text, default_flow_style=False)
    module.no_log_values.add(text.decode("utf-8", "replace") if isinstance(text, bytes) else text)
    kubeconfig = ks.load(text, "cluster %s kubeconfig" % cluster)
    secrets = ks.secret_values(kubeconfig if isinstance(kubeconfig, dict) else {})
    module.no_log_values.update(secrets)  # Ansible masks these in anything we return
    found = check.one(dict(name=cluster, role="spoke", context=item["context"], path=None, content=kubeconfig))
    if found["errors"]:
        raise ks.KubeconfigSecretError("; ".join(found["errors"]))
    for warning in found["warnings"]:
        module.warn(warning)
    spoke = dict(server=found["server"], auth=found["auth"], context=found["context"], version=found["version"])
    return dict(item, text=text, secrets=secrets, spoke=spoke)


def run(module):
    p = module.params
    items = _requests(module)
    check = pf.Check(ks.spoke_client, warn_days=p["expiry_warning_days"], check_access=p["check_access"],
                     probe=p["verify_spoke"], timeout=p["spoke_timeout"], workers=1)
    # Every spoke is read, checked and reached before the first write on the hub.
    with ThreadPoolExecutor(max_workers=max(1, min(p["workers"], len(items)))) as pool:
        futures = [pool.submit(_prepare, module, item, check) for item in items]
    errors, ready = [], []
    for future in futures:
        try:
            ready.append(future.result())
        except ks.KubeconfigSecretError as exc:
            errors.append(str(exc))
    if errors:
        raise ks.KubeconfigSecretError("; ".join(errors) + " (nothing was written)")

    if p["secret_format"] == "multicluster-runtime":
        manifests = [ks.mcr_secret_manifest(r["name"], r["secret_name"], r["namespace"], r["text"], r["namespaces"], r["labels"])
                     for r in ready]
    else:
        manifests = [ks.secret_manifest(r["name"], r["secret_name"], r["namespace"], r["text"], r["labels"]) for r in ready]
    if p["manage_namespaces"] and p["secret_format"] == "flux":
        # The hub namespaces carry the ownership labels, so cluster_prune can remove them once
        # their cluster leaves the fleet (shared and system namespaces stay bare, never pruned).
        manifests = cp.namespace_manifests(ready) + manifests
    applier = Applier(module.client(workers=p["workers"]), field_manager=p["field_manager"], force_conflicts=True,
                      workers=p["workers"], check_mode=module.check_mode, diff=module._diff)
    all_secrets = set().union(*[r["secrets"] for r in ready]) if ready else set()
    try:
        result = applier.run(manifests)
    except (ApplyError, KubeError) as exc:
        raise ks.KubeconfigSecretError("writing kubeconfig Secrets on the hub failed: %s" % ks.scrub(str(exc), all_secrets))
    per = []
    by_secret = dict(((a["namespace"], a["name"]), a) for a in result["applied"] if a["kind"] == "Secret")
    for r in ready:
        applied = by_secret[(r["namespace"], r["secret_name"])]
        per.append(dict(cluster=r["name"], changed=applied["changed"], created=applied["created"],
                        secret=dict(name=r["secret_name"], namespace=r["namespace"],
                                    key=ks.MCR_KEY if p["secret_format"] == "multicluster-runtime" else ks.SECRET_KEY),
                        spoke=r["spoke"], checksum=ks.checksum(r["text"])))
    out = dict(changed=result["changed"], clusters=per)
    if p["cluster"]:
        out.update((k, v) for k, v in per[0].items() if k != "cluster")
    if module._diff:
        out["diff"] = result["diff"]  # Secret data is already a redacted hash there
    return out


def main():
    module = KubeModule(
        argument_spec=argspec(),
        supports_check_mode=True,
        mutually_exclusive=[("kubeconfig_path", "kubeconfig_content"), ("cluster", "clusters")],
        required_one_of=[("cluster", "clusters")],
        kubeconfig_options=("kubeconfig", "kubeconfig_content", "kubeconfig_contents"),
    )
    # Spoke kubeconfig texts and their credentials are no_log values (KubeModule, _prepare), so
    # Ansible masks them in any message; a traceback of a bug is still left out.
    module.run(run, expected=(ks.KubeconfigSecretError,), bug_traceback=False)


if __name__ == "__main__":
    main()
