# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)
"""The skeleton every cluster-facing module of the collection shares.

``KubeModule`` is an AnsibleModule whose connection credentials are no_log values from the very
start: they are registered right after the raw arguments are read, before argument validation
(whose errors echo the arguments), before the invocation is logged to syslog/journal and before
any result or failure is returned. Ansible replaces them in everything the module returns,
``invocation.module_args`` at ``-vvv`` and ``--diff`` output included.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.c5c3.gitops.plugins.module_utils.kube_secrets import auth_secrets


class KubeModule(AnsibleModule):
    """AnsibleModule + the credentials of its connection options in ``no_log_values``.

    ``kubeconfig_options``: options that hold a kubeconfig (path, mapping or YAML text) or a
    mapping of kubeconfigs by cluster; ``kubeconfig`` (the shared auth option) by default.
    """

    def __init__(self, *args, **kwargs):
        self._kubeconfig_options = tuple(kwargs.pop("kubeconfig_options", ("kubeconfig",)))
        super(KubeModule, self).__init__(*args, **kwargs)
        # Again on the validated values (aliases resolved, types converted): never fewer.
        self.no_log_values.update(auth_secrets(self.params, self._kubeconfig_options))

    def _load_params(self):
        super(KubeModule, self)._load_params()
        # The earliest point the arguments exist: nothing has been validated, logged or returned.
        self.no_log_values.update(auth_secrets(self.params or {}, self._kubeconfig_options))
