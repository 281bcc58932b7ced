"""Credential hygiene and failure wording (plugins/module_utils/credentials.py), on generated PKI."""
import pytest

from ansible_collections.c5c3.gitops.plugins.module_utils import credentials as cr

from pki import NOW, ca_pair, client_user, jwt, kubeconfig, key, days


def inspect(kc, warn_days=30):
    return cr.inspect(kc, now=NOW, warn_days=warn_days)


def test_valid_client_certificate_has_no_findings():
    ca = ca_pair()
    got = inspect(kubeconfig(client_user(ca=ca), ca[1]))
    assert got["errors"] == [] and got["warnings"] == []
    assert got["credential"]["kind"] == "client-certificate"
    assert got["credential"]["subject"] == "CN=spoke-admin"
    assert got["credential"]["expires"] == "2027-06-01T12:00:00Z"
    assert got["ca"]["certificates"] == 1 and got["ca"]["verified"] is True


def test_expired_client_certificate_is_an_error_with_its_date():
    got = inspect(kubeconfig(client_user(not_after_days=-2, not_before_days=-30)))
    assert got["errors"] == ["the client certificate (CN=spoke-admin) expired at 2026-05-30T12:00:00Z"]


def test_not_yet_valid_client_certificate_is_an_error():
    got = inspect(kubeconfig(client_user(not_before_days=3, not_after_days=30)))
    assert "is not valid before 2026-06-04T12:00:00Z" in got["errors"][0]


def test_certificate_expiring_within_the_window_warns_only():
    got = inspect(kubeconfig(client_user(not_after_days=10)), warn_days=14)
    assert got["errors"] == []
    assert got["warnings"] == ["the client certificate (CN=spoke-admin) expires in 10.0 days (2026-06-11T12:00:00Z)"]
    assert inspect(kubeconfig(client_user(not_after_days=10)), warn_days=7)["warnings"] == []


def test_key_of_another_certificate_is_a_mismatch():
    got = inspect(kubeconfig(client_user(key_override=key())))
    assert got["errors"] == ["client-key-data does not belong to client-certificate-data (the key and the certificate do not match)"]


def test_garbage_certificate_data_is_an_error_without_the_value():
    got = inspect(kubeconfig({"client-certificate-data": "bm90IGEgY2VydA==", "client-key-data": "eA=="}))
    assert got["errors"] == ["client-certificate-data holds no PEM certificate"]


def test_jwt_expiry():
    expired = inspect(kubeconfig({"token": jwt({"sub": "system:serviceaccount:flux:spoke", "exp": int(days(-1).timestamp())})}))
    assert expired["errors"] == ["the bearer token (JWT) expired at 2026-05-31T12:00:00Z"]
    assert expired["credential"]["kind"] == "jwt"
    soon = inspect(kubeconfig({"token": jwt({"exp": int(days(5).timestamp())})}))
    assert soon["errors"] == [] and "the bearer token (JWT) expires in 5.0 days" in soon["warnings"][0]
    fine = inspect(kubeconfig({"token": jwt({"exp": int(days(400).timestamp())})}))
    assert fine["errors"] == fine["warnings"] == [] and fine["credential"]["expires"] == "2027-07-06T12:00:00Z"


def test_jwt_without_exp_and_opaque_tokens_have_no_expiry():
    assert inspect(kubeconfig({"token": jwt({"sub": "x"})}))["credential"] == {"kind": "jwt", "expires": None, "subject": "x"}
    opaque = inspect(kubeconfig({"token": "0123456789abcdef0123"}))
    assert opaque["credential"]["kind"] == "token" and opaque["errors"] == []
    # three dot-separated parts that are not JSON: still opaque, never an error
    assert inspect(kubeconfig({"token": "a.b.c"}))["credential"]["kind"] == "token"


def test_expired_ca_is_an_error_and_expiring_ca_warns():
    ca = ca_pair(not_after_days=-1)
    assert inspect(kubeconfig(client_user(ca=ca), ca[1]))["errors"] == ["the CA (certificate-authority-data) expired at 2026-05-31T12:00:00Z"]
    ca = ca_pair(not_after_days=20)
    got = inspect(kubeconfig(client_user(ca=ca), ca[1]))
    assert got["errors"] == [] and got["warnings"][0].startswith("the CA (certificate-authority-data) expires in 20.0 days")


def test_insecure_skip_tls_verify_warns():
    got = inspect(kubeconfig({"token": "0123456789abcdef"}, cluster_extra={"insecure-skip-tls-verify": True}))
    assert got["ca"]["verified"] is False
    assert got["warnings"] == ["insecure-skip-tls-verify is set: the server's identity is not checked"]


@pytest.mark.parametrize("status,message,kind,fragment", [
    (401, "Unauthorized", "unauthorized", "unauthorized: https://s:1 rejected the credentials (401)"),
    (403, "forbidden: User cannot get path /version", "forbidden", "forbidden (403)"),
    (0, "GET /version: HTTPSConnectionPool(host='127.0.0.1', port=1): Max retries exceeded (Caused by "
        "NewConnectionError('<urllib3.connection.HTTPSConnection object at 0x7f>: Failed to establish a new connection: "
        "[Errno 111] Connection refused'))", "connect", "cannot connect to https://s:1: connection refused"),
    (0, "GET /version: SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify "
        "failed: unable to get local issuer certificate (_ssl.c:1000)'))", "tls", "not signed by the kubeconfig's CA"),
    (0, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: IP address mismatch, certificate is not valid for "
        "'127.0.0.2'", "tls", "not valid for its address"),
    (0, "GET /version: ConnectTimeoutError: Connection to 10.0.0.1 timed out. (connect timeout=10)", "timeout", "timed out"),
    (0, "[SSL: WRONG_VERSION_NUMBER] wrong version number", "tls", "does not speak HTTPS"),
    (0, "NameResolutionError: Failed to resolve 'nowhere.invalid'", "connect", "does not resolve"),
    (500, "etcdserver: request timed out", "http", "HTTP 500"),
])
def test_classify(status, message, kind, fragment):
    got_kind, text = cr.classify(status, message, "https://s:1")
    assert got_kind == kind and fragment in text


def test_classify_strips_object_reprs_from_unknown_errors():
    _kind, text = cr.classify(0, "ProtocolError('Connection aborted.', <x object at 0x1>)", "https://s:1")
    assert "0x1" not in text and text.startswith("cannot connect to https://s:1")


def test_access_review_bodies_and_missing():
    items = cr.normalize_access([{"verb": "create", "resource": "namespaces"},
                                 {"verb": "create", "group": "apps", "resource": "deployments", "namespace": "x"}])
    assert cr.access_review(items[1]) == {
        "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"verb": "create", "resource": "deployments", "group": "apps", "namespace": "x"}}}
    responses = [{"status": {"allowed": True}}, {"status": {"allowed": False, "reason": ""}}]
    assert cr.missing_access(items, responses) == ["create deployments.apps in namespace x"]
    # no answer at all counts as missing, never as allowed
    assert cr.missing_access(items, [{}, {"status": {"allowed": "true"}}]) == ["create namespaces", "create deployments.apps in namespace x"]


def test_bad_access_items_are_refused_with_their_index():
    with pytest.raises(cr.CredentialError, match=r"required_access\[1\]"):
        cr.normalize_access([{"verb": "get", "resource": "pods"}, {"verb": "get"}])


def test_default_spoke_access_covers_what_flux_needs():
    described = [cr.describe_access(i) for i in cr.FLUX_SPOKE_ACCESS]
    for needed in ("create namespaces", "create customresourcedefinitions.apiextensions.k8s.io",
                   "create deployments.apps", "create clusterroles.rbac.authorization.k8s.io"):
        assert needed in described


@pytest.mark.parametrize("category,detail,fragment", [
    ("refused", "connection refused", "cannot connect to https://s:1: connection refused"),
    ("dns", "Failed to resolve", "does not resolve"),
    ("timeout", "timed out (request_timeout 10s)", "cannot connect to https://s:1: timed out"),
    ("tls", "the server's certificate is not signed by the configured CA", "not signed by the kubeconfig's CA"),
    ("tls", "the server's certificate is not valid for this host name", "not valid for its address"),
    ("client-cert", "tlsv13 alert certificate required", "TLS handshake with https://s:1 failed"),
])
def test_classify_by_the_transports_category(category, detail, fragment):
    assert fragment in cr.classify(0, detail, "https://s:1", category)[1]


def test_http_statuses_win_over_categories():
    assert cr.classify(401, "Unauthorized", "https://s:1", "unauthorized")[0] == "unauthorized"
