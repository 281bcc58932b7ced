# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)
"""Check every cluster of the fleet before the first write of a run.

For each cluster (spokes and the hub, in parallel): read its kubeconfig, refuse what Flux cannot
use from a Secret (spokes only: ``kubeconfig_check``), inspect its credentials (``credentials``:
certificate and token expiry, key/cert pair, CA), reach its API server (``GET /version``) and ask
it with SelfSubjectAccessReviews whether the credential may do what the run and Flux need.

Every failure is one sentence naming the cluster; ``check_all`` returns them all at once, so a run
with two bad spokes says so in one error. The network is reached only through ``client_factory``
(``client.request(method, path, query=None, body=None)`` raising an error with ``status``), so this
module is tested with fakes and the transport can change underneath it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from concurrent.futures import ThreadPoolExecutor

try:
    from ansible_collections.c5c3.gitops.plugins.module_utils import credentials as cr
    from ansible_collections.c5c3.gitops.plugins.module_utils import kubeconfig_secret as ks
except ImportError:  # pragma: no cover
    import credentials as cr  # type: ignore
    import kubeconfig_secret as ks  # type: ignore

SSAR_PATH = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"


class PreflightError(Exception):
    """One or more clusters failed their checks; the message has one line per cluster."""

    def __init__(self, message, results=None):
        super(PreflightError, self).__init__(message)
        self.results = results or []


def read_kubeconfig(cluster, path, content):
    """The kubeconfig as text (or the mapping given inline); errors name the cluster, never the text."""
    if isinstance(content, dict):
        return content
    if content:
        return content
    if path:
        try:
            with open(path, "rb") as handle:
                return handle.read()
        except (IOError, OSError) as exc:
            raise ks.KubeconfigSecretError("cluster %s: cannot read kubeconfig %s: %s" % (cluster, path, exc.strerror))
    raise ks.KubeconfigSecretError("cluster %s: no kubeconfig (path or content)" % cluster)


def items_from_fleet(clusters, contents=None, base_dir=None, hub=None):
    """Check items from the fleet's ``clusters`` (docs/architecture.md) plus the hub's connection.

    ``hub``: {name, kubeconfig (path or mapping), context} or None. Spokes are the entries with a
    ``kubeconfig_secret``; the hub entry of ``clusters`` is replaced by ``hub`` (the connection
    the run really uses).
    """
    contents = contents or {}
    out = []
    for c in clusters or []:
        if not c.get("kubeconfig_secret"):
            continue
        path = None if c["name"] in contents else c.get("kubeconfig")
        out.append({"name": c["name"], "role": "spoke", "context": c.get("context"),
                    "path": ks.resolve_path(path, base_dir) if path else None, "content": contents.get(c["name"])})
    if hub and hub.get("kubeconfig"):
        kc = hub["kubeconfig"]
        out.append({"name": hub.get("name") or "hub", "role": "hub", "context": hub.get("context"),
                    "path": ks.resolve_path(kc, base_dir) if not isinstance(kc, dict) else None,
                    "content": kc if isinstance(kc, dict) else None})
    return sorted(out, key=lambda i: (i["role"] != "hub", i["name"]))


class Check(object):
    """The checks of one run: settings plus the transport factory."""

    def __init__(self, client_factory, warn_days=cr.DEFAULT_WARN_DAYS, spoke_access=cr.FLUX_SPOKE_ACCESS,
                 hub_access=cr.HUB_ACCESS, check_access=True, probe=True, timeout=10, workers=8, now=None):
        self.client_factory = client_factory
        self.warn_days = warn_days
        self.access = {"spoke": cr.normalize_access(spoke_access), "hub": cr.normalize_access(hub_access)}
        self.check_access = check_access
        self.probe = probe
        self.timeout = timeout
        self.workers = max(1, int(workers))
        self.now = now

    def one(self, item, no_log=None):
        """Check one cluster; returns a result dict with ``errors`` (never raises for the cluster)."""
        name = item["name"]
        result = {"cluster": name, "role": item["role"], "errors": [], "warnings": [], "server": None,
                  "version": None, "auth": None, "credential": None, "ca": None, "missing_access": []}
        secrets = set()
        try:
            raw = read_kubeconfig(name, item.get("path"), item.get("content"))
            kubeconfig = raw if isinstance(raw, dict) else ks.load(raw, "cluster %s kubeconfig" % name)
            secrets = ks.secret_values(kubeconfig if isinstance(kubeconfig, dict) else {})
            if no_log is not None:
                if not isinstance(raw, dict):
                    no_log(raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw)
                for value in secrets:
                    no_log(value)
            if item["role"] == "spoke":
                info = ks.check(kubeconfig, item.get("context"), name)  # what Flux can use from a Secret
            else:
                info = _hub_info(kubeconfig, item.get("context"), name)
        except ks.KubeconfigSecretError as exc:
            result["errors"].append(str(exc))
            return result
        result.update(server=info["server"], auth=info["auth"], context=info["context"])
        found = cr.inspect(kubeconfig, info["context"], now=self.now, warn_days=self.warn_days)
        result["credential"], result["ca"] = found["credential"], found["ca"]
        result["warnings"].extend("cluster %s: %s" % (name, w) for w in found["warnings"])
        if found["errors"]:  # expired / mismatched: do not even try the server
            result["errors"].extend("cluster %s: %s" % (name, e) for e in found["errors"])
            return result
        if not self.probe:
            return result
        # The hub's file is passed as a path (its relative file references resolve next to it).
        source = item["path"] if item["role"] == "hub" and item.get("path") else kubeconfig
        try:
            client = self.client_factory(source, info["context"], self.timeout, cluster=name)
        except Exception as exc:  # bad certificate data, exec plugin failures, ...
            result["errors"].append("cluster %s: the kubeconfig cannot be used: %s" % (name, ks.scrub(_detail(exc), secrets)))
            return result
        server = info["server"]
        try:
            _unused, version = client.request("GET", "/version")
            result["version"] = (version or {}).get("gitVersion")
            if self.check_access and self.access[item["role"]]:
                result["missing_access"] = self._reviews(client, self.access[item["role"]])
        except Exception as exc:  # the transport's error (KubeError): .status (0: no answer), .category
            _kind, text = cr.classify(getattr(exc, "status", 0), ks.scrub(_detail(exc), secrets), server,
                                      getattr(exc, "category", None))
            result["errors"].append("cluster %s: %s" % (name, text))
            return result
        finally:
            close = getattr(client, "close", None)
            if close:
                close()
        if result["missing_access"]:
            result["errors"].append(
                "cluster %s: the credential (%s) may not %s; %s needs it"
                % (name, (found["credential"] or {}).get("subject") or info["user"], ", ".join(result["missing_access"]),
                   "Flux" if item["role"] == "spoke" else "this run"))
        return result

    def _reviews(self, client, access):
        def review(item):
            return client.request("POST", SSAR_PATH, body=cr.access_review(item))[1]
        if len(access) == 1:
            responses = [review(access[0])]
        else:
            with ThreadPoolExecutor(max_workers=min(4, len(access))) as pool:
                responses = list(pool.map(review, access))
        return cr.missing_access(access, responses)

    def all(self, items, no_log=None):
        """Check every item in parallel; results in item order. Raises PreflightError on any error."""
        if not items:
            return []
        with ThreadPoolExecutor(max_workers=min(self.workers, len(items))) as pool:
            results = list(pool.map(lambda i: self.one(i, no_log), items))
        errors = [e for r in results for e in r["errors"]]
        if errors:
            raise PreflightError(
                "preflight failed for %d cluster(s), nothing was written:\n  - %s"
                % (len([r for r in results if r["errors"]]), "\n  - ".join(errors)), results)
        return results


def _detail(exc):
    """The failure itself, without the transport's own naming of the cluster (we name it)."""
    detail = getattr(exc, "detail", None)
    return detail if detail else str(exc)


def _hub_info(kubeconfig, context, name):
    """The hub is used by Ansible, not by Flux: exec plugins and local files are fine there."""
    if not isinstance(kubeconfig, dict):
        raise ks.KubeconfigSecretError("cluster %s: the hub kubeconfig is not a mapping" % name)
    ctx_name = context or kubeconfig.get("current-context")
    contexts = dict((c.get("name"), c.get("context") or {}) for c in kubeconfig.get("contexts") or [] if isinstance(c, dict))
    if ctx_name not in contexts:
        raise ks.KubeconfigSecretError("cluster %s: hub kubeconfig context %r does not exist" % (name, ctx_name))
    cluster, user = cr.selected(kubeconfig, ctx_name)
    if not cluster.get("server"):
        raise ks.KubeconfigSecretError("cluster %s: hub kubeconfig context %r has no server" % (name, ctx_name))
    auth = "exec" if user.get("exec") else "token" if user.get("token") else \
        "client-certificate" if user.get("client-certificate-data") or user.get("client-certificate") else "other"
    return {"server": cluster["server"], "context": ctx_name, "user": contexts[ctx_name].get("user"), "auth": auth}
