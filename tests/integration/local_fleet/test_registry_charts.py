"""The local fleet's OCI registry and generated charts, without kube-apiservers: docker-registry,
helm push/pull, SemVer resolution against the registry's tags, the charts' CRDs and values schema."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import time

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.join(ROOT, "hack"))

from localfleet import charts, fleet, helmops, registry  # noqa: E402

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def reg(tmp_path_factory):
    if not os.access(registry.BINARY, os.X_OK):
        pytest.fail(f"{registry.BINARY} missing: hack/bootstrap installs docker-registry (bindep.txt)")
    state = str(tmp_path_factory.mktemp("registry-state"))
    os.makedirs(os.path.join(state, "logs"))
    port = fleet.free_ports(1)[0]
    prep = registry.prepare(state, port, os.path.join(state, "no-seed"))
    pid = fleet.spawn(registry.argv(state), registry.paths(state)["log"])
    deadline = time.monotonic() + 10
    while not fleet.pid_alive(pid, prep["config"]) and time.monotonic() < deadline:
        time.sleep(0.01)  # until the child has exec'd (its command line names the config)
    try:
        url = registry.read_url(state)
        fleet.wait_until("registry", lambda: registry.alive(url), pid, prep["config"], registry.paths(state)["log"], 30)
        helm = helmops.Helm(registry.install_helm(ROOT), os.path.join(state, "helm"))
        yield {"state": state, "url": url, "helm": helm, "pid": pid, "config": prep["config"]}
    finally:
        fleet.stop_pid(pid, prep["config"], "registry")


def push(reg, chart, version, values=None, **kw):
    path = os.path.join(reg["state"], f"{chart}-{version}.tgz")
    with open(path, "wb") as fh:
        fh.write(charts.build(chart, version, values, **kw))
    reg["helm"].push(path, reg["url"])
    return path


def test_registry_listens_on_loopback_only_with_its_own_config(reg):
    with open(reg["config"], encoding="utf-8") as fh:
        cfg = yaml.safe_load(fh)
    assert cfg["http"]["addr"].startswith("127.0.0.1:")
    assert cfg["storage"]["filesystem"]["rootdirectory"].startswith(reg["state"])
    assert "auth" not in cfg
    assert reg["url"] == f"oci://{cfg['http']['addr']}/charts"
    assert fleet.pid_alive(reg["pid"], reg["config"])


def test_catalog_charts_cover_every_component_in_and_out_of_range():
    with open(charts.CATALOG, encoding="utf-8") as fh:
        catalog = yaml.safe_load(fh)["fleet_components"]
    names = {c.get("chart") or c["name"] for comps in catalog.values() for c in comps}
    generated = charts.catalog_charts()
    assert {c["chart"] for c in generated} == names
    for name in names:
        mine = [c for c in generated if c["chart"] == name]
        assert any(c["in_range"] for c in mine) and any(not c["in_range"] for c in mine), name
        for c in mine:  # the classification is the collection's own SemVer reading
            assert helmops.semver.satisfies(c["version"], c["range"]) == c["in_range"], c["version"]
    # reproducible bytes: the same catalog gives the same cache key
    assert charts.cache_key(generated) == charts.cache_key(charts.catalog_charts())


def test_chart_has_crds_schema_and_templates(tmp_path):
    path = tmp_path / "x.tgz"
    path.write_bytes(charts.build("keystone-operator", "0.2.0", {"replicas": 2, "metrics": {"enabled": True}}))
    with tarfile.open(path) as tar:
        names = set(tar.getnames())
    assert {"keystone-operator/Chart.yaml", "keystone-operator/values.schema.json",
            "keystone-operator/crds/chartprobes.keystone-operator.yaml",
            "keystone-operator/templates/deployment.yaml", "keystone-operator/templates/configmap.yaml"} <= names
    crds = helmops.chart_crds(str(path))
    assert [c["metadata"]["name"] for c in crds] == ["chartprobes.keystone-operator.charts.c5c3.io"]
    assert crds[0]["metadata"]["annotations"]["charts.c5c3.io/chart-version"] == "0.2.0"


def test_push_and_resolve_the_highest_version_in_range(reg):
    for v in ("0.1.0", "0.2.0", "0.10.0", "1.0.0", "0.11.0-rc.1"):
        push(reg, "probe-a", v)
    assert sorted(registry.tags(reg["url"], "probe-a")) == ["0.1.0", "0.10.0", "0.11.0-rc.1", "0.2.0", "1.0.0"]
    assert helmops.resolve(reg["url"], "probe-a", ">=0.1.0 <1.0.0") == "0.10.0"  # numeric, no pre-release
    assert helmops.resolve(reg["url"], "probe-a", "0.2.x") == "0.2.0"
    assert helmops.resolve(reg["url"], "probe-a", "*") == "1.0.0"
    with pytest.raises(helmops.HelmError, match="no 'probe-a' chart with version matching '>=2.0.0' found"):
        helmops.resolve(reg["url"], "probe-a", ">=2.0.0")
    with pytest.raises(helmops.HelmError, match="charts/nothing-here: not found"):
        helmops.resolve(reg["url"], "nothing-here", "*")


def test_pull_is_cached(reg):
    push(reg, "probe-b", "0.1.0")
    first = reg["helm"].pull(reg["url"], "probe-b", "0.1.0")
    mtime = os.stat(first).st_mtime_ns
    assert reg["helm"].pull(reg["url"], "probe-b", "0.1.0") == first
    assert os.stat(first).st_mtime_ns == mtime
    assert helmops.chart_crds(first)[0]["spec"]["group"] == "probe-b.charts.c5c3.io"


def test_values_typo_and_failing_template_fail_with_helms_message(reg):
    good = push(reg, "probe-c", "0.1.0", {"metrics": {"enabled": True}})
    bad = push(reg, "probe-c", "0.2.0", fail_template=True)

    def template(path, values):
        return subprocess.run([reg["helm"].binary, "template", "rel", path, "--values", "-"], input=json.dumps(values),
                              capture_output=True, text=True, env=reg["helm"].env, check=False)

    ok = template(good, {"metrics": {"enabled": False}, "replicas": 3})
    assert ok.returncode == 0, ok.stderr
    assert "replicas: 3" in ok.stdout
    typo = template(good, {"metrics": {"enabeld": False}})
    assert typo.returncode != 0
    assert "Additional property enabeld is not allowed" in helmops.helm_message(typo.stderr)
    broken = template(bad, {})
    assert "template failure on purpose" in helmops.helm_message(broken.stderr)


def test_seed_round_trip(reg, tmp_path):
    push(reg, "probe-d", "0.1.0")
    seed = str(tmp_path / "seed")
    registry.save_seed(reg["state"], seed)
    other = str(tmp_path / "other")
    os.makedirs(other)
    registry.write_config(other, 1)
    assert registry.seed(other, seed)
    assert os.path.isdir(os.path.join(other, "registry", "data", "docker", "registry", "v2", "repositories", "charts",
                                      "probe-d"))
    assert not registry.seed(other, str(tmp_path / "absent"))


def test_values_from_then_values_on_top():
    from localfleet import helmreal

    store = {("ConfigMap", "ns", "digests"): {"values.yaml": "image:\n  digest: sha256:abc\nreplicas: 1\n"},
             ("Secret", "ns", "extra"): {"tag": "1.2.3"}}
    spec = {"valuesFrom": [{"kind": "ConfigMap", "name": "digests"},
                           {"kind": "Secret", "name": "extra", "valuesKey": "tag", "targetPath": "image.tag"},
                           {"kind": "ConfigMap", "name": "absent", "optional": True}],
            "values": {"replicas": 2}}
    vals = helmreal.compose_values(spec, "ns", lambda k, n, name: store.get((k, n, name)))
    assert vals == {"image": {"digest": "sha256:abc", "tag": "1.2.3"}, "replicas": 2}
    with pytest.raises(helmreal.SourceError) as err:
        helmreal.compose_values({"valuesFrom": [{"kind": "ConfigMap", "name": "absent"}]}, "ns", lambda *a: None)
    assert err.value.reason == "InitFailed"
    assert str(err.value) == ("could not resolve ConfigMap chart values reference 'ns/absent' with key 'values.yaml': "
                              'configmaps "absent" not found')
