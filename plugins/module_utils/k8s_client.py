# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)
"""Connection options shared by every cluster-facing module (the names modules import).

The option names follow kubernetes.core's auth options so that users can move a
``module_defaults`` block between the two collections. Documented in the doc fragment
``c5c3.gitops.k8s_auth``; the two must change together. The options, their environment
fallbacks and how they become a connection live in kube_auth; the client in kube.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.c5c3.gitops.plugins.module_utils.kube_auth import (  # noqa: F401 - re-exported
    K8S_AUTH_ARGSPEC,
)

__all__ = ["K8S_AUTH_ARGSPEC"]
from ansible_collections.c5c3.gitops.plugins.module_utils.kube_errors import KubeError

K8sClientError = KubeError  # the old name of "the cluster connection could not be set up"
