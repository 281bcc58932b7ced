# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)
"""Pure readiness predicates: one object (a dict as the API returns it) -> one Verdict.

No Ansible and no kubernetes imports: the waiter feeds objects from watches, the unit tests
feed YAML fixtures. The rules (docs/readiness.md):

- ready      Ready=True at the object's current generation (condition observedGeneration,
             else status.observedGeneration, must equal metadata.generation).
- failed     Stalled=True at the current generation; or Ready=False for a reason the
             controller will not retry its way out of (HelmRelease install/upgrade failures
             that used up remediation.retries, RetriesExceeded, Kustomization BuildFailed /
             HealthCheckFailed); or suspended while not ready.
- progressing  anything else that exists (including a stale Ready=True,
             DependencyNotReady, which names what blocks it in blocked_by, a Kustomization
             whose health checks are running, and failures a RetryOnFailure strategy retries).
- notes      what is worth reporting without changing the state: a HelmRelease's Drifted
             condition (helm-controller >= 1.5, Flux 2.8), a Kustomization's Healthy result.
- missing    the object does not exist.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.c5c3.gitops.plugins.module_utils import flux_kinds

READY = "ready"
PROGRESSING = "progressing"
FAILED = "failed"
MISSING = "missing"
STATES = (READY, PROGRESSING, FAILED, MISSING)

# The per-kind facts come from the one kind table (flux_kinds.KINDS):
# kinds whose controller always records the generation it acted on; a Ready condition without
# one is treated as not yet reconciled.
STRICT_GENERATION_KINDS = frozenset(flux_kinds.kinds_where(readiness="conditions", strict=True))
# Kinds with no controller status worth waiting for: ready once they exist.
EXISTENCE_KINDS = frozenset(flux_kinds.kinds_where(readiness="existence"))
# Ready=False reasons that are terminal for this generation whatever the retry settings.
# ArtifactFailed is deliberately absent: Flux reports it while a source is still being fetched.
TERMINAL_REASONS = {
    # RetriesExceeded/MissingRollbackTarget: helm-controller's stall reasons; InvalidCELExpression,
    # AccessDenied, FeatureGateDisabled: Flux 2.8+ terminal errors (no retry until the spec changes).
    "*": frozenset(["RetriesExceeded", "MissingRollbackTarget", "InvalidCELExpression", "AccessDenied",
                    "FeatureGateDisabled"]),
    # The same artifact revision builds the same way; health checks already ran for spec.timeout.
    "Kustomization": frozenset(["BuildFailed", "HealthCheckFailed"]),
}
# HelmRelease Ready=False reasons that end retrying once remediation.retries are used up:
# reason -> (spec section holding remediation.retries, status failure counter).
HELM_RETRIED_REASONS = {
    "InstallFailed": ("install", "installFailures"),
    "UpgradeFailed": ("upgrade", "upgradeFailures"),
}
# Kinds whose spec.dependsOn names objects of the same kind.
DEPENDS_ON_KINDS = frozenset(flux_kinds.kinds_where(depends_on=True))


class Verdict(object):
    """What the gate concluded about one object."""

    __slots__ = ("state", "reason", "message", "generation", "observed_generation", "blocked_by", "notes")

    def __init__(self, state, reason="", message="", generation=None, observed_generation=None, blocked_by=None,
                 notes=None):
        if state not in STATES:
            raise ValueError("unknown state %r" % (state,))
        self.state = state
        self.reason = reason or ""
        self.message = message or ""
        self.generation = generation
        self.observed_generation = observed_generation
        self.blocked_by = list(blocked_by or [])
        self.notes = list(notes or [])

    @property
    def ready(self):
        return self.state == READY

    @property
    def terminal(self):
        return self.state == FAILED

    def to_dict(self):
        return dict((k, getattr(self, k)) for k in self.__slots__)

    def __eq__(self, other):
        return isinstance(other, Verdict) and self.to_dict() == other.to_dict()

    def __ne__(self, other):
        return not self.__eq__(other)

    def __repr__(self):
        return "Verdict(%s)" % ", ".join("%s=%r" % (k, getattr(self, k)) for k in self.__slots__)


def ref(kind, namespace, name):
    return {"kind": kind, "namespace": namespace, "name": name}


def ref_str(r):
    return "%s %s/%s" % (r["kind"], r.get("namespace") or "", r["name"]) if r.get("namespace") else "%s %s" % (r["kind"], r["name"])


def condition(obj, ctype):
    for cond in ((obj.get("status") or {}).get("conditions") or []):
        if cond.get("type") == ctype:
            return cond
    return None


def _observed(obj, cond):
    """The generation a condition speaks for: its own observedGeneration, else the status'."""
    if cond is not None and cond.get("observedGeneration") is not None:
        return cond["observedGeneration"]
    return (obj.get("status") or {}).get("observedGeneration")


def depends_on(obj, kind=None):
    """spec.dependsOn of ``obj`` as refs (namespace defaults to the object's)."""
    kind = kind or obj.get("kind")
    if not flux_kinds.fact(kind, "depends_on", False):
        return []
    meta = obj.get("metadata") or {}
    out = []
    for dep in ((obj.get("spec") or {}).get("dependsOn") or []):
        if isinstance(dep, dict) and dep.get("name"):
            dep_kind = dep.get("kind") or kind  # ResourceSet dependsOn carries its own kind
            out.append(ref(dep_kind, dep.get("namespace") or meta.get("namespace"), dep["name"]))
    return out


def _blocked_by(obj, kind, message):
    """The dependsOn entries a DependencyNotReady message names (all of them if it names none)."""
    deps = depends_on(obj, kind)
    named = set(re.findall(r"'([^']+)'", message or ""))
    hit = [d for d in deps if "%s/%s" % (d["namespace"], d["name"]) in named or d["name"] in named]
    return hit or deps


def _retry_on_failure(obj, section):
    """The RetryOnFailure strategy of install/upgrade: failures are retried every retryInterval,
    without remediation and without a retry budget (never RetriesExhausted)."""
    strategy = (((obj.get("spec") or {}).get(section) or {}).get("strategy")) or {}
    if strategy.get("name") == "RetryOnFailure":
        return strategy.get("retryInterval") or "5m"
    return None


def _notes(obj, kind, generation):
    """Conditions worth reporting that do not decide the state (only those of this generation)."""
    out = []
    for ctype, show in (("Drifted", "True"), ("Healthy", "True")):
        if (ctype == "Drifted") != (kind == "HelmRelease"):
            continue
        cond = condition(obj, ctype)
        if cond is None or cond.get("status") != show:
            continue
        seen = _observed(obj, cond)
        if seen is not None and generation is not None and seen != generation:
            continue
        out.append("%s: %s%s" % (ctype, cond.get("reason") or "", (": " + cond["message"]) if cond.get("message") else ""))
    return out


def _retries_exhausted(obj, section, counter):
    """helm-controller's RetriesExhausted: retries >= 0 and failures > retries (default 0)."""
    spec = (obj.get("spec") or {}).get(section) or {}
    retries = (spec.get("remediation") or {}).get("retries", 0)
    failures = (obj.get("status") or {}).get(counter) or 0
    if retries is None:
        retries = 0
    return retries >= 0 and failures > retries, failures, retries


def evaluate(obj, kind=None):
    """Return the Verdict for ``obj`` (None = does not exist). ``kind`` overrides obj['kind'],
    which typed list responses (Deployments) leave out of their items."""
    if obj is None:
        return Verdict(MISSING, "NotFound", "the object does not exist")
    kind = kind or obj.get("kind")
    meta = obj.get("metadata") or {}
    generation = meta.get("generation")
    if meta.get("deletionTimestamp"):
        return Verdict(PROGRESSING, "Terminating", "the object is being deleted", generation)
    if flux_kinds.fact(kind, "readiness") == "existence":
        if kind == "Namespace" and (obj.get("status") or {}).get("phase") == "Terminating":
            return Verdict(PROGRESSING, "Terminating", "the namespace is being deleted", generation)
        return Verdict(READY, "Exists", "%s exists (no status to wait for)" % kind, generation)
    if flux_kinds.fact(kind, "oci_static") and ((obj.get("spec") or {}).get("type") == "oci"):
        # Flux >= 2.2 does not reconcile OCI HelmRepositories at all: they never get a status.
        return Verdict(READY, "Static", "OCI HelmRepository: no status, ready by existing", generation)
    if flux_kinds.fact(kind, "readiness") == "rollout":
        return _deployment(obj, generation)
    return _conditions(obj, kind, generation)


def _conditions(obj, kind, generation):
    verdict = _decide(obj, kind, generation)
    verdict.notes = _notes(obj, kind, generation)
    return verdict


def _health_checks_running(obj, kind, generation):
    """A Kustomization with wait/healthChecks reports Healthy=Unknown while it checks a new
    revision; its Ready=True (same generation: a new revision does not bump it) is the old one's."""
    if kind != "Kustomization":
        return None
    healthy = condition(obj, "Healthy")
    if healthy is None or healthy.get("status") != "Unknown":
        return None
    seen = _observed(obj, healthy)
    if seen is not None and generation is not None and seen != generation:
        return None
    return Verdict(PROGRESSING, "HealthCheckInProgress", healthy.get("message") or "health checks are running",
                   generation, seen)


def _decide(obj, kind, generation):
    spec = obj.get("spec") or {}
    ready = condition(obj, "Ready")
    stalled = condition(obj, "Stalled")
    strict = flux_kinds.fact(kind, "readiness") == "conditions" and flux_kinds.fact(kind, "strict", False)

    def current(cond):
        seen = _observed(obj, cond)
        if seen is None:
            return not strict
        return generation is None or seen == generation

    if stalled is not None and stalled.get("status") == "True" and current(stalled):
        return Verdict(FAILED, stalled.get("reason") or "Stalled", stalled.get("message"), generation,
                       _observed(obj, stalled))
    if ready is None:
        if spec.get("suspend"):
            return Verdict(FAILED, "Suspended", "suspended before it ever became ready", generation)
        return Verdict(PROGRESSING, "NoReadyCondition",
                       "the controller has not reported a Ready condition yet", generation,
                       _observed(obj, None))
    seen = _observed(obj, ready)
    status, reason, message = ready.get("status"), ready.get("reason") or "", ready.get("message") or ""
    if not current(ready):
        if seen is None:
            text = "Ready=%s (%s) carries no observedGeneration; generation %s not confirmed" % (
                status, reason, generation)
        else:
            text = "Ready=%s (%s) was reported for generation %s; the object is at generation %s" % (
                status, reason, seen, generation)
        if spec.get("suspend"):
            return Verdict(FAILED, "Suspended", "suspended; " + text, generation, seen)
        return Verdict(PROGRESSING, "StaleGeneration", text, generation, seen)
    if status == "True":
        running = _health_checks_running(obj, kind, generation)
        if running is not None:
            return running
        return Verdict(READY, reason, message, generation, seen)
    if spec.get("suspend"):
        return Verdict(FAILED, "Suspended", "suspended while not ready: %s: %s" % (reason, message), generation, seen)
    if status == "False":
        if reason in TERMINAL_REASONS["*"] or reason in TERMINAL_REASONS.get(kind, ()):
            return Verdict(FAILED, reason, message, generation, seen)
        if kind == "HelmRelease" and reason in HELM_RETRIED_REASONS:
            every = _retry_on_failure(obj, HELM_RETRIED_REASONS[reason][0])
            if every:
                return Verdict(PROGRESSING, reason, "%s (RetryOnFailure: retried every %s)" % (message, every), generation, seen)
            exhausted, failures, retries = _retries_exhausted(obj, *HELM_RETRIED_REASONS[reason])
            budget = "unlimited retries" if retries < 0 else "%s retries" % retries
            note = "%s failure(s), %s" % (failures, budget)
            if exhausted:
                return Verdict(FAILED, reason, "%s (%s: no retries left)" % (message, note), generation, seen)
            return Verdict(PROGRESSING, reason, "%s (%s: will retry)" % (message, note), generation, seen)
        if reason == "DependencyNotReady":
            return Verdict(PROGRESSING, reason, message, generation, seen, _blocked_by(obj, kind, message))
    return Verdict(PROGRESSING, reason or "Reconciling", message, generation, seen)


def _deployment(obj, generation):
    """kubectl rollout status semantics."""
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    seen = status.get("observedGeneration")
    if seen is None or (generation is not None and seen < generation):
        return Verdict(PROGRESSING, "StaleGeneration",
                       "the deployment controller has not observed generation %s yet (at %s)" % (generation, seen),
                       generation, seen)
    progressing = condition(obj, "Progressing")
    if progressing is not None and progressing.get("reason") == "ProgressDeadlineExceeded":
        return Verdict(FAILED, "ProgressDeadlineExceeded", progressing.get("message"), generation, seen)
    want = spec.get("replicas", 1)
    updated = status.get("updatedReplicas") or 0
    total = status.get("replicas") or 0
    available = status.get("availableReplicas") or 0
    if updated < want:
        return Verdict(PROGRESSING, "RollingOut", "%d of %d new replicas updated" % (updated, want), generation, seen)
    if total > updated:
        return Verdict(PROGRESSING, "RollingOut", "%d old replicas pending termination" % (total - updated),
                       generation, seen)
    if available < updated:
        return Verdict(PROGRESSING, "RollingOut", "%d of %d updated replicas available" % (available, updated),
                       generation, seen)
    return Verdict(READY, "RolloutComplete", "%d of %d replicas updated and available" % (available, want),
                   generation, seen)


def is_ready(obj, kind=None):
    return evaluate(obj, kind).ready


# ------------------------------------------------------------------ expected chart version
def _plain_version(text):
    text = str(text or "").strip()
    return text[1:] if text[:1] in ("v", "V") else text


def release_chart_version(obj):
    """(chart version the HelmRelease runs, version it last attempted): status.history[0].chartVersion
    and status.lastAttemptedRevision (``<version>`` or, for chartRef sources, ``<version>@<digest>``)."""
    status = (obj or {}).get("status") or {}
    history = status.get("history") or []
    running = history[0].get("chartVersion") if history and isinstance(history[0], dict) else None
    attempted = str(status.get("lastAttemptedRevision") or "").split("@", 1)[0] or None
    return running, attempted


def check_chart_version(obj, expected, verdict):
    """``verdict`` (evaluate()) of a HelmRelease refined by the chart version it must run.

    Ready only when Ready at its generation *and* status.history[0] is that chart version; a
    failure reported while attempting another version is waited on (the new version may fix it),
    a failure at the expected version fails as usual."""
    if obj is None or not expected or verdict.state == MISSING:
        return verdict
    want = _plain_version(expected)
    running, attempted = release_chart_version(obj)
    if verdict.ready:
        if _plain_version(running) == want:
            return verdict
        return Verdict(PROGRESSING, "ChartVersionPending",
                       "Ready at generation %s but runs chart version %s; waiting for %s" % (
                           verdict.generation, running or "(none)", want),
                       verdict.generation, verdict.observed_generation)
    if verdict.terminal and verdict.reason != "Suspended" and attempted and _plain_version(attempted) != want:
        return Verdict(PROGRESSING, verdict.reason, "%s (reported for chart version %s; waiting for %s)" % (
            verdict.message, attempted, want), verdict.generation, verdict.observed_generation, verdict.blocked_by)
    return verdict
