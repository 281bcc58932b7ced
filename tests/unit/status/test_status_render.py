"""Renderers: console table, Markdown, JUnit XML and the Graphviz picture (parsed back from SVG)."""
import os
import shutil
import subprocess
import sys
from xml.etree import ElementTree as ET

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from status_fakes import collect, sample_fleet  # noqa: E402

from ansible_collections.c5c3.gitops.plugins.module_utils import status_graph, status_render  # noqa: E402


@pytest.fixture(scope="module")
def report():
    return collect(sample_fleet())


def objects(report):
    return [o for c in report["clusters"] for o in c["objects"]]


def test_table_per_cluster(report):
    tables = dict((c["name"], status_render.cluster_lines(c)) for c in report["clusters"])
    cp = "\n".join(tables["control-plane"])
    assert cp.startswith("control-plane (control_plane, hub namespace control-plane): 4 objects, 2 ready, 1 blocked, 1 failed")
    assert "2.1.0 r1" in cp and "RetriesExceeded" in cp
    assert "> HelmRelease control-plane/keystone-operator -> HelmRelease control-plane/mariadb-operator" in cp
    assert "cluster NOT REACHABLE" in "\n".join(tables["hypervisor"])
    assert "Secret storage-kubeconfig: Secret storage/storage-kubeconfig not found" in "\n".join(tables["storage"])


def test_junit_one_case_per_object_with_flux_reason(report):
    root = ET.fromstring(status_render.to_junit(report).split("\n", 1)[1])
    cases = root.findall(".//testcase")
    object_cases = [c for c in cases if not c.get("classname").endswith(".cluster")]
    assert len(object_cases) == len(objects(report))
    failed = dict((c.get("name"), c.find("failure")) for c in object_cases if c.find("failure") is not None)
    assert failed["control-plane/mariadb-operator"].get("type") == "RetriesExceeded"
    assert "mariadb-operator" in failed["control-plane/keystone-operator"].text
    assert failed.keys() == {"control-plane/mariadb-operator", "control-plane/keystone-operator",
                             "hypervisor/hypervisor-operator"}
    hv = root.find("testsuite[@name='hypervisor']")
    assert hv.get("errors") == "1" and hv.find(".//testcase[@name='cluster reachable']/error") is not None
    assert int(root.get("tests")) == len(cases)


def test_markdown(report):
    md = status_render.to_markdown(report, "status.svg")
    assert "![dependency graph](status.svg)" in md and "## control-plane" in md
    assert "| HelmRelease | mariadb-operator | failed |" in md
    assert "## What blocks what" in md


def test_dot_is_deterministic_and_names_every_object(report):
    dot = status_graph.to_dot(report)
    assert dot == status_graph.to_dot(report)
    for obj in objects(report):
        assert '"%s"' % status_graph.node_id(obj) in dot
    assert '"HelmRelease/control-plane/mariadb-operator" -> "HelmRelease/control-plane/keystone-operator"' in dot
    assert dot.count("subgraph cluster_") == len(report["clusters"]) + 1  # + legend


@pytest.mark.skipif(not shutil.which("dot"), reason="Graphviz dot not installed (bindep.txt: graphviz)")
def test_svg_has_a_node_per_object_and_failed_is_red(report):
    svg = subprocess.run(["dot", "-Tsvg"], input=status_graph.to_dot(report).encode(), capture_output=True,
                         check=True).stdout.decode()
    nodes = status_graph.svg_nodes(svg)
    for obj in objects(report):
        nid = status_graph.node_id(obj)
        assert nid in nodes, nid
        assert nodes[nid] == status_graph.COLORS[obj["state"]], (nid, nodes[nid])
    assert nodes["HelmRelease/control-plane/mariadb-operator"] == status_graph.COLORS["failed"]
    assert nodes["HelmRelease/control-plane/keystone-operator"] == status_graph.COLORS["blocked"]
    clusters = [g for g in ET.fromstring(svg).iter() if g.get("class") == "cluster"]
    assert len(clusters) == len(report["clusters"]) + 1


def test_svg_nodes_rejects_non_svg():
    with pytest.raises(ValueError, match="not an SVG"):
        status_graph.svg_nodes("<html/>")
    with pytest.raises(ValueError, match="not XML"):
        status_graph.svg_nodes("<svg")


def test_report_matches_the_documented_schema(report):
    import json

    import jsonschema
    schema_path = os.path.join(os.path.dirname(__file__), "..", "..", "..", "docs", "fleet-status.schema.json")
    with open(schema_path) as handle:
        schema = json.load(handle)
    jsonschema.validate(json.loads(status_render.to_json(report)), schema)
    broken = json.loads(status_render.to_json(report))
    broken["clusters"][0]["objects"][0]["state"] = "green"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)
