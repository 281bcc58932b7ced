"""Shared fixtures of the integration tests: the local fleet (real kube-apiservers + Flux simulator).

`local_fleet` (session scope) brings the fleet up once per test session with `hack/local-fleet up`
in a private state directory and tears it down at the end - or, when LOCAL_FLEET_STATE points at
the state directory of a running fleet, reuses that one and leaves it running.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOCAL_FLEET = os.path.join(ROOT, "hack", "local-fleet")
DEFAULT_INVENTORY = os.path.join(ROOT, "inventories", "local")


class LocalFleet:
    """A running local fleet: state_dir, clusters (names), hub (name), kubeconfig(cluster) path."""

    def __init__(self, state_dir: str, started: bool):
        self.state_dir = state_dir
        self.started = started
        with open(os.path.join(state_dir, "state.json"), encoding="utf-8") as fh:
            self.state = json.load(fh)
        self.hub = self.state["hub"]
        self.clusters = [c["name"] for c in self.state["clusters"]]
        self.urls = {c["name"]: c["url"] for c in self.state["clusters"]}

    @property
    def spokes(self) -> list[str]:
        return [c for c in self.clusters if c != self.hub]

    def kubeconfig(self, cluster: str) -> str:
        if cluster not in self.clusters:
            raise KeyError(f"no cluster {cluster!r} in the local fleet (clusters: {self.clusters})")
        return os.path.join(self.state_dir, "kubeconfigs", f"{cluster}.yaml")

    def api_client(self, cluster: str | None = None):
        """A kubernetes ApiClient for a cluster (default: the hub)."""
        from kubernetes import config
        return config.new_client_from_config(config_file=self.kubeconfig(cluster or self.hub))

    def status(self) -> dict:
        proc = run_local_fleet("status", "--json", "--state-dir", self.state_dir, check=False)
        return json.loads(proc.stdout)

    def __repr__(self) -> str:
        return f"LocalFleet(state_dir={self.state_dir!r}, hub={self.hub!r}, clusters={self.clusters!r})"


def run_local_fleet(*args, check=True, env=None, timeout=1800) -> subprocess.CompletedProcess:
    e = dict(os.environ)
    e.setdefault("LOCAL_FLEET_PYTHON", sys.executable)
    e.update(env or {})
    proc = subprocess.run([LOCAL_FLEET, *args], check=False, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=e, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"hack/local-fleet {' '.join(args)} failed ({proc.returncode}):\n"
                           f"{proc.stdout}\n{proc.stderr}")
    return proc


def _running(state_dir: str) -> bool:
    if not os.path.exists(os.path.join(state_dir, "state.json")):
        return False
    proc = run_local_fleet("status", "--json", "--state-dir", state_dir, check=False)
    try:
        return bool(json.loads(proc.stdout).get("ready"))
    except ValueError:
        return False


@pytest.fixture(scope="session")
def local_fleet():
    reuse = os.environ.get("LOCAL_FLEET_STATE")
    if reuse and _running(os.path.abspath(reuse)):
        yield LocalFleet(os.path.abspath(reuse), started=False)
        return
    if reuse:
        state_dir = os.path.abspath(reuse)
    else:
        os.makedirs(os.path.join(ROOT, ".cache"), exist_ok=True)
        state_dir = tempfile.mkdtemp(prefix="local-fleet-pytest-", dir=os.path.join(ROOT, ".cache"))
        os.rmdir(state_dir)  # `up` creates it
    inventory = os.environ.get("LOCAL_FLEET_INVENTORY", DEFAULT_INVENTORY)
    try:
        run_local_fleet("up", "--inventory", inventory, "--state-dir", state_dir)
    except RuntimeError as exc:
        run_local_fleet("down", "--state-dir", state_dir, check=False)
        pytest.fail(f"could not bring the local fleet up: {exc}", pytrace=False)
    fleet = LocalFleet(state_dir, started=True)
    try:
        yield fleet
    finally:
        run_local_fleet("down", "--state-dir", state_dir, check=False)
