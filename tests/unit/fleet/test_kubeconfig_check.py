import pytest

from ansible_collections.c5c3.gitops.plugins.module_utils.kubeconfig_check import KubeconfigError, check_kubeconfig

from fleet_helpers import kubeconfig


def test_token_kubeconfig_returns_server_and_context():
    got = check_kubeconfig(kubeconfig(), label="cluster spoke kubeconfig")
    assert got == {"server": "https://10.0.0.1:6443", "context": "spoke", "cluster": "spoke", "user": "spoke-admin", "auth": "token"}


def test_client_certificate_kubeconfig():
    got = check_kubeconfig(kubeconfig(user={"client-certificate-data": "Q0VSVA==", "client-key-data": "S0VZ"}))
    assert got["auth"] == "client-certificate"


def test_explicit_context_is_selected():
    kc = kubeconfig()
    kc["contexts"].append({"name": "other", "context": {"cluster": "spoke", "user": "spoke-admin"}})
    assert check_kubeconfig(kc, context="other")["context"] == "other"


def test_exec_user_is_refused_naming_user_and_context():
    kc = kubeconfig(user={"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "kubelogin"}})
    with pytest.raises(KubeconfigError) as err:
        check_kubeconfig(kc, label="cluster storage kubeconfig")
    msg = str(err.value)
    assert "cluster storage kubeconfig" in msg and "'spoke-admin'" in msg and "'spoke'" in msg
    assert "exec" in msg and "kubelogin" in msg


def test_auth_provider_user_is_refused():
    kc = kubeconfig(user={"auth-provider": {"name": "oidc", "config": {"id-token": "abc"}}})
    with pytest.raises(KubeconfigError, match="auth-provider.*oidc"):
        check_kubeconfig(kc)


@pytest.mark.parametrize("user,fragment", [
    ({"client-certificate": "/home/me/crt", "client-key-data": "S0VZ"}, "client-certificate"),
    ({"tokenFile": "/var/run/token"}, "tokenFile"),
    ({"client-certificate-data": "Q0VSVA=="}, "half of a client certificate"),
    ({}, "no usable embedded credentials"),
])
def test_unusable_credentials_are_refused(user, fragment):
    with pytest.raises(KubeconfigError, match=fragment):
        check_kubeconfig(kubeconfig(user=user))


def test_missing_server_and_ca_file_are_refused():
    kc = kubeconfig()
    del kc["clusters"][0]["cluster"]["server"]
    with pytest.raises(KubeconfigError, match="has no server URL"):
        check_kubeconfig(kc)
    kc = kubeconfig(cluster_extra={"certificate-authority": "/etc/ca.crt"})
    del kc["clusters"][0]["cluster"]["certificate-authority-data"]
    with pytest.raises(KubeconfigError, match="certificate-authority-data"):
        check_kubeconfig(kc)


@pytest.mark.parametrize("mutate,fragment", [
    (lambda kc: kc.pop("current-context"), "no current-context"),
    (lambda kc: kc.__setitem__("current-context", "nope"), "context 'nope' does not exist"),
    (lambda kc: kc["contexts"][0]["context"].__setitem__("user", "ghost"), "user 'ghost'"),
    (lambda kc: kc["contexts"][0]["context"].__setitem__("cluster", "ghost"), "cluster 'ghost'"),
])
def test_broken_references(mutate, fragment):
    kc = kubeconfig()
    mutate(kc)
    with pytest.raises(KubeconfigError, match=fragment):
        check_kubeconfig(kc)


def test_errors_never_contain_the_credentials():
    kc = kubeconfig(user={"token": "s3cr3t-token-value", "exec": {"command": "x"}})
    with pytest.raises(KubeconfigError) as err:
        check_kubeconfig(kc)
    assert "s3cr3t" not in str(err.value)


def test_not_a_mapping():
    with pytest.raises(KubeconfigError, match="not a kubeconfig"):
        check_kubeconfig("apiVersion: v1")
