#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: fleet_status_report
short_description: Write a fleet status report as JSON, Markdown, JUnit XML and an SVG dependency picture
version_added: 0.2.0
description:
  - Takes the RV(c5c3.gitops.fleet_status_info#module:status) of M(c5c3.gitops.fleet_status_info), or
    merges several C(status.json) files written by earlier runs (the slices of a sliced job, see
    docs/status.md), and writes into O(dest) - C(status.json) (the full data), C(status.md),
    C(status.junit.xml) (one test case per object; not ready objects fail with Flux's reason),
    C(status.dot) and C(status.svg) (the dependency graph laid out by Graphviz C(dot)).
  - Returns one compact table per cluster (RV(tables)) for the play to print.
  - Runs on the controller (the files are local); C(dot) must be installed for C(svg)
    (Debian package C(graphviz), listed in bindep.txt).
author:
  - c5c3.gitops developers (@c5c3)
options:
  status:
    description: The report of M(c5c3.gitops.fleet_status_info). Mutually exclusive with O(merge).
    type: dict
  merge:
    description:
      - Paths of C(status.json) files to merge into one report (clusters united, chains and summary
        recomputed). A cluster present in two files is an error.
    type: list
    elements: path
  dest:
    description: Directory to write into (created if missing). Without it nothing is written.
    type: path
  formats:
    description: Which files to write.
    type: list
    elements: str
    choices: [json, markdown, junit, dot, svg]
    default: [json, markdown, junit, dot, svg]
  title:
    description: Title of the picture and of the Markdown page.
    type: str
  fail_on_unhealthy:
    description: Fail (after writing) when anything is not ready, a cluster is unreachable or a credential expires soon.
    type: bool
    default: false
extends_documentation_fragment:
  - c5c3.gitops.attributes
attributes:
  check_mode:
    support: full
    details: Renders everything and reports what would change; writes nothing.
  diff_mode:
    support: none
seealso:
  - module: c5c3.gitops.fleet_status_info
"""

EXAMPLES = r"""
- name: Write the artifacts
  c5c3.gitops.fleet_status_report:
    status: "{{ _status.status }}"
    dest: "{{ playbook_dir }}/../.cache/status"

- name: Merge the slices of a sliced run
  c5c3.gitops.fleet_status_report:
    merge: [slice1/status.json, slice2/status.json]
    dest: merged
"""

RETURN = r"""
files:
  description: Paths written (or that would be written), by format.
  returned: always
  type: dict
  sample: {json: /tmp/status/status.json, svg: /tmp/status/status.svg}
root_causes:
  description: One line per object that holds others back (the end of every blocking chain).
  returned: always
  type: list
  elements: str
  sample: ["HelmRelease control-plane/mariadb-operator on control-plane (failed: RetriesExceeded) blocks 8 object(s)"]
tables:
  description: One compact table per cluster, as lists of lines.
  returned: always
  type: list
  elements: list
summary:
  description: The report's summary (counts by state, unreachable clusters, expiring credentials, healthy).
  returned: always
  type: dict
summary_line:
  description: The summary in one line.
  returned: always
  type: str
status:
  description: The report written (the merged one with O(merge)).
  returned: always
  type: dict
"""

import json
import os
import tempfile
import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.c5c3.gitops.plugins.module_utils import status_graph, status_render
from ansible_collections.c5c3.gitops.plugins.module_utils.status_collect import merge

FILES = {"json": "status.json", "markdown": "status.md", "junit": "status.junit.xml",
         "dot": "status.dot", "svg": "status.svg"}


def render_svg(module, dot_text):
    dot = module.get_bin_path("dot")
    if not dot:
        module.fail_json(msg="Graphviz 'dot' not found on the controller: install the graphviz package "
                             "(bindep.txt; Debian: apt-get install graphviz) or leave svg out of formats")
    rc, out, err = module.run_command([dot, "-Tsvg"], data=dot_text, binary_data=True)
    if rc != 0:
        module.fail_json(msg="dot -Tsvg failed (rc %s): %s" % (rc, err.strip()))
    return out


def main():
    module = AnsibleModule(
        argument_spec=dict(
            status=dict(type="dict"),
            merge=dict(type="list", elements="path"),
            dest=dict(type="path"),
            formats=dict(type="list", elements="str", choices=list(FILES), default=list(FILES)),
            title=dict(type="str"),
            fail_on_unhealthy=dict(type="bool", default=False),
        ),
        mutually_exclusive=[("status", "merge")],
        required_one_of=[("status", "merge")],
        supports_check_mode=True,
    )
    p = module.params
    try:
        if p["merge"]:
            reports = []
            for path in p["merge"]:
                try:
                    with open(path) as handle:
                        reports.append(json.load(handle))
                except (IOError, OSError, ValueError) as exc:
                    module.fail_json(msg="cannot read %s: %s" % (path, exc))
            try:
                report = merge(reports)
            except ValueError as exc:
                module.fail_json(msg="cannot merge %s: %s" % (", ".join(p["merge"]), exc))
        else:
            report = p["status"]
            if not isinstance(report.get("clusters"), list) or "summary" not in report:
                module.fail_json(msg="status is not a fleet_status_info report (no clusters/summary)")
        contents = {}
        formats = set(p["formats"])
        dot_text = status_graph.to_dot(report, p["title"])
        if "json" in formats:
            contents["json"] = status_render.to_json(report)
        if "markdown" in formats:
            contents["markdown"] = status_render.to_markdown(report, FILES["svg"] if "svg" in formats else None)
        if "junit" in formats:
            contents["junit"] = status_render.to_junit(report)
        if "dot" in formats:
            contents["dot"] = dot_text
        if "svg" in formats:
            svg = render_svg(module, dot_text)
            svg = svg.decode("utf-8") if isinstance(svg, bytes) else svg
            nodes = status_graph.svg_nodes(svg)
            lost = [status_graph.node_id(o) for c in report["clusters"] for o in c["objects"]
                    if status_graph.node_id(o) not in nodes]
            if lost:
                module.fail_json(msg="the SVG lacks nodes for %s" % ", ".join(lost[:5]))
            contents["svg"] = svg
    except Exception as exc:  # a bug, not bad input: keep the traceback
        module.fail_json(msg="fleet_status_report failed: %s" % exc, exception=traceback.format_exc())

    files, changed = {}, False
    if p["dest"]:
        if not module.check_mode and not os.path.isdir(p["dest"]):
            os.makedirs(p["dest"])
        for fmt, text in sorted(contents.items()):
            path = os.path.join(p["dest"], FILES[fmt])
            files[fmt] = path
            data = text.encode("utf-8")
            try:
                with open(path, "rb") as handle:
                    same = handle.read() == data
            except (IOError, OSError):
                same = False
            if same:
                continue
            changed = True
            if module.check_mode:
                continue
            fd, tmp = tempfile.mkstemp(dir=p["dest"], prefix=".%s." % FILES[fmt])
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.chmod(tmp, 0o644)
            module.atomic_move(tmp, path)
    result = dict(changed=changed, files=files, summary=report["summary"],
                  summary_line=status_render.summary_line(report),
                  root_causes=status_render.root_cause_lines(report),
                  tables=[status_render.cluster_lines(c) for c in report["clusters"]], status=report)
    if p["fail_on_unhealthy"] and not report["summary"].get("healthy"):
        module.fail_json(msg="the fleet is not healthy: %s" % result["summary_line"], **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
