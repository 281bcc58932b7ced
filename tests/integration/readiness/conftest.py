"""Fixtures of the gate's integration tests: a hub API server and a way to play its controller.

The tests write Flux status themselves (the status subresource, like a controller does) so that
every condition appears at a moment the test knows; that is what "fail within 2 s of Stalled"
is measured against. They therefore need a hub *without* the Flux simulator, which would
race the test's writes: by default a private fleet is started with --no-simulator under /tmp and
brought down afterwards; GATE_FLEET_STATE=<state dir> reuses a running simulator-free fleet.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from hubkit import Hub  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
FLEET = os.path.join(ROOT, "hack", "local-fleet")


@pytest.fixture(scope="session")
def gate_fleet_state():
    given = os.environ.get("GATE_FLEET_STATE")
    if given:
        yield given
        return
    state = tempfile.mkdtemp(prefix="gate-it-", dir="/tmp")
    up = subprocess.run([FLEET, "up", "--state-dir", state, "--no-simulator"], cwd=ROOT,
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    if up.returncode != 0:
        subprocess.run([FLEET, "down", "--state-dir", state], cwd=ROOT, check=False)
        shutil.rmtree(state, ignore_errors=True)
        pytest.fail("hack/local-fleet up failed:\n%s" % up.stdout[-3000:])
    try:
        yield state
    finally:
        subprocess.run([FLEET, "down", "--state-dir", state], cwd=ROOT,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="session")
def hub(gate_fleet_state):
    with open(os.path.join(gate_fleet_state, "state.json")) as handle:
        state = json.load(handle)
    hub_name = state["hub"] if isinstance(state["hub"], str) else state["hub"]["name"]
    return Hub(os.path.join(gate_fleet_state, "kubeconfigs", "%s.yaml" % hub_name))


@pytest.fixture
def ns(hub):
    """A fresh namespace per test, so tests never see each other's objects."""
    name = "gate-" + uuid.uuid4().hex[:8]
    hub.create_namespace(name)
    return name
