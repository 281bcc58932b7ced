"""Start and stop the local fleet: one etcd, one kube-apiserver per inventory cluster, on 127.0.0.1.

State directory layout (default <repo>/.cache/local-fleet):

    state.json                 clusters, urls, pids, hub, inventory, assets (written last by `up`)
    kubeconfigs/<cluster>.yaml self-contained kubeconfig (embedded CA + bearer token, cluster-admin)
    pki/                       ca.crt ca.key server.crt server.key sa.key sa.pub
    tokens/<cluster>.csv       static token file of each kube-apiserver
    logs/                      etcd.log, kube-apiserver-<cluster>.log, sshd.log, simulator.log
    git/                       the Git server: identity, identity.pub, known_hosts, url, sshd_config,
                               host key (see gitserver.py; the bare repository is in gitserver.GIT_ROOT)
    registry/                  the OCI registry: config, storage, url, log (see registry.py)
    etcd/                      etcd data (or a symlink into /dev/shm when available)
"""
from __future__ import annotations

import datetime
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import yaml

from . import gitserver

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.environ.get("LOCAL_FLEET_ROOT") or os.path.dirname(os.path.dirname(HERE))
DEFAULT_STATE_DIR = os.path.join(ROOT, ".cache", "local-fleet")
DEFAULT_INVENTORY = os.path.join(ROOT, "inventories", "local")
DEFAULT_CRD_DIR = os.environ.get("LOCAL_FLEET_CRDS") or os.path.normpath(os.path.join(ROOT, "..", "shared", "flux-crds"))
HUB_GROUP = "management"
READY_TIMEOUT = float(os.environ.get("LOCAL_FLEET_READY_TIMEOUT", "90"))


class FleetError(Exception):
    """A failure the CLI reports as one line plus hints."""


def log(msg: str) -> None:
    print(f"local-fleet: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------- inventory
def read_inventory(path: str) -> tuple[list[dict], str]:
    """Clusters of a YAML inventory (file or directory with hosts.yml): [{name, groups}], hub name.

    Hosts are clusters, named by their inline `gitops_cluster_name` (default: the host name); the
    hub is the (only) host of group `management`. Plain YAML reading of the
    `all:` tree (hosts / children), which is the only inventory format this tool supports.
    """
    if os.path.isdir(path):
        for cand in ("hosts.yml", "hosts.yaml"):
            if os.path.exists(os.path.join(path, cand)):
                path = os.path.join(path, cand)
                break
        else:
            raise FleetError(f"no hosts.yml in inventory directory {path}")
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    groups: dict[str, set[str]] = {}
    names: dict[str, str] = {}  # host -> cluster name (inline gitops_cluster_name, default: the host)

    def walk(group: str, node: dict | None, parents: list[str]) -> None:
        node = node or {}
        for host, hvars in (node.get("hosts") or {}).items():
            if isinstance(hvars, dict) and isinstance(hvars.get("gitops_cluster_name"), str):
                names[host] = hvars["gitops_cluster_name"]
            for g in parents + [group]:
                groups.setdefault(host, set()).add(g)
        for child, sub in (node.get("children") or {}).items():
            walk(child, sub, parents + [group])

    for top, node in data.items():
        walk(top, node, [])
    # Clusters (and their kubeconfig files) carry the cluster name, as the fleet model does.
    clusters = sorted(({"name": names.get(h, h), "groups": sorted(g - {"all", "ungrouped"})} for h, g in groups.items()),
                      key=lambda c: c["name"])
    hubs = [c["name"] for c in clusters if HUB_GROUP in c["groups"]]
    if len(hubs) != 1:
        raise FleetError(f"inventory {path}: expected exactly one host in group '{HUB_GROUP}' (the hub), found {hubs}")
    if not clusters:
        raise FleetError(f"inventory {path} has no hosts")
    return clusters, hubs[0]


# ----------------------------------------------------------------------------------------- install
def install_assets() -> str:
    """Run install.sh (cache hit: instant); return the directory with kube-apiserver and etcd."""
    script = os.path.join(HERE, "install.sh")
    proc = subprocess.run([script], check=False, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise FleetError("installing kube-apiserver/etcd failed (see the messages above); "
                         "fix and rerun 'hack/local-fleet install', or set C5C3_KUBE_ASSETS")
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    return lines[-1].strip()


# ------------------------------------------------------------------------------------------- certs
def make_pki(pki: str) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID
    import ipaddress

    os.makedirs(pki, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    not_before = now - datetime.timedelta(hours=1)
    not_after = now + datetime.timedelta(days=365)

    def write_key(name, key):
        with open(os.path.join(pki, name), "wb") as fh:
            fh.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
        os.chmod(os.path.join(pki, name), 0o600)

    def write_cert(name, cert):
        with open(os.path.join(pki, name), "wb") as fh:
            fh.write(cert.public_bytes(serialization.Encoding.PEM))

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "c5c3-local-fleet-ca")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(not_before).not_valid_after(not_after)
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    srv_key = ec.generate_private_key(ec.SECP256R1())
    srv = (x509.CertificateBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
           .issuer_name(ca_name).public_key(srv_key.public_key())
           .serial_number(x509.random_serial_number())
           .not_valid_before(not_before).not_valid_after(not_after)
           .add_extension(x509.SubjectAlternativeName([
               x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost"),
               x509.DNSName("kubernetes"), x509.DNSName("kubernetes.default"),
               x509.DNSName("kubernetes.default.svc"), x509.IPAddress(ipaddress.ip_address("10.0.0.1"))]),
               critical=False)
           .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
           .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
           .sign(ca_key, hashes.SHA256()))
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    write_key("ca.key", ca_key)
    write_cert("ca.crt", ca)
    write_key("server.key", srv_key)
    write_cert("server.crt", srv)
    write_key("sa.key", sa_key)
    with open(os.path.join(pki, "sa.pub"), "wb") as fh:
        fh.write(sa_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))


# ------------------------------------------------------------------------------------------- ports
def free_ports(count: int) -> list[int]:
    socks, ports = [], []
    try:
        for _unused in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


# ------------------------------------------------------------------------------------------- state
def state_paths(state_dir: str) -> dict:
    return {
        "state": os.path.join(state_dir, "state.json"),
        "kubeconfigs": os.path.join(state_dir, "kubeconfigs"),
        "pki": os.path.join(state_dir, "pki"),
        "tokens": os.path.join(state_dir, "tokens"),
        "logs": os.path.join(state_dir, "logs"),
        "etcd": os.path.join(state_dir, "etcd"),
    }


def load_state(state_dir: str) -> dict | None:
    path = state_paths(state_dir)["state"]
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def save_state(state_dir: str, state: dict) -> None:
    path = state_paths(state_dir)["state"]
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(state, fh, indent=2, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, path)


def kubeconfig_path(state_dir: str, cluster: str) -> str:
    return os.path.join(state_paths(state_dir)["kubeconfigs"], f"{cluster}.yaml")


def kubeconfig_dict(cluster: str, url: str, ca_pem: str, token: str) -> dict:
    import base64
    return {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": cluster, "cluster": {
            "server": url, "certificate-authority-data": base64.b64encode(ca_pem.encode()).decode()}}],
        "users": [{"name": f"{cluster}-admin", "user": {"token": token}}],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": f"{cluster}-admin"}}],
        "current-context": cluster,
    }


# --------------------------------------------------------------------------------------- processes
def pid_alive(pid: int | None, expect: str | None = None) -> bool:
    """True if pid runs (not a zombie) and, when given, its command line contains `expect`."""
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                return False
        if expect:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if expect.encode() not in fh.read():
                    return False
    except (OSError, IndexError):
        return False
    return True


def spawn(argv: list[str], logfile: str, env: dict | None = None) -> int:
    """Start a detached process (own session, survives the CLI); return its pid."""
    with open(logfile, "ab") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True, env=env)
    return proc.pid


def stop_pid(pid: int, expect: str | None, name: str, timeout: float = 15.0) -> None:
    """SIGTERM the process we started (only if its cmdline still matches), SIGKILL after timeout."""
    if not pid_alive(pid, expect):
        return
    try:
        os.kill(pid, signal.SIGTERM)
        os.kill(pid, signal.SIGCONT)  # a suspended process can only act on SIGTERM once resumed
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            break
        try:  # reap if it is our child (only when run in-process, e.g. tests)
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.05)
    else:
        log(f"{name} (pid {pid}) ignored SIGTERM for {timeout:.0f}s: SIGKILL")
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        while pid_alive(pid):
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            time.sleep(0.05)


def tail(path: str, lines: int = 25) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return "".join(fh.readlines()[-lines:])
    except OSError:
        return ""


def ssl_context(ca_file: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=ca_file)
    return ctx


def http_ok(url: str, token: str | None, ctx: ssl.SSLContext | None, timeout: float = 2.0) -> bool:
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=timeout) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ssl.SSLError):
        return False


def wait_until(what: str, check, pid: int, expect: str, logfile: str, timeout: float, interval=0.1) -> None:
    """Wait for check() to be true; fail at once (with the log tail) when the process dies."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        if not pid_alive(pid, expect):
            raise FleetError(f"{what} exited before becoming ready; last log lines ({logfile}):\n{tail(logfile)}")
        if time.monotonic() > deadline:
            raise FleetError(f"{what} not ready after {timeout:.0f}s; last log lines ({logfile}):\n{tail(logfile)}")
        time.sleep(interval)


# ------------------------------------------------------------------------------------------------ up
def up(inventory: str, state_dir: str, with_simulator: bool = True) -> dict:
    t0 = time.monotonic()
    state_dir = os.path.abspath(state_dir)
    clusters, hub = read_inventory(inventory)
    existing = load_state(state_dir)
    if existing:
        names = sorted(c["name"] for c in existing["clusters"])
        alive = all(pid_alive(p["pid"], p["expect"]) for p in existing["processes"].values())
        if alive and names == sorted(c["name"] for c in clusters) and not _servers_answering(state_dir, existing):
            # a server that was just killed may still be shutting down: its pid lives, it does not serve
            log(f"state in {state_dir} has servers that do not answer /readyz: stopping them for a fresh fleet")
            down(state_dir, quiet=True)
            existing, alive = None, False
    if existing:
        if alive and names == sorted(c["name"] for c in clusters):
            log(f"already up in {state_dir}: reusing it (run 'down' first for a fresh fleet)")
            sim = existing.get("simulator") or {}
            if with_simulator and not pid_alive(sim.get("pid"), sim.get("expect", state_dir)):
                start_simulator(state_dir)
            print(state_dir)
            return load_state(state_dir)
        if alive:
            raise FleetError(f"a fleet with clusters {names} is already up in {state_dir}; "
                             f"run 'hack/local-fleet down --state-dir {state_dir}' first")
        log(f"stale state in {state_dir} (processes gone): cleaning it up")
        down(state_dir, quiet=True)

    assets = install_assets()
    apiserver_bin = os.path.join(assets, "kube-apiserver")
    etcd_bin = os.path.join(assets, "etcd")
    p = state_paths(state_dir)
    for d in ("kubeconfigs", "pki", "tokens", "logs"):
        os.makedirs(p[d], exist_ok=True)
    make_pki(p["pki"])
    with open(os.path.join(p["pki"], "ca.crt"), encoding="utf-8") as fh:
        ca_pem = fh.read()

    state: dict = {"state_dir": state_dir, "inventory": os.path.abspath(inventory), "hub": hub,
                   "assets": assets, "clusters": [], "processes": {}, "simulator": {},
                   "started_at": datetime.datetime.now(datetime.timezone.utc).isoformat()}
    # Write the state early so `down` can clean up whatever started, even if `up` fails midway.
    save_state(state_dir, state)
    try:
        t1 = time.monotonic()
        _start_git(state_dir, state, p)  # starts meanwhile: its readiness is checked after the servers'
        _start_registry(state)
        _start(state, clusters, hub, apiserver_bin, etcd_bin, ca_pem, p)
        _wait_git(state_dir, state)
        t2 = time.monotonic()
        log(f"etcd + {len(clusters)} kube-apiservers ready (/readyz), Git server {state['git']['url']} "
            f"in {t2 - t1:.1f}s")
        if with_simulator:
            # start it now: its imports and first lists overlap the CRD install (its watches retry
            # until the CRDs exist; it reports ready only once every watch runs)
            launch_simulator(state_dir)
        from . import crds
        n = crds.install(kubeconfig_path(state_dir, hub), DEFAULT_CRD_DIR)
        t3 = time.monotonic()
        log(f"{n} Flux CRDs (CEL rules stripped) Established on hub {hub} in {t3 - t2:.1f}s")
        pushed = _publish_charts(state_dir)
        t4 = time.monotonic()
        state = load_state(state_dir)
        state["crds"] = n
        state["timings"] = {"servers_ready_s": round(t2 - t1, 2), "crds_s": round(t3 - t2, 2),
                            "charts_s": round(t4 - t3, 2)}
        state["registry"]["pushed"] = pushed
        save_state(state_dir, state)
        if with_simulator:
            wait_simulator(state_dir)
    except BaseException:
        log("up failed: stopping what was started")
        down(state_dir, quiet=True)
        raise
    state = load_state(state_dir)
    state["up_seconds"] = round(time.monotonic() - t0, 2)
    save_state(state_dir, state)
    log(f"fleet up in {state['up_seconds']}s: hub {hub}, clusters "
        f"{', '.join(c['name'] for c in state['clusters'])}; {state.get('crds', 0)} CRDs on the hub")
    log(f"state directory: {state_dir}")
    print(state_dir)
    return state


def _start_git(state_dir: str, state: dict, p: dict) -> None:
    """The Git server (sshd on a free loopback port) with the fleet's sync repository."""
    try:
        facts = gitserver.prepare(state_dir, free_ports(1)[0])
    except gitserver.GitServerError as exc:
        raise FleetError(f"Git server: {exc}") from None
    slog = os.path.join(p["logs"], "sshd.log")
    pid = spawn(gitserver.argv(state_dir), slog)
    state["processes"]["sshd"] = {"pid": pid, "expect": facts["config"], "log": slog}
    state["git"] = facts
    save_state(state_dir, state)


def _wait_git(state_dir: str, state: dict) -> None:
    proc = state["processes"]["sshd"]
    pid, config, slog = proc["pid"], proc["expect"], proc["log"]
    try:
        gitserver.wait_ready(state_dir, lambda: pid_alive(pid, config))
    except gitserver.GitServerError as exc:
        raise FleetError(f"Git server: {exc}; last log lines ({slog}):\n{tail(slog)}") from None


def _servers_answering(state_dir: str, state: dict) -> bool:
    """True when etcd answers /health, every kube-apiserver /readyz (with its token) and the Git
    server serves the sync repository."""
    if "sshd" in state.get("processes", {}) and not gitserver.answers(state_dir):
        return False
    etcd_url = (state.get("etcd") or {}).get("url")
    if not etcd_url or not http_ok(f"{etcd_url}/health", None, None):
        return False
    ca = os.path.join(state_paths(state_dir)["pki"], "ca.crt")
    if not os.path.exists(ca):
        return False
    ctx = ssl_context(ca)
    for c in state.get("clusters") or []:
        try:
            with open(c["token_file"], encoding="utf-8") as fh:
                token = fh.read().split(",", 1)[0]
        except OSError:
            return False
        if not http_ok(f"{c['url']}/readyz", token, ctx, timeout=5):
            return False
    return True


def _seed_dir(key: str) -> str:
    cache = os.environ.get("C5C3_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "c5c3-gitops")
    return os.path.join(cache, "registry-seed", key)


def _start_registry(state: dict) -> None:
    """Spawn the OCI registry (storage seeded from the cache when the charts were pushed before)."""
    from . import charts, registry
    state_dir = state["state_dir"]
    try:
        helm_bin = registry.install_helm(ROOT)
        chart_list = charts.catalog_charts()
        key = charts.cache_key(chart_list)
        port = free_ports(1)[0]
        prep = registry.prepare(state_dir, port, _seed_dir(key))
    except registry.RegistryError as exc:
        raise FleetError(str(exc)) from exc
    rlog = registry.paths(state_dir)["log"]
    os.makedirs(os.path.dirname(rlog), exist_ok=True)
    pid = spawn(registry.argv(state_dir), rlog)
    state["processes"]["registry"] = {"pid": pid, "expect": prep["config"], "log": rlog}
    state["registry"] = {"url": registry.chart_url(port), "port": port, "config": prep["config"],
                         "seeded": prep["seeded"], "cache_key": key, "charts": len(chart_list)}
    state["helm"] = helm_bin
    save_state(state_dir, state)


def _publish_charts(state_dir: str) -> int:
    """Wait for the registry; push the generated charts it lacks; keep its storage as the seed."""
    from . import charts, registry
    state = load_state(state_dir)
    reg, proc = state["registry"], state["processes"]["registry"]
    wait_until("registry", lambda: registry.alive(reg["url"]), proc["pid"], proc["expect"], proc["log"], READY_TIMEOUT)
    t = time.monotonic()
    try:
        pushed = registry.publish(state_dir, state["helm"], charts.catalog_charts())
    except Exception as exc:  # noqa: BLE001 - helm's message is the useful part
        raise FleetError(f"pushing the test charts to {reg['url']} failed: {exc}") from exc
    if pushed:
        registry.save_seed(state_dir, _seed_dir(reg["cache_key"]))
        log(f"{pushed} test charts pushed to {reg['url']} with helm push in {time.monotonic() - t:.1f}s (cached now)")
    else:
        log(f"{reg['charts']} test charts in {reg['url']} (registry storage from the cache)")
    return pushed


def _etcd_data_dir(state_dir: str) -> str:
    """etcd data on tmpfs when /dev/shm exists (fsync-free, faster); the state dir holds a symlink."""
    link = state_paths(state_dir)["etcd"]
    shm = "/dev/shm"
    if os.environ.get("LOCAL_FLEET_ETCD_ON_DISK") != "1" and os.path.isdir(shm) and os.access(shm, os.W_OK):
        target = tempfile.mkdtemp(prefix="c5c3-local-fleet-etcd-", dir=shm)
        os.symlink(target, link)
        return target
    os.makedirs(link, exist_ok=True)
    return link


def _start(state, clusters, hub, apiserver_bin, etcd_bin, ca_pem, p) -> None:
    state_dir = state["state_dir"]
    ports = free_ports(2 + len(clusters))
    etcd_client, etcd_peer = ports[0], ports[1]
    etcd_log = os.path.join(p["logs"], "etcd.log")
    data_dir = _etcd_data_dir(state_dir)
    etcd_pid = spawn([
        etcd_bin, "--name", "local-fleet", "--data-dir", data_dir,
        "--listen-client-urls", f"http://127.0.0.1:{etcd_client}",
        "--advertise-client-urls", f"http://127.0.0.1:{etcd_client}",
        "--listen-peer-urls", f"http://127.0.0.1:{etcd_peer}",
        "--initial-advertise-peer-urls", f"http://127.0.0.1:{etcd_peer}",
        "--initial-cluster", f"local-fleet=http://127.0.0.1:{etcd_peer}",
        "--listen-metrics-urls", "", "--snapshot-count", "10000", "--quota-backend-bytes", str(4 << 30),
        "--log-level", "warn",
    ], etcd_log)
    state["processes"]["etcd"] = {"pid": etcd_pid, "expect": data_dir, "log": etcd_log}
    state["etcd"] = {"url": f"http://127.0.0.1:{etcd_client}", "data_dir": data_dir}
    save_state(state_dir, state)

    # kube-apiservers start in parallel; they retry etcd until it is up.
    pki = p["pki"]
    for c, port in zip(clusters, ports[2:]):
        name = c["name"]
        token = secrets.token_hex(24)
        token_file = os.path.join(p["tokens"], f"{name}.csv")
        with open(token_file, "w", encoding="utf-8") as fh:
            fh.write(f'{token},{name}-admin,{name}-admin,"system:masters"\n')
        os.chmod(token_file, 0o600)
        url = f"https://127.0.0.1:{port}"
        alog = os.path.join(p["logs"], f"kube-apiserver-{name}.log")
        argv = [
            apiserver_bin, "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            f"--secure-port={port}", "--insecure-port=0",
            f"--etcd-servers=http://127.0.0.1:{etcd_client}", f"--etcd-prefix=/local-fleet/{name}",
            f"--cert-dir={os.path.join(state_dir, 'pki', name)}",
            f"--tls-cert-file={pki}/server.crt", f"--tls-private-key-file={pki}/server.key",
            f"--client-ca-file={pki}/ca.crt", f"--token-auth-file={token_file}",
            "--authorization-mode=RBAC", "--anonymous-auth=false",
            f"--service-account-key-file={pki}/sa.pub", f"--service-account-signing-key-file={pki}/sa.key",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--api-audiences=https://kubernetes.default.svc.cluster.local",
            "--service-cluster-ip-range=10.0.0.0/24", "--allow-privileged=true", "--profiling=false",
            "--max-requests-inflight=1000", "--max-mutating-requests-inflight=500",
            "--enable-priority-and-fairness=false", "--event-ttl=1h", "--v=0",
            # local marker so `down` can recognise exactly this process
            f"--external-hostname=local-fleet-{name}",
        ]
        pid = spawn(argv, alog)
        state["processes"][f"kube-apiserver-{name}"] = {"pid": pid, "expect": token_file, "log": alog}
        state["clusters"].append({"name": name, "groups": c["groups"], "hub": name == hub, "url": url,
                                  "port": port, "token_file": token_file,
                                  "kubeconfig": kubeconfig_path(state_dir, name)})
        kc = kubeconfig_dict(name, url, ca_pem, token)
        kpath = kubeconfig_path(state_dir, name)
        with open(kpath, "w", encoding="utf-8") as fh:
            yaml.safe_dump(kc, fh, default_flow_style=False)
        os.chmod(kpath, 0o600)
        c["_token"] = token
    save_state(state_dir, state)

    etcd_url = f"http://127.0.0.1:{etcd_client}/health"
    wait_until("etcd", lambda: http_ok(etcd_url, None, None), etcd_pid, data_dir, etcd_log, READY_TIMEOUT)
    ctx = ssl_context(os.path.join(pki, "ca.crt"))
    pending = {c["name"]: c for c in clusters}
    deadline = time.monotonic() + READY_TIMEOUT
    while pending:
        for name in list(pending):
            c = pending[name]
            proc = state["processes"][f"kube-apiserver-{name}"]
            url = next(x["url"] for x in state["clusters"] if x["name"] == name)
            if http_ok(f"{url}/readyz", c["_token"], ctx, timeout=1.0):
                del pending[name]
                continue
            if not pid_alive(proc["pid"], proc["expect"]):
                raise FleetError(f"kube-apiserver of {name} exited; last log lines ({proc['log']}):\n{tail(proc['log'])}")
        if pending and time.monotonic() > deadline:
            name = next(iter(pending))
            lg = state["processes"][f"kube-apiserver-{name}"]["log"]
            raise FleetError(f"kube-apiserver of {name} not ready after {READY_TIMEOUT:.0f}s ({lg}):\n{tail(lg)}")
        if pending:
            time.sleep(0.1)
    for c in clusters:
        c.pop("_token", None)


# ------------------------------------------------------------------------------------- simulator
def start_simulator(state_dir: str) -> int:
    state = load_state(state_dir)
    if state is None:
        raise FleetError(f"no fleet in {state_dir}: run 'hack/local-fleet up' first")
    sim = state.get("simulator") or {}
    if pid_alive(sim.get("pid"), sim.get("expect", state_dir)):
        log(f"simulator already running (pid {sim['pid']})")
        return sim["pid"]
    launch_simulator(state_dir)
    return wait_simulator(state_dir)


def launch_simulator(state_dir: str) -> int:
    """Spawn the simulator process (detached) and record its pid; do not wait for it."""
    state = load_state(state_dir)
    slog = os.path.join(state_paths(state_dir)["logs"], "simulator.log")
    ready_file = os.path.join(state_dir, "simulator.ready")
    if os.path.exists(ready_file):
        os.unlink(ready_file)
    env = dict(os.environ)
    env["PYTHONPATH"] = HERE.rsplit(os.sep, 1)[0] + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    pid = spawn([sys.executable, "-m", "localfleet", "simulator", "run", "--state-dir", state_dir], slog, env=env)
    # `expect`: what the pid's command line must contain before we signal it (guards PID reuse)
    state["simulator"] = {"pid": pid, "expect": f"--state-dir\0{state_dir}\0", "log": slog}
    save_state(state_dir, state)
    return pid


def wait_simulator(state_dir: str) -> int:
    """Wait until the simulator's watches run (it writes simulator.ready); fail if it exits."""
    sim = load_state(state_dir)["simulator"]
    ready_file = os.path.join(state_dir, "simulator.ready")
    wait_until("simulator", lambda: os.path.exists(ready_file), sim["pid"], sim["expect"], sim["log"],
               READY_TIMEOUT, 0.05)
    log(f"simulator running (pid {sim['pid']}, log {sim['log']})")
    return sim["pid"]


def stop_simulator(state_dir: str) -> None:
    state = load_state(state_dir)
    if state is None:
        return
    sim = state.get("simulator") or {}
    if sim.get("pid"):
        stop_pid(sim["pid"], sim.get("expect", state_dir), "simulator")
        log(f"simulator (pid {sim['pid']}) stopped")
    state["simulator"] = {}
    save_state(state_dir, state)
    ready_file = os.path.join(state_dir, "simulator.ready")
    if os.path.exists(ready_file):
        os.unlink(ready_file)


# ---------------------------------------------------------------------------------------------- down
def down(state_dir: str, quiet: bool = False) -> None:
    state_dir = os.path.abspath(state_dir)
    state = load_state(state_dir)
    if state is None:
        if not quiet:
            log(f"no fleet in {state_dir}: nothing to stop")
        if os.path.isdir(state_dir) and os.path.exists(os.path.join(state_dir, "kubeconfigs")):
            shutil.rmtree(state_dir, ignore_errors=True)
        return
    sim = state.get("simulator") or {}
    if sim.get("pid"):
        stop_pid(sim["pid"], sim.get("expect"), "simulator")
    procs = state.get("processes", {})
    # apiservers first (in parallel), then etcd
    names = [n for n in procs if n != "etcd"]
    for n in names:
        if pid_alive(procs[n]["pid"], procs[n]["expect"]):
            try:
                os.kill(procs[n]["pid"], signal.SIGTERM)
            except ProcessLookupError:
                pass
    for n in names:
        stop_pid(procs[n]["pid"], procs[n]["expect"], n)
    if "etcd" in procs:
        stop_pid(procs["etcd"]["pid"], procs["etcd"]["expect"], "etcd")
    gitserver.cleanup(state_dir)
    data_dir = (state.get("etcd") or {}).get("data_dir")
    if data_dir and data_dir.startswith("/dev/shm/c5c3-local-fleet-etcd-"):
        shutil.rmtree(data_dir, ignore_errors=True)
    shutil.rmtree(state_dir, ignore_errors=True)
    if not quiet:
        stopped = [f"{n}={p['pid']}" for n, p in procs.items()]
        if sim.get("pid"):
            stopped.insert(0, f"simulator={sim['pid']}")
        log(f"stopped {', '.join(stopped)}; removed {state_dir}")


# -------------------------------------------------------------------------------------------- status
def status(state_dir: str) -> dict | None:
    state_dir = os.path.abspath(state_dir)
    state = load_state(state_dir)
    if state is None:
        return None
    ca = os.path.join(state_paths(state_dir)["pki"], "ca.crt")
    ctx = ssl_context(ca) if os.path.exists(ca) else None
    out = {"state_dir": state_dir, "hub": state["hub"], "clusters": [], "etcd": {}, "simulator": {}}
    for c in state["clusters"]:
        proc = state["processes"].get(f"kube-apiserver-{c['name']}", {})
        token = None
        try:
            with open(c["token_file"], encoding="utf-8") as fh:
                token = fh.read().split(",", 1)[0]
        except OSError:
            pass
        alive = pid_alive(proc.get("pid"), proc.get("expect"))
        ready = alive and ctx is not None and http_ok(f"{c['url']}/readyz", token, ctx, timeout=10)
        out["clusters"].append({"name": c["name"], "hub": c["hub"], "groups": c["groups"], "url": c["url"],
                                "pid": proc.get("pid"), "running": alive, "ready": ready,
                                "kubeconfig": c["kubeconfig"]})
    e = state["processes"].get("etcd", {})
    out["etcd"] = {"pid": e.get("pid"), "running": pid_alive(e.get("pid"), e.get("expect")),
                   "url": (state.get("etcd") or {}).get("url")}
    s = state.get("simulator") or {}
    out["simulator"] = {"pid": s.get("pid"), "running": pid_alive(s.get("pid"), s.get("expect")),
                        "log": s.get("log")}
    g = state["processes"].get("sshd")
    if g is not None:
        running = pid_alive(g.get("pid"), g.get("expect"))
        facts = state.get("git") or {}
        out["git"] = {"pid": g.get("pid"), "running": running, "url": facts.get("url"), "port": facts.get("port"),
                      "files": gitserver.paths(state_dir)["dir"], "log": g.get("log"),
                      "ready": running and gitserver.answers(state_dir)}
    r, rp = state.get("registry") or {}, state["processes"].get("registry", {})
    out["registry"] = {"pid": rp.get("pid"), "running": pid_alive(rp.get("pid"), rp.get("expect")),
                       "url": r.get("url"), "log": rp.get("log")}
    out["ready"] = (all(c["ready"] for c in out["clusters"]) and out["etcd"]["running"]
                    and out["simulator"]["running"] and out["registry"]["running"]
                    and (g is None or out["git"]["ready"]))
    return out
