"""kube_auth.connection: every kubeconfig form and the host/api_key options -> one Connection."""
import base64
import json
import os
import stat
import sys

import pytest
import yaml

from ansible_collections.c5c3.gitops.plugins.module_utils.kube_auth import connection
from ansible_collections.c5c3.gitops.plugins.module_utils.kube_errors import KubeError

CA = b"-----BEGIN CERTIFICATE-----\nQ0E=\n-----END CERTIFICATE-----\n"


@pytest.fixture(autouse=True)
def no_env(monkeypatch):
    for var in ("K8S_AUTH_KUBECONFIG", "K8S_AUTH_HOST", "K8S_AUTH_API_KEY", "K8S_AUTH_CONTEXT", "K8S_AUTH_VERIFY_SSL",
                "K8S_AUTH_SSL_CA_CERT", "K8S_AUTH_CERT_FILE", "K8S_AUTH_KEY_FILE"):
        monkeypatch.delenv(var, raising=False)


def kc(user, cluster=None, name="hub", server="https://127.0.0.1:6443"):
    return {"apiVersion": "v1", "kind": "Config", "current-context": name,
            "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
            "clusters": [{"name": name, "cluster": dict({"server": server,
                                                         "certificate-authority-data": base64.b64encode(CA).decode()},
                                                        **(cluster or {}))}],
            "users": [{"name": name, "user": user}]}


def test_mapping_with_token_and_ca():
    conn = connection({"kubeconfig": kc({"token": "t0k3n"})})
    assert conn.server == "https://127.0.0.1:6443" and conn.headers["Authorization"] == "Bearer t0k3n"
    assert conn.tls["ca_cert_data"] == CA.decode() and conn.tls["cert_reqs"] == "CERT_REQUIRED"
    assert conn.label == 'https://127.0.0.1:6443 (context "hub")'


def test_text_form_and_path_form_are_the_same(tmp_path):
    text = yaml.safe_dump(kc({"token": "t0k3n"}))
    path = tmp_path / "kc.yaml"
    path.write_text(text)
    a, b = connection({"kubeconfig": text}), connection({"kubeconfig": str(path)})
    assert (a.server, a.headers, a.tls) == (b.server, b.headers, b.tls)


def test_kubeconfig_list_is_merged_first_wins(tmp_path, monkeypatch):
    one, two = tmp_path / "one.yaml", tmp_path / "two.yaml"
    first = kc({"token": "first"}, name="a")
    first.pop("current-context")
    one.write_text(yaml.safe_dump(first))
    two.write_text(yaml.safe_dump(kc({"token": "second"}, name="b")))
    conn = connection({"kubeconfig": os.pathsep.join([str(one), str(two)]), "context": "a"})
    assert conn.headers["Authorization"] == "Bearer first"
    assert connection({"kubeconfig": os.pathsep.join([str(one), str(two)])}).headers["Authorization"] == "Bearer second"


def test_unknown_context_is_a_clear_config_error():
    with pytest.raises(KubeError) as info:
        connection({"kubeconfig": kc({"token": "x"}), "context": "nope"})
    assert info.value.category == "config" and "no context 'nope' (contexts: hub)" in str(info.value)


def test_missing_file_and_bad_yaml_never_quote_the_text(tmp_path):
    with pytest.raises(KubeError, match="cannot read kubeconfig .*/absent.yaml"):
        connection({"kubeconfig": str(tmp_path / "absent.yaml")})
    with pytest.raises(KubeError) as info:
        connection({"kubeconfig": "users:\n  - token: [s3cr3t-value\n"})
    assert "not valid YAML" in str(info.value) and "s3cr3t" not in str(info.value)


def test_relative_token_file_and_client_cert_files_resolve_against_the_kubeconfig(tmp_path):
    (tmp_path / "token").write_text("from-file\n")
    path = tmp_path / "kc.yaml"
    path.write_text(yaml.safe_dump(kc({"tokenFile": "token", "client-certificate": "c.crt", "client-key": "c.key"})))
    conn = connection({"kubeconfig": str(path)})
    assert conn.headers["Authorization"] == "Bearer from-file" and "from-file" in conn.secrets
    assert conn.tls["cert_file"] == str(tmp_path / "c.crt") and conn.tls["key_file"] == str(tmp_path / "c.key")


def test_inline_client_key_is_a_0600_file_removed_on_close():
    conn = connection({"kubeconfig": kc({"client-certificate-data": base64.b64encode(b"CERT").decode(),
                                         "client-key-data": base64.b64encode(b"KEY").decode()})})
    key = conn.tls["key_file"]
    assert open(key, "rb").read() == b"KEY" and stat.S_IMODE(os.stat(key).st_mode) == 0o600
    conn.close()
    assert not os.path.exists(key)


def test_half_a_client_certificate_is_refused():
    with pytest.raises(KubeError, match="only half of a client certificate"):
        connection({"kubeconfig": kc({"client-certificate-data": base64.b64encode(b"CERT").decode()})})


def test_insecure_skip_tls_verify_and_validate_certs_override():
    conn = connection({"kubeconfig": kc({"token": "x"}, {"insecure-skip-tls-verify": True})})
    assert conn.tls["cert_reqs"] == "CERT_NONE" and "ca_cert_data" not in conn.tls
    conn = connection({"kubeconfig": kc({"token": "x"}, {"insecure-skip-tls-verify": True}), "validate_certs": True})
    assert conn.tls["cert_reqs"] == "CERT_REQUIRED"


def test_tls_server_name():
    conn = connection({"kubeconfig": kc({"token": "x"}, {"tls-server-name": "kubernetes"})})
    assert conn.tls["server_hostname"] == "kubernetes" and conn.tls["assert_hostname"] == "kubernetes"


def test_host_and_api_key_with_inline_ca(tmp_path):
    conn = connection({"host": "https://10.0.0.1:6443", "api_key": "k3y", "ca_cert": CA.decode()})
    assert conn.server == "https://10.0.0.1:6443" and conn.headers["Authorization"] == "Bearer k3y"
    assert conn.tls["ca_cert_data"] == CA.decode() and conn.label == "https://10.0.0.1:6443"


def test_api_key_overrides_the_kubeconfig_token_and_env_fallback(monkeypatch):
    monkeypatch.setenv("K8S_AUTH_API_KEY", "from-env")
    assert connection({"kubeconfig": kc({"token": "x"})}).headers["Authorization"] == "Bearer from-env"
    assert connection({"kubeconfig": kc({"token": "x"})}, use_env=False).headers["Authorization"] == "Bearer x"


def test_exec_plugin_token(tmp_path):
    script = tmp_path / "cred.py"
    script.write_text("import json, os\n"
                      "assert json.loads(os.environ['KUBERNETES_EXEC_INFO'])['kind'] == 'ExecCredential'\n"
                      "print(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1', 'kind': 'ExecCredential',"
                      " 'status': {'token': os.environ['WANT']}}))\n")
    user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": sys.executable,
                     "args": [str(script)], "env": [{"name": "WANT", "value": "exec-token"}]}}
    conn = connection({"kubeconfig": kc(user)})
    assert conn.headers["Authorization"] == "Bearer exec-token" and "exec-token" in conn.secrets


def test_failing_exec_plugin_names_the_command():
    user = {"exec": {"command": sys.executable, "args": ["-c", "import sys; sys.exit(3)"]}}
    with pytest.raises(KubeError, match=r"exec credential plugin .* failed \(exit 3\)"):
        connection({"kubeconfig": kc(user)})


def test_cluster_name_goes_into_the_label():
    assert connection({"kubeconfig": kc({"token": "x"})}, cluster="storage").label == \
        'storage at https://127.0.0.1:6443 (context "hub")'


def test_json_text_kubeconfig():
    assert connection({"kubeconfig": json.dumps(kc({"token": "j"}))}).headers["Authorization"] == "Bearer j"
