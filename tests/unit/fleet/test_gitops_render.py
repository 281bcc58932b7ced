"""The render sink's file handling (plan/apply), without Ansible running."""
import json
import os

import pytest

from ansible_collections.c5c3.gitops.plugins.module_utils.fleet_model import build_fleet
from ansible_collections.c5c3.gitops.plugins.module_utils.gitops_tree import render_tree
from ansible_collections.c5c3.gitops.plugins.module_utils.gitops_writer import MANIFEST, RenderError, apply
from ansible_collections.c5c3.gitops.plugins.module_utils.gitops_writer import plan as _plan

from fleet_helpers import make_inventory
from tree_snapshot import snapshot as _snapshot


def plan(tree, dest, force=False):
    result = _plan(tree, dest, force)
    return result["created"], result["updated"], result["removed"], result["diffs"]


def _render(tree, dest, force=False):
    result = _plan(tree, dest, force)
    if result["changed"]:
        apply(tree, result)
    return result["created"], result["updated"], result["removed"], result["diffs"]


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
    # edited since the render: not what the collection wrote, so only with force
    with pytest.raises(RenderError, match="did not write.*keystone-operator.yaml"):
        plan(tree, dest)
    created, updated, removed, diffs = plan(tree, dest, force=True)
    assert (created, updated, removed) == ([], [path], [])
    assert "# hand edit" in diffs[0]["before"] and "# hand edit" not in diffs[0]["after"]
    _render(tree, dest, force=True)
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


# -- issue 12 §4: links, foreign files, atomic writes

def test_a_symlinked_subdirectory_is_refused_and_nothing_is_written(tree, tmp_path):
    dest = tmp_path / "repo"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    dest.mkdir()
    os.symlink(str(elsewhere), str(dest / "clusters"))
    with pytest.raises(RenderError, match="clusters is a symbolic link"):
        plan(tree, str(dest))
    assert os.listdir(str(elsewhere)) == [] and sorted(os.listdir(str(dest))) == ["clusters"]


def test_a_symlinked_file_is_refused(tree, tmp_path):
    dest = tmp_path / "repo"
    _render(tree, str(dest))
    target = tmp_path / "victim.txt"
    target.write_text("keep")
    rel = "clusters/management/hub/kustomizations.yaml"
    os.unlink(str(dest / rel))
    os.symlink(str(target), str(dest / rel))
    with pytest.raises(RenderError, match="kustomizations.yaml is a symbolic link"):
        _render(tree, str(dest), force=True)
    assert target.read_text() == "keep"


def test_dest_given_as_a_link_is_resolved(tree, tmp_path):
    real = tmp_path / "real"
    link = tmp_path / "link"
    real.mkdir()
    os.symlink(str(real), str(link))
    _render(tree, str(link))
    assert (real / MANIFEST).exists()


def test_a_hand_written_file_at_a_generated_path_is_not_overwritten(tree, tmp_path):
    dest = tmp_path / "repo"
    rel = "clusters/control-plane/hub/services/keystone-operator.yaml"
    (dest / os.path.dirname(rel)).mkdir(parents=True)
    (dest / rel).write_text("# mine, not generated\n")
    with pytest.raises(RenderError, match="1 file\\(s\\) the collection did not write.*keystone-operator.yaml"):
        plan(tree, str(dest))
    assert (dest / rel).read_text() == "# mine, not generated\n"
    assert not (dest / MANIFEST).exists()
    # identical content is simply adopted
    (dest / rel).write_text(tree[rel])
    created, updated, _r, _d = _render(tree, str(dest))
    assert rel not in created + updated


def test_a_file_edited_since_the_render_is_not_removed(catalog, tmp_path):
    dest = str(tmp_path / "repo")
    _render(render_tree(build_fleet(make_inventory(), catalog)), dest)
    rel = "clusters/storage/hub/services/prysm.yaml"
    with open(os.path.join(dest, rel), "a") as handle:
        handle.write("# kept by hand\n")
    hv = {"storage": {"gitops_component_overrides": {"prysm": {"enabled": False}}}}
    smaller = render_tree(build_fleet(make_inventory(host_vars=hv), catalog))
    with pytest.raises(RenderError, match="prysm.yaml"):
        plan(smaller, dest)
    assert os.path.exists(os.path.join(dest, rel))


def test_the_manifest_records_a_hash_per_file(tree, tmp_path):
    import hashlib
    dest = tmp_path / "repo"
    _render(tree, str(dest))
    doc = json.loads((dest / MANIFEST).read_text())
    rel = sorted(tree)[0]
    assert doc["sha256"][rel] == hashlib.sha256(tree[rel].encode("utf-8")).hexdigest()


def test_a_manifest_without_hashes_still_owns_its_files(tree, tmp_path):
    dest = tmp_path / "repo"
    _render(tree, str(dest))
    (dest / MANIFEST).write_text(json.dumps({"files": sorted(tree)}))
    rel = "clusters/control-plane/hub/services/keystone-operator.yaml"
    (dest / rel).write_text("# older render\n")
    assert plan(tree, str(dest))[1] == [rel]


def test_an_io_error_midway_leaves_the_previous_tree_intact(catalog, tmp_path):
    dest = str(tmp_path / "repo")
    old_tree = render_tree(build_fleet(make_inventory(), catalog))
    _render(old_tree, dest)
    (tmp_path / "repo" / "README.md").write_text("mine\n")
    before = _snapshot(dest)
    hv = {"control-plane": {"gitops_component_overrides": {"keystone-operator": {"version": ">=0.2.0 <0.3.0"}}},
          "storage": {"gitops_component_overrides": {"prysm": {"enabled": False}}}}
    layout = {"management": ["management"], "control_plane": ["control-plane", "cp-2"],
              "hypervisor": ["hypervisor"], "storage": ["storage"]}
    new_tree = render_tree(build_fleet(make_inventory(layout=layout, host_vars=hv), catalog))
    result = _plan(new_tree, dest)
    assert result["created"] and result["updated"] and result["removed"]
    calls = []

    def flaky_rename(src, dst):
        calls.append(dst)
        if len(calls) == 7:
            raise OSError(28, "No space left on device")
        os.rename(src, dst)

    with pytest.raises(OSError, match="No space left"):
        apply(new_tree, result, _rename=flaky_rename)
    assert _snapshot(dest) == before
    assert not [d for d in os.listdir(dest) if d.startswith(".c5c3-render-stage-")]
    assert not os.path.exists(os.path.join(dest, "clusters", "cp-2"))
    # and the same plan then goes through
    _render(new_tree, dest)
    assert plan(new_tree, dest)[:3] == ([], [], [])


def test_a_write_error_while_staging_touches_nothing(tree, tmp_path, monkeypatch):
    dest = str(tmp_path / "repo")
    _render(tree, dest)
    before = _snapshot(dest)
    changed = dict(tree)
    rel = "clusters/control-plane/hub/services/keystone-operator.yaml"
    changed[rel] = tree[rel] + "# new\n"
    result = _plan(changed, dest)
    import builtins
    real_open = builtins.open

    def failing_open(path, mode="r", *args, **kwargs):
        if "w" in mode and ".c5c3-render-stage-" in str(path):
            raise OSError(5, "Input/output error")
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", failing_open)
    with pytest.raises(OSError, match="Input/output error"):
        apply(changed, result)
    monkeypatch.undo()
    assert _snapshot(dest) == before
