"""The preflight of a run (plugins/module_utils/preflight.py) with a fake transport."""
import pytest
import yaml

from ansible_collections.c5c3.gitops.plugins.module_utils import credentials as cr
from ansible_collections.c5c3.gitops.plugins.module_utils import preflight as pf

from pki import NOW, ca_pair, client_user, kubeconfig


class Err(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class FakeClient:
    """Answers by server URL: behaviour per server in ``servers``."""

    def __init__(self, behaviour):
        self.behaviour = behaviour
        self.calls = []

    def request(self, method, path, query=None, body=None):
        self.calls.append((method, path))
        b = self.behaviour
        if b.get("error"):
            raise Err(*b["error"])
        if path == "/version":
            return 200, {"gitVersion": "v1.20.15"}
        attrs = body["spec"]["resourceAttributes"]
        denied = (attrs["verb"], attrs["resource"]) in b.get("deny", ())
        return 201, {"status": {"allowed": not denied}}


def factory(servers, made=None):
    def make(kc, context, timeout, cluster=None):
        server = kc["clusters"][0]["cluster"]["server"]
        client = FakeClient(servers.get(server, {}))
        if made is not None:
            made.append(client)
        return client
    return make


def spoke(name, kc):
    return {"name": name, "role": "spoke", "context": None, "path": None, "content": kc}


TOKEN = {"token": "0123456789abcdef0123456789abcdef"}


def test_all_good_returns_results_in_order():
    check = pf.Check(factory({}), now=NOW)
    got = check.all([spoke("a", kubeconfig(TOKEN, server="https://a:1")), spoke("b", kubeconfig(TOKEN, server="https://b:1"))])
    assert [r["cluster"] for r in got] == ["a", "b"]
    assert got[0]["version"] == "v1.20.15" and got[0]["missing_access"] == [] and got[0]["errors"] == []


def test_every_bad_cluster_is_named_in_one_error():
    servers = {"https://a:1": {"error": (401, "Unauthorized")},
               "https://b:1": {"error": (0, "GET /version: NewConnectionError: [Errno 111] Connection refused")}}
    check = pf.Check(factory(servers), now=NOW)
    with pytest.raises(pf.PreflightError) as err:
        check.all([spoke("a", kubeconfig(TOKEN, server="https://a:1")), spoke("b", kubeconfig(TOKEN, server="https://b:1")),
                   spoke("c", kubeconfig(TOKEN, server="https://c:1"))])
    msg = str(err.value)
    assert msg.startswith("preflight failed for 2 cluster(s), nothing was written:")
    assert "cluster a: unauthorized: https://a:1 rejected the credentials (401)" in msg
    assert "cluster b: cannot connect to https://b:1: connection refused" in msg
    assert "cluster c" not in msg


def test_missing_access_is_listed():
    servers = {"https://a:1": {"deny": {("create", "customresourcedefinitions"), ("create", "clusterroles")}}}
    with pytest.raises(pf.PreflightError) as err:
        pf.Check(factory(servers), now=NOW).all([spoke("a", kubeconfig(TOKEN, server="https://a:1"))])
    assert ("cluster a: the credential (spoke-admin) may not create customresourcedefinitions.apiextensions.k8s.io, "
            "create clusterroles.rbac.authorization.k8s.io; Flux needs it") in str(err.value)


def test_expired_certificate_fails_without_contacting_the_server():
    made = []
    kc = kubeconfig(client_user(not_after_days=-1, not_before_days=-30))
    with pytest.raises(pf.PreflightError, match=r"cluster a: the client certificate \(CN=spoke-admin\) expired at"):
        pf.Check(factory({}, made), now=NOW).all([spoke("a", kc)])
    assert made == []


def test_warnings_name_the_cluster_and_do_not_fail():
    ca = ca_pair()
    got = pf.Check(factory({}), now=NOW, warn_days=400).all([spoke("a", kubeconfig(client_user(ca=ca), ca[1]))])
    assert got[0]["warnings"] == ["cluster a: the client certificate (CN=spoke-admin) expires in 365.0 days (2027-06-01T12:00:00Z)"]


def test_exec_spoke_is_refused_but_an_exec_hub_is_fine():
    kc = kubeconfig({"exec": {"command": "kubelogin", "apiVersion": "client.authentication.k8s.io/v1"}})
    with pytest.raises(pf.PreflightError, match="cluster a kubeconfig: user 'spoke-admin'.*exec"):
        pf.Check(factory({}), now=NOW).all([spoke("a", kc)])
    hub = dict(spoke("hub", kc), role="hub")
    assert pf.Check(factory({}), now=NOW).all([hub])[0]["auth"] == "exec"


def test_probe_off_inspects_only():
    made = []
    got = pf.Check(factory({}, made), probe=False, now=NOW).all([spoke("a", kubeconfig(TOKEN))])
    assert made == [] and got[0]["version"] is None


def test_access_off_makes_only_the_version_request():
    made = []
    pf.Check(factory({}, made), check_access=False, now=NOW).all([spoke("a", kubeconfig(TOKEN))])
    assert made[0].calls == [("GET", "/version")]


def test_credentials_never_appear_in_errors_and_are_registered_no_log(tmp_path):
    secret = "s3cr3t-token-value-0123456789"
    path = tmp_path / "kc.yaml"
    path.write_text(yaml.safe_dump(kubeconfig({"token": secret}, server="https://a:1")))
    servers = {"https://a:1": {"error": (0, "failed with Bearer %s" % secret)}}
    registered = set()
    with pytest.raises(pf.PreflightError) as err:
        pf.Check(factory(servers), now=NOW).all([{"name": "a", "role": "spoke", "path": str(path), "content": None}],
                                                no_log=registered.add)
    assert secret not in str(err.value) and "<redacted>" in str(err.value)
    assert secret in registered


def test_unreadable_kubeconfig_names_cluster_and_path(tmp_path):
    with pytest.raises(pf.PreflightError, match="cluster a: cannot read kubeconfig .*/nope.yaml"):
        pf.Check(factory({}), now=NOW).all([{"name": "a", "role": "spoke", "path": str(tmp_path / "nope.yaml"), "content": None}])


def test_items_from_fleet_spokes_and_hub(tmp_path):
    clusters = [{"name": "management", "kubeconfig_secret": None, "kubeconfig": "m.yaml"},
                {"name": "storage", "kubeconfig_secret": "storage-kubeconfig", "kubeconfig": "s.yaml", "context": "x"},
                {"name": "compute", "kubeconfig_secret": "compute-kubeconfig", "kubeconfig": None}]
    items = pf.items_from_fleet(clusters, {"compute": "text"}, str(tmp_path), {"name": "management", "kubeconfig": {"a": 1}})
    assert [(i["name"], i["role"]) for i in items] == [("management", "hub"), ("compute", "spoke"), ("storage", "spoke")]
    assert items[2]["path"] == str(tmp_path / "s.yaml") and items[2]["context"] == "x"
    assert items[1]["content"] == "text" and items[0]["content"] == {"a": 1}


def test_hub_access_is_checked_against_the_hub_list():
    made = []
    pf.Check(factory({}, made), hub_access=[{"verb": "create", "resource": "leases", "group": "coordination.k8s.io"}],
             now=NOW).all([dict(spoke("hub", kubeconfig(TOKEN)), role="hub")])
    assert made[0].calls == [("GET", "/version"), ("POST", pf.SSAR_PATH)]


def test_default_lists_are_valid():
    assert cr.normalize_access(cr.FLUX_SPOKE_ACCESS) and cr.normalize_access(cr.HUB_ACCESS)
