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
    generated. It records what it wrote, with a SHA-256 per file, in C(.c5c3-gitops-render.json) in
    O(dest); a file at a generated path that it did not write (hand-written, or edited since the
    last render) is never overwritten or removed unless O(force). A rerun with the same fleet
    changes nothing.
  - Paths are resolved to real paths; a generated path that passes through a symbolic link below
    O(dest) is refused, so nothing is ever written outside O(dest).
  - The whole tree is built and checked before the first write. Files are written into a staging
    directory inside O(dest) first and then moved into place; an I/O error at any point rolls the
    moves back, so the previous tree stays intact. Output is byte-identical for the same fleet.
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
  force:
    description:
      - Overwrite or remove files at generated paths that the collection did not write (hand-written
        files, or rendered files edited since). Links are refused even with V(true).
    type: bool
    default: false
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

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.c5c3.gitops.plugins.module_utils.gitops_tree import HAS_YAML, TreeError, render_tree
from ansible_collections.c5c3.gitops.plugins.module_utils.gitops_writer import RenderError, apply, plan


def main():
    module = AnsibleModule(
        argument_spec=dict(fleet=dict(type="dict", required=True), dest=dict(type="path", required=True),
                           force=dict(type="bool", default=False)),
        supports_check_mode=True,
    )
    if not HAS_YAML:
        module.fail_json(msg=missing_required_lib("PyYAML"))
    dest = module.params["dest"]
    try:
        tree = render_tree(module.params["fleet"])
    except (TreeError, KeyError, TypeError) as exc:
        module.fail_json(msg="cannot render the fleet: %s" % exc)
    try:
        result = plan(tree, dest, force=module.params["force"])
    except RenderError as exc:
        module.fail_json(msg="cannot render into %s: %s" % (dest, exc), created=[], updated=[], removed=[])
    except (IOError, OSError) as exc:
        module.fail_json(msg="cannot read %s: %s" % (dest, exc), created=[], updated=[], removed=[])
    if result["changed"] and not module.check_mode:
        try:
            apply(tree, result)
        except (IOError, OSError) as exc:
            module.fail_json(msg="cannot write %s: %s (rolled back: the previous tree is unchanged)" % (dest, exc),
                             created=[], updated=[], removed=[])
    out = dict(changed=result["changed"], created=result["created"], updated=result["updated"],
               removed=result["removed"], files=len(tree))
    if module._diff:
        out["diff"] = result["diffs"]
    module.exit_json(**out)


if __name__ == "__main__":
    main()
