"""An in-memory stand-in for the API server paths the apply sink uses (SSA, LIST, GET, DELETE).

Enough semantics for the sink's logic: apply merges the manifest over the live object and bumps
resourceVersion only when something changed (as a real server-side apply does), a merge patch's
null removes the field, dryRun writes
nothing, a missing namespace is a 404, labelSelector filters LISTs, DELETE honours the uid
precondition.
"""
import copy
import itertools
import re

from ansible_collections.c5c3.gitops.plugins.module_utils.apply import ApiError

_PATH = re.compile(
    r"^/(?:api/(?P<cv>v1)|apis/(?P<group>[^/]+)/(?P<gv>[^/]+))"
    r"(?:/namespaces/(?P<ns>[^/]+))?/(?P<plural>[^/]+)(?:/(?P<name>[^/]+))?$"
)


def _merge(live, manifest):
    out = copy.deepcopy(live)
    for key, value in manifest.items():
        if value is None:  # merge patch (RFC 7386): null removes the field
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


class FakeServer(object):
    def __init__(self, namespaces=("flux-system",)):
        self.store = {}  # (plural, ns, name) -> object
        self.rv = itertools.count(100)
        self.uid = itertools.count(1)
        self.calls = []
        self.fail = {}  # name -> (status, message)
        for ns in namespaces:
            self.put("namespaces", None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})

    def put(self, plural, ns, obj):
        obj = copy.deepcopy(obj)
        m = obj.setdefault("metadata", {})
        if ns:
            m["namespace"] = ns
        m.setdefault("resourceVersion", str(next(self.rv)))
        m.setdefault("uid", "uid-%d" % next(self.uid))
        m.setdefault("generation", 1)
        self.store[(plural, ns, m["name"])] = obj
        return obj

    def writes(self):
        return [c for c in self.calls if c[0] in ("POST", "DELETE") or (c[0] == "PATCH" and "dryRun" not in (c[2] or {}))]

    def request(self, method, path, query=None, body=None, content_type="application/json"):
        query = query or {}
        self.calls.append((method, path, dict(query)))
        match = _PATH.match(path)
        assert match, path
        plural, ns, name = match.group("plural"), match.group("ns"), match.group("name")
        if name in self.fail and method == "PATCH":
            status, message = self.fail[name]
            raise ApiError(status, message)
        if method == "GET" and name:
            obj = self.store.get((plural, ns, name))
            if obj is None:
                raise ApiError(404, "%s %s not found" % (plural, name))
            return 200, copy.deepcopy(obj)
        if method == "GET":
            selector = dict(part.split("=", 1) for part in query.get("labelSelector", "").split(",") if part)
            items = [copy.deepcopy(o) for (p, n, _unused), o in sorted(self.store.items(), key=lambda kv: (kv[0][0], kv[0][1] or "", kv[0][2]))
                     if p == plural and (ns is None or n == ns)
                     and all(((o["metadata"].get("labels") or {}).get(k) == v) for k, v in selector.items())]
            for item in items:
                item.pop("kind", None)  # real LISTs omit kind on items
            return 200, {"items": items, "metadata": {}}
        if method == "POST":
            assert plural == "namespaces"
            if ("namespaces", None, body["metadata"]["name"]) in self.store:
                raise ApiError(409, "exists")
            self.put("namespaces", None, body)
            return 201, body
        if method == "PATCH":
            assert content_type in ("application/apply-patch+yaml", "application/merge-patch+json")
            assert query.get("fieldManager")
            if ns and ("namespaces", None, ns) not in self.store:
                raise ApiError(404, 'namespaces "%s" not found' % ns)
            live = self.store.get((plural, ns, name))
            dry = query.get("dryRun") == "All"
            if live is None:
                obj = copy.deepcopy(body)
                obj["metadata"]["resourceVersion"] = "0" if dry else str(next(self.rv))
                obj["metadata"]["uid"] = "uid-%d" % next(self.uid)
                obj["metadata"]["generation"] = 1
                if not dry:
                    self.store[(plural, ns, name)] = obj
                return 201, copy.deepcopy(obj)
            merged = _merge(live, body)
            if merged != live:
                if merged.get("spec") != live.get("spec"):
                    merged["metadata"]["generation"] = live["metadata"].get("generation", 1) + 1
                if not dry:
                    merged["metadata"]["resourceVersion"] = str(next(self.rv))
                    self.store[(plural, ns, name)] = merged
            return 200, copy.deepcopy(merged)
        if method == "DELETE":
            live = self.store.get((plural, ns, name))
            if live is None:
                raise ApiError(404, "gone")
            pre = (body or {}).get("preconditions") or {}
            if pre.get("uid") and pre["uid"] != live["metadata"]["uid"]:
                raise ApiError(409, "uid precondition failed")
            del self.store[(plural, ns, name)]
            return 200, {}
        raise AssertionError("unexpected %s %s" % (method, path))
