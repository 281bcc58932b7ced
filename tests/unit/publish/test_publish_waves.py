"""One commit per rollout wave (issue 10, git mode): the publish sink builds the tree after wave N
on the files the collection wrote at the branch's head, so later waves keep what they ran."""
import os
import sys

import pytest
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "fleet"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "waves"))

from ansible_collections.c5c3.gitops.plugins.module_utils import waves  # noqa: E402
from ansible_collections.c5c3.gitops.plugins.module_utils.gitops_tree import render_tree  # noqa: E402

from test_git_publish import log, publish, sh  # noqa: E402
from test_waves import NEW, OLD  # noqa: E402 (two regions; NEW bumps mariadb-operator of the control planes)


@pytest.fixture
def remote(tmp_path):
    bare = tmp_path / "fleet.git"
    sh("git", "init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    return "file://%s" % bare


def _release_version(remote_url, cluster):
    git_dir = remote_url[len("file://"):]
    for path in sh("git", "--git-dir", git_dir, "ls-tree", "-r", "--name-only", "main").splitlines():
        if not path.endswith(".yaml"):
            continue
        for doc in yaml.safe_load_all(sh("git", "--git-dir", git_dir, "show", "main:%s" % path)):
            if isinstance(doc, dict) and doc.get("kind") == "HelmRelease" and doc["metadata"]["name"] == "mariadb-operator" \
                    and doc["metadata"]["namespace"] == cluster:
                return doc["spec"]["chart"]["spec"]["version"]
    raise AssertionError("no mariadb-operator HelmRelease of %s in the repository" % cluster)


def test_each_wave_is_one_commit_and_later_waves_keep_their_content(remote, tmp_path):
    publish(remote, render_tree(OLD), tmp_path)
    old = _release_version(remote, "control-plane-eu-2")
    assert old != "0.31.0" and _release_version(remote, "control-plane-eu-1") == old

    after = {}
    first = publish(remote, waves.tree_after_wave(NEW, 0, render_tree, after), tmp_path)
    assert first["pushed"] and len(log(remote)) == 2
    assert _release_version(remote, "control-plane-eu-1") == "0.31.0"
    assert _release_version(remote, "control-plane-eu-2") == old  # wave 1 not yet
    assert [c for c in first["objects"]["changed"] if c["name"] == "mariadb-operator"] == [
        {"cluster": "control-plane-eu-1", "kind": "HelmRelease", "namespace": "control-plane-eu-1", "name": "mariadb-operator"}]
    # the fleet to gate on is the fleet after wave 0
    hr = [e for e in after["fleet"]["objects"] if e["object"]["kind"] == "HelmRelease"
          and e["object"]["metadata"]["name"] == "mariadb-operator"]
    assert {e["object"]["metadata"]["namespace"]: e["object"]["spec"]["chart"]["spec"]["version"] for e in hr} == {
        "control-plane-eu-1": "0.31.0", "control-plane-eu-2": old}

    second = publish(remote, waves.tree_after_wave(NEW, 1, render_tree, {}), tmp_path)
    assert second["pushed"] and len(log(remote)) == 3
    assert _release_version(remote, "control-plane-eu-2") == "0.31.0"
    # the last wave's tree is the whole fleet's: nothing left to commit
    again = publish(remote, render_tree(NEW), tmp_path)
    assert not again["changed"] and len(log(remote)) == 3
    # a wave already at target commits nothing (a re-run after a halt continues where it stopped)
    assert not publish(remote, waves.tree_after_wave(NEW, 0, render_tree, {}), tmp_path)["changed"]


def test_a_wave_the_fleet_does_not_have_fails_before_git():
    with pytest.raises(waves.WaveError, match=r"^wave 7 is not a wave of the fleet \(waves: 0, 1\)$"):
        waves.tree_after_wave(NEW, 7, render_tree, {})
