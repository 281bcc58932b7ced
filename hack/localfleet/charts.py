"""Small test charts of the project's own, generated from the fleet catalog, for the local registry.

One chart per component of roles/fleet/defaults/main.yml (`fleet_components`, every group), named
after the component's chart. Each chart has

- `crds/`: one small CRD (`ChartProbe`, group `<chart>.charts.c5c3.io`) whose schema and
  annotation `charts.c5c3.io/chart-version` carry the chart version, so a CRD upgrade
  (`CreateReplace`) is visible on the spoke;
- `templates/`: a ServiceAccount, a ConfigMap `<release>-values` with the rendered values and a
  Deployment `<release>` (replicas, image, resources from the values);
- `values.yaml`: the catalog's values of that component as defaults, plus `replicas`, `image`,
  `resources`, `podAnnotations`;
- `values.schema.json`: strict (`additionalProperties: false` on every object with known keys),
  so a typo in a values key fails `helm install` with Helm's own schema error.

Versions per chart (the catalog's SemVer range `>=L <U`): `L`, `L` with the minor raised (both
inside the range, the higher one is what Flux resolves) and `U` (outside the range, never picked).

Tarballs are built in memory with fixed timestamps: the same catalog gives the same bytes, the
same digests and the same cache key (see `fleet.up`: the registry storage is cached by that key).
"""
from __future__ import annotations

import copy
import gzip
import hashlib
import io
import json
import os
import re
import tarfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.environ.get("LOCAL_FLEET_ROOT") or os.path.dirname(os.path.dirname(HERE))
CATALOG = os.path.join(ROOT, "roles", "fleet", "defaults", "main.yml")
#: bump when the generated content changes (part of the cache key)
GENERATOR_VERSION = "1"

BASE_VALUES = {
    "replicas": 1,
    "image": {"repository": "registry.local/c5c3/test", "tag": "", "digest": ""},
    "resources": {},
    "podAnnotations": {},
}

CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-values
  namespace: {{ .Release.Namespace }}
  labels:
    app.kubernetes.io/name: {{ .Chart.Name }}
    app.kubernetes.io/instance: {{ .Release.Name }}
    app.kubernetes.io/version: {{ .Chart.Version | quote }}
data:
  chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | quote }}
  values.yaml: |
    {{- toYaml .Values | nindent 4 }}
"""

SERVICEACCOUNT = """\
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ .Release.Name }}
  namespace: {{ .Release.Namespace }}
  labels:
    app.kubernetes.io/name: {{ .Chart.Name }}
    app.kubernetes.io/instance: {{ .Release.Name }}
"""

# Same names and selector as tests/charts/flux-operator-local (Deployment and ServiceAccount
# named after the release, selector name/instance), so the hub's flux-operator HelmRelease can
# take over the release the flux_operator role bootstrapped.
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
  namespace: {{ .Release.Namespace }}
  labels:
    app.kubernetes.io/name: {{ .Chart.Name }}
    app.kubernetes.io/instance: {{ .Release.Name }}
    app.kubernetes.io/version: {{ .Chart.Version | quote }}
spec:
  replicas: {{ .Values.replicas | default 1 }}
  selector:
    matchLabels:
      app.kubernetes.io/name: {{ .Chart.Name }}
      app.kubernetes.io/instance: {{ .Release.Name }}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: {{ .Chart.Name }}
        app.kubernetes.io/instance: {{ .Release.Name }}
      annotations:
        checksum/values: {{ toYaml .Values | sha256sum }}
        {{- with .Values.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ .Release.Name }}
      containers:
        - name: manager
          {{- if .Values.image.digest }}
          image: "{{ .Values.image.repository }}@{{ .Values.image.digest }}"
          {{- else }}
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"
          {{- end }}
          {{- with .Values.resources }}
          resources:
            {{- toYaml . | nindent 12 }}
          {{- end }}
"""

FAILING = """\
{{- fail (printf "chart %s-%s: template failure on purpose" .Chart.Name .Chart.Version) }}
"""


def load_catalog(path: str = CATALOG) -> list[dict]:
    """[{name, chart, version}] of every component of the catalog (all groups, enabled or not)."""
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    out, seen = [], set()
    for _group, comps in sorted((data.get("fleet_components") or {}).items()):
        for comp in comps or []:
            chart = comp.get("chart") or comp["name"]
            if chart in seen:
                continue
            seen.add(chart)
            out.append({"name": comp["name"], "chart": chart, "version": str(comp.get("version") or ">=0.1.0 <1.0.0"),
                        "values": copy.deepcopy(comp.get("values") or {})})
    return out


def _parse(v: str) -> tuple[int, int, int]:
    m = re.fullmatch(r"v?(\d+)(?:\.(\d+))?(?:\.(\d+))?", v.strip())
    if not m:
        raise ValueError(f"not a version: {v!r}")
    return int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0)


def versions_for(range_text: str) -> dict:
    """{"in": [L, L+minor], "out": [U]} for a range `>=L <U` (the form the catalog uses)."""
    lo = re.search(r">=\s*v?([0-9][0-9.]*)", range_text)
    hi = re.search(r"<\s*v?([0-9][0-9.]*)", range_text)
    low = _parse(lo.group(1)) if lo else (0, 1, 0)
    inside = [low, (low[0], low[1] + 1, 0)]
    up = _parse(hi.group(1)) if hi else (low[0] + 1, 0, 0)
    if inside[1] >= up:
        inside = [low]
    fmt = "{}.{}.{}".format
    return {"in": [fmt(*v) for v in inside], "out": [fmt(*up)]}


def _schema(value) -> dict:
    """A strict JSON schema of a values tree: known keys only; {} and [] accept anything."""
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "integer"}
    if isinstance(value, float):
        return {"type": "number"}
    if isinstance(value, str):
        return {"type": "string"}
    if isinstance(value, list):
        return {"type": "array"}
    if isinstance(value, dict):
        if not value:
            return {"type": "object"}
        return {"type": "object", "additionalProperties": False,
                "properties": {k: _schema(v) for k, v in sorted(value.items())}}
    return {}


def deep_merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def crd(chart: str, version: str) -> dict:
    group = f"{chart}.charts.c5c3.io"
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"chartprobes.{group}", "annotations": {"charts.c5c3.io/chart-version": version}},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"kind": "ChartProbe", "listKind": "ChartProbeList", "plural": "chartprobes",
                           "singular": "chartprobe"},
                 "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                     "type": "object", "description": f"ChartProbe of chart {chart} {version}",
                     "properties": {"spec": {"type": "object", "properties": {
                         "message": {"type": "string"},
                         "chartVersion": {"type": "string", "description": f"introduced by {chart} {version}"}}}}}}}]},
    }


def chart_files(chart: str, version: str, values: dict | None = None, *, fail_template: bool = False) -> dict:
    """{relative path: text} of one chart (top directory = chart name)."""
    vals = deep_merge(BASE_VALUES, values or {})
    files = {
        "Chart.yaml": yaml.safe_dump({"apiVersion": "v2", "name": chart, "version": version, "appVersion": version,
                                      "type": "application",
                                      "description": f"c5c3.gitops local-fleet test chart for {chart}"},
                                     sort_keys=False),
        "values.yaml": yaml.safe_dump(vals, sort_keys=True, default_flow_style=False),
        "values.schema.json": json.dumps({"$schema": "http://json-schema.org/draft-07/schema#", **_schema(vals)},
                                         indent=2, sort_keys=True) + "\n",
        f"crds/chartprobes.{chart}.yaml": yaml.safe_dump(crd(chart, version), sort_keys=False),
        "templates/serviceaccount.yaml": SERVICEACCOUNT,
        "templates/configmap.yaml": CONFIGMAP,
        "templates/deployment.yaml": DEPLOYMENT,
    }
    if fail_template:
        files["templates/fail.yaml"] = FAILING
    return {f"{chart}/{k}": v for k, v in files.items()}


def package(files: dict) -> bytes:
    """A chart tarball (.tgz) of files, byte-for-byte reproducible."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for path in sorted(files):
            data = files[path].encode()
            info = tarfile.TarInfo(path)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def build(chart: str, version: str, values: dict | None = None, *, fail_template: bool = False) -> bytes:
    return package(chart_files(chart, version, values, fail_template=fail_template))


def catalog_charts(path: str = CATALOG) -> list[dict]:
    """[{chart, version, range, in_range, tgz}] for every catalog chart and version."""
    out = []
    for comp in load_catalog(path):
        vs = versions_for(comp["version"])
        for v in vs["in"] + vs["out"]:
            out.append({"chart": comp["chart"], "version": v, "range": comp["version"], "in_range": v in vs["in"],
                        "tgz": build(comp["chart"], v, comp["values"])})
    return out


def cache_key(charts: list[dict]) -> str:
    h = hashlib.sha256(GENERATOR_VERSION.encode())
    for c in charts:
        h.update(f"{c['chart']}:{c['version']}:".encode())
        h.update(hashlib.sha256(c["tgz"]).digest())
    return h.hexdigest()[:16]


def write(charts: list[dict], directory: str) -> list[str]:
    os.makedirs(directory, exist_ok=True)
    paths = []
    for c in charts:
        p = os.path.join(directory, f"{c['chart']}-{c['version']}.tgz")
        with open(p, "wb") as fh:
            fh.write(c["tgz"])
        paths.append(p)
    return paths
