# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)
"""The dependency picture of a fleet status report: Graphviz DOT in, SVG out (via ``dot``).

Clusters are Graphviz clusters (boxes), objects are nodes coloured by state, ``dependsOn`` are
edges pointing from the dependency to the object that waits for it (deployment order, left to
right). Graphviz does the layout; this module only writes the DOT text (pure) and reads the
SVG back for checks (svg_nodes).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from xml.etree import ElementTree as ET

COLORS = {
    "ready": "#9fd8a8",        # green
    "progressing": "#ffe28a",  # yellow
    "blocked": "#ffb870",      # orange
    "failed": "#f0645a",       # red
    "unknown": "#dddddd",      # a dependency outside the report
}
SHORT_KIND = {"HelmRelease": "HR", "Kustomization": "KS"}


def node_id(ref):
    return "%s/%s/%s" % (ref["kind"], ref.get("namespace") or "", ref["name"])


def _q(text):
    return '"%s"' % str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _label(obj):
    from ansible_collections.c5c3.gitops.plugins.module_utils.status_render import version_of
    lines = ["%s %s" % (SHORT_KIND.get(obj["kind"], obj["kind"]), obj["name"])]
    deployed = version_of(obj)
    if deployed and deployed != "-":
        lines.append(deployed if len(deployed) <= 40 else deployed[:37] + "...")
    if obj["state"] != "ready":
        lines.append("%s: %s" % (obj["state"], obj["reason"]) if obj["reason"] else obj["state"])
    return "\\n".join(_q(line)[1:-1] for line in lines)


def to_dot(report, title=None):
    """DOT text of the report's dependency graph."""
    out = [
        "digraph fleet {",
        '  graph [rankdir=LR, compound=true, fontname="Helvetica", fontsize=12, nodesep=0.2, ranksep=0.5,'
        ' labelloc=t, label=%s];' % _q(title or "fleet status %s" % report.get("generated_at", "")),
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=9, penwidth=1];',
        '  edge [color="#555555", arrowsize=0.6];',
    ]
    known = set()
    states = dict((node_id(o), o["state"]) for c in report["clusters"] for o in c["objects"])
    for i, cluster in enumerate(report["clusters"]):
        reachable = cluster.get("reachable") and (cluster.get("hub_read") or {}).get("ok")
        label = "%s (%s)" % (cluster["name"], cluster.get("group") or "?")
        if not reachable:
            label += " - NOT REACHABLE"
        out.append("  subgraph cluster_%d {" % i)
        out.append('    graph [label=%s, style="rounded", color=%s, penwidth=%s, fontname="Helvetica-Bold"];' % (
            _q(label), _q("#c0392b" if not reachable else "#888888"), "2" if not reachable else "1"))
        if not cluster["objects"]:
            out.append('    %s [label="(no objects)", shape=plaintext, style="", fillcolor=white];'
                       % _q("empty/%s" % cluster["name"]))
        for obj in cluster["objects"]:
            nid = node_id(obj)
            known.add(nid)
            attrs = "label=\"%s\", fillcolor=%s, tooltip=%s, class=%s" % (
                _label(obj), _q(COLORS[obj["state"]]), _q("%s %s/%s: %s" % (obj["kind"], obj["namespace"], obj["name"],
                                                                              obj["message"][:200] or obj["state"])),
                _q("state-%s" % obj["state"]))
            if obj.get("suspended"):
                attrs += ', style="rounded,filled,dashed"'
            if obj["state"] == "failed":
                attrs += ', penwidth=2, color="#8b0000"'
            out.append("    %s [%s];" % (_q(nid), attrs))
        out.append("  }")
    edges = []
    for cluster in report["clusters"]:
        for obj in cluster["objects"]:
            for ref in obj.get("depends_on") or []:
                dep = node_id(ref)
                if dep not in known:
                    known.add(dep)
                    out.append('  %s [label="%s %s\\n(not in report)", fillcolor=%s, style="rounded,filled,dashed"];' % (
                        _q(dep), SHORT_KIND.get(ref["kind"], ref["kind"]), _q(ref["name"])[1:-1], _q(COLORS["unknown"])))
                # red: the edge that holds the object back (its dependency is not ready)
                style = ' [color="#c0392b", penwidth=1.5]' if states.get(dep, "unknown") != "ready" else ""
                edges.append("  %s -> %s%s;" % (_q(dep), _q(node_id(obj)), style))
    out.extend(sorted(edges))
    out.append("  subgraph cluster_legend {")
    out.append('    graph [label="state", style="rounded", color="#bbbbbb", fontname="Helvetica"];')
    for state in ("ready", "progressing", "blocked", "failed"):
        out.append('    %s [label=%s, fillcolor=%s, class=%s];' % (_q("legend/" + state), _q(state), _q(COLORS[state]),
                                                                    _q("legend")))
    out.append('    "legend/ready" -> "legend/progressing" -> "legend/blocked" -> "legend/failed" [style=invis];')
    out.append("  }")
    out.append("}")
    return "\n".join(out) + "\n"


def _local(tag):
    return tag.rsplit("}", 1)[-1]


def svg_nodes(svg_text):
    """{node id: fill colour} of every node of a Graphviz SVG (raises ValueError if not SVG)."""
    try:
        root = ET.fromstring(svg_text.encode("utf-8") if isinstance(svg_text, str) else svg_text)
    except ET.ParseError as exc:
        raise ValueError("not XML: %s" % exc)
    if _local(root.tag) != "svg":
        raise ValueError("not an SVG document (root element %s)" % _local(root.tag))
    nodes = {}
    for group in root.iter():
        if _local(group.tag) != "g" or "node" not in (group.get("class") or "").split():
            continue
        title, fill = None, None
        for child in group.iter():
            name = _local(child.tag)
            if name == "title" and title is None:
                title = (child.text or "").strip()
            elif name in ("path", "polygon", "ellipse") and fill is None and child.get("fill") not in (None, "none"):
                fill = child.get("fill")
        if title:
            nodes[title] = fill
    return nodes
