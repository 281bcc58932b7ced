"""Install the upstream Flux CRDs on the hub, stripped of what Kubernetes 1.20 does not know."""
from __future__ import annotations

import concurrent.futures
import copy
import json
import glob
import os
import time

import yaml

#: keys Kubernetes 1.20's apiextensions.k8s.io/v1 schema does not accept (CEL came in 1.25)
UNKNOWN_SCHEMA_KEYS = ("x-kubernetes-validations",)


def strip(obj):
    """A copy of obj without any `x-kubernetes-validations` key, at any depth."""
    if isinstance(obj, dict):
        return {k: strip(v) for k, v in obj.items() if k not in UNKNOWN_SCHEMA_KEYS}
    if isinstance(obj, list):
        return [strip(v) for v in obj]
    return copy.deepcopy(obj)


def load(crd_dir: str) -> list[dict]:
    files = sorted(glob.glob(os.path.join(crd_dir, "*.yaml")) + glob.glob(os.path.join(crd_dir, "*.yml")))
    if not files:
        raise FileNotFoundError(f"no CRD files in {crd_dir} (set LOCAL_FLEET_CRDS to the flux-crds directory)")
    out = []
    for f in files:
        with open(f, encoding="utf-8") as fh:
            for doc in yaml.safe_load_all(fh):
                if doc and doc.get("kind") == "CustomResourceDefinition":
                    out.append(strip(doc))
    return out


def install(kubeconfig: str, crd_dir: str, timeout: float = 60.0) -> int:
    """Create or replace every CRD of crd_dir on the cluster; wait until all are Established."""
    from kubernetes import client, config, watch
    from kubernetes.client.rest import ApiException

    api_client = config.new_client_from_config(config_file=kubeconfig)
    ext = client.ApiextensionsV1Api(api_client)
    crds = load(crd_dir)
    names = {crd["metadata"]["name"] for crd in crds}

    def create_or_replace(crd):
        name = crd["metadata"]["name"]
        body = {k: v for k, v in crd.items() if k != "status"}
        try:
            ext.create_custom_resource_definition(body, _preload_content=False)
        except ApiException as exc:
            if exc.status != 409:
                raise
            cur = json.loads(ext.read_custom_resource_definition(name, _preload_content=False).data)
            body["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
            ext.replace_custom_resource_definition(name, body, _preload_content=False)

    with concurrent.futures.ThreadPoolExecutor(max_workers=len(crds)) as pool:
        for fut in [pool.submit(create_or_replace, crd) for crd in crds]:
            fut.result()

    def established(item) -> bool:
        for c in (item.get("status") or {}).get("conditions") or []:
            if c.get("type") == "Established" and c.get("status") == "True":
                return True
        return False

    listing = json.loads(ext.list_custom_resource_definition(_preload_content=False).data)
    pending = {i["metadata"]["name"] for i in listing["items"] if not established(i)} & names
    deadline = time.monotonic() + timeout
    w = watch.Watch()
    while pending:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"CRDs not Established after {timeout:.0f}s: {sorted(pending)}")
        for ev in w.stream(ext.list_custom_resource_definition,
                           resource_version=listing["metadata"]["resourceVersion"],
                           timeout_seconds=max(1, int(left))):
            obj = ev["raw_object"]
            listing["metadata"]["resourceVersion"] = obj["metadata"]["resourceVersion"]
            if established(obj):
                pending.discard(obj["metadata"]["name"])
            if not pending:
                w.stop()
                break
    api_client.close()
    return len(crds)
