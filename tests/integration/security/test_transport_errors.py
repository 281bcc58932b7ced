"""Transport failures through the modules against the local fleet: a refused port and a wrong
token each give one clear message naming the cluster (server URL and context) and what to check -
never a urllib3 repr through a module's "bug" branch - and fail at once instead of waiting."""
import json
import os
import socket
import subprocess
import sys
import time

import pytest
import yaml

pytestmark = pytest.mark.integration

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def ansible(module, args):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_CALLBACK_RESULT_FORMAT="json", ANSIBLE_STDOUT_CALLBACK="default", ANSIBLE_LOAD_CALLBACK_PLUGINS="1")
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible"), "localhost", "-c", "local",
           "-e", "ansible_python_interpreter=%s" % sys.executable, "-m", module, "-a", json.dumps(args)]
    start = time.monotonic()
    proc = subprocess.run(cmd, check=False, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=300)
    text = proc.stdout
    assert "localhost | " in text, "ansible did not run the module (%d):\n%s\n%s" % (proc.returncode, text[-2000:], proc.stderr[-2000:])
    result = json.JSONDecoder().raw_decode(text[text.index("{", text.index("localhost | ")):])[0]
    return proc.returncode, result, time.monotonic() - start


def free_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


@pytest.fixture
def hub(local_fleet):
    with open(local_fleet.kubeconfig(local_fleet.hub)) as fh:
        kc = yaml.safe_load(fh)
    return kc


def with_server(kc, server):
    kc = json.loads(json.dumps(kc))
    kc["clusters"][0]["cluster"]["server"] = server
    return kc


def with_token(kc, token):
    kc = json.loads(json.dumps(kc))
    kc["users"][0]["user"]["token"] = token
    return kc


def context_of(kc):
    return kc["current-context"]


def assert_clear(result, *needles):
    msg = result["msg"]
    for needle in needles:
        assert needle in msg, msg
    for noise in ("HTTPSConnectionPool", "failed unexpectedly", "Traceback", "MaxRetryError"):
        assert noise not in msg, msg
    assert "exception" not in result, result.get("exception")


@pytest.mark.parametrize("module,args", [
    ("c5c3.gitops.flux_report_info", {}),
    ("c5c3.gitops.flux_wait", {"objects": [{"kind": "HelmRelease", "name": "x", "namespace": "flux-system"}], "timeout": 900}),
    ("c5c3.gitops.flux_apply", {"objects": [{"apiVersion": "v1", "kind": "ConfigMap",
                                             "metadata": {"name": "x", "namespace": "flux-system"}}]}),
])
def test_refused_port_names_cluster_url_and_fails_at_once(hub, module, args):
    server = "https://127.0.0.1:%d" % free_port()
    rc, result, elapsed = ansible(module, dict(args, kubeconfig=with_server(hub, server)))
    assert rc != 0
    assert_clear(result, 'cluster %s (context "%s"): connection refused' % (server, context_of(hub)),
                 "is the API server running")
    # the whole ansible run, startup included (slow on a loaded machine): far below flux_wait's 900 s
    assert elapsed < 300, "a dead port must fail at once, not wait for the timeout (took %.0fs)" % elapsed


@pytest.mark.parametrize("module,args", [
    ("c5c3.gitops.flux_report_info", {}),
    ("c5c3.gitops.flux_reconcile", {"objects": [{"kind": "HelmRelease", "name": "x", "namespace": "flux-system"}]}),
    ("c5c3.gitops.flux_apply", {"objects": [{"apiVersion": "v1", "kind": "ConfigMap",
                                             "metadata": {"name": "x", "namespace": "flux-system"}}]}),
])
def test_wrong_token_says_unauthorized_naming_the_cluster(hub, module, args):
    rc, result, _elapsed = ansible(module, dict(args, kubeconfig=with_token(hub, "wrong-token-0123456789")))
    server = hub["clusters"][0]["cluster"]["server"]
    assert rc != 0
    assert_clear(result, 'cluster %s (context "%s"): unauthorized (401)' % (server, context_of(hub)),
                 "wrong or expired")
    assert "wrong-token-0123456789" not in json.dumps(result)


def test_spoke_with_a_wrong_token_is_named_by_its_cluster(local_fleet, hub):
    spoke = local_fleet.spokes[0]
    with open(local_fleet.kubeconfig(spoke)) as fh:
        bad = with_token(yaml.safe_load(fh), "wrong-spoke-token-0123456789")
    rc, result, _elapsed = ansible("c5c3.gitops.cluster_kubeconfig", {
        "kubeconfig": local_fleet.kubeconfig(local_fleet.hub), "cluster": spoke, "namespace": "unused-%s" % spoke,
        "kubeconfig_content": yaml.safe_dump(bad)})
    assert rc != 0
    # The preflight checks' wording (plugins/module_utils/credentials.py): cluster, URL, what is wrong.
    assert_clear(result, "cluster %s: unauthorized: %s" % (spoke, bad["clusters"][0]["cluster"]["server"]),
                 "rejected the credentials (401)", "nothing was written")
    assert "wrong-spoke-token-0123456789" not in json.dumps(result)
