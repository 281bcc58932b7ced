"""Certificates, keys, tokens and kubeconfigs generated for the tests (nothing checked in)."""
import base64
import datetime
import json

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

NOW = datetime.datetime(2026, 6, 1, 12, 0, tzinfo=datetime.timezone.utc)


def key():
    return ec.generate_private_key(ec.SECP256R1())


def cert(subject_key, cn, not_before, not_after, issuer_key=None, issuer_cn=None, ca=False):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_cn or cn)])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer)
               .public_key(subject_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(not_before).not_valid_after(not_after))
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    return builder.sign(issuer_key or subject_key, hashes.SHA256())


def pem(obj):
    if isinstance(obj, x509.Certificate):
        return obj.public_bytes(serialization.Encoding.PEM)
    return obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def b64(data):
    return base64.b64encode(data).decode("ascii")


def days(n):
    return NOW + datetime.timedelta(days=n)


def ca_pair(not_after_days=3650):
    k = key()
    return k, cert(k, "test-ca", days(-10), days(not_after_days), ca=True)


def client_user(not_after_days=365, not_before_days=-1, cn="spoke-admin", ca=None, key_override=None):
    ca_key, ca_cert = ca or ca_pair()
    k = key()
    c = cert(k, cn, days(not_before_days), days(not_after_days), issuer_key=ca_key, issuer_cn="test-ca")
    return {"client-certificate-data": b64(pem(c)), "client-key-data": b64(pem(key_override or k))}


def jwt(claims, header=None):
    def part(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")
    return "%s.%s.%s" % (part(header or {"alg": "RS256", "kid": "x"}), part(claims), "c2lnbmF0dXJl")


def kubeconfig(user, ca_cert=None, server="https://127.0.0.1:6443", cluster_extra=None):
    cluster = {"server": server}
    if ca_cert is not None:
        cluster["certificate-authority-data"] = b64(pem(ca_cert))
    cluster.update(cluster_extra or {})
    return {"apiVersion": "v1", "kind": "Config", "current-context": "spoke",
            "clusters": [{"name": "spoke", "cluster": cluster}],
            "users": [{"name": "spoke-admin", "user": user}],
            "contexts": [{"name": "spoke", "context": {"cluster": "spoke", "user": "spoke-admin"}}]}
