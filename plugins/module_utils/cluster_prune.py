# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)
"""What a cluster leaves on the hub when it leaves the inventory, and removing it safely.

A spoke's registration writes two things on the hub: its kubeconfig Secret and its hub namespace,
both carrying the ownership labels (``app.kubernetes.io/managed-by: c5c3.gitops``,
``gitops.c5c3.io/stage: clusters``, ``gitops.c5c3.io/cluster: <cluster>``). When the cluster is
no longer in the fleet, they are pruned - but only

- what carries all of those labels (re-checked here, whatever the server's selector did),
- after the Flux objects that used the Secret are gone (the Kustomizations and HelmReleases of
  the cluster: helm-controller needs the kubeconfig to uninstall), waiting a bounded time,
- the namespace only when nothing but owned objects is left in it, and never a namespace of the
  system or of the hub itself.

Deletes carry the uid read (a same-named object created meanwhile is safe). Pure selection first,
then ``Pruner`` on a client with ``request(method, path, query=None, body=None)``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

try:
    from ansible_collections.c5c3.gitops.plugins.module_utils.apply import (
        CLUSTER_LABEL, MANAGED_BY, MANAGED_BY_VALUE, STAGE_LABEL, labels_of)
    from ansible_collections.c5c3.gitops.plugins.module_utils.apply_diff import redact_secret
except ImportError:  # pragma: no cover
    from apply import CLUSTER_LABEL, MANAGED_BY, MANAGED_BY_VALUE, STAGE_LABEL, labels_of  # type: ignore
    from apply_diff import redact_secret  # type: ignore

STAGE = "clusters"
MCR_LABEL = "sigs.k8s.io/multicluster-runtime-kubeconfig"
PROTECTED_NAMESPACES = frozenset(("default", "kube-system", "kube-public", "kube-node-lease", "flux-system"))
SELECTOR = "%s=%s,%s=%s" % (MANAGED_BY, MANAGED_BY_VALUE, STAGE_LABEL, STAGE)
DEPENDENT_KINDS = (
    ("Kustomization", "/apis/kustomize.toolkit.fluxcd.io/v1"),
    ("HelmRelease", "/apis/helm.toolkit.fluxcd.io/v2"),
)


class PruneError(Exception):
    pass


def ownership_labels(cluster):
    return {MANAGED_BY: MANAGED_BY_VALUE, STAGE_LABEL: STAGE, CLUSTER_LABEL: cluster}


def namespace_manifests(items, protected=PROTECTED_NAMESPACES):
    """Hub namespaces to register with the ownership labels: ``items`` are {name, namespace}; a
    namespace shared by two clusters, or a protected one, is left bare (and is never pruned)."""
    users = {}
    for item in items:
        users.setdefault(item["namespace"], set()).add(item["name"])
    out = []
    for ns in sorted(users):
        if ns in protected or len(users[ns]) != 1:
            continue
        out.append({"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": ns, "labels": ownership_labels(next(iter(users[ns])))}})
    return out


def owned_by_registration(obj):
    labels = labels_of(obj)
    return labels.get(MANAGED_BY) == MANAGED_BY_VALUE and labels.get(STAGE_LABEL) == STAGE and bool(labels.get(CLUSTER_LABEL))


def select(secrets, namespaces, keep, protected=PROTECTED_NAMESPACES, secret_format="flux"):
    """{cluster: {secrets: [...], namespaces: [...]}} of owned objects of clusters not in ``keep``.

    ``secret_format`` flux: the Flux kubeconfig Secrets (and hub namespaces); multicluster-runtime:
    only Secrets with the multicluster-runtime label (C5C3's target clusters), never namespaces.
    """
    out = {}
    mcr = secret_format == "multicluster-runtime"
    for kind, objs in (("secrets", secrets), ("namespaces", [] if mcr else namespaces)):
        for obj in objs or []:
            md = obj.get("metadata") or {}
            if not owned_by_registration(obj) or md.get("deletionTimestamp"):
                continue
            if kind == "secrets" and (labels_of(obj).get(MCR_LABEL) == "true") != mcr:
                continue
            cluster = labels_of(obj)[CLUSTER_LABEL]
            if cluster in keep:
                continue
            if kind == "namespaces" and md.get("name") in protected:
                continue
            out.setdefault(cluster, {"secrets": [], "namespaces": []})[kind].append(obj)
    for entry in out.values():
        for objs in entry.values():
            objs.sort(key=lambda o: ((o.get("metadata") or {}).get("namespace") or "", o["metadata"]["name"]))
    return out


def foreign(objs):
    """Objects in a namespace that are not the registration's own (service account tokens and the
    namespace's own config maps such as kube-root-ca.crt are the server's)."""
    out = []
    for obj in objs:
        md = obj.get("metadata") or {}
        if obj.get("type") == "kubernetes.io/service-account-token" or md.get("name") == "kube-root-ca.crt":
            continue
        if owned_by_registration(obj) or md.get("deletionTimestamp"):
            continue
        out.append(md.get("name"))
    return sorted(out)


def describe(obj, kind):
    md = obj["metadata"]
    return "%s %s/%s" % (kind, md["namespace"], md["name"]) if md.get("namespace") else "%s %s" % (kind, md["name"])


class Pruner(object):
    def __init__(self, raw, check_mode=False, wait_timeout=300, poll=2.0, clock=time.monotonic, sleep=time.sleep,
                 secret_format="flux"):
        self.raw = raw
        self.secret_format = secret_format
        self.check_mode = check_mode
        self.wait_timeout = wait_timeout
        self.poll = poll
        self.clock = clock
        self.sleep = sleep

    def _list(self, path, selector=None):
        query = {"labelSelector": selector} if selector else None
        try:
            return self.raw.request("GET", path, query)[1].get("items") or []
        except Exception as exc:
            if getattr(exc, "status", None) == 404:  # the kind does not exist (no Flux CRDs yet)
                return []
            raise

    def dependents(self, cluster, namespaces):
        """Flux objects that still use the cluster's Secret - its labelled ones anywhere, and any in
        its hub namespace(s) - as {description: being deleted (bool)}."""
        out = {}
        for kind, base in DEPENDENT_KINDS:
            found = self._list("%s/%s" % (base, kind.lower() + "s"), "%s=%s" % (CLUSTER_LABEL, cluster))
            for ns in namespaces:
                found += self._list("%s/namespaces/%s/%s" % (base, ns, kind.lower() + "s"))
            for obj in found:
                out[describe(obj, kind)] = bool((obj.get("metadata") or {}).get("deletionTimestamp"))
        return out

    def _delete(self, path, obj):
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background",
                "preconditions": {"uid": obj["metadata"].get("uid")}}
        try:
            self.raw.request("DELETE", path, body=body)
        except Exception as exc:
            if getattr(exc, "status", None) not in (404, 409):
                raise PruneError("deleting %s failed: %s" % (path, exc))

    def run(self, keep):
        """Prune what clusters outside ``keep`` left. Returns {pruned: [...], kept: [...], diff: [...]}."""
        mcr = self.secret_format == "multicluster-runtime"
        selected = select(self._list("/api/v1/secrets", SELECTOR + ("," + MCR_LABEL + "=true" if mcr else "")),
                          [] if mcr else self._list("/api/v1/namespaces", SELECTOR), set(keep),
                          secret_format=self.secret_format)
        pruned, kept, diffs = [], [], []
        for cluster in sorted(selected):
            entry = selected[cluster]
            ns_names = [n["metadata"]["name"] for n in entry["namespaces"]]
            users = {} if mcr else self.dependents(cluster, ns_names)
            if users and not self.check_mode and all(users.values()):
                # Flux is uninstalling through the Secret (finalizers): give it time, bounded.
                deadline = self.clock() + self.wait_timeout
                while users and all(users.values()) and self.clock() < deadline:
                    self.sleep(self.poll)
                    users = {} if mcr else self.dependents(cluster, ns_names)
            waiting = sorted(users)
            if waiting and not self.check_mode:
                why = "still used by %s" % ", ".join(waiting[:10])
                if not all(users.values()):
                    why += " (not being deleted: run the stages that prune them, e.g. the whole site.yml)"
                kept.append({"cluster": cluster, "reason": why})
                continue
            for secret in entry["secrets"]:
                md = secret["metadata"]
                if not self.check_mode:
                    self._delete("/api/v1/namespaces/%s/secrets/%s" % (md["namespace"], md["name"]), secret)
                pruned.append({"cluster": cluster, "kind": "Secret", "namespace": md["namespace"], "name": md["name"],
                               "after": waiting if self.check_mode else []})
                diffs.append({"before_header": describe(secret, "Secret"), "after_header": describe(secret, "Secret"),
                              "before": {"metadata": {"labels": labels_of(secret)},
                                         "data": redact_secret(dict(secret, kind="Secret")).get("data")},
                              "after": {}})
            for namespace in entry["namespaces"]:
                name = namespace["metadata"]["name"]
                left = foreign(self._list("/api/v1/namespaces/%s/secrets" % name)
                               + self._list("/api/v1/namespaces/%s/configmaps" % name))
                if left:
                    kept.append({"cluster": cluster, "reason": "namespace %s still holds %s" % (name, ", ".join(left[:10]))})
                    continue
                if not self.check_mode:
                    self._delete("/api/v1/namespaces/%s" % name, namespace)
                pruned.append({"cluster": cluster, "kind": "Namespace", "namespace": None, "name": name,
                               "after": waiting if self.check_mode else []})
                diffs.append({"before_header": describe(namespace, "Namespace"), "after_header": describe(namespace, "Namespace"),
                              "before": {"metadata": {"labels": labels_of(namespace)}}, "after": {}})
        return {"pruned": pruned, "kept": kept, "diff": diffs}
