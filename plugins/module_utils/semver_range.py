# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)
"""SemVer constraint ranges as Flux (Masterminds semver v3) reads them.

Flux's ``chart.spec.version`` and the Flux Operator's ``distribution.version`` take
Masterminds constraints: ``>=0.1.0 <1.0.0``, ``2.x``, ``~1.2``, ``^1``, ``1.2.3``,
``1.2 - 1.4``, ``>=1.0, <2.0``, alternatives joined by ``||``. A range Flux cannot parse
makes the object fail at reconcile time on the hub, long after the run; parsing it here
makes the run fail first. Pure Python, no Ansible imports.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re


class SemverRangeError(ValueError):
    """The text is not a valid SemVer constraint range."""


_WILD = ("x", "X", "*")
_PART = r"(?:0|[1-9][0-9]*|[xX*])"
_IDENT = r"[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*"
_VERSION = r"v?%s(?:\.%s(?:\.%s)?)?(?:-%s)?(?:\+%s)?" % (_PART, _PART, _PART, _IDENT, _IDENT)
_OPS = r"!=|>=|=>|<=|=<|~>|>|<|=|~|\^"
_COMPARISON = re.compile(r"\s*(%s)?\s*(%s)\s*" % (_OPS, _VERSION))
_HYPHEN = re.compile(r"^\s*(%s)\s+-\s+(%s)\s*$" % (_VERSION, _VERSION))
_VERSION_RE = re.compile(
    r"^v?(%s)(?:\.(%s)(?:\.(%s))?)?(?:-(%s))?(?:\+(%s))?$" % (_PART, _PART, _PART, _IDENT, _IDENT)
)
_OP_ALIASES = {"=>": ">=", "=<": "<=", "~>": "~", "": "="}


class _Partial(object):
    """A version with possibly missing or wildcard parts (``1``, ``1.2.x``)."""

    __slots__ = ("parts", "pre")

    def __init__(self, text):
        m = _VERSION_RE.match(text)
        if not m:
            raise SemverRangeError("%r is not a version" % text)
        parts = []
        for p in m.group(1, 2, 3):
            if p is None or p in _WILD:
                break
            parts.append(int(p))
        self.parts = tuple(parts)  # only the concrete leading parts
        self.pre = m.group(4)

    def floor(self):
        return (self.parts + (0, 0, 0))[:3]


def _bump(parts, index):
    """The lowest version above every version starting with parts[:index+1]."""
    out = list(parts[: index + 1]) + [0] * (2 - index)
    out[index] += 1
    return tuple(out)


def _comparison_bounds(op, ver):
    """Translate one comparison into a list of (op, (major, minor, patch)) primitive checks."""
    op = _OP_ALIASES.get(op, op)
    n = len(ver.parts)
    low = ver.floor()
    if n == 0:  # "*", "x", ">=x": anything (a "<x"/">x" is unsatisfiable but still parses)
        return [] if op in ("=", ">=", "<=", "~", "^") else [("never", None)]
    if op == "=":
        return [(">=", low), ("<=", low)] if n == 3 else [(">=", low), ("<", _bump(low, n - 1))]
    if op == "!=":
        return [("!=", low)] if n == 3 else [("out", (low, _bump(low, n - 1)))]
    if op == ">":
        return [(">", low)] if n == 3 else [(">=", _bump(low, n - 1))]
    if op == ">=":
        return [(">=", low)]
    if op == "<":
        return [("<", low)]
    if op == "<=":
        return [("<=", low)] if n == 3 else [("<", _bump(low, n - 1))]
    if op == "~":  # ~1.2.3 -> >=1.2.3 <1.3.0; ~1 -> >=1.0.0 <2.0.0
        return [(">=", low), ("<", _bump(low, 0 if n == 1 else 1))]
    if op == "^":  # ^1.2.3 -> <2.0.0; ^0.2.3 -> <0.3.0; ^0.0.3 -> <0.0.4
        if low[0] > 0 or n == 1:
            idx = 0
        elif low[1] > 0 or n == 2:
            idx = 1
        else:
            idx = 2
        return [(">=", low), ("<", _bump(low, idx))]
    raise SemverRangeError("unknown operator %r" % op)  # pragma: no cover - regex limits ops


def parse_range(text):
    """Parse a constraint range; return a list (alternatives) of lists of primitive checks.

    Raises SemverRangeError with the reason when Flux would refuse the text.
    """
    if not isinstance(text, str):
        raise SemverRangeError("a SemVer range must be a string, got %s" % type(text).__name__)
    if not text.strip():
        raise SemverRangeError("a SemVer range must not be empty")
    alternatives = []
    for alt in text.split("||"):
        if not alt.strip():
            raise SemverRangeError("%r has an empty alternative around '||'" % text)
        checks = []
        hyphen = _HYPHEN.match(alt)
        if hyphen:
            lo, hi = _Partial(hyphen.group(1)), _Partial(hyphen.group(2))
            checks.extend(_comparison_bounds(">=", lo))
            checks.extend(_comparison_bounds("<=", hi))
            alternatives.append(checks)
            continue
        pos = 0
        alt_stripped = alt.rstrip()
        while pos < len(alt_stripped):
            m = _COMPARISON.match(alt_stripped, pos)
            if not m or m.end() == pos:
                raise SemverRangeError(
                    "%r: cannot parse %r (expected a comparison such as '>=1.0.0')" % (text, alt_stripped[pos:].strip())
                )
            op, ver = m.group(1) or "", m.group(2)
            checks.extend(_comparison_bounds(op, _Partial(ver)))
            pos = m.end()
            # comparisons are separated by whitespace or one comma
            if pos < len(alt_stripped) and alt_stripped[pos] == ",":
                pos += 1
            elif pos < len(alt_stripped) and not alt_stripped[pos - 1].isspace():
                raise SemverRangeError("%r: comparisons must be separated by a space or a comma" % text)
        alternatives.append(checks)
    return alternatives


def validate_range(text):
    """Raise SemverRangeError unless text is a valid range; return text for chaining."""
    parse_range(text)
    return text


def parse_version(text):
    """Parse a concrete version ``1.2.3`` (optional ``v``, pre-release, build) into a tuple."""
    m = _VERSION_RE.match(text.strip()) if isinstance(text, str) else None
    if not m or any(p is None or p in _WILD for p in m.group(1, 2, 3)):
        raise SemverRangeError("%r is not a concrete version (major.minor.patch)" % (text,))
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))), m.group(4)


def satisfies(version, range_text):
    """Whether a concrete version is inside the range (pre-releases never match, as in Flux)."""
    ver, pre = parse_version(version)
    if pre:
        return False
    for checks in parse_range(range_text):
        if all(_check(ver, op, bound) for op, bound in checks):
            return True
    return False


def _check(ver, op, bound):
    if op == ">=":
        return ver >= bound
    if op == ">":
        return ver > bound
    if op == "<":
        return ver < bound
    if op == "<=":
        return ver <= bound
    if op == "!=":
        return ver != bound
    if op == "out":
        return not (bound[0] <= ver < bound[1])
    return False  # "never"
