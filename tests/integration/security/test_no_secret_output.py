"""No credential in the output at -vvv --diff, whatever form the hub kubeconfig comes in.

One ansible-playbook run against the local fleet, one inventory host per input form (path, inline
mapping, inline text, vault-encrypted string, vault-encrypted vars file), every host running every
module that takes the connection options (through module_defaults, as the playbooks do), a
failing task included. Every inline form carries its own client certificate (minted from the
fleet's CA) next to the hub token, so a leak of any form's key material is caught. The whole
output is grepped for the credentials; a control run shows the same inventory does hold them
(so the grep can fail).
"""
import base64
import datetime
import json
import os
import shutil
import subprocess
import sys
import uuid

import pytest
import yaml

pytestmark = pytest.mark.integration

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BIN = os.path.join(ROOT, ".venv", "bin")


def _tool(name):
    path = os.path.join(BIN, name)
    return path if os.path.exists(path) else shutil.which(name) or path


PLAYBOOK = r"""
- name: Use every module with the hub connection of the host's form
  hosts: all
  connection: local
  gather_facts: false
  vars:
    _ns: "{{ sec_prefix }}-{{ inventory_hostname }}"
  module_defaults:
    group/c5c3.gitops.k8s:
      kubeconfig: "{{ _hub }}"
    group/kubernetes.core.k8s:
      kubeconfig: "{{ _hub_core }}"
  tasks:
    - name: Derive the hub connection (as playbooks/tasks/fleet.yml does)
      ansible.builtin.set_fact:
        _hub: >-
          {{ gitops_kubeconfig if gitops_kubeconfig is defined
             else (gitops_kubeconfig_content if gitops_kubeconfig_content is mapping or sec_pass_text | default(false)
                   else gitops_kubeconfig_content | from_yaml) }}
        # kubernetes.core takes a path or a mapping, not the text
        _hub_core: >-
          {{ gitops_kubeconfig if gitops_kubeconfig is defined
             else (gitops_kubeconfig_content if gitops_kubeconfig_content is mapping
                   else gitops_kubeconfig_content | from_yaml) }}
      no_log: true

    - name: Apply objects
      c5c3.gitops.flux_apply:
        objects:
          - {apiVersion: v1, kind: ConfigMap, metadata: {name: cm, namespace: "{{ _ns }}"}, data: {a: b}}
          - {apiVersion: v1, kind: Secret, metadata: {name: s, namespace: "{{ _ns }}"}, stringData: {k: not-a-credential}}
          - apiVersion: helm.toolkit.fluxcd.io/v2
            kind: HelmRelease
            metadata: {name: hr, namespace: "{{ _ns }}"}
            spec: {interval: 10m, suspend: true, chart: {spec: {chart: x, sourceRef: {kind: HelmRepository, name: none}}}}
      register: _applied

    - name: Wait for what exists by existing
      c5c3.gitops.flux_wait:
        objects: "{{ _applied.applied | rejectattr('kind', 'equalto', 'HelmRelease') | list }}"
        timeout: 60

    - name: Request a reconcile
      c5c3.gitops.flux_reconcile:
        objects: [{kind: HelmRelease, name: hr, namespace: "{{ _ns }}"}]
        wait: false

    - name: Read the Flux report
      c5c3.gitops.flux_report_info:

    - name: Register a spoke
      c5c3.gitops.cluster_kubeconfig:
        cluster: "{{ _ns }}"
        namespace: "{{ _ns }}"
        kubeconfig_content: "{{ sec_spoke_text }}"

    - name: Read the namespace with kubernetes.core
      kubernetes.core.k8s_info:
        kind: Namespace
        name: "{{ _ns }}"

    - name: Fail on purpose (the failure path returns the invocation too)
      c5c3.gitops.flux_wait:
        objects: [{kind: ConfigMap, name: absent, namespace: "{{ _ns }}"}]
        timeout: 2
        missing_grace: 0
      ignore_errors: true
      register: _failed

    - name: Check that the failure was the wait
      ansible.builtin.assert:
        that: _failed is failed
"""


def _mint_client_cert(pki, cn):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    with open(os.path.join(pki, "ca.key"), "rb") as fh:
        ca_key = serialization.load_pem_private_key(fh.read(), None)
    with open(os.path.join(pki, "ca.crt"), "rb") as fh:
        ca = x509.load_pem_x509_certificate(fh.read())
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                                     x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters")]))
            .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _with_cert(kubeconfig, cert_pem, key_pem):
    kc = json.loads(json.dumps(kubeconfig))
    user = kc["users"][0]["user"]
    user["client-certificate-data"] = base64.b64encode(cert_pem).decode()
    user["client-key-data"] = base64.b64encode(key_pem).decode()
    return kc


def _vault(password_file, *args, stdin=None):
    proc = subprocess.run([_tool("ansible-vault"), *args, "--vault-password-file", password_file],
                          check=True, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=120)
    return proc.stdout


@pytest.fixture
def scenario(local_fleet, tmp_path):
    prefix = "sec-%s" % uuid.uuid4().hex[:6]
    hub_path = local_fleet.kubeconfig(local_fleet.hub)
    with open(hub_path) as fh:
        hub = yaml.safe_load(fh)
    spoke = local_fleet.spokes[0]
    with open(local_fleet.kubeconfig(spoke)) as fh:
        spoke_text = fh.read()
    pki = os.path.join(local_fleet.state_dir, "pki")
    password_file = tmp_path / "vault-pass"
    password_file.write_text("integration-test-vault-password\n")
    inv = tmp_path / "inventory"
    (inv / "host_vars").mkdir(parents=True)
    forms = {}
    secrets = {"hub token": hub["users"][0]["user"]["token"],
               "spoke token": yaml.safe_load(spoke_text)["users"][0]["user"]["token"]}
    derived = {}  # not in the inventory as such: grepped for, not part of the control
    for form in ("mapping", "text", "vault-string", "vault-file"):
        cert_pem, key_pem = _mint_client_cert(pki, "c5c3-%s" % form)
        kc = _with_cert(hub, cert_pem, key_pem)
        forms[form] = kc
        user = kc["users"][0]["user"]
        secrets["%s client-key-data" % form] = user["client-key-data"]
        secrets["%s client-certificate-data" % form] = user["client-certificate-data"]
        for i, line in enumerate(ln for ln in key_pem.decode().splitlines() if len(ln) > 40):
            derived["%s key PEM line %d" % (form, i)] = line

    host_vars = {
        "path": {"gitops_kubeconfig": hub_path},
        "mapping": {"gitops_kubeconfig_content": forms["mapping"]},
        "text": {"gitops_kubeconfig_content": yaml.safe_dump(forms["text"]), "sec_pass_text": True},
        "vault-file": {"gitops_kubeconfig_content": forms["vault-file"]},
    }
    for host, data in host_vars.items():
        (inv / "host_vars" / ("%s.yml" % host)).write_text(yaml.safe_dump(data))
    _vault(str(password_file), "encrypt", str(inv / "host_vars" / "vault-file.yml"))
    vaulted = _vault(str(password_file), "encrypt_string", "--stdin-name", "gitops_kubeconfig_content",
                     stdin=yaml.safe_dump(forms["vault-string"]))
    (inv / "host_vars" / "vault-string.yml").write_text("---\n" + vaulted)
    hosts = ["path", "mapping", "text", "vault-string", "vault-file"]
    (inv / "hosts.yml").write_text(yaml.safe_dump({"all": {
        "hosts": dict((h, None) for h in hosts),
        "vars": {"sec_prefix": prefix, "sec_spoke_text": spoke_text, "ansible_python_interpreter": sys.executable}}}))
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    yield {"inventory": str(inv), "playbook": str(tmp_path / "play.yml"), "password_file": str(password_file),
           "secrets": secrets, "derived": derived, "hosts": hosts, "prefix": prefix}
    _cleanup(local_fleet, ["%s-%s" % (prefix, h) for h in hosts])


def _cleanup(local_fleet, namespaces):
    from kubernetes import client
    api = client.CoreV1Api(local_fleet.api_client())
    for ns in namespaces:
        try:
            api.delete_namespace(ns)
        except Exception:  # never created (an earlier failure) or already gone
            pass


def _env():
    return dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                ANSIBLE_DEPRECATION_WARNINGS="0", ANSIBLE_CALLBACK_RESULT_FORMAT="json", ANSIBLE_FORKS="5")


def _leaks(output, secrets):
    squeezed = "".join(output.split())  # a wrapped line must not hide a credential
    return sorted(label for label, value in secrets.items() if value in output or "".join(value.split()) in squeezed)


def test_no_credential_at_vvv_and_diff_for_any_input_form(scenario):
    # control: printing the inventory's variables (vault decrypted) shows every credential, so
    # the same grep on the playbook's output below can fail
    control = subprocess.run(
        [_tool("ansible"), "all", "-i", scenario["inventory"], "-m", "ansible.builtin.debug", "-a",
         "msg={{ [gitops_kubeconfig_content | default(''), sec_spoke_text] }}",
         "--vault-password-file", scenario["password_file"]],
        check=False, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        universal_newlines=True, timeout=300)
    assert control.returncode == 0, control.stdout
    missing = sorted(set(scenario["secrets"]) - set(_leaks(control.stdout, scenario["secrets"])))
    assert not missing, "the control run does not show %s: the leak check could not fail" % missing

    proc = subprocess.run(
        [_tool("ansible-playbook"), scenario["playbook"], "-i", scenario["inventory"], "-vvv", "--diff",
         "--vault-password-file", scenario["password_file"]],
        check=False, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        universal_newlines=True, timeout=900)
    out = proc.stdout
    assert proc.returncode == 0, out[-6000:]
    # every module ran on every host and -vvv did show its arguments
    recap = out.split("PLAY RECAP", 1)[1]
    for host in scenario["hosts"]:
        line = recap.split(host, 1)[1].splitlines()[0]
        assert "ok=9 " in line and "failed=0" in line and "ignored=1" in line, recap  # ok counts the ignored one
    assert out.count('"module_args"') >= 7 * len(scenario["hosts"])
    assert "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in out
    every = dict(scenario["secrets"], **scenario["derived"])
    leaks = _leaks(out, every)
    if leaks:
        where = []
        for label in leaks:
            value = every[label]
            index = out.find(value)
            where.append("%s: ...%s..." % (label, out[max(0, index - 400):index].replace(value, "<SECRET>")))
        pytest.fail("credentials in the -vvv --diff output: %s\n%s" % (", ".join(leaks), "\n".join(where)))
