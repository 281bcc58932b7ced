"""helm-controller: HelmReleases, releases recorded in Helm's secret storage on the target cluster.

Each reconcile function takes the runtime (sim.runtime.Runtime) and returns True when the result
is terminal for the current fingerprint (see Runtime.reconcile)."""
from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os

from kubernetes import client
from kubernetes.client.rest import ApiException

from .. import helmreal
from .common import ANN, ANN_FAIL, ANN_FAIL_MSG, FORCE_AT, PLURAL_OF, REQ_AT, RESET_AT, Outcome, cond, digest, is_ready, now_iso


# --------------------------------------------------------------------------- HelmRelease
def reconcile(rt, key, obj) -> bool:
    ns, name = key[1], key[2]
    spec = obj.get("spec") or {}
    st = obj.get("status") or {}
    ann = obj["metadata"].get("annotations") or {}
    gen = obj["metadata"].get("generation")
    status = rt.handled(obj, {})
    if ann.get(FORCE_AT) and ann.get(FORCE_AT) == ann.get(REQ_AT):
        force = ann[FORCE_AT] != st.get("lastHandledForceAt")
    else:
        force = False
    if ann.get(RESET_AT) and ann.get(RESET_AT) == ann.get(REQ_AT) and ann[RESET_AT] != st.get("lastHandledResetAt"):
        status["lastHandledResetAt"] = ann[RESET_AT]
        reset = True
    else:
        reset = False

    target_ns = spec.get("targetNamespace") or ns
    release = spec.get("releaseName") or (f"{spec['targetNamespace']}-{name}" if spec.get("targetNamespace") else name)
    if len(release) > 53:
        release = release[:40] + "-" + hashlib.sha256(release.encode()).hexdigest()[:12]
    storage_ns = spec.get("storageNamespace") or target_ns
    skind, sns, sname = rt.source_of("HelmRelease", obj)
    chart_spec = (spec.get("chart") or {}).get("spec") or {}
    chart_name = chart_spec.get("chart") or (sname or "chart")
    chart_name = chart_name.rstrip("/").rsplit("/", 1)[-1]
    chart_version = chart_spec.get("version") or "*"
    helmchart = f"{sns}/{ns}-{name}"
    values = spec.get("values") or {}
    cfg_digest = digest(values)

    try:
        rt.check_dependencies("HelmRelease", obj)
        # source: HelmRepository (chart template), OCIRepository/HelmChart (chartRef)
        src = rt.store.get((skind, sns, sname)) if sname else None
        if skind == "OCIRepository" or spec.get("chartRef"):
            if src is None:
                raise Outcome("ArtifactFailed", f"could not get Source object: {PLURAL_OF.get(skind, skind.lower() + 's')}."
                              f"source.toolkit.fluxcd.io \"{sname}\" not found", requeue=rt._next_backoff(key))
            if not is_ready(src):
                raise Outcome("SourceNotReady", f"{skind} '{sns}/{sname}' is not ready", wait=True)
            if skind == "OCIRepository":
                url = (src.get("spec") or {}).get("url", "")
                chart_name = url.rstrip("/").rsplit("/", 1)[-1] or chart_name
                ref = (src.get("spec") or {}).get("ref") or {}
                chart_version = ref.get("tag") or ref.get("semver") or "latest"
        else:
            if src is None:
                raise Outcome("SourceNotReady", f"HelmChart '{helmchart}' is not ready: failed to get source: "
                              f"{PLURAL_OF.get(skind, 'helmrepositories')}.source.toolkit.fluxcd.io "
                              f"\"{sname}\" not found", wait=True)
            if (src.get("spec") or {}).get("type") != "oci" and not is_ready(src):
                rc = cond(src, "Ready")
                raise Outcome("SourceNotReady", f"HelmChart '{helmchart}' is not ready: "
                              f"{(rc or {}).get('message') or 'latest generation of object has not been reconciled'}",
                              wait=True)
        # chart from the local registry: resolved, pulled and released by the real helm CLI
        real = rt.helmreal.chart_location(skind, src, chart_name) if rt.helmreal and src else None
        if real is not None:
            if storage_ns != target_ns:
                raise Outcome("InstallFailed", "the local fleet's helm-controller runs the helm CLI, which keeps "
                              "the release in its target namespace: storageNamespace must equal targetNamespace")
            chart_name = real.chart
            try:
                chart_version, chart_path = rt.helmreal.source(real, real.version_range or chart_version, helmchart)
                if spec.get("valuesFrom"):
                    values = helmreal.compose_values(spec, ns, lambda k, n, m: _read_values_ref(rt, k, n, m))
                    cfg_digest = digest(values)
            except helmreal.SourceError as exc:
                raise Outcome(exc.reason, exc.message, requeue=rt._next_backoff(key)) from exc
        kc_digest, api = rt.kubeconfig_for(obj, "HelmRelease")
    except Outcome as out:
        return _hr_fail(rt, key, obj, out, status)

    history = list(st.get("history") or [])
    last = history[0] if history else None
    if last is not None and (last.get("name") != release or last.get("namespace") != target_ns):
        history, last = [], None  # release target changed: a new install
    failures = {"installFailures": st.get("installFailures") or 0,
                "upgradeFailures": st.get("upgradeFailures") or 0, "failures": st.get("failures") or 0}
    new_target = (last is None or last.get("chartVersion") != chart_version
                  or last.get("configDigest") != cfg_digest or last.get("chartName") != chart_name)
    attempted_changed = (st.get("lastAttemptedRevision") != chart_version
                         or st.get("lastAttemptedConfigDigest") != cfg_digest)
    if reset or attempted_changed:
        failures = {"installFailures": 0, "upgradeFailures": 0, "failures": 0}
    stalled = cond(obj, "Stalled")
    if stalled and stalled.get("status") == "True" and failures["failures"] > 0:
        # retries exhausted: stays Stalled until chart/values change or a reset request,
        # but the new generation is observed (so waiters fail fast instead of waiting)
        status["observedGeneration"] = gen
        status["conditions"] = rt.conditions(obj, [
            {k: c[k] for k in ("type", "status", "reason", "message")}
            for c in (st.get("conditions") or []) if c["type"] in ("Ready", "Released", "Stalled")])
        rt.patch_status(key, obj, status)
        return True
    action = "install" if last is None else "upgrade"
    needs_release = last is None or new_target or force
    status.update({"storageNamespace": storage_ns, "helmChart": helmchart,
                   "lastAttemptedGeneration": gen, "lastAttemptedRevision": chart_version,
                   "lastAttemptedConfigDigest": cfg_digest})
    if force:
        status["lastHandledForceAt"] = ann[FORCE_AT]
    chart_ref = f"{chart_name}@{chart_version}"

    fail = (ann.get(ANN_FAIL) or "").lower()
    if needs_release and fail in (action, "true", "all"):
        return _hr_release_failed(rt, key, obj, status, action, release, target_ns, chart_ref, failures, history)

    url = api.configuration.host
    try:
        if needs_release and real is not None:
            try:
                action, snap = rt.helmreal.release(api=api, kubeconfig=rt.spoke_kubeconfigs[kc_digest], spec=spec,
                                                   release=release, namespace=target_ns, chart_path=chart_path,
                                                   values=values, force=force)
            except helmreal.ReleaseFailed as exc:
                return _hr_release_failed(
                    rt, key, obj, status, exc.action, release, target_ns, chart_ref, failures, history,
                    err=exc.message, remediate=lambda a=exc.action: rt.helmreal.remediate(
                        action=a, kubeconfig=rt.spoke_kubeconfigs[kc_digest], release=release, namespace=target_ns))
            if last is not None and action == "upgrade":
                history[0] = dict(history[0], status="superseded")
            elif action == "install":
                history = []
            history = ([snap] + history)[: max(1, int(spec.get("maxHistory") or 5))]
        elif real is None:
            _ensure_namespace(rt, kc_digest, api, url, target_ns)
            if storage_ns != target_ns:
                _ensure_namespace(rt, kc_digest, api, url, storage_ns)
        if needs_release and real is None:
            version = _write_release(rt, api, url, release, target_ns, storage_ns, chart_name, chart_version,
                                     values, cfg_digest, action, (last or {}).get("version", 0))
            t = now_iso()
            snap = {"name": release, "namespace": target_ns, "version": version, "status": "deployed",
                    "chartName": chart_name, "chartVersion": chart_version, "appVersion": chart_version,
                    "configDigest": cfg_digest, "firstDeployed": (last or {}).get("firstDeployed", t)
                    if action == "upgrade" else t, "lastDeployed": t,
                    "digest": digest([release, version, chart_ref, cfg_digest])}
            if last is not None and action == "upgrade":
                history[0] = dict(history[0], status="superseded")
            history = ([snap] + history)[: max(1, int(spec.get("maxHistory") or 5))]
        elif not needs_release:
            # in sync: verify the spoke (the real controller reads the release storage)
            rt.spoke_call(api, f"{url}/api/v1/namespaces/{storage_ns}/secrets", client.CoreV1Api(api).list_namespaced_secret,
                          storage_ns, label_selector=f"owner=helm,name={release}", limit=1, _preload_content=False)
    except (ConnectionError, ApiException) as exc:
        msg = rt.api_error(exc) if isinstance(exc, ApiException) else str(exc)
        out = Outcome("StateError", f"Could not determine release state: query: failed to query with labels: {msg}",
                      requeue=rt._next_backoff(key))
        return _hr_fail(rt, key, obj, out, status)

    head = history[0]
    reason = "InstallSucceeded" if action == "install" else "UpgradeSucceeded"
    if not needs_release:
        rc = cond(obj, "Released")
        reason = (rc or {}).get("reason") if (rc or {}).get("status") == "True" else reason
    msg = (f"Helm {'install' if reason == 'InstallSucceeded' else 'upgrade'} succeeded for release "
           f"{target_ns}/{release}.v{head['version']} with chart {head['chartName']}@{head['chartVersion']}")
    if not needs_release and cond(obj, "Ready") and cond(obj, "Ready").get("status") == "True":
        msg = cond(obj, "Ready").get("message") or msg
    status.update({"observedGeneration": gen, "history": history, "lastAttemptedReleaseAction": action
                   if needs_release else st.get("lastAttemptedReleaseAction", action),
                   "lastReleaseRevision": head["version"],
                   "installFailures": failures["installFailures"] or None,
                   "upgradeFailures": failures["upgradeFailures"] or None, "failures": failures["failures"] or None})
    desired = [{"type": "Ready", "status": "True", "reason": reason, "message": msg},
               {"type": "Released", "status": "True", "reason": reason, "message": msg}]
    if (spec.get("test") or {}).get("enable"):
        desired.append({"type": "TestSuccess", "status": "True", "reason": "TestSucceeded",
                        "message": f"Helm test succeeded for release {target_ns}/{release}.v{head['version']} "
                                   f"with chart {chart_ref}: no test hooks"})
    status["conditions"] = rt.conditions(obj, desired, drop=("Reconciling", "Stalled", "Remediated"))
    rt.patch_status(key, obj, status)
    return True


def _hr_fail(rt, key, obj, out: Outcome, status) -> bool:
    drop = ("Stalled",)
    desired = [{"type": "Ready", "status": "False", "reason": out.reason, "message": out.message},
               {"type": "Reconciling", "status": "True",
                "reason": "Progressing" if out.wait else "ProgressingWithRetry", "message": "Fulfilling prerequisites"
                if out.wait else out.message}]
    if not out.wait:
        status["observedGeneration"] = obj["metadata"].get("generation")
    status["conditions"] = rt.conditions(obj, desired, drop=drop)
    rt.patch_status(key, obj, status)
    if out.requeue:
        rt.queue.add_after(key, out.requeue)
    return False


def _hr_release_failed(rt, key, obj, status, action, release, target_ns, chart_ref, failures, history,
                       err=None, remediate=None) -> bool:
    spec = obj.get("spec") or {}
    ann = obj["metadata"].get("annotations") or {}
    Action = action.capitalize()
    retries = int(((spec.get(action) or {}).get("remediation") or {}).get("retries") or 0)
    failures = dict(failures)
    failures[f"{action}Failures"] += 1
    failures["failures"] += 1
    err = err or ann.get(ANN_FAIL_MSG) or f"simulated failure ({ANN_FAIL}={ann.get(ANN_FAIL)})"
    msg = f"Helm {action} failed for release {target_ns}/{release} with chart {chart_ref}: {err}"
    reason = f"{Action}Failed"
    status.update({"observedGeneration": obj["metadata"].get("generation"), "lastAttemptedReleaseAction": action,
                   "installFailures": failures["installFailures"] or None,
                   "upgradeFailures": failures["upgradeFailures"] or None, "failures": failures["failures"]})
    desired = [{"type": "Ready", "status": "False", "reason": reason, "message": msg},
               {"type": "Released", "status": "False", "reason": reason, "message": msg}]
    exhausted = retries >= 0 and failures[f"{action}Failures"] > retries
    if exhausted:
        desired.append({"type": "Stalled", "status": "True", "reason": "RetriesExceeded",
                        "message": f"Failed to {action} after {failures[f'{action}Failures']} attempt(s)"})
        drop = ("Reconciling",)
    else:
        rem = ("Helm uninstall succeeded for release " if action == "install" else "Helm rollback to previous "
               "release ") + f"{target_ns}/{release}"
        rem_reason = remediate() if remediate else ("UninstallSucceeded" if action == "install"
                                                    else "RollbackSucceeded")
        if not rem_reason.endswith("Succeeded"):
            rem = rem.replace(" succeeded ", " failed ")
        desired.append({"type": "Remediated", "status": "True" if rem_reason.endswith("Succeeded") else "False",
                        "reason": rem_reason,
                        "message": rem + (f".v{history[0]['version']}" if history else f".v1 with chart {chart_ref}")})
        desired.append({"type": "Reconciling", "status": "True", "reason": "ProgressingWithRetry", "message": msg})
        drop = ("Stalled",)
    status["conditions"] = rt.conditions(obj, desired, drop=drop)
    rt.patch_status(key, obj, status)
    if not exhausted:
        rt.queue.add_after(key, float(os.environ.get("LOCAL_FLEET_SIM_RETRY_INTERVAL", "1")))
        return False
    return True


def _read_values_ref(rt, kind, ns, name):
    """data of a valuesFrom ConfigMap/Secret on the hub (decoded), None when it does not exist."""
    read = rt.core.read_namespaced_config_map if kind == "ConfigMap" else rt.core.read_namespaced_secret
    try:
        obj = json.loads(rt.call(read, name, ns, _preload_content=False).data)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    data = obj.get("data") or {}
    if kind == "Secret":
        data = {k: base64.b64decode(v).decode() for k, v in data.items()}
    return data


def _ensure_namespace(rt, kc_digest, api, url, ns):
    if (kc_digest, ns) in rt.namespaces_ok:
        return
    core = client.CoreV1Api(api)
    try:
        rt.spoke_call(api, f"{url}/api/v1/namespaces", core.create_namespace,
                      {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}, _preload_content=False)
    except ApiException as exc:
        if exc.status != 409:
            raise
    rt.namespaces_ok.add((kc_digest, ns))


def _write_release(rt, api, url, release, target_ns, storage_ns, chart, version, values, cfg_digest, action,
                   last_version) -> int:
    """Record the release like Helm's secret storage driver (type helm.sh/release.v1)."""
    core = client.CoreV1Api(api)
    n = int(last_version or 0) + 1
    for _unused in range(5):
        t = now_iso()
        rel = {"name": release, "namespace": target_ns, "version": n,
               "info": {"first_deployed": t, "last_deployed": t, "deleted": "", "status": "deployed",
                        "description": f"{action.capitalize()} complete (simulated by c5c3 local fleet)"},
               "chart": {"metadata": {"name": chart, "version": version, "appVersion": version, "apiVersion": "v2"},
                         "templates": [], "values": {}},
               "config": values, "manifest": ""}
        payload = base64.b64encode(gzip.compress(json.dumps(rel).encode())).decode()
        body = {"apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
                "metadata": {"name": f"sh.helm.release.v1.{release}.v{n}", "namespace": storage_ns,
                             "labels": {"name": release, "owner": "helm", "status": "deployed", "version": str(n),
                                        "app.kubernetes.io/managed-by": "c5c3-local-fleet-simulator"},
                             "annotations": {ANN + "chart": chart, ANN + "chart-version": version,
                                             ANN + "values-digest": cfg_digest, ANN + "action": action}},
                "data": {"release": base64.b64encode(payload.encode()).decode()}}
        try:
            rt.spoke_call(api, f"{url}/api/v1/namespaces/{storage_ns}/secrets", core.create_namespaced_secret,
                          storage_ns, body, _preload_content=False)
        except ApiException as exc:
            if exc.status != 409:
                raise
            # someone (an earlier run) already wrote this version: continue after the highest one
            resp = rt.spoke_call(api, url, core.list_namespaced_secret, storage_ns,
                                 label_selector=f"owner=helm,name={release}", _preload_content=False)
            versions = [int(i["metadata"]["labels"].get("version", 0)) for i in json.loads(resp.data)["items"]]
            n = max(versions + [n]) + 1
            continue
        if n > 1:  # the previous release is superseded, as Helm marks it
            try:
                rt.spoke_call(api, url, core.patch_namespaced_secret, f"sh.helm.release.v1.{release}.v{n - 1}",
                              storage_ns, {"metadata": {"labels": {"status": "superseded"}}}, _preload_content=False)
            except ApiException as exc:
                if exc.status != 404:
                    raise
        return n
    raise RuntimeError(f"could not record release {storage_ns}/{release}")
