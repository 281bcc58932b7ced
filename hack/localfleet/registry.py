"""The local fleet's OCI registry: Debian's `docker-registry` (distribution 2.8) on 127.0.0.1.

Plain HTTP on loopback, no authentication (helm talks to it with --plain-http; Flux sources get
`insecure: true`). Its storage lives in the state directory; `down` removes it with the rest.

    <state>/registry/config.yml   the registry's own configuration (listen 127.0.0.1:<port>)
    <state>/registry/data/        storage (filesystem driver)
    <state>/registry/url          oci://127.0.0.1:<port>/charts  (the chart repository)
    <state>/logs/registry.log
"""
from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.request

import yaml

BINARY = os.environ.get("LOCAL_FLEET_REGISTRY_BIN", "/usr/bin/docker-registry")
#: the repository prefix of every chart (charts are <url>/<chart>)
CHART_PREFIX = "charts"


class RegistryError(Exception):
    pass


def paths(state_dir: str) -> dict:
    base = os.path.join(state_dir, "registry")
    return {"dir": base, "config": os.path.join(base, "config.yml"), "data": os.path.join(base, "data"),
            "url": os.path.join(base, "url"), "log": os.path.join(state_dir, "logs", "registry.log")}


def config(port: int, data_dir: str) -> dict:
    """The registry's configuration: loopback only, filesystem storage, no auth, quiet logs."""
    return {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}, "fields": {"service": "local-fleet-registry"}},
        "storage": {"filesystem": {"rootdirectory": data_dir}, "delete": {"enabled": True},
                    "cache": {"blobdescriptor": "inmemory"}},
        "http": {"addr": f"127.0.0.1:{port}", "headers": {"X-Content-Type-Options": ["nosniff"]}},
        "health": {"storagedriver": {"enabled": False}},
    }


def write_config(state_dir: str, port: int) -> dict:
    p = paths(state_dir)
    os.makedirs(p["data"], exist_ok=True)
    with open(p["config"], "w", encoding="utf-8") as fh:
        yaml.safe_dump(config(port, p["data"]), fh, default_flow_style=False)
    with open(p["url"], "w", encoding="utf-8") as fh:
        fh.write(chart_url(port) + "\n")
    return p


def argv(state_dir: str) -> list[str]:
    return [BINARY, "serve", paths(state_dir)["config"]]


def chart_url(port: int) -> str:
    return f"oci://127.0.0.1:{port}/{CHART_PREFIX}"


def read_url(state_dir: str) -> str | None:
    try:
        with open(paths(state_dir)["url"], encoding="utf-8") as fh:
            return fh.read().strip() or None
    except OSError:
        return None


def http_base(oci_url: str) -> tuple[str, str]:
    """oci://127.0.0.1:PORT/charts -> ("http://127.0.0.1:PORT", "charts")."""
    rest = oci_url.split("://", 1)[1]
    host, _sep, prefix = rest.partition("/")
    return f"http://{host}", prefix.strip("/")


def alive(oci_url: str, timeout: float = 1.0) -> bool:
    base, _unused = http_base(oci_url)
    try:
        with urllib.request.urlopen(f"{base}/v2/", timeout=timeout) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def tags(oci_url: str, chart: str, timeout: float = 5.0) -> list[str]:
    """Tags of <oci_url>/<chart> (the OCI distribution API); [] if the repository does not exist.

    Helm stores SemVer build metadata with '_' instead of '+' (not allowed in tags): undone here."""
    base, prefix = http_base(oci_url)
    repo = f"{prefix}/{chart}" if prefix else chart
    try:
        with urllib.request.urlopen(f"{base}/v2/{repo}/tags/list?n=1000", timeout=timeout) as resp:
            data = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return []
        raise RegistryError(f"GET {base}/v2/{repo}/tags/list: {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise RegistryError(f"GET {base}/v2/{repo}/tags/list: {getattr(exc, 'reason', exc)}") from exc
    return [t.replace("_", "+") for t in (data.get("tags") or [])]


def seed(state_dir: str, cache_dir: str) -> bool:
    """Copy a cached registry storage (charts pushed by an earlier `up`) into this fleet's storage.

    The filesystem driver's layout does not depend on host or port, so a storage tree filled once
    serves every later fleet; returns False when there is no such cache yet."""
    if not os.path.isdir(os.path.join(cache_dir, "docker")):
        return False
    dest = paths(state_dir)["data"]
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(cache_dir, dest, symlinks=True)
    return True


def save_seed(state_dir: str, cache_dir: str) -> None:
    """Keep this fleet's registry storage as the seed of later fleets (atomic rename)."""
    tmp = cache_dir + f".tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(paths(state_dir)["data"], tmp, symlinks=True)
    shutil.rmtree(cache_dir, ignore_errors=True)
    os.makedirs(os.path.dirname(cache_dir), exist_ok=True)
    try:
        os.rename(tmp, cache_dir)
    except OSError:  # another session saved the same seed meanwhile
        shutil.rmtree(tmp, ignore_errors=True)


# ------------------------------------------------------------------------- lifecycle (fleet.up)
def install_helm(root: str) -> str:
    """hack/install-helm (cached: instant); the path of the helm binary."""
    import subprocess
    proc = subprocess.run([os.path.join(root, "hack", "install-helm")], check=False, stdout=subprocess.PIPE, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    if proc.returncode != 0 or not lines:
        raise RegistryError("hack/install-helm failed (see its messages above); the local fleet's registry and "
                            "helm-controller need helm")
    return lines[-1].strip()


def prepare(state_dir: str, port: int, seed_dir: str) -> dict:
    """Config, url file and (when cached) the storage seed; returns {config, seeded}."""
    if not os.access(BINARY, os.X_OK):
        raise RegistryError(f"{BINARY} not found: install Debian's docker-registry package "
                            "(hack/bootstrap does, from bindep.txt)")
    p = write_config(state_dir, port)
    return {"config": p["config"], "seeded": seed(state_dir, seed_dir)}


def publish(state_dir: str, helm_bin: str, chart_list: list[dict], workers: int = 6) -> int:
    """`helm push` every chart of chart_list that the registry does not have yet; returns the count."""
    import concurrent.futures

    from . import charts as charts_mod
    from . import helmops

    url = read_url(state_dir)
    helm = helmops.Helm(helm_bin, os.path.join(state_dir, "helm"))
    have: dict = {}
    todo = []
    for c in chart_list:
        if c["chart"] not in have:
            have[c["chart"]] = set(tags(url, c["chart"]))
        if c["version"] not in have[c["chart"]]:
            todo.append(c)
    if not todo:
        return 0
    tgz_dir = os.path.join(state_dir, "registry", "push")
    paths = charts_mod.write(todo, tgz_dir)
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        for fut in [pool.submit(helm.push, p, url) for p in paths]:
            fut.result()
    shutil.rmtree(tgz_dir, ignore_errors=True)
    return len(todo)


def manifest_digest(oci_url: str, chart: str, tag: str, timeout: float = 5.0) -> str:
    """The manifest digest (sha256:...) of <oci_url>/<chart>:<tag>."""
    base, prefix = http_base(oci_url)
    repo = f"{prefix}/{chart}" if prefix else chart
    req = urllib.request.Request(f"{base}/v2/{repo}/manifests/{tag.replace('+', '_')}", method="HEAD")
    req.add_header("Accept", "application/vnd.oci.image.manifest.v1+json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.headers.get("Docker-Content-Digest") or ""
    except (urllib.error.URLError, OSError) as exc:
        raise RegistryError(f"HEAD {base}/v2/{repo}/manifests/{tag}: {getattr(exc, 'reason', exc)}") from exc


HELM_CHART_LAYER = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"


def pull_chart(oci_url: str, chart: str, tag: str, timeout: float = 30.0) -> bytes:
    """The chart tarball of <oci_url>/<chart>:<tag> over the OCI distribution API (manifest, then
    the Helm chart layer, digest-checked), as source-controller pulls it."""
    import hashlib

    base, prefix = http_base(oci_url)
    repo = f"{prefix}/{chart}" if prefix else chart
    req = urllib.request.Request(f"{base}/v2/{repo}/manifests/{tag.replace('+', '_')}")
    req.add_header("Accept", "application/vnd.oci.image.manifest.v1+json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            manifest = json.loads(resp.read())
        layers = [ly for ly in manifest.get("layers") or [] if ly.get("mediaType") == HELM_CHART_LAYER]
        if not layers:
            raise RegistryError(f"{oci_url}/{chart}:{tag} has no Helm chart layer ({HELM_CHART_LAYER})")
        want = layers[0]["digest"]
        with urllib.request.urlopen(f"{base}/v2/{repo}/blobs/{want}", timeout=timeout) as resp:
            data = resp.read()
    except urllib.error.HTTPError as exc:
        raise RegistryError(f"{oci_url}/{chart}:{tag}: {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise RegistryError(f"{oci_url}/{chart}:{tag}: {getattr(exc, 'reason', exc)}") from exc
    got = "sha256:" + hashlib.sha256(data).hexdigest()
    if got != want:
        raise RegistryError(f"{oci_url}/{chart}:{tag}: layer digest {got} != {want}")
    return data
