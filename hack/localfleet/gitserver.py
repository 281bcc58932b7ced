"""The local fleet's Git server: Debian's openssh-server with a config of its own, on 127.0.0.1.

`up` starts one sshd per fleet (own config, host key, free port, pid file, log) that lets exactly
one account in: GIT_USER, a system user whose login shell is git-shell (created once, idempotently),
authenticated by a generated deploy key. It serves one bare repository, the sync repository of the
FluxInstance. The account must be able to reach the repository and its authorized_keys (sshd reads
that file as the user, with StrictModes), and state directories often live below private
directories (/root, pytest's tmp), so those two live in GIT_ROOT/<fleet id>/; `down` removes it.

Files for the users of the server (contract with the publish sink and inventories/local), in
<state>/git/:
    identity        private deploy key (0600)      identity.pub   its public half (authorized)
    known_hosts     the sshd host key for [127.0.0.1]:PORT
    url             ssh URL of the bare sync repository
The repository starts empty: the first commit comes from the publish sink; until the branch exists
the source-controller reports the GitRepository not ready (the ref is not found).
"""
from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import subprocess
import time

GIT_USER = os.environ.get("LOCAL_FLEET_GIT_USER", "c5c3-git")
GIT_ROOT = os.environ.get("LOCAL_FLEET_GIT_ROOT", "/var/lib/c5c3-local-fleet/git")
SSHD = os.environ.get("LOCAL_FLEET_SSHD", "/usr/sbin/sshd")
GIT_SHELL_CANDIDATES = ("/usr/bin/git-shell", "/usr/lib/git-core/git-shell")
REPO_NAME = "sync.git"
BRANCH = "main"


class GitServerError(Exception):
    pass


def paths(state_dir: str) -> dict:
    gdir = os.path.join(state_dir, "git")
    fid = hashlib.sha256(os.path.abspath(state_dir).encode()).hexdigest()[:16]
    base = os.path.join(GIT_ROOT, fid)
    return {"dir": gdir, "identity": os.path.join(gdir, "identity"), "identity_pub": os.path.join(gdir, "identity.pub"),
            "known_hosts": os.path.join(gdir, "known_hosts"), "url": os.path.join(gdir, "url"),
            "config": os.path.join(gdir, "sshd_config"), "host_key": os.path.join(gdir, "ssh_host_ed25519_key"),
            "pid_file": os.path.join(gdir, "sshd.pid"), "base": base,
            "authorized_keys": os.path.join(base, "authorized_keys"), "repo": os.path.join(base, REPO_NAME)}


def _run(argv, **kw):
    proc = subprocess.run(argv, check=False, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    if proc.returncode != 0:
        raise GitServerError(f"{' '.join(argv[:3])} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def git_shell() -> str:
    for p in GIT_SHELL_CANDIDATES:
        if os.access(p, os.X_OK):
            return p
    raise GitServerError("git-shell not found (install git: bindep.txt)")


def ensure_user() -> pwd.struct_passwd:
    """The git account: a system user whose shell is git-shell, not locked for public-key login."""
    shell = git_shell()
    try:
        pw = pwd.getpwnam(GIT_USER)
    except KeyError:
        if os.geteuid() != 0:
            raise GitServerError(f"the local Git server needs the system user {GIT_USER!r}; creating it needs root") from None
        proc = subprocess.run(["useradd", "--system", "--shell", shell, "--home-dir", GIT_ROOT, "--no-create-home",
                               "--comment", "c5c3 local fleet git (git-shell only)", GIT_USER],
                              check=False, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if proc.returncode not in (0, 9):  # 9: created meanwhile by a concurrent `up`
            raise GitServerError(f"useradd {GIT_USER} failed: {proc.stderr.strip()}")
        pw = pwd.getpwnam(GIT_USER)
    if pw.pw_shell != shell:
        raise GitServerError(f"user {GIT_USER!r} exists with shell {pw.pw_shell}, not {shell}: refusing to serve git as it")
    os.makedirs(GIT_ROOT, mode=0o755, exist_ok=True)
    if pw.pw_dir != GIT_ROOT:  # git-shell starts in the home directory
        _run(["usermod", "-d", GIT_ROOT, GIT_USER])
        pw = pwd.getpwnam(GIT_USER)
    # useradd leaves the password '!' (locked); sshd without PAM refuses locked accounts even for
    # keys. '*' means "no password" without locking.
    with open("/etc/shadow", encoding="utf-8") as fh:
        locked = any(line.split(":")[0] == GIT_USER and line.split(":")[1].startswith("!") for line in fh)
    if locked:
        _run(["usermod", "-p", "*", GIT_USER])
    return pw


def _keygen(path: str, comment: str) -> None:
    if not os.path.exists(path):
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path])
    os.chmod(path, 0o600)


def prepare(state_dir: str, port: int) -> dict:
    """Keys, config, account, bare repository and the contract files; returns the server's facts."""
    if not os.access(SSHD, os.X_OK):
        raise GitServerError(f"{SSHD} not found: install openssh-server (bindep.txt; hack/bootstrap installs it)")
    p = paths(state_dir)
    pw = ensure_user()
    os.makedirs(p["dir"], mode=0o700, exist_ok=True)
    os.makedirs(p["base"], mode=0o755, exist_ok=True)
    os.chmod(p["base"], 0o755)
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    _keygen(p["host_key"], "local-fleet-git-host")
    _keygen(p["identity"], "local-fleet-deploy-key")
    with open(p["identity_pub"], encoding="utf-8") as fh:
        pub = fh.read().strip()
    with open(p["authorized_keys"], "w", encoding="utf-8") as fh:
        fh.write(f"restrict {pub}\n")
    os.chmod(p["authorized_keys"], 0o644)
    with open(p["host_key"] + ".pub", encoding="utf-8") as fh:
        host_pub = " ".join(fh.read().split()[:2])
    with open(p["known_hosts"], "w", encoding="utf-8") as fh:
        fh.write(f"[127.0.0.1]:{port} {host_pub}\n")
    os.chmod(p["known_hosts"], 0o644)
    if not os.path.isdir(p["repo"]):
        _run(["git", "init", "-q", "--bare", "--initial-branch", BRANCH, p["repo"]])
        for root, dirs, files in os.walk(p["repo"]):
            for n in dirs + files:
                os.chown(os.path.join(root, n), pw.pw_uid, pw.pw_gid)
        os.chown(p["repo"], pw.pw_uid, pw.pw_gid)
    url = f"ssh://{GIT_USER}@127.0.0.1:{port}{p['repo']}"
    with open(p["url"], "w", encoding="utf-8") as fh:
        fh.write(url + "\n")
    config = f"""# sshd of the local fleet's Git server (hack/localfleet/gitserver.py); not the system's sshd
Port {port}
ListenAddress 127.0.0.1
HostKey {p['host_key']}
PidFile {p['pid_file']}
AuthorizedKeysFile {p['authorized_keys']}
AllowUsers {GIT_USER}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
UsePAM no
StrictModes yes
PermitTTY no
AllowTcpForwarding no
AllowAgentForwarding no
AllowStreamLocalForwarding no
X11Forwarding no
PermitTunnel no
PermitUserEnvironment no
PrintMotd no
# many GitRepositories fetch at once on a loaded machine: do not drop unauthenticated connections
MaxStartups 100:30:200
LoginGraceTime 60
Subsystem sftp none
LogLevel VERBOSE
"""
    with open(p["config"], "w", encoding="utf-8") as fh:
        fh.write(config)
    os.chmod(p["config"], 0o600)
    _run([SSHD, "-t", "-f", p["config"]])
    return {"port": port, "url": url, "repo": p["repo"], "base": p["base"], "config": p["config"],
            "dir": p["dir"], "user": GIT_USER}


def argv(state_dir: str) -> list[str]:
    """sshd in the foreground (-D, so the pid we record is sshd's), logging to stderr (-e)."""
    return [SSHD, "-D", "-e", "-f", paths(state_dir)["config"]]


def git_env(state_dir: str, identity: str | None = None, known_hosts: str | None = None) -> dict:
    p = paths(state_dir)
    ssh = (f"ssh -i {identity or p['identity']} -o IdentitiesOnly=yes -o BatchMode=yes "
           f"-o StrictHostKeyChecking=yes -o UserKnownHostsFile={known_hosts or p['known_hosts']} "
           f"-o GlobalKnownHostsFile=/dev/null -o ConnectTimeout=5")
    return dict(os.environ, GIT_SSH_COMMAND=ssh, GIT_TERMINAL_PROMPT="0")


def answers(state_dir: str) -> bool:
    """The server serves the repository to the deploy key, host key checked (git ls-remote)."""
    p = paths(state_dir)
    try:
        with open(p["url"], encoding="utf-8") as fh:
            url = fh.read().strip()
    except OSError:
        return False
    proc = subprocess.run(["git", "ls-remote", url], check=False, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          env=git_env(state_dir), timeout=20)
    return proc.returncode == 0


def wait_ready(state_dir: str, alive, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not answers(state_dir):
        if not alive():
            raise GitServerError("sshd exited before serving the repository")
        if time.monotonic() > deadline:
            raise GitServerError(f"git ls-remote over ssh did not succeed within {timeout:.0f}s")
        time.sleep(0.1)


def cleanup(state_dir: str) -> None:
    """Remove what lives outside the state directory (the repository and authorized_keys)."""
    base = paths(state_dir)["base"]
    if base.startswith(GIT_ROOT + os.sep) and os.path.isdir(base):
        shutil.rmtree(base, ignore_errors=True)
