#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: gitops_render
short_description: Write the fleet's Flux objects as a GitOps repository tree
version_added: 0.1.0
description:
  - The render sink. Turns the C(fleet) built by M(c5c3.gitops.fleet_model) into the files of the
    GitOps repository (C(clusters/<cluster>/...), C(apps/...), C(infrastructure/sources/...),
    C(infrastructure/cluster-configs/...)) with a C(kustomization.yaml) in every directory, and
    writes them below O(dest).
  - Writes only files whose content differs and removes files it wrote earlier that are no longer
    generated (it tracks them in C(.c5c3-gitops-render.json) in O(dest)); files it does not own
    are never removed. A rerun with the same fleet changes nothing.
  - The whole tree is built before the first write, so a fleet that cannot be rendered fails
    without touching O(dest). Output is byte-identical for the same fleet.
  - No secret value is ever written; Secrets appear as ExternalSecret placeholders.
author:
  - c5c3.gitops developers (@c5c3)
attributes:
  check_mode:
    support: full
    description: Reports what would be created, updated and removed, writes nothing.
  diff_mode:
    support: full
    description: Shows a diff per created, updated or removed file.
requirements:
  - PyYAML
options:
  fleet:
    description: The C(fleet) result of M(c5c3.gitops.fleet_model).
    type: dict
    required: true
  dest:
    description: Root directory of the GitOps tree (created when missing).
    type: path
    required: true
notes:
  - Layout of the tree and the reasons for it are in docs/fleet-model.md of the collection.
seealso:
  - module: c5c3.gitops.fleet_model
"""

EXAMPLES = r"""
- name: Render the GitOps tree
  c5c3.gitops.gitops_render:
    fleet: "{{ gitops_fleet }}"
    dest: /srv/c5c3-gitops
"""

RETURN = r"""
created:
  description: Files written that did not exist (relative to O(dest)).
  returned: always
  type: list
  elements: str
updated:
  description: Existing files whose content changed.
  returned: always
  type: list
  elements: str
removed:
  description: Files of an earlier render that are no longer generated, deleted.
  returned: always
  type: list
  elements: str
files:
  description: Number of files the tree holds.
  returned: always
  type: int
  sample: 69
"""

import os

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.c5c3.gitops.plugins.module_utils.gitops_tree import HAS_YAML, TreeError, render_tree
from ansible_collections.c5c3.gitops.plugins.module_utils.render_sink import (  # noqa: F401 (MANIFEST: API of the tests)
    MANIFEST,
    apply_plan,
    manifest_bytes,
    plan,
    read_file,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(fleet=dict(type="dict", required=True), dest=dict(type="path", required=True)),
        supports_check_mode=True,
    )
    if not HAS_YAML:
        module.fail_json(msg=missing_required_lib("PyYAML"))
    dest = module.params["dest"]
    try:
        tree = render_tree(module.params["fleet"])
    except (TreeError, KeyError, TypeError) as exc:
        module.fail_json(msg="cannot render the fleet: %s" % exc)
    if os.path.exists(dest) and not os.path.isdir(dest):
        module.fail_json(msg="dest %s exists and is not a directory" % dest)
    created, updated, removed = [], [], []
    try:
        created, updated, removed, diffs = plan(tree, dest)
        # A missing/stale manifest alone is a change too: otherwise a later render could not prune.
        changed = bool(created or updated or removed) or read_file(os.path.join(dest, MANIFEST)) != manifest_bytes(tree)
        if changed and not module.check_mode:
            apply_plan(tree, dest, created, updated, removed)
    except (IOError, OSError) as exc:
        module.fail_json(msg="cannot write %s: %s" % (dest, exc), created=created, updated=updated, removed=removed)
    result = dict(changed=changed, created=created, updated=updated, removed=removed, files=len(tree))
    if module._diff:
        result["diff"] = diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
