# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)
"""Read the fleet's state: hub objects per cluster, what each spoke really has (fleet_status_info).

Requests grow with kinds x namespaces, never with objects: per hub namespace one LIST of
Kustomizations and one of HelmReleases; per spoke cluster one GET of its kubeconfig Secret on
the hub, then through that kubeconfig (the one Flux uses) one LIST of namespaces and one
cluster-wide LIST of Helm release Secrets (``type=helm.sh/release.v1``). Clusters are read in
parallel; a cluster that does not answer is reported with its error and does not stop the
others. Clients are injected (``request(method, path, query) -> (status, data)``, raising
``ApiError``), so the unit tests drive this with fakes. Credentials are read only to learn when
they expire; no record returned here holds a credential or Helm values.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import gzip
import json
import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.c5c3.gitops.plugins.module_utils import flux_kinds, readiness
from ansible_collections.c5c3.gitops.plugins.module_utils import status_expiry as expiry
from ansible_collections.c5c3.gitops.plugins.module_utils.status_chains import resolve

SCHEMA_VERSION = 1
HUB_KINDS = ("Kustomization", "HelmRelease")
HELM_RELEASE_TYPE = "helm.sh/release.v1"
MANAGED_BY = ("app.kubernetes.io/managed-by", "c5c3.gitops")
CLUSTER_LABEL = "gitops.c5c3.io/cluster"
STAGE_LABEL = "gitops.c5c3.io/stage"


def _labels(obj):
    return (obj.get("metadata") or {}).get("labels") or {}


def _condition(obj, ctype):
    cond = readiness.condition(obj, ctype)
    if cond is None:
        return None
    return {"status": cond.get("status"), "reason": cond.get("reason") or "", "message": cond.get("message") or ""}


def object_record(obj, kind, cluster):
    """One Kustomization/HelmRelease as the report shows it (pure)."""
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    verdict = readiness.evaluate(obj, kind)
    labels = _labels(obj)
    rec = {
        "kind": kind, "namespace": meta.get("namespace"), "name": meta.get("name"), "cluster": cluster,
        "managed": labels.get(MANAGED_BY[0]) == MANAGED_BY[1], "stage": labels.get(STAGE_LABEL),
        "readiness": verdict.state, "ready": verdict.ready, "reason": verdict.reason, "message": verdict.message,
        "generation": verdict.generation, "observed_generation": verdict.observed_generation,
        "suspended": bool(spec.get("suspend")), "drifted": _condition(obj, "Drifted"),
        "depends_on": readiness.depends_on(obj, kind),
        "kubeconfig_secret": ((spec.get("kubeConfig") or {}).get("secretRef") or {}).get("name"),
        "last_applied_revision": status.get("lastAppliedRevision"),
        "last_attempted_revision": status.get("lastAttemptedRevision"),
    }
    if kind == "Kustomization":
        src = spec.get("sourceRef") or {}
        rec["source"] = {"kind": src.get("kind"), "namespace": src.get("namespace") or meta.get("namespace"),
                         "name": src.get("name")}
        rec["path"] = spec.get("path")
        return rec
    chart = ((spec.get("chart") or {}).get("spec") or {})
    target = spec.get("targetNamespace")
    release = spec.get("releaseName") or ("%s-%s" % (target, meta.get("name")) if target else meta.get("name"))
    history = status.get("history") or []
    latest = history[0] if history else {}
    rec.update({
        "chart": {"name": chart.get("chart") or (spec.get("chartRef") or {}).get("name"),
                  "version": chart.get("version")},
        "release_name": release,
        "target_namespace": target or meta.get("namespace"),
        "storage_namespace": spec.get("storageNamespace") or target or meta.get("namespace"),
        "installed": None if not latest else {
            "chart_name": latest.get("chartName"), "chart_version": latest.get("chartVersion"),
            "app_version": latest.get("appVersion"), "status": latest.get("status"),
            "revision": latest.get("version"), "config_digest": latest.get("configDigest")},
        "last_release_action": status.get("lastAttemptedReleaseAction"),
        "failures": status.get("failures") or 0,
    })
    return rec


def decode_release(secret):
    """Helm's storage record (a Secret of type helm.sh/release.v1) -> chart facts, never values."""
    labels = _labels(secret)
    meta = secret.get("metadata") or {}
    out = {"namespace": meta.get("namespace"), "name": labels.get("name"), "status": labels.get("status"),
           "revision": int(labels["version"]) if str(labels.get("version", "")).isdigit() else None,
           "chart": None, "chart_version": None, "app_version": None, "last_deployed": None}
    raw = (secret.get("data") or {}).get("release")
    if not raw:
        return out
    try:
        blob = base64.b64decode(base64.b64decode(raw))
        if blob[:2] == b"\x1f\x8b":
            blob = gzip.decompress(blob)
        rel = json.loads(blob.decode("utf-8"))
    except Exception:  # a foreign or truncated record: keep what the labels say
        out["decode_error"] = "release body not readable"
        return out
    chart_meta = ((rel.get("chart") or {}).get("metadata") or {})
    info = rel.get("info") or {}
    out.update(chart=chart_meta.get("name"), chart_version=chart_meta.get("version"),
               app_version=chart_meta.get("appVersion"), last_deployed=info.get("last_deployed"),
               status=info.get("status") or out["status"], namespace=rel.get("namespace") or out["namespace"])
    out["storage_namespace"] = meta.get("namespace")
    return out


def releases_from_secrets(items):
    """The current record of every release (highest revision), sorted by namespace and name."""
    latest, counts = {}, {}
    for item in items:
        labels = _labels(item)
        key = ((item.get("metadata") or {}).get("namespace"), labels.get("name"))
        version = int(labels["version"]) if str(labels.get("version", "")).isdigit() else 0
        counts[key] = counts.get(key, 0) + 1
        if key not in latest or version > latest[key][0]:
            latest[key] = (version, item)
    out = []
    for key in sorted(latest, key=lambda k: (k[0] or "", k[1] or "")):
        rec = decode_release(latest[key][1])
        rec["records"] = counts[key]
        out.append(rec)
    return out


class Counter(object):
    """Wraps a client and counts its requests."""

    def __init__(self, client):
        self.client = client
        self.requests = 0

    def request(self, method, path, query=None):
        self.requests += 1
        return self.client.request(method, path, query)


def _list(client, kind, namespace=None, query=None):
    info = flux_kinds.lookup(kind)
    dummy, data = client.request("GET", flux_kinds.collection_path(info, namespace), query)
    return (data or {}).get("items") or []


class Collector(object):
    """Read every cluster of ``clusters`` (fleet model entries) in parallel; see collect()."""

    def __init__(self, hub_client, spoke_factory, hub_kubeconfig=None, hub_context=None, now=None,
                 warn_days=30, workers=8, scrub=None, clock=time.monotonic):
        self.hub = hub_client
        self.spoke_factory = spoke_factory  # (kubeconfig dict, cluster name) -> client
        self.hub_kubeconfig = hub_kubeconfig
        self.hub_context = hub_context
        self.now = now if now is not None else time.time()
        self.warn_seconds = int(warn_days * 86400)
        self.workers = max(1, workers)
        self.scrub = scrub or (lambda text, secrets=(): text)
        self.clock = clock

    def _error(self, exc, secrets=()):
        status = getattr(exc, "status", None)
        text = self.scrub(str(exc), secrets)
        return {"ok": False, "status": status, "error": text}

    def _hub_namespace(self, namespace):
        """Both hub kinds of one namespace: {kind: items} or an error record."""
        counted = Counter(self.hub)
        start = self.clock()
        try:
            items = dict((kind, _list(counted, kind, namespace)) for kind in HUB_KINDS)
            res = {"ok": True, "items": items}
        except Exception as exc:
            res = self._error(exc)
        res.update(requests=counted.requests, elapsed=round(self.clock() - start, 3))
        return res

    def _kubeconfig_secret(self, counted, cluster):
        """(secret record, parsed kubeconfig or None)."""
        from ansible_collections.c5c3.gitops.plugins.module_utils.kubeconfig_secret import load
        rec = {"name": cluster["kubeconfig_secret"], "namespace": cluster["hub_namespace"], "exists": False,
               "key": None, "created": None, "last_written": None, "age_seconds": None, "error": None}
        info = flux_kinds.lookup("Secret")
        try:
            dummy, secret = counted.request("GET", flux_kinds.object_path(info, cluster["hub_namespace"], rec["name"]))
        except Exception as exc:
            if getattr(exc, "status", None) == 404:
                rec["error"] = "Secret %s/%s not found" % (rec["namespace"], rec["name"])
            else:
                rec["error"] = self._error(exc)["error"]
            return rec, None
        meta = secret.get("metadata") or {}
        rec["exists"] = True
        rec["created"] = meta.get("creationTimestamp")
        written = [m.get("time") for m in meta.get("managedFields") or [] if m.get("time")]
        rec["last_written"] = max(written) if written else rec["created"]
        seen = expiry.parse_time(rec["last_written"])
        rec["age_seconds"] = None if seen is None else int(self.now - seen)
        data = secret.get("data") or {}
        key = next((k for k in ("value", "value.yaml") if data.get(k)), None)
        if key is None:
            rec["error"] = "Secret %s/%s has no key value or value.yaml" % (rec["namespace"], rec["name"])
            return rec, None
        rec["key"] = key
        try:
            kubeconfig = load(base64.b64decode(data[key]), "Secret %s/%s" % (rec["namespace"], rec["name"]))
        except Exception as exc:
            rec["error"] = str(exc)
            return rec, None
        return rec, kubeconfig if isinstance(kubeconfig, dict) else None

    def _spoke(self, client, secrets):
        counted = Counter(client)
        try:
            namespaces = _list(counted, "Namespace")
            records = _list(counted, "Secret", None, {"fieldSelector": "type=%s" % HELM_RELEASE_TYPE})
        except Exception as exc:
            res = self._error(exc, secrets)
            res["requests"] = counted.requests
            return res
        return {
            "ok": True, "error": None, "requests": counted.requests,
            "namespaces": sorted(
                ({"name": (n.get("metadata") or {}).get("name"), "phase": (n.get("status") or {}).get("phase")}
                 for n in namespaces), key=lambda n: n["name"] or ""),
            "helm_releases": releases_from_secrets(records),
        }

    def _cluster(self, cluster, hub_view):
        start = self.clock()
        out = {
            "name": cluster["name"], "group": cluster.get("group"), "hub": bool(cluster.get("hub")),
            "hub_namespace": cluster["hub_namespace"],
            "hub_read": dict((k, hub_view.get(k)) for k in ("ok", "error", "status")),
            "objects": [], "kubeconfig_secret": None, "credential": None, "spoke": None,
        }
        if hub_view.get("ok"):
            for kind in HUB_KINDS:
                for obj in hub_view["items"][kind]:
                    owner = _labels(obj).get(CLUSTER_LABEL) or cluster["owner_of_ns"]
                    if owner == cluster["name"]:
                        out["objects"].append(object_record(obj, kind, cluster["name"]))
        out["objects"].sort(key=lambda o: (o["kind"], o["namespace"] or "", o["name"] or ""))
        kubeconfig, secrets, requests = None, (), 0
        if cluster.get("hub"):
            kubeconfig, client = self.hub_kubeconfig, self.hub
            out["credential"] = expiry.credential_expiry(kubeconfig, self.now, self.warn_seconds, self.hub_context) \
                if isinstance(kubeconfig, dict) else None
        else:
            counted = Counter(self.hub)
            out["kubeconfig_secret"], kubeconfig = self._kubeconfig_secret(counted, cluster)
            requests += counted.requests
            client = None
            if kubeconfig is not None:
                from ansible_collections.c5c3.gitops.plugins.module_utils.kubeconfig_secret import secret_values
                secrets = secret_values(kubeconfig)
                out["credential"] = expiry.credential_expiry(kubeconfig, self.now, self.warn_seconds)
                try:
                    client = self.spoke_factory(kubeconfig, cluster["name"])
                except Exception as exc:
                    out["spoke"] = self._error(exc, secrets)
        if client is not None:
            out["spoke"] = self._spoke(client, secrets)
            requests += out["spoke"].pop("requests", 0)
        elif out["spoke"] is None:
            out["spoke"] = {"ok": False, "status": None,
                            "error": "not read: %s" % ((out["kubeconfig_secret"] or {}).get("error") or "no kubeconfig")}
        out["requests"] = requests
        out["elapsed"] = round(self.clock() - start, 3)
        out["reachable"] = bool(out["spoke"].get("ok"))
        _match_releases(out)
        return out

    def collect(self, clusters):
        """The report data for ``clusters``: see docs/status.md for the schema."""
        start = self.clock()
        owners = {}
        for c in sorted(clusters, key=lambda c: c["name"]):
            owners.setdefault(c["hub_namespace"], c["name"])
        namespaces = sorted(set(c["hub_namespace"] for c in clusters))
        pool = ThreadPoolExecutor(max_workers=min(self.workers, max(1, len(namespaces) + len(clusters))))
        try:
            hub_views = dict(zip(namespaces, pool.map(self._hub_namespace, namespaces)))
            jobs = [dict(c, owner_of_ns=owners[c["hub_namespace"]]) for c in clusters]
            results = list(pool.map(lambda c: self._cluster(c, hub_views[c["hub_namespace"]]), jobs))
        finally:
            pool.shutdown(wait=True)
        hub_requests = sum(v.get("requests", 0) for v in hub_views.values())
        report = finish(sorted(results, key=lambda c: c["name"]), self.now)
        report["requests"] = hub_requests + sum(c["requests"] for c in results)
        report["elapsed"] = round(self.clock() - start, 3)
        return report


def _match_releases(cluster):
    """HelmRelease -> the Helm release record found on its cluster (or not)."""
    spoke = cluster.get("spoke") or {}
    by_key = dict(((r.get("storage_namespace"), r.get("name")), r) for r in spoke.get("helm_releases") or [])
    for obj in cluster["objects"]:
        if obj["kind"] != "HelmRelease":
            continue
        if not spoke.get("ok"):
            obj["on_cluster"] = None
            continue
        rec = by_key.get((obj["storage_namespace"], obj["release_name"]))
        obj["on_cluster"] = None if rec is None else {
            "revision": rec["revision"], "status": rec["status"], "chart_version": rec["chart_version"]}
        obj["on_cluster_found"] = rec is not None


def summarize(clusters):
    counts = dict((s, 0) for s in ("ready", "progressing", "failed", "blocked"))
    total = 0
    for cluster in clusters:
        c = dict((s, 0) for s in counts)
        for obj in cluster["objects"]:
            c[obj["state"]] += 1
        c["total"] = len(cluster["objects"])
        cluster["summary"] = c
        for s in counts:
            counts[s] += c[s]
        total += c["total"]
    counts["total"] = total
    roots = {}
    for cluster in clusters:
        for obj in cluster["objects"]:
            for root in obj.get("root_causes") or []:
                key = (root["kind"], root["namespace"] or "", root["name"])
                roots.setdefault(key, dict(root, blocks=0))["blocks"] += 1
    counts["root_causes"] = [roots[k] for k in sorted(roots)]
    counts["clusters"] = len(clusters)
    counts["unreachable"] = sorted(c["name"] for c in clusters if not c.get("reachable"))
    counts["hub_unread"] = sorted(c["name"] for c in clusters if not (c.get("hub_read") or {}).get("ok"))
    counts["credentials_expiring"] = sorted(
        c["name"] for c in clusters if (c.get("credential") or {}).get("expiring") or (c.get("credential") or {}).get("expired"))
    counts["healthy"] = not (counts["progressing"] or counts["failed"] or counts["blocked"] or counts["unreachable"]
                             or counts["hub_unread"] or counts["credentials_expiring"])
    return counts


def finish(clusters, now):
    """Chains, states and summaries over ``clusters``: used after reading and after a merge."""
    chains = resolve(clusters)
    return {"schema_version": SCHEMA_VERSION, "generated_at": expiry.iso(now), "clusters": clusters,
            "chains": chains, "summary": summarize(clusters)}


def merge(reports):
    """One report from several (the slices of a sliced run): clusters united, chains recomputed."""
    by_name = {}
    for rep in reports:
        if not isinstance(rep, dict) or rep.get("schema_version") != SCHEMA_VERSION:
            raise ValueError("not a fleet status report of schema_version %d" % SCHEMA_VERSION)
        for cluster in rep.get("clusters") or []:
            if cluster["name"] in by_name:
                raise ValueError("cluster %s is in more than one report" % cluster["name"])
            by_name[cluster["name"]] = cluster
    stamps = [expiry.parse_time(r.get("generated_at")) for r in reports]
    stamps = [s for s in stamps if s is not None]
    report = finish([by_name[n] for n in sorted(by_name)], min(stamps) if stamps else time.time())
    report["requests"] = sum(r.get("requests") or 0 for r in reports)
    report["elapsed"] = max([r.get("elapsed") or 0 for r in reports] or [0])
    report["merged_from"] = len(reports)
    return report
