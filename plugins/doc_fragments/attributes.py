# -*- coding: utf-8 -*-
# Copyright (c) c5c3.gitops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The attributes every module of the collection documents: what check and diff mode mean, and
membership of the module_defaults group that carries the shared Kubernetes options. A module
states only its own support level and details."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):

    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
"""

    # Modules that talk to a cluster: the shared auth options come from one module_defaults group.
    K8S_GROUP = r"""
options: {}
attributes:
  action_group:
    description: Use C(group/c5c3.gitops.k8s) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - c5c3.gitops.k8s
"""
