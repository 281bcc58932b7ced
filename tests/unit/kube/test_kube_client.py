"""kube.KubeClient against a scripted HTTP(S) server: retries (429/5xx/dropped, bounded, only
where safe), no retry on 4xx, and one clear message per failure naming the cluster and URL."""
import base64
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from http_fake import FakeApi, Pki, free_port  # noqa: E402

from ansible_collections.c5c3.gitops.plugins.module_utils import flux_kinds  # noqa: E402
from ansible_collections.c5c3.gitops.plugins.module_utils.kube import APPLY_PATCH, KubeClient, client_from_kubeconfig  # noqa: E402
from ansible_collections.c5c3.gitops.plugins.module_utils.kube_auth import Connection  # noqa: E402
from ansible_collections.c5c3.gitops.plugins.module_utils.kube_errors import KubeError, WatchGone  # noqa: E402

HR = flux_kinds.lookup("HelmRelease")


@pytest.fixture
def api():
    servers = []

    def make(script=None, **kw):
        server = FakeApi(script, **kw)
        servers.append(server)
        return server
    yield make
    for server in servers:
        server.close()


def client(url, sleeps=None, **kw):
    conn = Connection(url, {"Authorization": "Bearer t0k3n"}, label='%s (context "hub")' % url, context="hub")
    kw.setdefault("timeout", 5)
    return KubeClient(conn, sleep=(sleeps.append if sleeps is not None else (lambda s: None)), **kw)


def kubeconfig(url, user, ca=None):
    cluster = {"server": url}
    if ca:
        cluster["certificate-authority-data"] = base64.b64encode(ca).decode()
    return {"current-context": "hub", "contexts": [{"name": "hub", "context": {"cluster": "c", "user": "u"}}],
            "clusters": [{"name": "c", "cluster": cluster}], "users": [{"name": "u", "user": user}]}


def test_429_is_retried_for_any_method_honouring_retry_after(api):
    server = api([(429, {"message": "slow down"}, {"Retry-After": "1"}), (201, {"metadata": {"name": "x"}})])
    sleeps = []
    status, data = client(server.url, sleeps).request("POST", "/api/v1/namespaces", body={"metadata": {"name": "x"}})
    assert status == 201 and data["metadata"]["name"] == "x"
    assert len(server.requests) == 2 and sleeps == [1.0]
    assert server.requests[0][2]["Authorization"] == "Bearer t0k3n"


def test_503_is_retried_with_backoff_for_idempotent_requests_and_bounded(api):
    server = api([(503, {"message": "unavailable"})] * 10)
    sleeps = []
    c = client(server.url, sleeps, retries=3)
    with pytest.raises(KubeError) as info:
        c.request("GET", "/api/v1/namespaces")
    assert len(server.requests) == 4 and sleeps == [0.25, 0.5, 1.0]
    assert info.value.status == 503 and c.api_requests == 4
    assert "the API server failed" in str(info.value)


def test_server_side_apply_counts_as_idempotent(api):
    server = api([(500, {"message": "etcd timeout"}), (200, {"metadata": {}})])
    client(server.url).request("PATCH", "/apis/x/v1/namespaces/a/things/b", body={}, content_type=APPLY_PATCH)
    assert len(server.requests) == 2


def test_5xx_on_post_is_not_retried(api):
    server = api([(503, {"message": "unavailable"}), (201, {})])
    with pytest.raises(KubeError):
        client(server.url).request("POST", "/api/v1/namespaces", body={})
    assert len(server.requests) == 1


@pytest.mark.parametrize("status", [400, 404, 409, 422])
def test_4xx_is_not_retried_and_keeps_the_servers_message(api, status):
    server = api([(status, {"message": "spec.interval: Invalid value", "reason": "Invalid"})])
    with pytest.raises(KubeError) as info:
        client(server.url).request("GET", "/api/v1/namespaces/x")
    assert len(server.requests) == 1 and info.value.status == status
    assert str(info.value).startswith("spec.interval: Invalid value (HTTP %d" % status)


def test_401_says_unauthorized_names_cluster_and_what_to_check(api):
    server = api([(401, {"message": "Unauthorized", "reason": "Unauthorized"})])
    with pytest.raises(KubeError) as info:
        client(server.url).request("GET", "/api/v1/namespaces")
    msg = str(info.value)
    assert len(server.requests) == 1
    assert 'cluster %s (context "hub"): unauthorized (401)' % server.url in msg
    assert "wrong or expired" in msg and "GET /api/v1/namespaces" in msg


def test_403_names_the_verb_and_resource(api):
    server = api([(403, {"message": 'helmreleases "a" is forbidden: User "ci" cannot patch resource', "reason": "Forbidden"})])
    with pytest.raises(KubeError) as info:
        client(server.url).request("PATCH", flux_kinds.object_path(HR, "control-plane", "a"), body={}, content_type=APPLY_PATCH)
    msg = str(info.value)
    assert "forbidden (403): the credential may not patch helmreleases.helm.toolkit.fluxcd.io in namespace control-plane" in msg
    assert 'User "ci" cannot patch' in msg and "RBAC" in msg and server.url in msg


def test_refused_connection_is_retried_then_named(api):
    url = "https://127.0.0.1:%d" % free_port()
    sleeps = []
    c = client(url, sleeps, retries=2)
    with pytest.raises(KubeError) as info:
        c.request("POST", "/api/v1/namespaces", body={})  # nothing was sent, so even a POST is retried
    msg = str(info.value)
    assert info.value.category == "refused" and c.api_requests == 3 and len(sleeps) == 2
    assert msg.startswith('cluster %s (context "hub"): connection refused (POST /api/v1/namespaces)' % url)
    assert "is the API server running" in msg
    assert "HTTPSConnectionPool" not in msg


def test_dns_failure_is_not_retried():
    c = client("https://no-such-host.invalid:6443", [])
    with pytest.raises(KubeError) as info:
        c.request("GET", "/version")
    assert info.value.category == "dns" and c.api_requests == 1
    assert "cannot resolve" in str(info.value) and "no-such-host.invalid" in str(info.value)


def test_dropped_connection_is_retried_for_get(api):
    server = api(["drop", (200, {"gitVersion": "v1.20.2"})])
    assert client(server.url).request("GET", "/version")[1]["gitVersion"] == "v1.20.2"
    assert len(server.requests) == 2


def test_dropped_connection_is_not_retried_for_post(api):
    server = api(["drop", (201, {})])
    with pytest.raises(KubeError) as info:
        client(server.url).request("POST", "/api/v1/namespaces", body={})
    assert info.value.category == "connection" and len(server.requests) == 1


def test_read_timeout_names_the_timeout(api):
    server = api([("sleep", 3), ("sleep", 3)])
    with pytest.raises(KubeError) as info:
        client(server.url, timeout=0.5, retries=1).request("GET", "/version")
    msg = str(info.value)
    assert info.value.category == "timeout" and "no answer in time" in msg and "request_timeout" in msg


def test_tls_verification_failure_names_the_ca(api, tmp_path):
    server_pki = Pki(str(tmp_path))
    other = tmp_path / "other"
    other.mkdir()
    wrong_ca = Pki(str(other)).ca
    server = api([(200, {})], pki=server_pki)
    c = client_from_kubeconfig(kubeconfig(server.url, {"token": "x"}, ca=wrong_ca), timeout=5)
    with pytest.raises(KubeError) as info:
        c.request("GET", "/version")
    msg = str(info.value)
    assert info.value.category == "tls" and c.api_requests == 1  # not retried
    assert "TLS verification of the server failed" in msg and "certificate-authority-data" in msg and server.url in msg


def test_token_and_ca_over_tls(api, tmp_path):
    pki = Pki(str(tmp_path))
    server = api([(200, {"gitVersion": "v1"})], pki=pki)
    with client_from_kubeconfig(kubeconfig(server.url, {"token": "s3cr3t"}, ca=pki.ca)) as c:
        assert c.request("GET", "/version")[1] == {"gitVersion": "v1"}
    assert server.requests[0][2]["Authorization"] == "Bearer s3cr3t"


def test_client_certificate_auth_writes_0600_files_and_removes_them(api, tmp_path):
    pki = Pki(str(tmp_path))
    server = api([(200, {"ok": 1})], pki=pki, client_auth=True)
    user = {"client-certificate-data": base64.b64encode(pki.client_cert).decode(),
            "client-key-data": base64.b64encode(pki.client_key).decode()}
    c = client_from_kubeconfig(kubeconfig(server.url, user, ca=pki.ca))
    key_file = c.conn.tls["key_file"]
    assert oct(os.stat(key_file).st_mode & 0o777) == "0o600"
    assert c.request("GET", "/version")[1] == {"ok": 1}
    c.close()
    assert not os.path.exists(key_file)


def test_server_rejecting_a_missing_client_certificate(api, tmp_path):
    pki = Pki(str(tmp_path))
    server = api([(200, {})], pki=pki, client_auth=True)
    c = client_from_kubeconfig(kubeconfig(server.url, {"token": "x"}, ca=pki.ca), retries=0)
    with pytest.raises(KubeError) as info:
        c.request("GET", "/version")
    assert info.value.category in ("client-cert", "connection") and server.url in str(info.value)


def test_watch_stream_events_and_410(api):
    lines = b'{"type":"ADDED","object":{"metadata":{"name":"a","resourceVersion":"5"}}}\n' \
            b'{"type":"ERROR","object":{"code":410,"reason":"Expired","message":"too old"}}\n'
    server = api([(200, lines)])
    stream = client(server.url).watch(HR, "ns", "4")
    events = iter(stream)
    assert next(events)[0] == "ADDED"
    with pytest.raises(WatchGone):
        next(events)
    stream.close()
    assert "resourceVersion=4" in server.requests[0][1] and "watch=true" in server.requests[0][1]


def test_watch_answering_410_at_once_is_watch_gone(api):
    server = api([(410, {"message": "too old resource version", "reason": "Expired"})])
    with pytest.raises(WatchGone):
        client(server.url).watch(HR, "ns", "1")


def test_get_and_merge_patch_of_a_missing_object_are_none(api):
    server = api([(404, {"message": "not found"}), (404, {"message": "not found"})])
    c = client(server.url)
    assert c.get(HR, "ns", "a") is None
    assert c.merge_patch(HR, "ns", "a", {"metadata": {}}) is None
    assert server.requests[1][2]["Content-Type"] == "application/merge-patch+json"


def test_list_fills_kind_and_returns_the_resource_version(api):
    server = api([(200, {"items": [{"metadata": {"name": "a"}}], "metadata": {"resourceVersion": "77"}})])
    items, rv = client(server.url).list(HR, "ns", "a=b")
    assert rv == "77" and items[0]["kind"] == "HelmRelease" and items[0]["apiVersion"] == "helm.toolkit.fluxcd.io/v2"
    assert "labelSelector=a%3Db" in server.requests[0][1]
