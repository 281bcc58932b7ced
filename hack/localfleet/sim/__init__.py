"""Flux simulator: plays the Flux Operator and the Flux controllers against the hub.

Layout: `runtime` (watches, work queue, store, rate limit, status I/O, dispatch), `common`
(kinds, annotations, condition helpers), and one module per controller; CONTROLLERS below maps
each kind to the function that reconciles it, so a controller can be read on its own.

Per-object test hooks (annotations), see docs/local-fleet.md:
    simulator.c5c3.io/fail: install|upgrade|"true"   inject failures
    simulator.c5c3.io/fail-message: text              message of the injected failure
    simulator.c5c3.io/delay: "3s"                     slow readiness (Reconciling for that long)
    simulator.c5c3.io/stale: "true"                   leave the old Ready=True after a spec change
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from . import helm, kustomize, operator, runtime, source


@dataclass(frozen=True)
class Controller:
    reconcile: Callable  # (rt, key, obj) -> bool: True when terminal for the object's fingerprint
    wants: Callable | None = None  # for watched non-Flux kinds: which objects to reconcile
    plain: bool = False  # no Flux semantics (suspend, memo, test hooks): e.g. Deployments
    resyncs: bool = False  # reconciles again on spec.interval (real work): also redone after a restart


CONTROLLERS = {
    "GitRepository": Controller(source.reconcile_gitrepository, resyncs=True),
    "OCIRepository": Controller(source.reconcile_ocirepository),
    "HelmRepository": Controller(source.reconcile_helmrepository),
    "HelmChart": Controller(source.reconcile_helmchart),
    "Kustomization": Controller(kustomize.reconcile, resyncs=True),
    "HelmRelease": Controller(helm.reconcile),
    "FluxInstance": Controller(operator.reconcile_fluxinstance),
    "ResourceSet": Controller(operator.reconcile_resourceset),
    "Deployment": Controller(operator.reconcile_deployment, wants=operator.is_operator_deployment, plain=True),
}

BACKGROUND = [("report", operator.report_loop)]


def run(state_dir: str, workers: int = 16) -> int:
    return runtime.run(state_dir, CONTROLLERS, BACKGROUND, workers=workers)
