"""hack/release on a temporary clone: refusals (dirty tree, existing tag, version not newer), the
dry run (changes nothing), --execute (changelog commit + tag) and --from-tag (CI's build).

Run by the build stage of hack/test (it builds and installs the collection three times)."""
import os
import shutil
import subprocess

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def git(cwd, *args):
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com"] + list(args), cwd=cwd,
                          check=True, stdout=subprocess.PIPE, universal_newlines=True).stdout.strip()


def release(clone, *args):
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@example.com", ANSIBLE_NOCOLOR="1")
    return subprocess.run([os.path.join(clone, "hack", "release")] + list(args), cwd=clone, env=env, timeout=1200,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)


def set_version(clone, version):
    path = os.path.join(clone, "galaxy.yml")
    with open(path) as handle:
        text = handle.read()
    old = yaml.safe_load(text)["version"]
    with open(path, "w") as handle:
        handle.write(text.replace("version: %s" % old, "version: %s" % version, 1))


@pytest.fixture
def clone(tmp_path):
    path = str(tmp_path / "clone")
    git(ROOT, "clone", "-q", "--no-hardlinks", ROOT, path)
    if os.path.isdir(os.path.join(ROOT, ".venv")):
        os.symlink(os.path.join(ROOT, ".venv"), os.path.join(path, ".venv"))
    subprocess.run([os.path.join(path, "hack", "collection-link")], check=True, stdout=subprocess.DEVNULL)
    for tag in git(path, "tag", "--list").split():
        git(path, "tag", "-d", tag)
    set_version(path, "0.1.0")
    git(path, "commit", "-q", "--allow-empty", "-am", "test: version 0.1.0")
    return path


def test_refusals(clone):
    with open(os.path.join(clone, "stray.txt"), "w") as handle:
        handle.write("x")
    out = release(clone)
    assert out.returncode == 1 and "not clean" in out.stdout, out.stdout
    os.unlink(os.path.join(clone, "stray.txt"))
    git(clone, "tag", "v0.1.0")
    out = release(clone)
    assert out.returncode == 1 and "tag v0.1.0 exists already" in out.stdout, out.stdout
    set_version(clone, "0.0.9")
    git(clone, "commit", "-qam", "downgrade")
    out = release(clone)
    assert out.returncode == 1 and "0.0.9 is not newer than the last tag v0.1.0" in out.stdout, out.stdout
    out = release(clone, "--from-tag")
    assert out.returncode == 1 and "HEAD is not tagged v0.0.9" in out.stdout, out.stdout


@pytest.mark.skipif(not shutil.which("git"), reason="needs git")
def test_dry_run_execute_and_from_tag(clone):
    head = git(clone, "rev-parse", "HEAD")
    out = release(clone)
    assert out.returncode == 0, out.stdout
    assert "dry run passed" in out.stdout and "ansible-doc documented" in out.stdout
    assert git(clone, "rev-parse", "HEAD") == head and git(clone, "status", "--porcelain") == ""
    assert git(clone, "tag", "--list") == ""

    out = release(clone, "--execute")
    assert out.returncode == 0, out.stdout
    assert git(clone, "log", "-1", "--format=%s") == "Release 0.1.0"
    assert git(clone, "tag", "--points-at", "HEAD") == "v0.1.0"
    with open(os.path.join(clone, "CHANGELOG.rst")) as handle:
        assert "v0.1.0" in handle.read()
    assert not [f for f in os.listdir(os.path.join(clone, "changelogs", "fragments")) if f.endswith(".yml")]

    out = release(clone, "--from-tag")
    assert out.returncode == 0, out.stdout
    assert os.path.isfile(os.path.join(clone, "build", "c5c3-gitops-0.1.0.tar.gz"))
    # after the release, the same version is refused
    out = release(clone)
    assert out.returncode == 1 and "tag v0.1.0 exists already" in out.stdout
