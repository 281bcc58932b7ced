"""Credential expiry: client certificate notAfter (own DER walk, checked against cryptography), JWT exp."""
import base64
import datetime
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.c5c3.gitops.plugins.module_utils import status_expiry as ex

NOW = 1796083200  # 2026-12-01T00:00:00Z


def cert_pem(not_after):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "spoke-admin")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(7).not_valid_before(datetime.datetime(2026, 1, 1))
            .not_valid_after(not_after).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


def kc(user):
    return {"current-context": "c", "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
            "clusters": [{"name": "c", "cluster": {"server": "https://x"}}], "users": [{"name": "u", "user": user}]}


def jwt(claims):
    def enc(d):
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()
    return "%s.%s.%s" % (enc({"alg": "RS256"}), enc(claims), "c2ln")


@pytest.mark.parametrize("when", [datetime.datetime(2027, 3, 4, 5, 6, 7), datetime.datetime(2051, 1, 1)])
def test_certificate_not_after(when):
    pem = cert_pem(when)
    der = ex.pem_certificates(pem)[0]
    expected = int(when.replace(tzinfo=datetime.timezone.utc).timestamp())
    assert ex.certificate_validity(der)[1] == expected  # UTCTime and GeneralizedTime (>= 2050)
    out = ex.credential_expiry(kc({"client-certificate-data": base64.b64encode(pem).decode()}), NOW, 30 * 86400)
    assert out["auth"] == "client-certificate" and out["expires"] == when.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert not out["expired"] and not out["expiring"]


def test_certificate_expiring_and_expired():
    soon = cert_pem(datetime.datetime(2026, 12, 10))
    out = ex.credential_expiry(kc({"client-certificate-data": base64.b64encode(soon).decode()}), NOW, 30 * 86400)
    assert out["expiring"] and not out["expired"] and out["expires_in_seconds"] == 9 * 86400
    gone = cert_pem(datetime.datetime(2026, 11, 1))
    out = ex.credential_expiry(kc({"client-certificate-data": base64.b64encode(gone).decode()}), NOW, 30 * 86400)
    assert out["expired"] and not out["expiring"]


def test_jwt_and_opaque_tokens():
    out = ex.credential_expiry(kc({"token": jwt({"sub": "x", "exp": NOW + 3600})}), NOW, 86400)
    assert out["auth"] == "token" and out["expires_in_seconds"] == 3600 and out["expiring"]
    out = ex.credential_expiry(kc({"token": jwt({"sub": "x"})}), NOW, 86400)
    assert out["expires"] is None and "without exp" in out["detail"]
    out = ex.credential_expiry(kc({"token": "abcdef0123456789"}), NOW, 86400)
    assert out["expires"] is None and "opaque" in out["detail"]
    assert "abcdef" not in repr(out)


def test_unreadable_certificate_is_reported_not_raised():
    out = ex.credential_expiry(kc({"client-certificate-data": base64.b64encode(b"garbage").decode()}), NOW, 1)
    assert out["auth"] == "client-certificate" and out["expires"] is None and "not readable" in out["detail"]
    with pytest.raises(ex.ExpiryError):
        ex.certificate_validity(b"\x30\x05\x02\x01")
