# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)
"""The publish sink: put a rendered tree into the Flux sync repository with the git CLI.

``publish()`` takes the tree as data ({relative path: text}, the render sink's output or any
part of it), so a caller can publish a partial tree (one rollout wave) as well as the whole
fleet. One attempt is: look up the remote ref, fetch it into a private repository, check out
its head, plan the tree onto it with the render sink's manifest rules (gitops_writer.py: only
files the collection wrote are changed or removed; a foreign file in the way is an error),
commit, push without force. A push that loses a race re-fetches and plans again on the new
head, a bounded number of times. Nothing reaches the remote except by that one push, so a
failed run leaves the repository as it was.

git runs through a caller-supplied ``run(argv, cwd, env, data) -> (rc, stdout, stderr)``
(AnsibleModule.run_command in the module, subprocess in the tests): argv lists, no shell.
Credentials go through files of mode 0600 in a private directory and the environment
(GIT_SSH_COMMAND, GIT_ASKPASS), never the command line, and never into results or errors.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import shlex
import shutil
import stat
import tempfile

from ansible_collections.c5c3.gitops.plugins.module_utils import gitops_writer

try:
    import yaml
except ImportError:  # pragma: no cover - the module reports it through HAS_YAML
    yaml = None

CLUSTER_LABEL = "gitops.c5c3.io/cluster"
SHARED = "(shared)"
REDACTED = "<redacted>"
_REJECTED = re.compile(r"\[(rejected|remote rejected)\]|non-fast-forward|fetch first|stale info|cannot lock ref")


class PublishError(Exception):
    """A clear, secret-free reason why nothing was published."""


def full_ref(ref):
    """FluxInstance ``sync.ref`` / GitRepository branch -> the ref to push to."""
    ref = (ref or "").strip()
    if not ref:
        raise PublishError("no sync ref: set FluxInstance spec.sync.ref (e.g. refs/heads/main)")
    if ref.startswith("refs/"):
        if not ref.startswith("refs/heads/"):
            raise PublishError("sync ref %s is not a branch: only refs/heads/* can be published to" % ref)
        return ref
    return "refs/heads/" + ref


def flux_revision(ref, sha):
    """The revision Flux reports for ``sha`` of ``ref``: source-controller names a GitRepository
    artifact ``<ref>@sha1:<sha>`` with the ref as written in spec.ref (``main@sha1:...`` for
    ``branch: main``; ``refs/heads/main@sha1:...`` for ``name: refs/heads/main``, which is what
    the Flux Operator generates from FluxInstance ``sync.ref: refs/heads/main``)."""
    return "%s@sha1:%s" % (ref, sha)


def redact_url(url):
    """The URL without any password/token in its userinfo."""
    return re.sub(r"^([a-z][a-z0-9+.-]*://)([^/@:]*):[^/@]*@", r"\1\2:***@", url or "", flags=re.I)


def url_scheme(url):
    """ssh | https | file for the URLs git accepts here; anything else is refused."""
    if re.match(r"^ssh://", url) or re.match(r"^[A-Za-z0-9._-]+@[^/:]+:", url):
        return "ssh"
    if url.startswith("https://"):
        if re.match(r"^https://[^/@]*:[^/@]*@", url):
            raise PublishError("the sync URL %s carries a password: pass the token as token, not in the URL" % redact_url(url))
        return "https"
    if url.startswith("file://") or url.startswith("/"):
        return "file"
    raise PublishError("sync URL %s: only ssh://, user@host:path, https:// and file:// are supported" % redact_url(url))


class Credentials(object):
    """A private 0700 directory with the key / known_hosts / token files (0600) and the git
    environment that points at them. ``close()`` removes it; use as a context manager."""

    def __init__(self, url, ssh_key=None, known_hosts=None, token=None, username=None, connect_timeout=30, tmpdir=None):
        self.scheme = url_scheme(url)
        self.dir = tempfile.mkdtemp(prefix="c5c3-git-", dir=tmpdir)
        os.chmod(self.dir, stat.S_IRWXU)
        self.env = {
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "LC_ALL": "C",
            "LANG": "C",
        }
        try:
            if self.scheme == "ssh":
                if not ssh_key or not known_hosts:
                    raise PublishError("sync URL %s is ssh: a deploy key (ssh_key) and known_hosts are both required "
                                       "(host keys are checked strictly)" % redact_url(url))
                key = self._file("identity", ssh_key if ssh_key.endswith("\n") else ssh_key + "\n")
                hosts = self._file("known_hosts", known_hosts if known_hosts.endswith("\n") else known_hosts + "\n")
                self.env["GIT_SSH_COMMAND"] = " ".join([
                    "ssh", "-F", "/dev/null", "-i", shlex.quote(key),
                    "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "BatchMode=yes",
                    "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + shlex.quote(hosts),
                    "-o", "GlobalKnownHostsFile=/dev/null", "-o", "ConnectTimeout=%d" % int(connect_timeout),
                ])
                self.env["GIT_SSH_VARIANT"] = "ssh"
            elif self.scheme == "https" and token:
                secret = self._file("token", token.strip() + "\n")
                script = self._file("askpass", "#!/bin/sh\ncase \"$1\" in\n  Username*) printf '%%s\\n' \"$C5C3_GIT_USERNAME\" ;;\n"
                                               "  *) cat %s ;;\nesac\n" % shlex.quote(secret), mode=stat.S_IRWXU)
                self.env["GIT_ASKPASS"] = script
                self.env["C5C3_GIT_USERNAME"] = username or "x-access-token"
        except Exception:
            self.close()
            raise

    def _file(self, name, text, mode=stat.S_IRUSR | stat.S_IWUSR):
        path = os.path.join(self.dir, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(path, mode)
        return path

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Git(object):
    """git in one repository directory through ``run``; every call is an argv list."""

    def __init__(self, run, repo, env, url, git="git", secrets=()):
        self.run_fn = run
        self.repo = repo
        self.env = env
        self.url = url
        self.git = git
        self.secrets = [s for s in secrets if s]

    def _scrub(self, text):
        text = (text or "").strip()
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text.replace(self.url, redact_url(self.url)) if self.url else text

    def run(self, *args, **kw):
        """-> (rc, stdout, stderr). ``ok``: accepted return codes (else PublishError with ``what``)."""
        ok = kw.pop("ok", (0,))
        data = kw.pop("data", None)
        what = kw.pop("what", None)
        argv = [self.git, "-c", "core.hooksPath=" + os.devnull, "-c", "commit.gpgsign=false",
                "-c", "credential.helper="] + list(args)
        rc, out, err = self.run_fn(argv, cwd=self.repo, env=self.env, data=data)
        if ok is not None and rc not in ok:
            raise PublishError("%s: git %s failed (rc=%s): %s" % (
                what or "git", args[0], rc, self._scrub(err or out) or "no message"))
        return rc, out or "", err or ""


# --------------------------------------------------------------------------- object summary

def _objects(texts):
    """{(cluster, kind, namespace, name): canonical text} of the objects in ``texts``."""
    out = {}
    for text in texts:
        try:
            docs = list(yaml.safe_load_all(text))
        except yaml.YAMLError:
            continue
        for doc in docs:
            if not isinstance(doc, dict) or not isinstance(doc.get("metadata"), dict) or not doc["metadata"].get("name"):
                continue
            md = doc["metadata"]
            cluster = (md.get("labels") or {}).get(CLUSTER_LABEL) or SHARED
            key = (cluster, doc.get("kind") or "", md.get("namespace") or "", md["name"])
            out[key] = yaml.safe_dump(doc, sort_keys=True)
    return out


def object_changes(before, after):
    """before/after: {path: text} of the changed files -> {added, changed, removed} lists of
    {cluster, kind, namespace, name}, sorted."""
    old, new = _objects(before.values()), _objects(after.values())

    def rows(keys):
        return [{"cluster": c, "kind": k, "namespace": n, "name": m} for c, k, n, m in sorted(keys)]

    return {
        "added": rows(set(new) - set(old)),
        "changed": rows(k for k in set(new) & set(old) if new[k] != old[k]),
        "removed": rows(set(old) - set(new)),
    }


def commit_message(title, changes, created, updated, removed):
    counts = "+%d ~%d -%d" % (len(changes["added"]), len(changes["changed"]), len(changes["removed"]))
    lines = ["%s (%s)" % (title, counts), ""]
    by_cluster = {}
    for sign, what in (("+", "added"), ("~", "changed"), ("-", "removed")):
        for row in changes[what]:
            name = "%s/%s" % (row["namespace"], row["name"]) if row["namespace"] else row["name"]
            by_cluster.setdefault(row["cluster"], []).append("  %s %s %s" % (sign, row["kind"], name))
    for cluster in sorted(by_cluster):
        lines.append("%s:" % cluster)
        lines.extend(by_cluster[cluster])
    if by_cluster:
        lines.append("")
    lines.append("files: %d created, %d updated, %d removed" % (len(created), len(updated), len(removed)))
    return "\n".join(lines) + "\n"


def redact(text):
    """File text for a diff: the values of any Secret's data/stringData replaced."""
    if "Secret" not in (text or ""):
        return text
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError:
        return "<not shown: a file that may hold a Secret and is not valid YAML>\n"
    hit = False
    for doc in docs:
        if isinstance(doc, dict) and doc.get("kind") == "Secret":
            for field in ("data", "stringData"):
                if isinstance(doc.get(field), dict):
                    doc[field] = dict((k, REDACTED) for k in doc[field])
                    hit = True
    if not hit:
        return text
    return yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False)


# --------------------------------------------------------------------------- publish

def _remote_head(git, ref):
    """sha of ``ref`` on the remote, or None when the branch does not exist yet."""
    _rc, out, _err = git.run("ls-remote", "--", git.url, ref, what="cannot reach the sync repository %s" % redact_url(git.url))
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) == 2 and parts[1].strip() == ref:
            return parts[0].strip()
    return None


def _checkout(git, url, ref, sha):
    """Make the working tree exactly ``sha`` of the remote (or empty for a new branch)."""
    if sha:
        git.run("fetch", "--quiet", "--no-tags", "--", url, "+%s:refs/c5c3/base" % ref,
                what="cannot fetch %s from %s" % (ref, redact_url(url)))
        git.run("checkout", "--quiet", "--force", "--detach", sha, what="cannot check out %s" % sha)
    else:
        git.run("symbolic-ref", "HEAD", "refs/heads/c5c3-unborn")
        git.run("update-ref", "-d", "refs/heads/c5c3-unborn", ok=(0, 1))
        git.run("read-tree", "--empty")
    git.run("clean", "--quiet", "-ffdx", what="cannot clean the working tree")


def _ensure_repo(git):
    if not os.path.isdir(os.path.join(git.repo, ".git")):
        if not os.path.isdir(git.repo):
            os.makedirs(git.repo)
        git.run("init", "--quiet", git.repo, what="cannot create the working repository %s" % git.repo)


def _plan(tree, wt, prune):
    """The render sink's plan on the working tree (gitops_writer: manifest with hashes, no writes
    through links); a file the collection did not write is an error naming it, never overwritten."""
    try:
        return gitops_writer.plan(tree, wt, prune=prune)
    except gitops_writer.ForeignFilesError as exc:
        raise PublishError(
            "the sync repository already holds %s, which c5c3.gitops did not write (not in %s, or edited by hand "
            "since it was published) and would overwrite or remove; move or delete %s in the repository, or "
            "change the fleet" % (", ".join(exc.files), gitops_writer.MANIFEST, "it" if len(exc.files) == 1 else "them"))
    except gitops_writer.RenderError as exc:
        raise PublishError("the sync repository cannot take the tree: %s" % exc)


def _check_tree(tree):
    bad = sorted(set(gitops_writer.reserved_paths(tree)) | set(
        rel for rel in tree if not rel or rel.startswith("/") or ".." in rel.split("/") or "" in rel.split("/")))
    if bad:
        raise PublishError("tree paths outside the repository or reserved: %s" % ", ".join(bad))
    if not tree:
        raise PublishError("the tree to publish is empty (refusing to empty the sync repository)")


def publish(run, url, ref, tree, workdir, author, committer=None, title="c5c3.gitops: publish the fleet",
            prune=True, check=False, retries=3, ssh_key=None, known_hosts=None, token=None, username=None,
            git="git", diff=False):
    """Publish ``tree`` to ``ref`` of ``url``; see the module docstring. -> result dict.

    ``tree`` is {path: text}, or a function called on every attempt with what the collection wrote
    at the remote's head ({path: text}) that returns the tree to publish on it (a rollout wave:
    waves up to N at the new content, later waves as the head has them).
    author/committer: {"name", "email"}. ``check``: plan only (fetches, never commits or pushes).
    """
    if not callable(tree):
        _check_tree(tree)
    committer = committer or author
    target = full_ref(ref)
    tree_for = tree
    with Credentials(url, ssh_key=ssh_key, known_hosts=known_hosts, token=token, username=username) as cred:
        env = dict(cred.env)
        env.update({
            "GIT_AUTHOR_NAME": author["name"], "GIT_AUTHOR_EMAIL": author["email"],
            "GIT_COMMITTER_NAME": committer["name"], "GIT_COMMITTER_EMAIL": committer["email"],
        })
        repo = Git(run, workdir, env, url, git=git, secrets=[token])
        _ensure_repo(repo)
        attempts = 0
        while True:
            attempts += 1
            base = _remote_head(repo, target)
            _checkout(repo, url, target, base)
            if callable(tree_for):
                tree = tree_for(gitops_writer.read_owned_tree(workdir))
                _check_tree(tree)
            plan = _plan(tree, workdir, prune)
            created, updated, removed, diffs, changed = (plan[k] for k in ("created", "updated", "removed", "diffs", "changed"))
            before = dict((d["before_header"], d["before"]) for d in diffs if d["before_header"] != "/dev/null")
            after = dict((p, tree[p]) for p in created + updated)
            changes = object_changes(before, after)
            message = commit_message(title, changes, created, updated, removed)
            result = {
                "changed": changed, "base": base, "commit": base, "ref": target,
                "revision": flux_revision(ref, base) if base else None,
                "url": redact_url(url), "created": created, "updated": updated, "removed": removed,
                "objects": changes, "attempts": attempts, "message": message if changed else "",
                "pushed": False,
            }
            if diff:
                result["diff"] = [dict(d, before=redact(d["before"]), after=redact(d["after"])) for d in diffs]
            if not changed or check:
                if check and changed:
                    result["commit"] = None
                    result["revision"] = None
                return result
            gitops_writer.apply(tree, plan)
            repo.run("add", "--all", "--", ".", what="cannot stage the tree")
            repo.run("commit", "--quiet", "--no-verify", "--allow-empty-message", "-F", "-", data=message,
                     what="cannot commit the tree")
            _rc, sha, _err = repo.run("rev-parse", "HEAD")
            sha = sha.strip()
            rc, out, err = repo.run("push", "--porcelain", "--", url, "%s:%s" % (sha, target), ok=None)
            if rc == 0:
                result.update(commit=sha, revision=flux_revision(ref, sha), pushed=True)
                return result
            text = "%s\n%s" % (out, err)
            if _REJECTED.search(text) and attempts <= retries:
                continue  # the remote moved: plan again on its new head
            if _REJECTED.search(text):
                raise PublishError("push to %s %s was rejected %d times (the branch keeps moving or is protected); "
                                   "nothing was forced: %s" % (redact_url(url), target, attempts, repo._scrub(err or out)))
            raise PublishError("push to %s %s failed (rc=%s): %s" % (redact_url(url), target, rc, repo._scrub(err or out)))


def sync_target(fleet):
    """url and ref of the FluxInstance's spec.sync in the fleet (the repository Flux syncs)."""
    for item in fleet.get("objects") or []:
        obj = item.get("object") or {}
        if obj.get("kind") == "FluxInstance":
            sync = (obj.get("spec") or {}).get("sync") or {}
            if (sync.get("kind") or "GitRepository") != "GitRepository":
                raise PublishError("FluxInstance spec.sync.kind is %s: only a GitRepository can be published to" % sync["kind"])
            if not sync.get("url"):
                raise PublishError("the FluxInstance has no spec.sync.url: nothing to publish to (gitops_delivery: direct?)")
            return sync["url"], sync.get("ref") or "refs/heads/main"
    raise PublishError("the fleet has no FluxInstance")
