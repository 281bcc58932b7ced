"""Helpers of the preflight/lease/prune integration tests: inventories of the running local fleet
with one spoke's kubeconfig swapped, client certificates minted with the fleet's CA, snapshots of
the hub, ansible-playbook runs."""
from __future__ import annotations

import base64
import datetime
import os
import shutil
import socket
import subprocess

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BIN = os.path.join(ROOT, ".venv", "bin")
LOCAL_INVENTORY = os.path.join(ROOT, "inventories", "local")
GROUPS = {"management": "management", "control-plane": "control_plane", "hypervisor": "hypervisor", "storage": "storage"}


def env():
    return dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
                ANSIBLE_DEPRECATION_WARNINGS="0", PATH=BIN + os.pathsep + os.environ.get("PATH", ""))


def inventory(fleet, dest, kubeconfigs=None, drop=(), host_vars=None):
    """A copy of inventories/local for the running fleet: ``kubeconfigs`` {cluster: dict} replaces a
    cluster's kubeconfig, ``drop`` leaves clusters out, ``host_vars`` {cluster: {...}} adds vars."""
    os.makedirs(dest, exist_ok=True)
    shutil.copytree(os.path.join(LOCAL_INVENTORY, "group_vars"), os.path.join(dest, "group_vars"), dirs_exist_ok=True)
    with open(os.path.join(dest, "group_vars", "management", "flux_operator.yml"), "w") as fh:
        yaml.safe_dump({"flux_operator_chart_ref": os.path.join(ROOT, "tests", "charts", "flux-operator-local"),
                        "flux_operator_chart_version": "", "flux_operator_wait_timeout": 120}, fh)
    children = {}
    for cluster in fleet.clusters:
        if cluster in drop:
            continue
        path = fleet.kubeconfig(cluster)
        if cluster in (kubeconfigs or {}):
            path = os.path.join(dest + "-kubeconfigs", "%s.yaml" % cluster)  # not in the inventory dir: no source
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as fh:
                yaml.safe_dump(kubeconfigs[cluster], fh)
            os.chmod(path, 0o600)
        hv = dict({"gitops_kubeconfig": path, "gitops_cluster_name": cluster}, **((host_vars or {}).get(cluster) or {}))
        host = "hub" if cluster == fleet.hub else "%s-1" % cluster  # hosts named apart from their groups
        children.setdefault(GROUPS[cluster], {"hosts": {}})["hosts"][host] = hv
    with open(os.path.join(dest, "hosts.yml"), "w") as fh:
        yaml.safe_dump({"all": {"children": children}}, fh)
    return dest


def load_kubeconfig(fleet, cluster):
    with open(fleet.kubeconfig(cluster)) as fh:
        return yaml.safe_load(fh)


def with_server(kc, server):
    kc["clusters"][0]["cluster"]["server"] = server
    return kc


def with_user(kc, user):
    kc["users"][0]["user"] = user
    return kc


def dead_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def client_cert_user(fleet, cn, groups=(), not_after_days=365, not_before_days=-1):
    """A client certificate signed by the local fleet's CA (the API servers' --client-ca-file)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    pki = os.path.join(fleet.state_dir, "pki")
    with open(os.path.join(pki, "ca.key"), "rb") as fh:
        ca_key = serialization.load_pem_private_key(fh.read(), password=None)
    with open(os.path.join(pki, "ca.crt"), "rb") as fh:
        ca = x509.load_pem_x509_certificate(fh.read())
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]
                        + [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now + datetime.timedelta(days=not_before_days))
            .not_valid_after(now + datetime.timedelta(days=not_after_days))
            .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return {"client-certificate-data": base64.b64encode(cert.public_bytes(serialization.Encoding.PEM)).decode(),
            "client-key-data": base64.b64encode(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                                  serialization.NoEncryption())).decode()}


def playbook(name, inv, *args, timeout=900, background=False):
    argv = [os.path.join(BIN, "ansible-playbook"), os.path.join(ROOT, "playbooks", name), "-i", inv, *args]
    if background:
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env(),
                                start_new_session=True)
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env(), timeout=timeout)


def module(inv, name, args, *extra, timeout=300):
    """One module of the collection, ad hoc on the hub host (the hub connection given in args)."""
    import json
    argv = [os.path.join(BIN, "ansible"), "management", "-i", inv, "-m", "c5c3.gitops." + name, "-a", json.dumps(args), *extra]
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env(), timeout=timeout)


class HubState:
    """What the hub holds, as (kind, namespace, name) -> resourceVersion, for before/after checks."""

    KINDS = (("", "v1", "namespaces"), ("", "v1", "secrets"), ("", "v1", "configmaps"), ("apps", "v1", "deployments"),
             ("fluxcd.controlplane.io", "v1", "fluxinstances"), ("source.toolkit.fluxcd.io", "v1", "helmrepositories"),
             ("kustomize.toolkit.fluxcd.io", "v1", "kustomizations"), ("helm.toolkit.fluxcd.io", "v2", "helmreleases"),
             ("coordination.k8s.io", "v1", "leases"))

    def __init__(self, fleet):
        from ansible_collections.c5c3.gitops.plugins.module_utils.kube import client_from_kubeconfig
        self.raw = client_from_kubeconfig(fleet.kubeconfig(fleet.hub), timeout=30, workers=2)

    def get(self, path, query=None):
        try:
            return self.raw.request("GET", path, query)[1]
        except Exception as exc:
            if getattr(exc, "status", None) == 404:
                return None
            raise

    def snapshot(self, skip_leases=("kube-system/kube-controller-manager", "kube-system/kube-scheduler")):
        out = {}
        for group, version, plural in self.KINDS:
            path = "/api/%s/%s" % (version, plural) if not group else "/apis/%s/%s/%s" % (group, version, plural)
            data = self.get(path) or {}
            for item in data.get("items") or []:
                md = item["metadata"]
                key = (plural, md.get("namespace") or "", md["name"])
                if plural == "leases" and "%s/%s" % key[1:] in skip_leases or md["name"].startswith("apiserver-"):
                    continue
                if plural == "secrets" and (item.get("type") == "kubernetes.io/service-account-token"):
                    continue
                out[key] = md["resourceVersion"]
        return out
