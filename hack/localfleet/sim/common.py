"""Shared vocabulary of the Flux simulator: kinds, annotations, condition helpers, references."""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import re


ANN = "simulator.c5c3.io/"
ANN_FAIL, ANN_FAIL_MSG, ANN_DELAY, ANN_STALE = ANN + "fail", ANN + "fail-message", ANN + "delay", ANN + "stale"
REQ_AT = "reconcile.fluxcd.io/requestedAt"
FORCE_AT = "reconcile.fluxcd.io/forceAt"
RESET_AT = "reconcile.fluxcd.io/resetAt"
WATCH_LABEL = "reconcile.fluxcd.io/watch"

FLUX_VERSION = os.environ.get("LOCAL_FLEET_FLUX_VERSION", "v2.7.3")
OPERATOR_VERSION = "v0.58.1"
DEFAULT_COMPONENTS = ["source-controller", "kustomize-controller", "helm-controller", "notification-controller"]
SERVER_VERSION = "v1.20.2"

# kind -> (group, version, plural)
KINDS = {
    "HelmRelease": ("helm.toolkit.fluxcd.io", "v2", "helmreleases"),
    "Kustomization": ("kustomize.toolkit.fluxcd.io", "v1", "kustomizations"),
    "HelmRepository": ("source.toolkit.fluxcd.io", "v1", "helmrepositories"),
    "GitRepository": ("source.toolkit.fluxcd.io", "v1", "gitrepositories"),
    "OCIRepository": ("source.toolkit.fluxcd.io", "v1", "ocirepositories"),
    "HelmChart": ("source.toolkit.fluxcd.io", "v1", "helmcharts"),
    "FluxInstance": ("fluxcd.controlplane.io", "v1", "fluxinstances"),
    "FluxReport": ("fluxcd.controlplane.io", "v1", "fluxreports"),
    "ResourceSet": ("fluxcd.controlplane.io", "v1", "resourcesets"),
}
PLURAL_OF = {k: v[2] for k, v in KINDS.items()}
SOURCE_KINDS = ("HelmRepository", "GitRepository", "OCIRepository", "HelmChart")
NO_STATUS_GENERATION = ("FluxInstance", "FluxReport", "ResourceSet")
REPORT_KINDS = ("FluxInstance", "ResourceSet", "GitRepository", "OCIRepository", "HelmRepository",
                "HelmChart", "Kustomization", "HelmRelease")


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_duration(text: str | None) -> float:
    """Go-style duration ("3s", "1m30s", "500ms", "2") -> seconds."""
    if not text:
        return 0.0
    text = str(text).strip()
    try:
        return float(text)
    except ValueError:
        pass
    total, pos = 0.0, 0
    for m in re.finditer(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text):
        total += float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]
        pos = m.end()
    return total if pos else 0.0


def digest(obj) -> str:
    return "sha256:" + hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def rv_int(obj) -> int:
    try:
        return int(obj["metadata"]["resourceVersion"])
    except (KeyError, TypeError, ValueError):
        return 0


def cond(obj, ctype):
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


def is_ready(obj) -> bool:
    """Generation-aware readiness, as Flux's own dependency checks read it."""
    if obj is None:
        return False
    c = cond(obj, "Ready")
    if c is None or c.get("status") != "True":
        return False
    gen = obj["metadata"].get("generation")
    st = obj.get("status") or {}
    if obj.get("kind") in NO_STATUS_GENERATION:  # Flux Operator kinds: the condition carries it
        return c.get("observedGeneration") == gen
    return st.get("observedGeneration") == gen


def references(kind, obj) -> list:
    """Keys (kind, ns, name) an object depends on: dependencies, sources, kubeconfig Secret."""
    ns = obj["metadata"].get("namespace")
    spec = obj.get("spec") or {}
    out = []
    if kind in ("HelmRelease", "Kustomization"):
        for d in spec.get("dependsOn") or []:
            out.append((kind, d.get("namespace") or ns, d.get("name")))
        sref = (spec.get("kubeConfig") or {}).get("secretRef") or {}
        if sref.get("name"):
            out.append(("Secret", ns, sref["name"]))
    if kind == "HelmRelease":
        src = ((spec.get("chart") or {}).get("spec") or {}).get("sourceRef") or spec.get("chartRef") or {}
        if src.get("name"):
            out.append((src.get("kind", "HelmRepository"), src.get("namespace") or ns, src["name"]))
        for vf in spec.get("valuesFrom") or []:
            if vf.get("kind") == "Secret":
                out.append(("Secret", ns, vf.get("name")))
    elif kind == "Kustomization":
        src = spec.get("sourceRef") or {}
        if src.get("name"):
            out.append((src.get("kind", "GitRepository"), src.get("namespace") or ns, src["name"]))
    elif kind in ("GitRepository", "HelmRepository", "OCIRepository"):
        if (spec.get("secretRef") or {}).get("name"):
            out.append(("Secret", ns, spec["secretRef"]["name"]))
    elif kind == "HelmChart":
        src = spec.get("sourceRef") or {}
        if src.get("name"):
            out.append((src.get("kind", "HelmRepository"), ns, src["name"]))
    elif kind == "FluxInstance":
        ps = (spec.get("sync") or {}).get("pullSecret")
        if ps:
            out.append(("Secret", ns, ps))
    return out


class Outcome(Exception):
    """A reconcile result that is not a success: Ready=False with reason/message."""

    def __init__(self, reason, message, *, wait=False, requeue=None, stalled=False):
        super().__init__(message)
        self.reason, self.message, self.wait, self.requeue, self.stalled = reason, message, wait, requeue, stalled
