"""Helpers of the fleet unit tests (imported by name: pytest puts this directory on sys.path): the role's real catalogs and small inventories."""
import copy
import os

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
DEFAULTS = os.path.join(ROOT, "roles", "fleet", "defaults", "main.yml")
CRD_DIR = os.path.join(ROOT, "..", "shared", "flux-crds")

_CATALOG = None


def load_catalog():
    """The catalogs exactly as the role passes them to the fleet_model action."""
    global _CATALOG
    if _CATALOG is None:
        with open(DEFAULTS) as handle:
            d = yaml.safe_load(handle)
        _CATALOG = {
            "components": d["fleet_components"],
            "kustomizations": d["fleet_kustomizations"],
            "sources": d["fleet_sources"],
            "flux_instance": d["fleet_flux_instance"],
            "helmrelease_defaults": d["fleet_helmrelease_defaults"],
            "kustomization_defaults": d["fleet_kustomization_defaults"],
            "secret_store": d["fleet_secret_store"],
            "require_kubeconfigs": d["fleet_require_kubeconfigs"],
            "namespaces": d["fleet_namespaces"],
            "hub_release_namespaces": d["fleet_hub_release_namespaces"],
        }
    return copy.deepcopy(_CATALOG)


def make_inventory(layout=None, host_vars=None, kubeconfigs=None, extra_groups=None):
    """layout: {group: [cluster]}; host_vars: {cluster: {var: value}}; kubeconfigs: {cluster: dict}."""
    layout = layout or {
        "management": ["management"],
        "control_plane": ["control-plane"],
        "hypervisor": ["hypervisor"],
        "storage": ["storage"],
    }
    groups = {g: list(h) for g, h in layout.items()}
    groups.update(extra_groups or {})
    all_hosts = sorted({h for hs in groups.values() for h in hs})
    groups["all"] = all_hosts
    hosts = {}
    for h in all_hosts:
        hosts[h] = {
            "vars": copy.deepcopy((host_vars or {}).get(h, {})),
            "kubeconfig_data": copy.deepcopy((kubeconfigs or {}).get(h)),
            "kubeconfig_content": False,
            "sync_vars_defined": False,
        }
    return {"groups": groups, "hosts": hosts}


TWO_REGIONS = {
    "management": ["management"],
    "control_plane": ["control-plane-eu-1", "control-plane-eu-2"],
    "hypervisor": ["hypervisor-eu-1", "hypervisor-eu-2"],
    "storage": ["storage-eu-1"],
}


def kubeconfig(user=None, server="https://10.0.0.1:6443", cluster_extra=None, name="spoke"):
    """A self-contained kubeconfig dict (token auth unless user is given)."""
    cluster = {"server": server, "certificate-authority-data": "Q0E="}
    cluster.update(cluster_extra or {})
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": name,
        "contexts": [{"name": name, "context": {"cluster": name, "user": name + "-admin"}}],
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": name + "-admin", "user": user if user is not None else {"token": "s3cr3t-token-value"}}],
    }
