"""The no_log values of the connection options: which strings are credentials, and that
KubeModule registers them before anything (validation errors, syslog, results) can show them."""
import json

import pytest
import yaml

from ansible_collections.c5c3.gitops.plugins.module_utils import kube_secrets as s
from ansible_collections.c5c3.gitops.plugins.module_utils.k8s_client import K8S_AUTH_ARGSPEC

TOKEN = "hub-token-0123456789abcdef"
KEY = "LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tCmtleWtleWtleQ=="
CERT = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCmNlcnRjZXJ0"
PASSWORD = "s3cr3t-pa55"


def kubeconfig(user=None):
    return {
        "apiVersion": "v1", "kind": "Config", "current-context": "hub",
        "clusters": [{"name": "hub", "cluster": {"server": "https://127.0.0.1:6443",
                                                 "certificate-authority-data": "Q0FDQUNB"}}],
        "contexts": [{"name": "hub", "context": {"cluster": "hub", "user": "admin"}}],
        "users": [{"name": "admin", "user": user if user is not None else {"token": TOKEN}}],
    }


def test_mapping_yields_every_credential_and_nothing_public():
    kc = kubeconfig({"token": TOKEN, "client-certificate-data": CERT, "client-key-data": KEY,
                     "username": "admin", "password": PASSWORD})
    found = s.kubeconfig_secrets(kc)
    assert {TOKEN, CERT, KEY, PASSWORD} <= found
    # names, versions and the server stay readable (they are no credential)
    for public in ("v1", "Config", "hub", "admin", "https://127.0.0.1:6443"):
        assert public not in found


def test_text_yields_the_whole_text_and_its_credentials():
    text = yaml.safe_dump(kubeconfig())
    found = s.kubeconfig_secrets(text)
    assert text in found and TOKEN in found


def test_json_text_on_one_line_is_content_too():
    text = json.dumps(kubeconfig())
    assert "\n" not in text
    assert {text, TOKEN} <= s.kubeconfig_secrets(text)


def test_a_path_is_no_secret():
    assert s.kubeconfig_secrets("/etc/c5c3/hub.yaml") == set()
    assert s.kubeconfig_secrets("~/.kube/config") == set()
    assert s.kubeconfig_secrets(None) == set()


def test_invalid_yaml_text_is_still_masked_as_a_whole():
    text = "users:\n  - token: [unclosed %s\n" % TOKEN
    assert text in s.kubeconfig_secrets(text)


def test_auth_provider_exec_env_and_nested_credentials():
    kc = kubeconfig({
        "auth-provider": {"name": "oidc", "config": {"id-token": "idtok-123456", "refresh-token": "ref-123456",
                                                     "client-secret": "cs-123456", "client-id": "public-id"}},
        "exec": {"command": "helper", "env": [{"name": "VAULT_TOKEN", "value": "exec-env-secret"}]},
    })
    found = s.kubeconfig_secrets(kc)
    assert {"idtok-123456", "ref-123456", "cs-123456", "exec-env-secret"} <= found
    assert "public-id" not in found and "helper" not in found


def test_auth_secrets_covers_api_key_inline_pem_and_kubeconfig_maps():
    pem = "-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n"
    params = {"kubeconfig": kubeconfig(), "api_key": "api-key-123", "client_key": pem, "client_cert": "/path/crt",
              "contents": {"storage": yaml.safe_dump(kubeconfig({"token": "storage-token"})),
                           "hypervisor": kubeconfig({"token": "hv-token"})}}
    found = s.auth_secrets(params, ("kubeconfig", "contents"))
    assert {TOKEN, "api-key-123", pem, "storage-token", "hv-token"} <= found
    assert "/path/crt" not in found


def test_empty_strings_never_become_no_log_values():
    # "" would make Ansible mask between every character of every output string
    assert "" not in s.kubeconfig_secrets(kubeconfig({"token": "", "password": "  "}))


def test_argspec_kubeconfig_is_not_blanket_no_log():
    # no_log=True would mask every leaf (v1, names, URLs) as a substring of every returned value
    assert K8S_AUTH_ARGSPEC["kubeconfig"].get("no_log") is False
    assert K8S_AUTH_ARGSPEC["api_key"]["no_log"] is True


# --- KubeModule: registered before validation, logging and results --------------------------------

@pytest.fixture
def run_module(capsys, monkeypatch):
    from ansible.module_utils import basic
    from ansible.module_utils.testing import patch_module_args

    from ansible_collections.c5c3.gitops.plugins.module_utils.kube_module import KubeModule

    logged = []
    monkeypatch.setattr(basic.AnsibleModule, "log", lambda self, msg, log_args=None: logged.append(msg))

    def run(args, spec=None, finish=True, **kwargs):
        argument_spec = dict(K8S_AUTH_ARGSPEC, **(spec or {}))
        with patch_module_args(args):
            with pytest.raises(SystemExit):
                module = KubeModule(argument_spec=argument_spec, **kwargs)
                if finish:
                    module.exit_json(changed=False, echo="token in a message: %s" % TOKEN,
                                     apiVersion="source.toolkit.fluxcd.io/v1", server="https://127.0.0.1:6443")
        out = capsys.readouterr().out
        return json.loads(out), out, "\n".join(logged)
    return run


@pytest.mark.parametrize("form", ["mapping", "text"])
def test_invocation_and_log_mask_the_hub_credentials(run_module, form):
    kc = kubeconfig({"token": TOKEN, "client-key-data": KEY})
    value = kc if form == "mapping" else yaml.safe_dump(kc)
    result, raw, log = run_module({"kubeconfig": value})
    assert TOKEN not in raw and KEY not in raw
    assert TOKEN not in log and KEY not in log
    assert "token in a message: ********" in result["echo"]
    # only the credentials are masked: results keep "v1" and the server URL intact
    assert result["apiVersion"] == "source.toolkit.fluxcd.io/v1"
    assert result["server"] == "https://127.0.0.1:6443"
    if form == "mapping":
        shown = result["invocation"]["module_args"]["kubeconfig"]
        assert shown["users"][0]["user"]["token"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
        assert shown["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:6443"
    else:
        assert result["invocation"]["module_args"]["kubeconfig"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"


def test_validation_errors_do_not_echo_the_credentials(run_module):
    result, raw, _log = run_module({"kubeconfig": kubeconfig(), "no_such_option": 1}, finish=False)
    assert result["failed"] and "no_such_option" in result["msg"]
    assert TOKEN not in raw


def test_extra_kubeconfig_options_are_masked(run_module):
    spec = {"contents": dict(type="dict", no_log=False)}
    result, raw, log = run_module({"contents": {"storage": kubeconfig({"token": "storage-token-123"})}},
                                  spec=spec, kubeconfig_options=("kubeconfig", "contents"))
    assert "storage-token-123" not in raw and "storage-token-123" not in log
    # the cluster names inside stay readable
    assert result["invocation"]["module_args"]["contents"]["storage"]["contexts"][0]["name"] == "hub"
