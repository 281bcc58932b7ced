#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: gitops_publish
short_description: Publish the fleet's GitOps tree to the Flux sync repository
version_added: 0.2.0
description:
  - The publish sink of C(gitops_delivery=git). Renders the C(fleet) built by
    M(c5c3.gitops.fleet_model) exactly as M(c5c3.gitops.gitops_render) does (or takes an explicit
    O(tree)), fetches the branch of C(FluxInstance.spec.sync) (or O(url)/O(ref)), writes the tree
    into a checkout of its head, commits and pushes. Flux then applies the commit; the module
    returns the Flux revision to gate on.
  - Only files the collection wrote (listed in C(.c5c3-gitops-render.json) in the repository) are
    changed or removed; other files stay. A file the collection did not write, at a path it wants to
    write, fails the task naming it, before anything is committed.
  - Nothing to change means no commit and C(changed=false).
  - Never force-pushes. When the push loses a race (the branch moved), it fetches the new head,
    plans the tree onto it again and retries, up to O(retries) times.
  - The git CLI runs without a shell; the deploy key, C(known_hosts) and token are written to
    files of mode 0600 in a private temporary directory (C(GIT_SSH_COMMAND), C(GIT_ASKPASS)),
    removed afterwards, and never appear in arguments, results or error messages. ssh host keys
    are checked strictly (C(StrictHostKeyChecking=yes)).
author:
  - c5c3.gitops developers (@c5c3)
attributes:
  check_mode:
    support: full
    description: Fetches and reports what would be created, updated and removed; commits and pushes nothing.
  diff_mode:
    support: full
    description: A diff per file, the values of any Secret redacted.
requirements:
  - git (the CLI) on the host the task runs on
  - PyYAML
options:
  fleet:
    description:
      - The C(fleet) result of M(c5c3.gitops.fleet_model). Its rendered tree is published and its
        FluxInstance C(spec.sync) gives O(url) and O(ref) unless set.
      - Required unless O(tree) is given.
    type: dict
  tree:
    description:
      - "An explicit tree to publish instead of the whole fleet, C({relative path: file text}), for
        example one rollout wave. Use O(prune=false) for a part of the tree."
    type: dict
  wave:
    description:
      - Publish the fleet as it is after this rollout wave (needs O(fleet)) - clusters of waves up
        to O(wave) at the fleet's content, clusters of later waves as the files the collection
        wrote at the branch's head have them (M(c5c3.gitops.fleet_waves) plans the same). One
        commit per wave; RV(fleet) is that fleet, to gate on.
      - Omitted - the whole fleet.
    type: int
  url:
    description: Repository URL (C(ssh://), C(user@host:path), C(https://) or C(file://)). Default from the fleet.
    type: str
  ref:
    description: Branch to publish to (C(main) or C(refs/heads/main)). Default from the fleet (C(sync.ref)).
    type: str
  ssh_key:
    description: Private deploy key (with write access) for an ssh URL.
    type: str
  known_hosts:
    description: C(known_hosts) lines of the Git server for an ssh URL (required with ssh).
    type: str
  token:
    description: Access token for an https URL (given to git through an askpass helper).
    type: str
  username:
    description: User name sent with O(token).
    type: str
    default: x-access-token
  workdir:
    description:
      - Directory for the private clone, kept between runs to fetch only what is new. Default a
        temporary directory removed afterwards.
    type: path
  prune:
    description: Remove files the collection wrote earlier that are not in the tree. C(false) for a partial tree.
    type: bool
    default: true
  retries:
    description: Push attempts after a lost race (the branch moved meanwhile).
    type: int
    default: 3
  author_name:
    description: Commit author name.
    type: str
    default: c5c3.gitops
  author_email:
    description: Commit author e-mail.
    type: str
    default: c5c3-gitops@localhost
  committer_name:
    description: Committer name (default O(author_name)).
    type: str
  committer_email:
    description: Committer e-mail (default O(author_email)).
    type: str
  title:
    description: First line of the commit message (the counts of objects added, changed, removed follow).
    type: str
    default: "c5c3.gitops: publish the fleet"
  git_binary:
    description: The git executable.
    type: path
    default: git
notes:
  - The Flux revision returned is C(<ref>@sha1:<sha>) with O(ref) as the FluxInstance writes it
    (C(refs/heads/main@sha1:...)), the value source-controller reports in
    C(status.artifact.revision) and kustomize-controller in C(status.lastAppliedRevision).
seealso:
  - module: c5c3.gitops.gitops_render
  - module: c5c3.gitops.flux_wait
"""

EXAMPLES = r"""
- name: Publish the fleet to its sync repository
  c5c3.gitops.gitops_publish:
    fleet: "{{ gitops_fleet }}"
    ssh_key: "{{ gitops_publish_identity }}"
    known_hosts: "{{ gitops_sync_known_hosts }}"
  register: _published

- name: Wait for Flux to apply that commit
  c5c3.gitops.flux_wait:
    objects: [{kind: Kustomization, name: flux-system, namespace: flux-system}]
    revision: "{{ _published.revision }}"
"""

RETURN = r"""
commit:
  description: SHA of the branch head after the task (the new commit, or the unchanged head; null in check mode with changes).
  returned: always
  type: str
revision:
  description: Flux revision of RV(commit), C(<ref>@sha1:<sha>).
  returned: always
  type: str
  sample: refs/heads/main@sha1:4f1c0c5e7bd2c0c1e1a4b0f1f8bde2f6c1d2e3f4
base:
  description: SHA the tree was planned onto (null for a new branch).
  returned: always
  type: str
pushed:
  description: Whether a commit was pushed.
  returned: always
  type: bool
created:
  description: Files added to the repository.
  returned: always
  type: list
  elements: str
updated:
  description: Files changed.
  returned: always
  type: list
  elements: str
removed:
  description: Files the collection wrote earlier that are no longer generated, deleted.
  returned: always
  type: list
  elements: str
objects:
  description: Objects C(added), C(changed) and C(removed), each {cluster, kind, namespace, name}.
  returned: always
  type: dict
message:
  description: The commit message (empty when nothing changed).
  returned: always
  type: str
attempts:
  description: Push attempts (more than 1 after a lost race).
  returned: always
  type: int
fleet:
  description: With O(wave) - the fleet as published (after that wave), shaped as the model's fleet.
  returned: when O(wave) is set
  type: dict
wave:
  description: With O(wave) - the wave published.
  returned: when O(wave) is set
  type: int
"""

import shutil
import tempfile
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.c5c3.gitops.plugins.module_utils import waves
from ansible_collections.c5c3.gitops.plugins.module_utils.git_publish import PublishError, publish, sync_target
from ansible_collections.c5c3.gitops.plugins.module_utils.gitops_tree import HAS_YAML, TreeError, render_tree


def main():
    module = AnsibleModule(
        argument_spec=dict(
            fleet=dict(type="dict"),
            tree=dict(type="dict"),
            wave=dict(type="int"),
            url=dict(type="str"),
            ref=dict(type="str"),
            ssh_key=dict(type="str", no_log=True),
            known_hosts=dict(type="str"),
            token=dict(type="str", no_log=True),
            username=dict(type="str", default="x-access-token"),
            workdir=dict(type="path"),
            prune=dict(type="bool", default=True),
            retries=dict(type="int", default=3),
            author_name=dict(type="str", default="c5c3.gitops"),
            author_email=dict(type="str", default="c5c3-gitops@localhost"),
            committer_name=dict(type="str"),
            committer_email=dict(type="str"),
            title=dict(type="str", default="c5c3.gitops: publish the fleet"),
            git_binary=dict(type="path", default="git"),
        ),
        required_one_of=[("fleet", "tree")],
        mutually_exclusive=[("tree", "wave")],
        supports_check_mode=True,
    )
    if not HAS_YAML:
        module.fail_json(msg=missing_required_lib("PyYAML"))
    p = module.params
    if p["retries"] < 0:
        module.fail_json(msg="retries must be >= 0")
    try:
        url, ref = p["url"], p["ref"]
        if p["fleet"] is not None and not (url and ref):
            fleet_url, fleet_ref = sync_target(p["fleet"])
            url, ref = url or fleet_url, ref or fleet_ref
        if not url:
            module.fail_json(msg="no repository to publish to: pass url (or fleet with a FluxInstance spec.sync)")
        after = {}
        if p["wave"] is not None:
            if p["fleet"] is None:
                module.fail_json(msg="wave needs fleet")
            tree = waves.tree_after_wave(p["fleet"], p["wave"], render_tree, after)
        else:
            tree = p["tree"] if p["tree"] is not None else render_tree(p["fleet"])
            tree = dict((str(k), str(v)) for k, v in tree.items())
    except (PublishError, TreeError, waves.WaveError, KeyError, TypeError) as exc:
        module.fail_json(msg="cannot publish the fleet: %s" % exc)

    def run(argv, cwd=None, env=None, data=None):
        return module.run_command(argv, cwd=cwd, environ_update=env, data=data, binary_data=True,
                                  expand_user_and_vars=False)

    workdir = p["workdir"]
    scratch = None
    if not workdir:
        scratch = tempfile.mkdtemp(prefix="c5c3-publish-", dir=module.tmpdir)
        workdir = scratch
    author = {"name": p["author_name"], "email": p["author_email"]}
    committer = {"name": p["committer_name"] or author["name"], "email": p["committer_email"] or author["email"]}
    try:
        result = publish(run, url, ref, tree, workdir, author, committer=committer, title=p["title"],
                         prune=p["prune"], check=module.check_mode, retries=p["retries"], ssh_key=p["ssh_key"],
                         known_hosts=p["known_hosts"], token=p["token"], username=p["username"],
                         git=p["git_binary"], diff=module._diff)
    except (PublishError, TreeError) as exc:
        module.fail_json(msg=str(exc), changed=False)
    except waves.WaveError as exc:
        module.fail_json(msg="cannot plan wave %s against the sync repository: %s" % (p["wave"], exc), changed=False)
    except Exception as exc:  # a bug, not a git answer: keep the traceback (no secrets in it: they live in files)
        module.fail_json(msg="gitops_publish failed: %s" % exc, exception=traceback.format_exc(), changed=False)
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    if p["wave"] is not None:
        result.update(fleet=after.get("fleet"), wave=p["wave"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
