# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)
"""Text renderers of a fleet status report: console table, Markdown, JUnit XML (pure).

The report is the dict of status_collect (schema in docs/status.md); the picture is in
status_graph. Nothing here reads a cluster or a credential.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
from xml.etree import ElementTree as ET

SHORT_KIND = {"HelmRelease": "HR", "Kustomization": "KS"}
MAX_CHAIN_LINES = 8


def duration(seconds):
    if seconds is None:
        return "?"
    seconds = int(seconds)
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return "%s%d%s" % (sign, seconds // size, unit)
    return "%s%ds" % (sign, seconds)


def version_of(obj):
    """What is deployed: the chart version from the release history, or the applied revision."""
    if obj["kind"] == "HelmRelease":
        inst = obj.get("installed") or {}
        if inst.get("chart_version"):
            chart = inst.get("chart_name") or (obj.get("chart") or {}).get("name")
            # the chart's name only when it is not the object's own
            text = inst["chart_version"] if chart == obj["name"] else "%s@%s" % (chart, inst["chart_version"])
            if inst.get("revision"):
                text += " r%s" % inst["revision"]
            return text
        return "(want %s)" % ((obj.get("chart") or {}).get("version") or "?")
    return short_revision(obj.get("last_applied_revision")) or "-"


def short_revision(revision):
    """``refs/heads/main@sha1:23a9755258e2...`` -> ``main@sha1:23a97552`` (the JSON keeps the full one)."""
    if not revision:
        return revision
    ref, sep, digest = revision.partition("@")
    for prefix in ("refs/heads/", "refs/tags/"):
        if ref.startswith(prefix):
            ref = ref[len(prefix):]
    if sep and ":" in digest:
        algo, dummy, value = digest.partition(":")
        digest = "%s:%s" % (algo, value[:8])
    return ref + sep + digest


def credential_text(cluster):
    cred = cluster.get("credential")
    if not cred:
        return "credential: unknown"
    text = "credential: %s" % cred["auth"]
    if cred.get("expires"):
        when = "EXPIRED" if cred["expired"] else ("expires in %s" % duration(cred["expires_in_seconds"]))
        text += ", %s (%s)%s" % (when, cred["expires"], " - renew soon" if cred.get("expiring") else "")
    elif cred.get("detail"):
        text += " (%s)" % cred["detail"]
    return text


def cluster_lines(cluster):
    """The compact table of one cluster (list of lines)."""
    s = cluster.get("summary") or {}
    head = "%s (%s, hub namespace %s): %d objects, %s" % (
        cluster["name"], cluster.get("group") or "?", cluster["hub_namespace"], s.get("total", 0),
        ", ".join("%d %s" % (s.get(k, 0), k) for k in ("ready", "progressing", "blocked", "failed") if s.get(k)) or "none")
    lines = [head]
    if not (cluster.get("hub_read") or {}).get("ok"):
        lines.append("  hub objects NOT READ: %s" % (cluster.get("hub_read") or {}).get("error"))
    secret = cluster.get("kubeconfig_secret")
    if secret is not None:
        if secret.get("exists"):
            lines.append("  Secret %s written %s ago; %s" % (secret["name"], duration(secret.get("age_seconds")),
                                                            credential_text(cluster)))
        else:
            lines.append("  Secret %s: %s" % (secret["name"], secret.get("error")))
    else:
        lines.append("  hub connection; %s" % credential_text(cluster))
    spoke = cluster.get("spoke") or {}
    if spoke.get("ok"):
        lines.append("  on the cluster: %d namespaces, %d Helm releases" % (
            len(spoke.get("namespaces") or []), len(spoke.get("helm_releases") or [])))
    else:
        lines.append("  cluster NOT REACHABLE: %s" % spoke.get("error"))
    rows = [("KIND", "NAME", "STATE", "DEPLOYED", "REASON")]
    for obj in cluster["objects"]:
        state = obj["state"] + (" (suspended)" if obj.get("suspended") else "")
        if (obj.get("drifted") or {}).get("status") == "True":
            state += " (drifted)"
        if obj["kind"] == "HelmRelease" and obj.get("on_cluster_found") is False and obj.get("installed"):
            state += " (no release record)"
        rows.append((SHORT_KIND.get(obj["kind"], obj["kind"]), obj["name"], state, version_of(obj),
                     "" if obj["state"] == "ready" else obj["reason"]))
    if len(rows) > 1:
        widths = [max(len(str(r[i])) for r in rows) for i in range(4)]
        for r in rows:
            lines.append(("  " + "  ".join(str(r[i]).ljust(widths[i]) for i in range(4)) + "  " + r[4]).rstrip())
    shown = 0
    for obj in cluster["objects"]:
        if obj["state"] == "failed" and obj.get("message"):
            lines.append("  ! %s %s: %s" % (obj["kind"], obj["name"], obj["message"][:300]))
    for obj in cluster["objects"]:
        chains = obj.get("chains") or []
        if not chains:
            continue
        shown += 1
        if shown > MAX_CHAIN_LINES:
            continue
        # one line per waiting object: its longest path to a root cause
        text = "  > %s" % max(chains, key=lambda c: (c.count(" -> "), c))
        if len(chains) > 1:
            text += " (+%d more paths)" % (len(chains) - 1)
        lines.append(text)
    if shown > MAX_CHAIN_LINES:
        lines.append("  > ... %d more blocked objects (status.md, status.json)" % (shown - MAX_CHAIN_LINES))
    return lines


def summary_line(report):
    s = report["summary"]
    text = "fleet: %d clusters, %d objects: %d ready, %d progressing, %d blocked, %d failed" % (
        s["clusters"], s["total"], s["ready"], s["progressing"], s["blocked"], s["failed"])
    if s["unreachable"]:
        text += "; unreachable: %s" % ", ".join(s["unreachable"])
    if s["credentials_expiring"]:
        text += "; credentials expiring: %s" % ", ".join(s["credentials_expiring"])
    return text


def root_cause_lines(report):
    """One line per object that holds others back: ``HelmRelease cp/mariadb (failed: X) blocks 8``."""
    return ["%s %s/%s on %s (%s%s) blocks %d object(s)" % (
        r["kind"], r["namespace"], r["name"], r.get("cluster") or "?", r["state"],
        ": " + r["reason"] if r.get("reason") else "", r["blocks"]) for r in report["summary"].get("root_causes") or []]


def to_json(report):
    return json.dumps(report, indent=2, sort_keys=True) + "\n"


def _md(text):
    return str(text if text is not None else "").replace("|", "\\|").replace("\n", " ")


def to_markdown(report, image=None):
    out = ["# Fleet status", "", "Generated %s. %s." % (report["generated_at"], summary_line(report)), ""]
    if image:
        out += ["![dependency graph](%s)" % image, ""]
    for cluster in report["clusters"]:
        s = cluster["summary"]
        out += ["## %s" % cluster["name"], "",
                "- group `%s`, hub namespace `%s`" % (cluster.get("group"), cluster["hub_namespace"]),
                "- objects: %d (%s)" % (s["total"], ", ".join("%d %s" % (s[k], k) for k in ("ready", "progressing", "blocked", "failed"))),
                "- %s" % credential_text(cluster)]
        secret = cluster.get("kubeconfig_secret")
        if secret:
            out.append("- kubeconfig Secret `%s`: %s" % (
                secret["name"], "written %s ago" % duration(secret.get("age_seconds")) if secret.get("exists") else secret.get("error")))
        spoke = cluster.get("spoke") or {}
        out.append("- cluster: %s" % ("%d namespaces, %d Helm releases" % (
            len(spoke.get("namespaces") or []), len(spoke.get("helm_releases") or []))
            if spoke.get("ok") else "**not reachable**: %s" % _md(spoke.get("error"))))
        out.append("")
        if cluster["objects"]:
            out += ["| kind | name | state | deployed | reason | message |", "|---|---|---|---|---|---|"]
            for obj in cluster["objects"]:
                out.append("| %s | %s | %s | %s | %s | %s |" % (
                    obj["kind"], _md(obj["name"]), obj["state"], _md(version_of(obj)),
                    _md("" if obj["state"] == "ready" else obj["reason"]),
                    _md("" if obj["state"] == "ready" else obj["message"][:200])))
            out.append("")
    if report["chains"]:
        out += ["## What blocks what", ""] + ["- `%s`" % c for c in report["chains"]] + [""]
    return "\n".join(out)


def to_junit(report):
    """One testsuite per cluster, one testcase per object; not ready = failure with Flux's reason."""
    suites = ET.Element("testsuites", name="fleet-status")
    tot_tests = tot_fail = tot_err = 0
    for cluster in report["clusters"]:
        suite = ET.SubElement(suites, "testsuite", name=cluster["name"])
        tests = failures = errors = skipped = 0
        for obj in cluster["objects"]:
            tests += 1
            case = ET.SubElement(suite, "testcase", classname="%s.%s" % (cluster["name"], obj["kind"]),
                                 name="%s/%s" % (obj["namespace"], obj["name"]))
            if obj["state"] == "ready":
                if obj.get("suspended"):
                    skipped += 1
                    ET.SubElement(case, "skipped", message="suspended")
                continue
            failures += 1
            text = obj["message"] or ""
            if obj.get("chains"):
                text += "\n" + "\n".join(obj["chains"])
            fail = ET.SubElement(case, "failure", type=obj["reason"] or obj["state"],
                                 message="%s: %s" % (obj["state"], obj["reason"]))
            fail.text = text
        for what, part in (("hub objects readable", cluster.get("hub_read") or {}),
                           ("cluster reachable", cluster.get("spoke") or {})):
            tests += 1
            case = ET.SubElement(suite, "testcase", classname="%s.cluster" % cluster["name"], name=what)
            if not part.get("ok"):
                errors += 1
                err = ET.SubElement(case, "error", type="Unreachable", message=str(part.get("error"))[:500])
                err.text = str(part.get("error"))
        cred = cluster.get("credential") or {}
        tests += 1
        case = ET.SubElement(suite, "testcase", classname="%s.cluster" % cluster["name"], name="credential valid")
        if cred.get("expired") or cred.get("expiring"):
            failures += 1
            ET.SubElement(case, "failure", type="CredentialExpiry", message=credential_text(cluster))
        suite.set("tests", str(tests))
        suite.set("failures", str(failures))
        suite.set("errors", str(errors))
        suite.set("skipped", str(skipped))
        tot_tests, tot_fail, tot_err = tot_tests + tests, tot_fail + failures, tot_err + errors
    suites.set("tests", str(tot_tests))
    suites.set("failures", str(tot_fail))
    suites.set("errors", str(tot_err))
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
