"""Issue 12 §3 on the local fleet: a hand edit of spec.values is undone by the next apply and
reported as a change, also when the catalog's values are empty (the model renders `values: {}`,
so the apply owns the field instead of leaving it to whoever edited it)."""
import copy
import sys
import uuid

import pytest

from ansible_collections.c5c3.gitops.plugins.module_utils import apply as ap
from ansible_collections.c5c3.gitops.plugins.module_utils.fleet_model import build_fleet
from ansible_collections.c5c3.gitops.plugins.module_utils.kube import client_from_kubeconfig

pytestmark = pytest.mark.integration

sys.path.insert(0, __file__.rsplit("/tests/", 1)[0] + "/tests/unit/fleet")
from fleet_helpers import load_catalog, make_inventory  # noqa: E402


@pytest.fixture
def hub(local_fleet):
    client = client_from_kubeconfig(local_fleet.kubeconfig(local_fleet.hub))
    yield client
    client.close()


def _release(name, ns):
    """The model's own HelmRelease of the component, moved into a namespace of the test's own."""
    fleet = build_fleet(make_inventory(), load_catalog())
    obj = copy.deepcopy([o["object"] for o in fleet["objects"]
                         if o["object"]["kind"] == "HelmRelease" and o["object"]["metadata"]["name"] == name][0])
    obj["metadata"]["namespace"] = ns
    obj["spec"]["suspend"] = True  # nothing reconciles it
    obj["spec"].pop("kubeConfig", None)
    obj["spec"].pop("dependsOn", None)
    return obj


def _hand_edit(hub, obj, values):
    """What `kubectl edit` does: an update (merge patch) under its own field manager."""
    client = ap.Applier(hub).raw
    info = ap.flux_kinds.lookup("HelmRelease")
    path = ap.flux_kinds.object_path(info, obj["metadata"]["namespace"], obj["metadata"]["name"])
    client.request("PATCH", path, {"fieldManager": "kubectl-edit"}, body={"spec": {"values": values}},
                   content_type="application/merge-patch+json")
    return client.request("GET", path)[1]


@pytest.mark.parametrize("component", ["valkey-operator", "keystone-operator"])
def test_hand_edited_values_are_restored_and_reported(hub, component):
    ns = "it-%s" % uuid.uuid4().hex[:8]
    obj = _release(component, ns)
    want = obj["spec"]["values"]
    assert (want == {}) == (component == "valkey-operator")  # one with empty catalog values
    ap.Applier(hub).run([obj])
    edited = _hand_edit(hub, obj, {"injected": "by hand", "replicas": 9})
    assert edited["spec"]["values"]["injected"] == "by hand"
    result = ap.Applier(hub).run([obj])
    assert result["changed"] and result["applied"][0]["changed"]
    info = ap.flux_kinds.lookup("HelmRelease")
    live = ap.Applier(hub).get(info, ns, component)
    assert live["spec"]["values"] == want
    # and then it stays put
    assert not ap.Applier(hub).run([obj])["changed"]
