# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)
"""Inventory side of the fleet model: hosts -> clusters (gitops_cluster_name), group membership,
catalog entries merged with a cluster's overrides and extras, dependsOn references.

Split from fleet_model.py. Pure Python, no Ansible imports.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.c5c3.gitops.plugins.module_utils import fleet_objects as fo
from ansible_collections.c5c3.gitops.plugins.module_utils.fleet_validate import HUB_GROUP, KNOWN_GROUPS, FleetValidationError


def as_list(value, what):
    if value is None:
        return []
    if not isinstance(value, list):
        raise FleetValidationError("%s must be a list, got %s" % (what, type(value).__name__))
    return value


def as_dict(value, what):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise FleetValidationError("%s must be a mapping, got %s" % (what, type(value).__name__))
    return value


def by_name(entries, what):
    """Catalog list -> ordered {name: entry}; a name listed twice is an error."""
    out = {}
    for entry in as_list(entries, what):
        if not isinstance(entry, dict) or not entry.get("name"):
            raise FleetValidationError("%s: every entry needs a name (got %r)" % (what, entry))
        if entry["name"] in out:
            raise FleetValidationError("%s: duplicate name %r" % (what, entry["name"]))
        out[entry["name"]] = entry
    return out


def merge_entries(catalog, overrides, extra, cluster, kind):
    """Catalog entries of the cluster's group + the cluster's overrides and extra entries."""
    merged = dict(catalog)
    for name, override in as_dict(overrides, "cluster %s gitops_%s_overrides" % (cluster, kind)).items():
        if name not in merged:
            raise FleetValidationError(
                "cluster %s: gitops_%s_overrides names %s %r, which is not in the catalog of its group "
                "(add it with gitops_%ss_extra)" % (cluster, kind, kind, name, kind)
            )
        merged[name] = fo.deep_merge(merged[name], as_dict(override, "cluster %s override of %s" % (cluster, name)))
    for name, entry in by_name(extra, "cluster %s gitops_%ss_extra" % (cluster, kind)).items():
        if name in merged:
            raise FleetValidationError(
                "cluster %s: gitops_%ss_extra adds %s %r, which the catalog already has "
                "(use gitops_%s_overrides to change it)" % (cluster, kind, kind, name, kind)
            )
        merged[name] = entry
    return merged


def resolve_ref(ref, cluster, clusters_by_name, naming, what):
    """A dependsOn entry -> {name, namespace}.

    ``"x"`` names an entry of the same cluster; ``{cluster: c, name: x}`` one of cluster c;
    ``{name, namespace}`` is taken literally.
    """
    if isinstance(ref, str):
        return {"name": naming(cluster, ref), "namespace": cluster["hub_namespace"]}
    if isinstance(ref, dict) and ref.get("name"):
        if ref.get("cluster"):
            other = clusters_by_name.get(ref["cluster"])
            if other is None:
                raise FleetValidationError("%s dependsOn %r: unknown cluster %r" % (what, ref["name"], ref["cluster"]))
            return {"name": naming(other, ref["name"]), "namespace": other["hub_namespace"]}
        return {"name": ref["name"], "namespace": ref.get("namespace") or cluster["hub_namespace"]}
    raise FleetValidationError("%s: dependsOn entry %r must be a name or {name, cluster|namespace}" % (what, ref))


def component_name(_cluster, name):
    return name


def kustomization_name(cluster, entry):
    return "%s-%s" % (cluster["name"], entry)


def by_cluster_name(inventory):
    """Inventory hosts -> clusters: a host's cluster name is its ``gitops_cluster_name`` (default
    the host name). Hosts may thus be named apart from the groups (Ansible warns when a host and a
    group share a name) while the objects keep the design's names (``management-cluster-configs``)."""
    hosts = inventory.get("hosts") or {}
    names = {}
    for host in sorted(hosts):
        hvars = (hosts[host] or {}).get("vars") or {}
        name = hvars.get("gitops_cluster_name") or host
        if not isinstance(name, str) or not name:
            raise FleetValidationError("host %s: gitops_cluster_name must be a name (got %r)" % (host, name))
        other = [h for h, n in names.items() if n == name]
        if other:
            raise FleetValidationError(
                "hosts %s and %s are both cluster %r (gitops_cluster_name); every cluster needs its own name" % (other[0], host, name))
        names[host] = name
    groups = {g: [names.get(h, h) for h in (members or [])] for g, members in (inventory.get("groups") or {}).items()}
    renamed = {}
    for host, info in hosts.items():
        info = dict(info or {})
        info["host"] = host
        renamed[names[host]] = info
    return {"groups": groups, "hosts": renamed}


def clusters_from_inventory(inventory):
    groups = inventory.get("groups") or {}
    hosts = inventory.get("hosts") or {}
    member = {}
    for group in KNOWN_GROUPS:
        for host in groups.get(group) or []:
            if host in member and member[host] != group:
                raise FleetValidationError(
                    "cluster %s is in groups %s and %s; a cluster has exactly one role" % (host, member[host], group)
                )
            member[host] = group
    for host in sorted(hosts):
        if host not in member:
            theirs = sorted(g for g, hs in groups.items() if host in (hs or []) and g not in ("all", "ungrouped"))
            raise FleetValidationError(
                "cluster %s: unknown group%s %s; a cluster must be in one of %s"
                % (host, "s" if len(theirs) != 1 else "", ", ".join(theirs) or "(none)", ", ".join(KNOWN_GROUPS))
            )
    hubs = sorted(h for h, g in member.items() if g == HUB_GROUP)
    if len(hubs) != 1:
        raise FleetValidationError(
            "group %s must hold exactly one cluster (the hub running Flux), found %d%s"
            % (HUB_GROUP, len(hubs), (": " + ", ".join(hubs)) if hubs else "")
        )
    return member, hubs[0], hosts
