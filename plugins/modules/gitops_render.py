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

import json
import os
import tempfile

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.c5c3.gitops.plugins.module_utils.gitops_tree import HAS_YAML, TreeError, render_tree

MANIFEST = ".c5c3-gitops-render.json"


def _read(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except (IOError, OSError):
        return None


def _write_atomic(path, data):
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".render-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.rename(tmp, path)
    except Exception:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _owned(dest):
    data = _read(os.path.join(dest, MANIFEST))
    if data is None:
        return []
    try:
        files = json.loads(data.decode("utf-8")).get("files") or []
    except (ValueError, AttributeError):
        return []
    # Never follow a tampered manifest out of dest.
    return [f for f in files if isinstance(f, str) and not os.path.isabs(f) and ".." not in f.split("/")]


def plan(tree, dest):
    """-> (created, updated, removed, diffs); touches nothing."""
    created, updated, diffs = [], [], []
    for rel, text in tree.items():
        new = text.encode("utf-8")
        old = _read(os.path.join(dest, rel))
        if old == new:
            continue
        (created if old is None else updated).append(rel)
        diffs.append({
            "before_header": rel if old is not None else "/dev/null",
            "after_header": rel,
            "before": old.decode("utf-8", "replace") if old is not None else "",
            "after": text,
        })
    removed = sorted(f for f in _owned(dest) if f not in tree and os.path.exists(os.path.join(dest, f)))
    for rel in removed:
        diffs.append({"before_header": rel, "after_header": "/dev/null",
                      "before": (_read(os.path.join(dest, rel)) or b"").decode("utf-8", "replace"), "after": ""})
    return created, updated, removed, diffs


def apply_plan(tree, dest, created, updated, removed):
    for rel in created + updated:
        _write_atomic(os.path.join(dest, rel), tree[rel].encode("utf-8"))
    for rel in removed:
        os.unlink(os.path.join(dest, rel))
        # Drop directories the removal left empty, up to dest.
        parent = os.path.dirname(os.path.join(dest, rel))
        while os.path.abspath(parent) != os.path.abspath(dest) and not os.listdir(parent):
            os.rmdir(parent)
            parent = os.path.dirname(parent)
    manifest = _manifest(tree)
    if _read(os.path.join(dest, MANIFEST)) != manifest:
        _write_atomic(os.path.join(dest, MANIFEST), manifest)


def _manifest(tree):
    return (json.dumps({"generator": "c5c3.gitops.gitops_render", "files": sorted(tree)}, indent=1) + "\n").encode("utf-8")


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
        changed = bool(created or updated or removed) or _read(os.path.join(dest, MANIFEST)) != _manifest(tree)
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
