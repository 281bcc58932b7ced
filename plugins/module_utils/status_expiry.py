# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)
"""When does the credential of a kubeconfig expire? (fleet_status_info)

Pure Python, no third-party imports: a client certificate's ``notAfter`` is read with a small
DER walk (Certificate -> TBSCertificate -> Validity), a token's ``exp`` from its JWT payload.
Nothing here returns or raises with credential text: results are dates and kinds only.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import calendar
import json
import re
import time

_PEM = re.compile(r"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", re.S)


class ExpiryError(ValueError):
    """The credential could not be parsed (the message never quotes it)."""


def _tlv(data, pos):
    """One DER element at ``pos``: (tag, value_start, value_end)."""
    if pos + 2 > len(data):
        raise ExpiryError("truncated DER")
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise ExpiryError("bad DER length")
        length = int(binascii.hexlify(bytes(data[pos:pos + count])), 16)
        pos += count
    if pos + length > len(data):
        raise ExpiryError("truncated DER")
    return tag, pos, pos + length


def _children(data, start, end):
    out = []
    pos = start
    while pos < end:
        tag, vstart, vend = _tlv(data, pos)
        out.append((tag, vstart, vend))
        pos = vend
    return out


def _asn1_time(tag, raw):
    text = raw.decode("ascii")
    if not text.endswith("Z"):
        raise ExpiryError("certificate time without UTC designator")
    text = text[:-1]
    if tag == 0x17:  # UTCTime YYMMDDHHMM[SS]
        year = int(text[:2])
        year += 2000 if year < 50 else 1900
        rest = text[2:]
    elif tag == 0x18:  # GeneralizedTime YYYYMMDDHHMM[SS]
        year = int(text[:4])
        rest = text[4:]
    else:
        raise ExpiryError("unexpected ASN.1 time tag 0x%02x" % tag)
    rest = rest.split(".")[0]
    if len(rest) == 8:
        rest += "00"
    month, day, hour, minute, second = (int(rest[i:i + 2]) for i in range(0, 10, 2))
    return calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))


def certificate_validity(der):
    """(not_before, not_after) as UNIX seconds from a DER X.509 certificate."""
    data = bytearray(der)
    tag, start, end = _tlv(data, 0)
    if tag != 0x30:
        raise ExpiryError("not a DER certificate")
    cert = _children(data, start, end)
    if not cert or cert[0][0] != 0x30:
        raise ExpiryError("certificate without TBSCertificate")
    tbs = _children(data, cert[0][1], cert[0][2])
    idx = 1 if tbs and tbs[0][0] == 0xA0 else 0  # [0] version is optional
    # serialNumber, signature, issuer, validity
    if len(tbs) < idx + 4 or tbs[idx + 3][0] != 0x30:
        raise ExpiryError("certificate without Validity")
    validity = _children(data, tbs[idx + 3][1], tbs[idx + 3][2])
    if len(validity) != 2:
        raise ExpiryError("bad Validity")
    times = [_asn1_time(t, bytes(data[s:e])) for t, s, e in validity]
    return times[0], times[1]


def pem_certificates(text):
    """DER blobs of every PEM certificate in ``text`` (str or bytes)."""
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    out = []
    for body in _PEM.findall(text):
        try:
            out.append(base64.b64decode("".join(body.split())))
        except (binascii.Error, ValueError):
            raise ExpiryError("PEM certificate is not valid base64")
    return out


def jwt_claims(token):
    """The payload of a JWT (dict) or None when the token is not a JWT (an opaque token)."""
    parts = (token or "").split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")).decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeError):
        return None
    return claims if isinstance(claims, dict) else None


def iso(seconds):
    return None if seconds is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def parse_time(text):
    """Kubernetes RFC 3339 timestamps (``2026-11-30T10:00:00Z``) -> UNIX seconds, None if absent."""
    if not text:
        return None
    try:
        return calendar.timegm(time.strptime(text.split(".")[0].rstrip("Z"), "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None


def _user_of(kubeconfig, context=None):
    def named(key, sub):
        return dict((i.get("name"), i.get(sub) or {}) for i in (kubeconfig.get(key) or []) if isinstance(i, dict))
    ctx = named("contexts", "context").get(context or kubeconfig.get("current-context")) or {}
    return ctx.get("user"), named("users", "user").get(ctx.get("user"))


def credential_expiry(kubeconfig, now, warn_seconds, context=None):
    """What the kubeconfig authenticates with and when that expires.

    Returns ``{auth, user, expires, expires_in_seconds, expired, expiring, detail}``:
    ``auth`` is ``client-certificate``, ``token``, ``basic``, ``exec``/``auth-provider`` or
    ``none``; ``expires`` an ISO time or null (an opaque token, basic auth: no expiry known).
    """
    out = {"auth": "none", "user": None, "expires": None, "expires_in_seconds": None,
           "expired": False, "expiring": False, "detail": ""}
    if not isinstance(kubeconfig, dict):
        out["detail"] = "not a kubeconfig"
        return out
    name, user = _user_of(kubeconfig, context)
    out["user"] = name
    if user is None:
        out["detail"] = "the current context names no user"
        return out
    not_after = None
    if user.get("client-certificate-data"):
        out["auth"] = "client-certificate"
        try:
            certs = pem_certificates(base64.b64decode(user["client-certificate-data"]))
            if not certs:
                raise ExpiryError("no PEM certificate")
            not_after = certificate_validity(certs[0])[1]
            out["detail"] = "client certificate notAfter"
        except (ExpiryError, binascii.Error, ValueError) as exc:
            out["detail"] = "client certificate not readable: %s" % exc
    elif user.get("token"):
        out["auth"] = "token"
        claims = jwt_claims(user["token"])
        if claims is None:
            out["detail"] = "opaque token (not a JWT): no expiry known"
        elif isinstance(claims.get("exp"), (int, float)):
            not_after = int(claims["exp"])
            out["detail"] = "JWT exp"
        else:
            out["detail"] = "JWT without exp (does not expire)"
    elif user.get("username") and user.get("password"):
        out["auth"] = "basic"
        out["detail"] = "basic authentication: no expiry known"
    elif user.get("exec") or user.get("auth-provider"):
        out["auth"] = "exec" if user.get("exec") else "auth-provider"
        out["detail"] = "a plugin Flux cannot run"
    else:
        out["detail"] = "no credential in the kubeconfig user"
    if not_after is not None:
        out["expires"] = iso(not_after)
        out["expires_in_seconds"] = int(not_after - now)
        out["expired"] = not_after <= now
        out["expiring"] = not out["expired"] and not_after - now <= warn_seconds
    return out
