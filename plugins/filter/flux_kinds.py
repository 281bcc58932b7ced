# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)
"""Filters exposing the collection's one kind table (plugins/module_utils/flux_kinds.py) to roles."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.c5c3.gitops.plugins.module_utils import flux_kinds


def flux_kind(kind):
    """The facts of one kind (group, version, plural, api_version, readiness, reconcilable, ...)."""
    try:
        return flux_kinds.lookup(kind)
    except flux_kinds.UnknownKindError as exc:
        raise AnsibleFilterError(str(exc))


def flux_kinds_with(fact):
    """Names of the kinds whose fact ``fact`` is true, sorted (e.g. ``uses_kubeconfig``)."""
    if not any(fact in entry for entry in flux_kinds.KINDS.values()):
        raise AnsibleFilterError("unknown kind fact %r" % (fact,))
    return list(flux_kinds.kinds_where(**{fact: True}))


class FilterModule(object):
    def filters(self):
        return {"flux_kind": flux_kind, "flux_kinds_with": flux_kinds_with}
