"""The publish sink against real local bare repositories (file://), git CLI as in production."""
import os
import re
import stat
import subprocess

import pytest

from ansible_collections.c5c3.gitops.plugins.module_utils import git_publish as gp
from ansible_collections.c5c3.gitops.plugins.module_utils.gitops_writer import MANIFEST

AUTHOR = {"name": "c5c3 bot", "email": "bot@example.invalid"}
HR = """apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: keystone-operator
  namespace: control-plane
  labels:
    gitops.c5c3.io/cluster: control-plane
spec:
  chart:
    spec:
      version: {version}
"""


def _env():
    env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull,
               GIT_AUTHOR_NAME="human", GIT_AUTHOR_EMAIL="h@example.invalid",
               GIT_COMMITTER_NAME="human", GIT_COMMITTER_EMAIL="h@example.invalid")
    return env


def sh(*argv, **kw):
    return subprocess.run(list(argv), check=True, capture_output=True, text=True, env=_env(), **kw).stdout.strip()


class Runner(object):
    """run() for publish(): a subprocess per call, recording argv and env; hooks per subcommand."""

    def __init__(self):
        self.calls = []
        self.before = {}  # git subcommand -> callable run before it

    def __call__(self, argv, cwd=None, env=None, data=None):
        self.calls.append((list(argv), dict(env or {})))
        sub = next(a for a in argv[1:] if not a.startswith("-") and "=" not in a)
        hook = self.before.get(sub)
        if hook:
            hook()
        full = dict(os.environ)
        full.update(env or {})
        p = subprocess.run(argv, cwd=cwd, env=full, input=data, capture_output=True, text=True, check=False)
        return p.returncode, p.stdout, p.stderr

    def subcommands(self):
        return [next(a for a in argv[1:] if not a.startswith("-") and "=" not in a) for argv, _e in self.calls]


@pytest.fixture
def remote(tmp_path):
    bare = tmp_path / "fleet.git"
    sh("git", "init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    return "file://%s" % bare


def tree(version="1.0.0", extra=None):
    out = {
        "clusters/control-plane/hub/services/keystone-operator.yaml": HR.format(version=version),
        "clusters/control-plane/hub/services/kustomization.yaml": "resources: [keystone-operator.yaml]\n",
    }
    out.update(extra or {})
    return out


def log(remote, ref="main"):
    return sh("git", "--git-dir", remote[len("file://"):], "log", "--format=%H %s", ref).splitlines()


def show(remote, path, ref="main"):
    return sh("git", "--git-dir", remote[len("file://"):], "show", "%s:%s" % (ref, path))


def publish(remote, t, tmp_path, run=None, **kw):
    kw.setdefault("workdir", str(tmp_path / "work"))
    return gp.publish(run or Runner(), remote, kw.pop("ref", "refs/heads/main"), t, author=AUTHOR, **kw)


def human_commit(remote, tmp_path, files, name="human"):
    clone = str(tmp_path / ("clone-" + name))
    if not os.path.isdir(clone):
        sh("git", "clone", "--quiet", remote, clone)
    sh("git", "-C", clone, "pull", "--quiet", "origin", "main")
    for path, text in files.items():
        full = os.path.join(clone, path)
        os.makedirs(os.path.dirname(full) or clone, exist_ok=True)
        with open(full, "w") as handle:
            handle.write(text)
    sh("git", "-C", clone, "add", "-A")
    sh("git", "-C", clone, "commit", "--quiet", "-m", "human change")
    sh("git", "-C", clone, "push", "--quiet", "origin", "HEAD:main")
    return sh("git", "-C", clone, "rev-parse", "HEAD")


def test_first_publish_creates_the_branch_and_returns_the_flux_revision(remote, tmp_path):
    result = publish(remote, tree(), tmp_path)
    head = log(remote)[0].split()[0]
    assert result["changed"] and result["pushed"] and result["commit"] == head and result["base"] is None
    assert result["revision"] == "refs/heads/main@sha1:%s" % head
    assert show(remote, "clusters/control-plane/hub/services/keystone-operator.yaml") == HR.format(version="1.0.0").strip()
    assert "clusters/control-plane/hub/services/keystone-operator.yaml" in show(remote, MANIFEST)
    assert result["objects"]["added"] == [{"cluster": "control-plane", "kind": "HelmRelease",
                                           "namespace": "control-plane", "name": "keystone-operator"}]
    subject = log(remote)[0].split(" ", 1)[1]
    assert subject == "c5c3.gitops: publish the fleet (+1 ~0 -0)"


def test_branch_ref_gives_the_branch_revision():
    assert gp.flux_revision("main", "abc") == "main@sha1:abc"
    assert gp.full_ref("main") == "refs/heads/main"
    with pytest.raises(gp.PublishError, match="not a branch"):
        gp.full_ref("refs/tags/v1")


def test_unchanged_tree_makes_no_commit(remote, tmp_path):
    first = publish(remote, tree(), tmp_path)
    run = Runner()
    again = publish(remote, tree(), tmp_path, run=run)
    assert not again["changed"] and not again["pushed"]
    assert again["commit"] == first["commit"] and again["revision"] == first["revision"]
    assert len(log(remote)) == 1
    assert "push" not in run.subcommands() and "commit" not in run.subcommands()


def test_commit_message_lists_objects_by_cluster_and_author_is_configurable(remote, tmp_path):
    publish(remote, tree(), tmp_path)
    result = publish(remote, tree("1.1.0"), tmp_path, committer={"name": "ci", "email": "ci@example.invalid"})
    body = sh("git", "--git-dir", remote[7:], "log", "-1", "--format=%an <%ae>|%cn <%ce>|%B")
    who, committer, message = body.split("|", 2)
    assert who == "c5c3 bot <bot@example.invalid>" and committer == "ci <ci@example.invalid>"
    assert "control-plane:\n  ~ HelmRelease control-plane/keystone-operator" in message
    assert result["objects"]["changed"][0]["name"] == "keystone-operator"
    assert result["updated"] == ["clusters/control-plane/hub/services/keystone-operator.yaml"]


def test_foreign_files_stay_and_owned_files_leaving_the_tree_are_removed(remote, tmp_path):
    publish(remote, tree(extra={"apps/old.yaml": "kind: ConfigMap\nmetadata: {name: old}\n"}), tmp_path)
    human_commit(remote, tmp_path, {"README.md": "hand written\n", "apps/notes.txt": "mine\n"})
    result = publish(remote, tree(), tmp_path)
    assert result["removed"] == ["apps/old.yaml"]
    files = sh("git", "--git-dir", remote[7:], "ls-tree", "-r", "--name-only", "main").splitlines()
    assert "README.md" in files and "apps/notes.txt" in files and "apps/old.yaml" not in files
    assert result["objects"]["removed"] == [{"cluster": gp.SHARED, "kind": "ConfigMap", "namespace": "", "name": "old"}]


def test_foreign_file_in_the_way_is_an_error_naming_it_and_nothing_is_pushed(remote, tmp_path):
    publish(remote, tree(), tmp_path)
    head = human_commit(remote, tmp_path, {"apps/new.yaml": "hand: written\n"})
    run = Runner()
    with pytest.raises(gp.PublishError, match=r"apps/new\.yaml, which c5c3.gitops did not write"):
        publish(remote, tree(extra={"apps/new.yaml": "generated: true\n"}), tmp_path, run=run)
    assert log(remote)[0].split()[0] == head
    assert "push" not in run.subcommands()


def test_published_file_edited_by_hand_in_the_repository_is_not_overwritten(remote, tmp_path):
    # the manifest records what the collection wrote (SHA-256): a human commit that edits a
    # generated file makes it foreign, as in the render sink; the next publish names it
    first = tree()
    publish(remote, first, tmp_path)
    path = sorted(first)[0]
    head = human_commit(remote, tmp_path, {path: first[path] + "# edited by hand\n"})
    with pytest.raises(gp.PublishError, match=r"%s, which c5c3.gitops did not write" % re.escape(path)):
        publish(remote, tree(version="2.0.0"), tmp_path)
    assert log(remote)[0].split()[0] == head


def test_lost_push_race_is_retried_on_the_new_head_without_force(remote, tmp_path):
    publish(remote, tree(), tmp_path)
    run = Runner()
    moved = []

    def someone_pushes():
        if not moved:
            moved.append(human_commit(remote, tmp_path, {"docs/other.md": "concurrent\n"}))
    run.before["push"] = someone_pushes
    result = publish(remote, tree("2.0.0"), tmp_path, run=run)
    assert result["attempts"] == 2 and result["pushed"]
    history = [line.split()[0] for line in log(remote)]
    assert history[0] == result["commit"] and history[1] == moved[0]  # on top of the concurrent commit
    assert show(remote, "docs/other.md") == "concurrent"
    pushes = [argv for argv, _e in run.calls if "push" in argv]
    assert len(pushes) == 2
    assert not any(a in ("-f", "--force", "--force-with-lease") or a.startswith("+") or a.startswith("--force")
                   for argv in pushes for a in argv)


def test_race_lost_every_time_fails_after_bounded_retries(remote, tmp_path):
    publish(remote, tree(), tmp_path)
    run = Runner()
    count = []

    def someone_pushes():
        count.append(1)
        human_commit(remote, tmp_path, {"docs/race.md": "%d\n" % len(count)})
    run.before["push"] = someone_pushes
    with pytest.raises(gp.PublishError, match="rejected 3 times.*nothing was forced"):
        publish(remote, tree("3.0.0"), tmp_path, run=run, retries=2)
    assert len(count) == 3
    assert "3.0.0" not in show(remote, "clusters/control-plane/hub/services/keystone-operator.yaml")


def test_check_mode_writes_nothing_and_reports_the_changes(remote, tmp_path):
    first = publish(remote, tree(), tmp_path)
    run = Runner()
    result = publish(remote, tree("1.2.0"), tmp_path, run=run, check=True, diff=True)
    assert result["changed"] and not result["pushed"] and result["commit"] is None
    assert result["updated"] == ["clusters/control-plane/hub/services/keystone-operator.yaml"]
    assert "1.2.0" in result["diff"][0]["after"] and "1.0.0" in result["diff"][0]["before"]
    assert log(remote)[0].split()[0] == first["commit"]
    assert "commit" not in run.subcommands() and "push" not in run.subcommands()


def test_diff_redacts_secret_values(remote, tmp_path):
    secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: x}\nstringData:\n  token: hunter2\n"
    result = publish(remote, tree(extra={"apps/secret.yaml": secret}), tmp_path, check=True, diff=True)
    text = [d for d in result["diff"] if d["after_header"] == "apps/secret.yaml"][0]["after"]
    assert "hunter2" not in text and gp.REDACTED in text


def test_unreachable_remote_is_a_clear_error(tmp_path):
    with pytest.raises(gp.PublishError, match="cannot reach the sync repository file://"):
        publish("file://%s/nope.git" % tmp_path, tree(), tmp_path)


def test_partial_tree_without_prune_keeps_the_other_owned_files(remote, tmp_path):
    publish(remote, tree(extra={"apps/wave2.yaml": "kind: ConfigMap\nmetadata: {name: w2}\n"}), tmp_path)
    wave = {"clusters/control-plane/hub/services/keystone-operator.yaml": HR.format(version="9.0.0")}
    result = publish(remote, wave, tmp_path, prune=False)
    assert result["updated"] == list(wave) and result["removed"] == []
    assert "apps/wave2.yaml" in show(remote, MANIFEST)
    # and the full tree afterwards still owns (and may prune) the untouched file
    assert publish(remote, tree("9.0.0"), tmp_path)["removed"] == ["apps/wave2.yaml"]


def test_unsafe_tree_paths_are_refused(remote, tmp_path):
    for bad in ("../x.yaml", "/etc/x", ".git/config", MANIFEST):
        with pytest.raises(gp.PublishError, match="outside the repository or reserved"):
            publish(remote, {bad: "x\n"}, tmp_path)


def test_ssh_credentials_go_to_0600_files_and_the_environment_never_argv(tmp_path):
    run = Runner()
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nsecretkeymaterial\n-----END OPENSSH PRIVATE KEY-----"
    url = "ssh://git@127.0.0.1:1/fleet.git"
    seen = {}

    def inspect():
        env = run.calls[-1][1]
        cmd = env["GIT_SSH_COMMAND"]
        keyfile = cmd.split(" -i ", 1)[1].split(" ", 1)[0]
        seen["mode"] = stat.S_IMODE(os.stat(keyfile).st_mode)
        seen["cmd"] = cmd
        with open(keyfile) as handle:
            seen["key"] = handle.read()
    run.before["ls-remote"] = inspect
    with pytest.raises(gp.PublishError, match="cannot reach") as err:
        gp.publish(run, url, "refs/heads/main", tree(), workdir=str(tmp_path / "w"), author=AUTHOR,
                   ssh_key=key, known_hosts="[127.0.0.1]:1 ssh-ed25519 AAAA")
    assert seen["mode"] == 0o600 and seen["key"] == key + "\n"
    assert "StrictHostKeyChecking=yes" in seen["cmd"] and "BatchMode=yes" in seen["cmd"]
    assert not any("secretkeymaterial" in a for argv, _e in run.calls for a in argv)
    assert "secretkeymaterial" not in str(err.value)
    keyfile = seen["cmd"].split(" -i ", 1)[1].split(" ", 1)[0]
    assert not os.path.exists(keyfile)  # removed afterwards


def test_ssh_needs_known_hosts():
    with pytest.raises(gp.PublishError, match="known_hosts are both required"):
        gp.Credentials("git@example.com:fleet.git", ssh_key="k")


def test_https_token_goes_through_askpass_and_is_scrubbed(tmp_path):
    cred = gp.Credentials("https://git.example.invalid/fleet.git", token="tok3n", tmpdir=str(tmp_path))
    try:
        script = cred.env["GIT_ASKPASS"]
        assert stat.S_IMODE(os.stat(script).st_mode) == 0o700
        out = subprocess.run([script, "Password for 'https://git.example.invalid':"], capture_output=True, text=True,
                             env=dict(os.environ, **cred.env), check=True).stdout
        assert out.strip() == "tok3n"
        assert "tok3n" not in open(script).read()
    finally:
        cred.close()
    assert not os.path.exists(cred.dir)
    with pytest.raises(gp.PublishError, match="carries a password"):
        gp.url_scheme("https://user:tok3n@git.example.invalid/x.git")
    assert gp.redact_url("https://u:tok3n@h/x") == "https://u:***@h/x"
