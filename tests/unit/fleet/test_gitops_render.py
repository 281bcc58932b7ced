"""The render sink's file handling (plan/apply), without Ansible running."""
import json
import os

import pytest

from ansible_collections.c5c3.gitops.plugins.module_utils.fleet_model import build_fleet
from ansible_collections.c5c3.gitops.plugins.module_utils.gitops_tree import render_tree
from ansible_collections.c5c3.gitops.plugins.modules.gitops_render import MANIFEST, apply_plan, plan

from fleet_helpers import make_inventory


def _snapshot(root):
    out = {}
    for base, _dirs, files in os.walk(root):
        for f in files:
            p = os.path.join(base, f)
            with open(p, "rb") as handle:
                out[os.path.relpath(p, root)] = handle.read()
    return out


def _render(tree, dest):
    created, updated, removed, diffs = plan(tree, dest)
    apply_plan(tree, dest, created, updated, removed)
    return created, updated, removed, diffs


@pytest.fixture
def tree(catalog):
    return render_tree(build_fleet(make_inventory(), catalog))


def test_first_render_creates_everything_then_nothing_changes(tree, tmp_path):
    dest = str(tmp_path / "repo")
    created, updated, removed, _unused = _render(tree, dest)
    assert sorted(created) == sorted(tree) and not updated and not removed
    before = _snapshot(dest)
    assert set(before) == set(tree) | {MANIFEST}
    assert plan(tree, dest)[:3] == ([], [], [])
    _render(tree, dest)
    assert _snapshot(dest) == before


def test_plan_writes_nothing(tree, tmp_path):
    dest = str(tmp_path / "repo")
    created, _u, _r, diffs = plan(tree, dest)
    assert created and not os.path.exists(dest)
    assert diffs[0]["before_header"] == "/dev/null"


def test_changed_file_is_updated_with_a_diff(tree, tmp_path):
    dest = str(tmp_path / "repo")
    _render(tree, dest)
    path = "clusters/control-plane/hub/services/keystone-operator.yaml"
    with open(os.path.join(dest, path), "a") as handle:
        handle.write("# hand edit\n")
    created, updated, removed, diffs = plan(tree, dest)
    assert (created, updated, removed) == ([], [path], [])
    assert "# hand edit" in diffs[0]["before"] and "# hand edit" not in diffs[0]["after"]
    _render(tree, dest)
    assert plan(tree, dest)[:3] == ([], [], [])


def test_files_no_longer_generated_are_removed_but_foreign_files_kept(catalog, tmp_path):
    dest = str(tmp_path / "repo")
    full = render_tree(build_fleet(make_inventory(), catalog))
    _render(full, dest)
    with open(os.path.join(dest, "README.md"), "w") as handle:
        handle.write("mine\n")
    hv = {"storage": {"gitops_component_overrides": {"prysm": {"enabled": False}}}}
    smaller = render_tree(build_fleet(make_inventory(host_vars=hv), catalog))
    created, updated, removed, _unused = _render(smaller, dest)
    assert removed == ["clusters/storage/hub/services/prysm.yaml"]
    assert "clusters/storage/hub/services/kustomization.yaml" in updated and not created
    assert not os.path.exists(os.path.join(dest, removed[0]))
    assert os.path.exists(os.path.join(dest, "README.md"))
    with open(os.path.join(dest, MANIFEST)) as handle:
        assert json.load(handle)["files"] == sorted(smaller)


def test_removal_prunes_empty_directories(catalog, tmp_path):
    dest = str(tmp_path / "repo")
    _render(render_tree(build_fleet(make_inventory(), catalog)), dest)
    hv = {"storage": {"gitops_component_overrides": {"prysm": {"enabled": False}, "rook-ceph-cluster": {"enabled": False}}}}
    _render(render_tree(build_fleet(make_inventory(host_vars=hv), catalog)), dest)
    assert not os.path.exists(os.path.join(dest, "clusters/storage/hub/services"))
    assert os.path.isdir(os.path.join(dest, "clusters/storage/hub"))


def test_tampered_manifest_cannot_delete_outside_dest(tree, tmp_path):
    dest = tmp_path / "repo"
    outside = tmp_path / "precious.txt"
    outside.write_text("keep")
    _render(tree, str(dest))
    (dest / MANIFEST).write_text(json.dumps({"files": ["../precious.txt", str(outside)]}))
    _render(tree, str(dest))
    assert outside.read_text() == "keep"
