# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)
"""What the apply sink reports of an object: changed or not, and the diff shown of it.

Pure functions over API objects (no I/O): whether an apply changed the object, and the redacted
view --diff shows (Secret values become a hash, never the value).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import hashlib
import json

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
REDACTED = "<redacted>"
# Metadata the server owns; ignored when comparing a dry-run result with the live object.
_SERVER_METADATA = ("resourceVersion", "generation", "managedFields", "uid", "creationTimestamp",
                    "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds")


def describe(kind, namespace, name):
    return "%s %s/%s" % (kind, namespace, name) if namespace else "%s %s" % (kind, name)


def is_changed(status, before, after):
    """Changed = created (201), or the resourceVersion moved because of this apply.

    A no-op server-side apply keeps the resourceVersion. A moved resourceVersion alone is not
    proof: a controller may have written status between our read and our apply, so the object
    minus status and server-owned metadata must differ too.
    """
    if status == 201 or before is None:
        return True
    if (before.get("metadata") or {}).get("resourceVersion") == (after.get("metadata") or {}).get("resourceVersion"):
        return False
    return strip_server_fields(before) != strip_server_fields(after)


def strip_server_fields(obj):
    """The object without status and server-owned metadata, for dry-run comparisons."""
    if obj is None:
        return None
    out = copy.deepcopy(obj)
    out.pop("status", None)
    metadata = out.get("metadata") or {}
    for key in _SERVER_METADATA:
        metadata.pop(key, None)
    return out


def dry_run_changed(before, after):
    """A dry-run apply changes something when the result differs from the live object."""
    if before is None:
        return True
    return strip_server_fields(before) != strip_server_fields(after)


def _fingerprint(value):
    if not isinstance(value, (str, bytes)):
        value = json.dumps(value, sort_keys=True)
    if isinstance(value, str):
        value = value.encode("utf-8")
    return "%s sha256:%s" % (REDACTED, hashlib.sha256(value).hexdigest()[:12])


def redact_secret(obj):
    """A copy of ``obj`` safe to show: Secret values become a redacted hash, never the value."""
    if obj is None:
        return None
    out = copy.deepcopy(obj)
    if out.get("kind") != "Secret":
        return out
    for field in ("data", "stringData"):
        if isinstance(out.get(field), dict):
            out[field] = dict((k, _fingerprint(v)) for k, v in out[field].items())
        elif field in out:
            out[field] = REDACTED
    annotations = (out.get("metadata") or {}).get("annotations") or {}
    if LAST_APPLIED in annotations:
        annotations[LAST_APPLIED] = REDACTED  # kubectl keeps the whole Secret in here
    return out


def diff_view(obj):
    """What diff mode shows of an object: labels, annotations, spec (and redacted Secret data)."""
    if obj is None:
        return {}
    safe = redact_secret(obj)
    metadata = safe.get("metadata") or {}
    view = {"metadata": {"labels": metadata.get("labels") or {}, "annotations": metadata.get("annotations") or {}}}
    for field in ("spec", "data", "stringData", "type"):
        if field in safe:
            view[field] = safe[field]
    return view


def make_diff(entry_key, before, after):
    kind, namespace, name = entry_key[1], entry_key[2], entry_key[3]
    label = describe(kind, namespace or None, name)
    return {
        "before_header": label,
        "after_header": label,
        "before": diff_view(before),
        "after": diff_view(after),
    }
