# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)
"""C5C3's own target-cluster registration, as data of the fleet (issue 9 §3).

C5C3's operators find their target clusters through multicluster-runtime's kubeconfig provider: a
Secret in ``c5c3-clusters`` on the cluster where the operators run, named after the target, label
``sigs.k8s.io/multicluster-runtime-kubeconfig: "true"``, key ``kubeconfig`` and an optional
comma-separated ``namespaces`` key. Per cluster, host vars switch it on:

- ``gitops_c5c3_target: true`` (a boolean; default false),
- ``gitops_c5c3_target_namespaces: [..]`` (optional; the ``namespaces`` key).

The operators' cluster is the one whose fleet runs the ``c5c3-operator`` component (exactly one
when any target is on). ``plan`` returns the ``c5c3`` part of the fleet (cluster, namespace,
targets), the Secret references (no values) and, for the render sink, ExternalSecret
placeholders under ``clusters/<operators' cluster>/`` (applied there by its Kustomization; ESO runs in
every cluster). Pure, no Ansible imports.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

NAMESPACE = "c5c3-clusters"
OPERATOR = "c5c3-operator"
LABEL = "sigs.k8s.io/multicluster-runtime-kubeconfig"
KEY = "kubeconfig"
NAMESPACES_KEY = "namespaces"
HOST_VARS = ("gitops_c5c3_target", "gitops_c5c3_target_namespaces")
_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class TargetError(ValueError):
    pass


def _targets(inventory, clusters):
    out = []
    for cluster in clusters:
        hvars = ((inventory.get("hosts") or {}).get(cluster["name"]) or {}).get("vars") or {}
        enabled = hvars.get("gitops_c5c3_target", False)
        if not isinstance(enabled, bool):
            raise TargetError("cluster %s: gitops_c5c3_target must be true or false, got %r" % (cluster["name"], enabled))
        namespaces = hvars.get("gitops_c5c3_target_namespaces")
        if namespaces is not None:
            if not isinstance(namespaces, list) or not all(isinstance(n, str) and _DNS1123.match(n) for n in namespaces):
                raise TargetError("cluster %s: gitops_c5c3_target_namespaces must be a list of namespace names" % cluster["name"])
            if not enabled:
                raise TargetError("cluster %s: gitops_c5c3_target_namespaces is set but gitops_c5c3_target is not true" % cluster["name"])
        if enabled:
            out.append({"name": cluster["name"], "namespaces": list(namespaces or [])})
    return out


def plan(inventory, clusters, labels_fn, store=None):
    """The ``c5c3`` part of the fleet: {cluster (the operators' cluster, None when no single one),
    namespace, targets}; with no target, there is nothing to register but the cluster is still
    named (so that registrations of targets switched off can be pruned there).

    ``clusters``: the model's clusters ({name, components, ...}); ``labels_fn(stage, cluster, extra)``
    builds the ownership labels. Returns {c5c3, secrets, manifests}.
    """
    targets = _targets(inventory, clusters)
    runners = sorted(c["name"] for c in clusters if any(comp["name"] == OPERATOR for comp in c.get("components") or []))
    if not targets:
        return {"c5c3": {"cluster": runners[0] if len(runners) == 1 else None, "namespace": NAMESPACE, "targets": []},
                "secrets": [], "manifests": []}
    if len(runners) != 1:
        raise TargetError(
            "gitops_c5c3_target is on for %s, but %s: the target-cluster Secrets go to the one cluster that runs %s"
            % (", ".join(t["name"] for t in targets),
               "no cluster runs %s" % OPERATOR if not runners else "%s all run %s" % (", ".join(runners), OPERATOR), OPERATOR))
    runner = runners[0]
    secrets, manifests = [], []
    for target in targets:
        labels = labels_fn("clusters", target["name"], {LABEL: "true"})
        keys = [KEY] + ([NAMESPACES_KEY] if target["namespaces"] else [])
        secrets.append({"kind": "c5c3-target", "name": target["name"], "namespace": NAMESPACE, "stage": "clusters",
                        "cluster": target["name"], "on_cluster": runner, "labels": labels, "keys": keys,
                        "vars": {"path": "gitops_kubeconfig", "content": "gitops_kubeconfig_content"},
                        "values_defined": True})
        if store:
            manifests.append({"path": "clusters/%s/c5c3-clusters.yaml" % runner,
                              "object": external_secret(target, runner, labels, store, labels_fn)})
    if store:
        manifests.append({"path": "clusters/%s/namespaces.yaml" % runner,
                          "object": {"apiVersion": "v1", "kind": "Namespace",
                                     "metadata": {"name": NAMESPACE, "labels": labels_fn("kustomizations", runner, None)}}})
    return {"c5c3": {"cluster": runner, "namespace": NAMESPACE, "targets": targets}, "secrets": secrets, "manifests": manifests}


def external_secret(target, runner, labels, store, labels_fn):
    """The placeholder the render sink writes: ESO on the operators' cluster builds the Secret from
    the target's kubeconfig in the secret store (the same remote key as the Flux form)."""
    remote = (store.get("remote_keys") or {}).get("kubeconfig", "kv-v2/data/clusters/{cluster}/kubeconfig")
    remote = remote.replace("{cluster}", target["name"]).replace("{name}", target["name"])
    template = {"metadata": {"labels": dict(labels)}}
    if target["namespaces"]:  # a literal next to the fetched key (no template expression)
        template.update(mergePolicy="Merge", data={NAMESPACES_KEY: ",".join(target["namespaces"])})
    return {
        "apiVersion": store["api_version"],
        "kind": "ExternalSecret",
        "metadata": {"name": target["name"], "namespace": NAMESPACE, "labels": labels_fn("clusters", target["name"], None)},
        "spec": {
            "refreshInterval": store["refresh_interval"],
            "secretStoreRef": {"name": store["name"], "kind": store["kind"]},
            "target": {"name": target["name"], "creationPolicy": "Owner", "template": template},
            "data": [{"secretKey": KEY, "remoteRef": {"key": remote, "property": "value"}}],
        },
    }
