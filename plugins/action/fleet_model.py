# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)
"""Controller side of c5c3.gitops.fleet_model: inventory + catalogs -> validated fleet data.

Runs entirely on the controller (it needs every host's vars, which only the controller has)
and touches no cluster. Kubeconfigs are read and checked here, in memory; only where they
come from and which server they name leave this plugin, never their content.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

import yaml

from ansible.plugins.action import ActionBase

from ansible_collections.c5c3.gitops.plugins.module_utils.fleet_model import HOST_VARS, SYNC_SECRET_VARS, build_fleet
from ansible_collections.c5c3.gitops.plugins.module_utils.fleet_validate import FleetValidationError

ARGUMENT_SPEC = dict(
    components=dict(type="dict", required=True),
    kustomizations=dict(type="dict", default={}),
    sources=dict(type="list", elements="dict", required=True),
    flux_instance=dict(type="dict", required=True),
    helmrelease_defaults=dict(type="dict", default={}),
    kustomization_defaults=dict(type="dict", default={}),
    secret_store=dict(type="dict", default={}),
    require_kubeconfigs=dict(type="bool", default=False),
    namespaces=dict(type="list", elements="raw", default=[]),
    hub_release_namespaces=dict(type="str", default="hub", choices=["hub", "component"]),
    # Values checked by the model, whose error names the inventory variables users set.
    delivery=dict(type="str", default="git"),
    kubeconfig_writer=dict(type="str", default="registration"),
)


def _plain(value):
    """Drop Ansible's tagged/lazy container types: the model and YAML dumpers want plain data."""
    return json.loads(json.dumps(value, default=str))


def _resolve(path, inventory_dir):
    """~ and paths relative to the host's inventory directory -> absolute path."""
    path = os.path.expanduser(str(path))
    if not os.path.isabs(path) and inventory_dir:
        path = os.path.join(str(inventory_dir), path)
    return os.path.abspath(path)


def _load_kubeconfig(path, content):
    """-> (parsed dict or None, error or None). Never returns or logs the content."""
    if content is not None:
        if isinstance(content, dict):
            return _plain(content), None
        try:
            data = yaml.safe_load(str(content))
        except yaml.YAMLError as exc:
            return None, "gitops_kubeconfig_content is not valid YAML (%s)" % getattr(exc, "problem", "parse error")
        if not isinstance(data, dict):
            return None, "gitops_kubeconfig_content is not a kubeconfig (not a mapping)"
        return data, None
    if not path:
        return None, None
    if not os.path.exists(path):
        return None, None
    try:
        with open(path, "rb") as handle:
            data = yaml.safe_load(handle)
    except (OSError, yaml.YAMLError) as exc:
        return None, "cannot read kubeconfig %s: %s" % (path, getattr(exc, "problem", None) or exc)
    if not isinstance(data, dict):
        return None, "kubeconfig %s is not a kubeconfig (not a mapping)" % path
    return data, None


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        _valid, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)

        groups = task_vars.get("groups") or {}
        hostvars = task_vars.get("hostvars") or {}
        hosts = {}
        for host in groups.get("all") or []:
            hv = hostvars[host]
            host_vars = {}
            for key in HOST_VARS:
                if key in hv:
                    host_vars[key] = _plain(hv[key])
            content = hv["gitops_kubeconfig_content"] if "gitops_kubeconfig_content" in hv else None
            if host_vars.get("gitops_kubeconfig"):
                host_vars["gitops_kubeconfig"] = _resolve(host_vars["gitops_kubeconfig"],
                                                          hv["inventory_dir"] if "inventory_dir" in hv else None)
            data, error = _load_kubeconfig(host_vars.get("gitops_kubeconfig"), content)
            hosts[host] = {
                "vars": host_vars,
                "kubeconfig_data": data,
                "kubeconfig_error": error,
                "kubeconfig_content": content is not None,
                "sync_vars_defined": all(v in hv for v in SYNC_SECRET_VARS.values()),
            }
        inventory = {"groups": _plain({g: list(h) for g, h in groups.items()}), "hosts": hosts}
        catalog = {
            "components": args["components"],
            "kustomizations": args["kustomizations"],
            "sources": args["sources"],
            "flux_instance": args["flux_instance"],
            "helmrelease_defaults": args["helmrelease_defaults"],
            "kustomization_defaults": args["kustomization_defaults"],
            "secret_store": args["secret_store"],
            "require_kubeconfigs": args["require_kubeconfigs"],
            "namespaces": args["namespaces"],
            "hub_release_namespaces": args["hub_release_namespaces"],
            "delivery": args["delivery"],
            "kubeconfig_writer": args["kubeconfig_writer"],
        }
        try:
            fleet = build_fleet(inventory, _plain(catalog))
        except FleetValidationError as exc:
            result.update(failed=True, msg="invalid fleet: %s" % exc)
            return result
        result.update(changed=False, fleet=fleet)
        return result
