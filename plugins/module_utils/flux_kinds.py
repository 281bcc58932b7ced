# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)
"""Kind -> REST coordinates of every kind the collection reads, writes or waits on.

A plain table instead of API discovery: discovery costs a round trip per group and the
versions below are the ones the collection is written against (Flux 2.7, Flux Operator,
External Secrets Operator v1). Shared by the gate (waiter) and the apply sink.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

KINDS = {
    "FluxInstance": {"group": "fluxcd.controlplane.io", "version": "v1", "plural": "fluxinstances", "namespaced": True},
    "FluxReport": {"group": "fluxcd.controlplane.io", "version": "v1", "plural": "fluxreports", "namespaced": True},
    "ResourceSet": {"group": "fluxcd.controlplane.io", "version": "v1", "plural": "resourcesets", "namespaced": True},
    "Kustomization": {"group": "kustomize.toolkit.fluxcd.io", "version": "v1", "plural": "kustomizations", "namespaced": True},
    "HelmRelease": {"group": "helm.toolkit.fluxcd.io", "version": "v2", "plural": "helmreleases", "namespaced": True},
    "GitRepository": {"group": "source.toolkit.fluxcd.io", "version": "v1", "plural": "gitrepositories", "namespaced": True},
    "OCIRepository": {"group": "source.toolkit.fluxcd.io", "version": "v1", "plural": "ocirepositories", "namespaced": True},
    "HelmRepository": {"group": "source.toolkit.fluxcd.io", "version": "v1", "plural": "helmrepositories", "namespaced": True},
    "HelmChart": {"group": "source.toolkit.fluxcd.io", "version": "v1", "plural": "helmcharts", "namespaced": True},
    "Bucket": {"group": "source.toolkit.fluxcd.io", "version": "v1", "plural": "buckets", "namespaced": True},
    "Deployment": {"group": "apps", "version": "v1", "plural": "deployments", "namespaced": True},
    "Secret": {"group": "", "version": "v1", "plural": "secrets", "namespaced": True},
    "ConfigMap": {"group": "", "version": "v1", "plural": "configmaps", "namespaced": True},
    "Namespace": {"group": "", "version": "v1", "plural": "namespaces", "namespaced": False},
    "ExternalSecret": {"group": "external-secrets.io", "version": "v1", "plural": "externalsecrets", "namespaced": True},
}


class UnknownKindError(ValueError):
    """A kind that is not in KINDS and came without an apiVersion to derive it from."""


def api_version_of(group, version):
    return "%s/%s" % (group, version) if group else version


def lookup(kind, api_version=None):
    """Return {kind, group, version, plural, namespaced, api_version} for ``kind``.

    ``api_version`` (``group/version`` or ``v1``) overrides the table's version, e.g. to
    address ``helm.toolkit.fluxcd.io/v2beta2`` on an old cluster. A kind missing from the table
    needs ``api_version``; its plural is then guessed the way Kubernetes lower-cases kinds.
    """
    entry = KINDS.get(kind)
    if entry is None:
        if not api_version:
            raise UnknownKindError(
                "unknown kind %r: give api_version, or use one of %s" % (kind, ", ".join(sorted(KINDS)))
            )
        lower = kind.lower()
        entry = {"plural": lower + ("es" if lower.endswith("s") else "s"), "namespaced": True}
    out = dict(entry, kind=kind)
    if api_version:
        group, dummy, version = api_version.rpartition("/")
        out["group"], out["version"] = group, version
    out["api_version"] = api_version_of(out["group"], out["version"])
    return out


def collection_path(info, namespace=None):
    """REST path of the collection of ``info``'s kind (in ``namespace`` when namespaced)."""
    base = "/api/%s" % info["version"] if not info["group"] else "/apis/%s/%s" % (info["group"], info["version"])
    if info["namespaced"] and namespace:
        base += "/namespaces/%s" % namespace
    return "%s/%s" % (base, info["plural"])


def object_path(info, namespace, name):
    return "%s/%s" % (collection_path(info, namespace), name)
