# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)
"""Writing a rendered tree ({relative path: text}) into a directory, owning only what it wrote.

Shared by the render sink (c5c3.gitops.gitops_render, a plain directory) and the publish sink
(c5c3.gitops.gitops_publish, the working tree of the sync repository). The files written are
recorded in ``MANIFEST`` at the root; only those are ever updated or removed. Pure Python.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import tempfile

MANIFEST = ".c5c3-gitops-render.json"


def read_file(path):
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


def owned(dest):
    data = read_file(os.path.join(dest, MANIFEST))
    if data is None:
        return []
    try:
        files = json.loads(data.decode("utf-8")).get("files") or []
    except (ValueError, AttributeError):
        return []
    # Never follow a tampered manifest out of dest.
    return [f for f in files if isinstance(f, str) and not os.path.isabs(f) and ".." not in f.split("/")]


def plan(tree, dest, prune=True):
    """-> (created, updated, removed, diffs); touches nothing.

    With ``prune=False`` (a partial tree) owned files missing from ``tree`` stay."""
    created, updated, diffs = [], [], []
    for rel, text in tree.items():
        new = text.encode("utf-8")
        old = read_file(os.path.join(dest, rel))
        if old == new:
            continue
        (created if old is None else updated).append(rel)
        diffs.append({
            "before_header": rel if old is not None else "/dev/null",
            "after_header": rel,
            "before": old.decode("utf-8", "replace") if old is not None else "",
            "after": text,
        })
    removed = sorted(f for f in owned(dest) if prune and f not in tree and os.path.exists(os.path.join(dest, f)))
    for rel in removed:
        diffs.append({"before_header": rel, "after_header": "/dev/null",
                      "before": (read_file(os.path.join(dest, rel)) or b"").decode("utf-8", "replace"), "after": ""})
    return created, updated, removed, diffs


def apply_plan(tree, dest, created, updated, removed, manifest_files=None):
    """Write what plan() found; the manifest lists ``manifest_files`` (default: the tree)."""
    for rel in created + updated:
        _write_atomic(os.path.join(dest, rel), tree[rel].encode("utf-8"))
    for rel in removed:
        os.unlink(os.path.join(dest, rel))
        # Drop directories the removal left empty, up to dest.
        parent = os.path.dirname(os.path.join(dest, rel))
        while os.path.abspath(parent) != os.path.abspath(dest) and not os.listdir(parent):
            os.rmdir(parent)
            parent = os.path.dirname(parent)
    manifest = manifest_bytes(tree if manifest_files is None else manifest_files)
    if read_file(os.path.join(dest, MANIFEST)) != manifest:
        _write_atomic(os.path.join(dest, MANIFEST), manifest)


def manifest_bytes(tree):
    return (json.dumps({"generator": "c5c3.gitops.gitops_render", "files": sorted(tree)}, indent=1) + "\n").encode("utf-8")


def foreign(tree, dest):
    """Files of ``tree`` that exist in ``dest`` with other content but were not written by us
    (not in the manifest): overwriting them would destroy someone else's work."""
    mine = set(owned(dest))
    out = []
    for rel, text in sorted(tree.items()):
        if rel in mine:
            continue
        old = read_file(os.path.join(dest, rel))
        if old is not None and old != text.encode("utf-8"):
            out.append(rel)
    return out


def unsafe_paths(tree):
    """Paths that would leave the tree root or clobber the manifest."""
    bad = []
    for rel in tree:
        parts = rel.split("/")
        if not rel or rel.startswith("/") or ".." in parts or "" in parts or rel == MANIFEST or parts[0] == ".git":
            bad.append(rel)
    return sorted(bad)
