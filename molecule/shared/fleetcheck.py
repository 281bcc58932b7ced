"""Helpers of the scenarios' testinfra tests: the hub/spoke clients and the readiness rule.

The readiness rule is written out here again on purpose (not imported from the collection):
ready = Ready=True and that condition's observedGeneration (else status.observedGeneration)
equals metadata.generation; an OCI HelmRepository has no status and is ready by existing.
"""
import json
import os

PLURALS = {
    "HelmRelease": ("helm.toolkit.fluxcd.io", "v2", "helmreleases"),
    "Kustomization": ("kustomize.toolkit.fluxcd.io", "v1", "kustomizations"),
    "HelmRepository": ("source.toolkit.fluxcd.io", "v1", "helmrepositories"),
    "GitRepository": ("source.toolkit.fluxcd.io", "v1", "gitrepositories"),
    "OCIRepository": ("source.toolkit.fluxcd.io", "v1", "ocirepositories"),
    "FluxInstance": ("fluxcd.controlplane.io", "v1", "fluxinstances"),
}


def ephemeral():
    return os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]


def kubeconfig(cluster):
    return os.path.join(ephemeral(), "fleet", "kubeconfigs", "%s.yaml" % cluster)


def fleet():
    with open(os.path.join(ephemeral(), "fleet.json"), encoding="utf-8") as handle:
        return json.load(handle)


def clients(cluster):
    from kubernetes import client, config
    api = config.new_client_from_config(config_file=kubeconfig(cluster))
    return client.CoreV1Api(api), client.CustomObjectsApi(api)


def get(custom, obj):
    group, version, plural = PLURALS[obj["kind"]]
    md = obj["metadata"]
    return custom.get_namespaced_custom_object(group, version, md["namespace"], plural, md["name"])


def is_ready(live):
    status = live.get("status")
    if live["kind"] == "HelmRepository" and (live.get("spec") or {}).get("type") == "oci":
        return True
    if not status:
        return False
    generation = live["metadata"].get("generation")
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Ready":
            observed = cond.get("observedGeneration", status.get("observedGeneration"))
            return cond.get("status") == "True" and observed == generation
    return False
