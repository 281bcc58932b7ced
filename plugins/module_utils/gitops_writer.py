# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)
"""Writing the rendered tree into a directory safely (the render sink's file handling).

- Real paths: the destination is resolved once; no generated path may pass through a symbolic
  link below it (a linked sub-directory would let the render write elsewhere) or be anything but
  a regular file.
- Ownership: ``.c5c3-gitops-render.json`` lists every file the collection wrote with the SHA-256
  of what it wrote. A file at a generated path that the collection did not write (a hand-written
  file, or a rendered file edited since) is never overwritten or removed unless ``force``.
- Atomic: every new file is first written into a staging directory inside the destination
  (same file system), then moved into place; a failure at any point rolls back what was moved,
  so the previous tree stays as it was.

Pure Python, no Ansible imports; the module plugins/modules/gitops_render.py is a thin wrapper.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import shutil
import tempfile

MANIFEST = ".c5c3-gitops-render.json"
GENERATOR = "c5c3.gitops.gitops_render"
STAGE_PREFIX = ".c5c3-render-stage-"


class RenderError(Exception):
    """The tree cannot be written safely; nothing has been written."""


class ForeignFilesError(RenderError):
    """Files at generated paths that the collection did not write (``files``)."""

    def __init__(self, message, files):
        super(ForeignFilesError, self).__init__(message)
        self.files = files


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def _read(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except (IOError, OSError):
        return None


def real_dest(dest):
    """The destination's real path (a link given as dest itself is the user's choice)."""
    return os.path.realpath(os.path.expanduser(dest))


def check_path(root, rel):
    """Refuse a relative path that leaves ``root``, passes through a link or is not a file."""
    parts = rel.split("/")
    if os.path.isabs(rel) or ".." in parts or "" in parts:
        raise RenderError("refusing path %r: not a plain path below the destination" % rel)
    current = root
    for index, part in enumerate(parts):
        current = os.path.join(current, part)
        if os.path.islink(current):
            raise RenderError(
                "refusing to write %s: %s is a symbolic link (it could point outside %s); replace it by a "
                "directory or file" % (rel, os.path.join(*parts[:index + 1]), root))
        if not os.path.lexists(current):
            return
        last = index == len(parts) - 1
        if last and not os.path.isfile(current):
            raise RenderError("refusing to write %s: it exists and is not a regular file" % rel)
        if not last and not os.path.isdir(current):
            raise RenderError("refusing to write %s: %s exists and is not a directory" % (rel, os.path.join(*parts[:index + 1])))


def load_manifest(root):
    """{relative path: sha256 or None (manifests of older versions had no hashes)}."""
    data = _read(os.path.join(root, MANIFEST))
    if data is None or os.path.islink(os.path.join(root, MANIFEST)):
        return {}
    try:
        doc = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return {}
    out = {}
    hashes = doc.get("sha256") if isinstance(doc.get("sha256"), dict) else {}
    for rel in doc.get("files") or []:
        if isinstance(rel, str) and not os.path.isabs(rel) and ".." not in rel.split("/"):
            out[rel] = hashes.get(rel)
    return out


def read_owned_tree(root):
    """{path: text} of the files the collection wrote into ``root`` (its manifest; listed files that
    are gone, links, and paths leaving ``root`` are left out); {} without a manifest."""
    root = real_dest(root)
    out = {}
    for rel in sorted(load_manifest(root)):
        try:
            check_path(root, rel)
        except RenderError:
            continue
        data = _read(os.path.join(root, rel))
        if data is not None:
            out[rel] = data.decode("utf-8", "replace")
    return out


def manifest_bytes(tree, kept=None):
    """The manifest of ``tree``, plus ``kept`` {rel: sha256} of owned files a partial tree leaves."""
    hashes = dict(kept or {})
    hashes.update((rel, sha256(text.encode("utf-8"))) for rel, text in sorted(tree.items()))
    doc = {"generator": GENERATOR, "files": sorted(hashes), "sha256": dict((k, v) for k, v in hashes.items() if v)}
    return (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode("utf-8")


def _owned(manifest, rel, current):
    """True when ``current`` (bytes on disk) is what the collection wrote there."""
    if rel not in manifest:
        return False
    recorded = manifest[rel]
    return recorded is None or recorded == sha256(current)


def reserved_paths(tree):
    """Paths no tree may hold: the manifest itself and anything under a ``.git`` directory."""
    return sorted(rel for rel in tree if rel == MANIFEST or ".git" in rel.split("/"))


def plan(tree, dest, force=False, prune=True):
    """-> dict(created, updated, removed, diffs, changed); touches nothing. Raises RenderError.

    With ``prune=False`` (a part of the tree) owned files missing from ``tree`` stay, and stay owned."""
    root = real_dest(dest)
    reserved = reserved_paths(tree)
    if reserved:
        raise RenderError("refusing reserved path(s) in the tree: %s" % ", ".join(reserved))
    if os.path.exists(root) and not os.path.isdir(root):
        raise RenderError("dest %s exists and is not a directory" % dest)
    check_path(root, MANIFEST)
    manifest = load_manifest(root)
    created, updated, diffs, foreign = [], [], [], []
    for rel, text in sorted(tree.items()):
        check_path(root, rel)
        new = text.encode("utf-8")
        old = _read(os.path.join(root, rel))
        if old == new:
            continue
        if old is not None and not force and not _owned(manifest, rel, old):
            foreign.append(rel)
            continue
        (created if old is None else updated).append(rel)
        diffs.append({
            "before_header": rel if old is not None else "/dev/null",
            "after_header": rel,
            "before": old.decode("utf-8", "replace") if old is not None else "",
            "after": text,
        })
    removed, kept = [], {}
    for rel in sorted(manifest):
        if rel in tree:
            continue
        if not prune:
            if os.path.lexists(os.path.join(root, rel)):
                kept[rel] = manifest[rel]
            continue
        try:
            check_path(root, rel)
        except RenderError:
            continue  # never follow a tampered manifest or a link out of dest
        old = _read(os.path.join(root, rel))
        if old is None:
            continue
        if not force and not _owned(manifest, rel, old):
            foreign.append(rel)
            continue
        removed.append(rel)
        diffs.append({"before_header": rel, "after_header": "/dev/null", "before": old.decode("utf-8", "replace"), "after": ""})
    if foreign:
        raise ForeignFilesError(
            "refusing to overwrite or remove %d file(s) the collection did not write (hand-written, or edited "
            "since the last render; nothing was written): %s. Move them away, or set force to replace them"
            % (len(foreign), ", ".join(sorted(foreign)[:20])), sorted(foreign))
    manifest_new = manifest_bytes(tree, kept)
    changed = bool(created or updated or removed) or _read(os.path.join(root, MANIFEST)) != manifest_new
    return {"created": created, "updated": updated, "removed": removed, "diffs": diffs, "changed": changed,
            "root": root, "manifest": manifest_new}


def apply(tree, result, _rename=None):
    """Write a plan: stage every file, then move them into place; roll back on any error."""
    rename = _rename or os.rename
    root = result["root"]
    if not os.path.isdir(root):
        os.makedirs(root)
    stage = tempfile.mkdtemp(prefix=STAGE_PREFIX, dir=root)
    moves = []  # (kind, a, b) done so far, for the rollback
    made_dirs = []
    try:
        staged = []
        writes = [(rel, tree[rel].encode("utf-8")) for rel in result["created"] + result["updated"]]
        writes.append((MANIFEST, result["manifest"]))
        for index, (rel, data) in enumerate(writes):
            tmp = os.path.join(stage, "new-%d" % index)
            with open(tmp, "wb") as handle:
                handle.write(data)
            os.chmod(tmp, 0o644)
            staged.append((rel, tmp))
        for index, (rel, tmp) in enumerate(staged):
            target = os.path.join(root, rel)
            parent = os.path.dirname(target)
            missing = []
            while not os.path.isdir(parent):
                missing.append(parent)
                parent = os.path.dirname(parent)
            for directory in reversed(missing):
                os.mkdir(directory)
                made_dirs.append(directory)
            if os.path.lexists(target):
                backup = os.path.join(stage, "old-%d" % index)
                rename(target, backup)
                moves.append((target, backup))
            rename(tmp, target)
            moves.append((tmp, target))
        for index, rel in enumerate(result["removed"]):
            target = os.path.join(root, rel)
            backup = os.path.join(stage, "removed-%d" % index)
            rename(target, backup)
            moves.append((target, backup))
    except Exception:
        for src, dst in reversed(moves):
            try:
                os.rename(dst, src)
            except OSError:
                pass
        for directory in reversed(made_dirs):
            try:
                os.rmdir(directory)
            except OSError:
                pass
        shutil.rmtree(stage, ignore_errors=True)
        raise
    shutil.rmtree(stage, ignore_errors=True)
    for rel in result["removed"]:
        parent = os.path.dirname(os.path.join(root, rel))
        while os.path.abspath(parent) != os.path.abspath(root) and os.path.isdir(parent) and not os.listdir(parent):
            os.rmdir(parent)
            parent = os.path.dirname(parent)
