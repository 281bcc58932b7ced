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

import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.c5c3.gitops.plugins.module_utils.kube_errors import KubeError
from ansible_collections.c5c3.gitops.plugins.module_utils.kube_secrets import auth_secrets


class ModuleFailed(Exception):
    """Raised by a module body to fail with a message and result fields (e.g. a gate's report)."""

    def __init__(self, msg, **result):
        super(ModuleFailed, self).__init__(msg)
        self.msg = msg
        self.result = result


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

    def client(self, workers=8, cluster=None):
        """The module's KubeClient (built once from the auth options; closed by run())."""
        if getattr(self, "_kube_client", None) is None:
            from ansible_collections.c5c3.gitops.plugins.module_utils.kube import client_from_params
            self._kube_client = client_from_params(self.params, cluster=cluster, workers=workers)
            self.no_log_values.update(self._kube_client.secrets)  # e.g. tokens from exec plugins
        return self._kube_client

    def api_requests(self):
        """Requests sent so far (0 when the client was never built)."""
        client = getattr(self, "_kube_client", None)
        return client.api_requests if client is not None else 0

    def run(self, body, expected=(), failure=None, bug_traceback=True):
        """Run ``body(module) -> result`` and exit: the one error mapping of every module.

        KubeError and the ``expected`` error types fail with their message (plus the exception's
        ``result`` mapping when it has one, and ``failure(module)`` fields); ModuleFailed with its
        own fields; anything else is a bug and fails with the traceback. Never returns.
        """
        result = None
        try:
            result = body(self)
        except ModuleFailed as exc:
            self._close_client()
            self.fail_json(msg=exc.msg, **exc.result)
        except (KubeError,) + tuple(expected) as exc:
            self._close_client()
            fields = dict(failure(self) if failure else {})
            fields.update(getattr(exc, "result", None) or {})
            self.fail_json(msg=str(exc), **fields)
        except Exception as exc:  # a bug, not a cluster answer: keep the traceback (no_log values masked)
            self._close_client()
            if not bug_traceback:
                self.fail_json(msg="%s failed unexpectedly (%s)" % (self._name, type(exc).__name__))
            self.fail_json(msg="%s failed unexpectedly: %s: %s" % (self._name, type(exc).__name__, exc),
                           exception=traceback.format_exc())
        self._close_client()
        self.exit_json(**result)

    def _close_client(self):
        client = getattr(self, "_kube_client", None)
        if client is not None:
            client.close()

    def _load_params(self):
        super(KubeModule, self)._load_params()
        # The earliest point the arguments exist: nothing has been validated, logged or returned.
        self.no_log_values.update(auth_secrets(self.params or {}, self._kubeconfig_options))
