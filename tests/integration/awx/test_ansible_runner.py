"""AWX as AWX runs it: site.yml and status.yml through ``ansible-runner run`` on an AWX-style
private data directory, against the local fleet.

What AWX does at launch is done here the same way: the project is copied into ``project/``, the
inventory (hosts = clusters) goes to ``inventory/``, the credentials of the collection's own
credential types (playbooks/awx/vars/credential_types.yml) are injected by rendering their
injectors (files into ``env/``, environment into ``env/envvars``, extra vars into
``env/extravars``), survey answers (playbooks/awx/vars/survey_site.yml) become extra vars, launch
prompts become ``env/cmdline`` (--forks 5). No AWX server is involved.
"""
import json
import os
import shutil
import subprocess
import sys

import jinja2
import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
BIN = os.path.dirname(sys.executable)
RUNNER = os.path.join(BIN, "ansible-runner") if os.path.exists(os.path.join(BIN, "ansible-runner")) \
    else shutil.which("ansible-runner")
pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not RUNNER, reason="ansible-runner is not installed (requirements-dev.txt)")]


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def awx_vars(name):
    with open(os.path.join(ROOT, "playbooks", "awx", "vars", name)) as handle:
        return yaml.load(handle, Loader=_Loader)  # noqa: S506 - SafeLoader plus !unsafe


def inject(cred_type, inputs, env_dir):
    """AWX's injector rendering: file templates -> files (0600), then env and extra_vars."""
    files = {}
    for key, template in (cred_type["injectors"].get("file") or {}).items():
        name = key.split(".", 1)[1] if "." in key else "template"
        path = os.path.join(env_dir, "cred_%s" % name)
        with open(path, "w") as handle:
            handle.write(jinja2.Template(template).render(**inputs))
        os.chmod(path, 0o600)
        files[name] = path
    ctx = dict(inputs, tower={"filename": files})
    env = dict((k, jinja2.Template(v).render(**ctx)) for k, v in (cred_type["injectors"].get("env") or {}).items())
    extra = dict((k, jinja2.Template(v).render(**ctx)) for k, v in (cred_type["injectors"].get("extra_vars") or {}).items())
    return env, extra


def survey_defaults(survey, answers):
    out = {}
    for q in survey["spec"]:
        value = answers.get(q["variable"], q.get("default"))
        if q["type"] == "multiplechoice":
            assert value in q["choices"], (q["variable"], value)
        if q["type"] == "integer":
            value = int(value)
            assert q["min"] <= value <= q["max"]
        out[q["variable"]] = value
    return out


@pytest.fixture(scope="module")
def private_data_dir(local_fleet, tmp_path_factory):
    pdd = tmp_path_factory.mktemp("awx-pdd")
    shutil.copytree(ROOT, str(pdd / "project"), symlinks=True,
                    ignore=shutil.ignore_patterns(".venv", ".cache", ".git", "build", "__pycache__", ".pytest_cache"))
    env_dir = pdd / "env"
    env_dir.mkdir()
    inv_dir = pdd / "inventory"
    (inv_dir / "group_vars" / "management").mkdir(parents=True)
    with open(os.path.join(ROOT, "inventories", "local", "hosts.yml")) as handle:
        inv = yaml.safe_load(handle)
    inv["all"].get("vars", {}).pop("gitops_kubeconfig", None)  # from the credential instead
    for group in inv["all"]["children"].values():
        for hv in group["hosts"].values():
            hv.pop("gitops_kubeconfig", None)
    (inv_dir / "hosts.yml").write_text(yaml.safe_dump(inv))
    (inv_dir / "group_vars" / "all.yml").write_text(yaml.safe_dump({
        "ansible_connection": "local",
        "ansible_python_interpreter": "{{ ansible_playbook_python }}",
        # docs/awx.md: each cluster's kubeconfig from the "C5C3 spoke kubeconfigs" credential
        "gitops_kubeconfig_content": "{{ (lookup('ansible.builtin.file', lookup('ansible.builtin.env', "
                                     "'C5C3_KUBECONFIGS_FILE')) | from_yaml)[gitops_cluster_name | default(inventory_hostname)] }}",
    }))
    (inv_dir / "group_vars" / "management" / "flux_operator.yml").write_text(yaml.safe_dump({
        "flux_operator_chart_ref": str(pdd / "project" / "tests" / "charts" / "flux-operator-local"),
        "flux_operator_chart_version": "", "flux_operator_wait_timeout": 120}))
    # The chart sources of inventories/local (the fleet's registry; Rook through chartRef), so this
    # run leaves the shared fleet's releases in the same chart form as the other tests' runs.
    shutil.copy(os.path.join(ROOT, "inventories", "local", "group_vars", "management", "chart_sources.yml"),
                str(inv_dir / "group_vars" / "management" / "chart_sources.yml"))
    with open(os.path.join(local_fleet.state_dir, "registry", "url"), encoding="utf-8") as handle:
        registry = handle.read().strip()
    (inv_dir / "group_vars" / "management" / "registry.yml").write_text(yaml.safe_dump({"local_fleet_chart_registry": registry}))
    # Direct delivery: AWX's way of running the playbooks is under test here, not the Git server.
    shutil.copy(os.path.join(ROOT, "tests", "integration", "direct_delivery.yml"), str(inv_dir / "group_vars" / "management" / "git_sync.yml"))

    types = dict((t["name"], t) for t in awx_vars("credential_types.yml")["c5c3_awx_credential_types"])
    kubeconfigs = {}
    for cluster in local_fleet.clusters:
        with open(local_fleet.kubeconfig(cluster)) as handle:
            kubeconfigs[cluster] = yaml.safe_load(handle)
    env1, extra1 = inject(types["C5C3 spoke kubeconfigs"], {"kubeconfigs": yaml.safe_dump(kubeconfigs)}, str(env_dir))
    env2, extra2 = inject(types["C5C3 Git deploy key"], {
        "identity": "local-fleet placeholder identity", "identity_pub": "local-fleet placeholder identity.pub",
        "known_hosts": "local-fleet placeholder known_hosts"}, str(env_dir))
    survey = survey_defaults(awx_vars("survey_site.yml")["c5c3_awx_site_survey"], {"fleet_apply_wait_timeout": 600, "gitops_delivery": "direct"})
    extravars = dict(extra1, **extra2)
    extravars.update(survey)
    extravars["gitops_status_dir"] = str(pdd / "fleet-status")
    (env_dir / "extravars").write_text(yaml.safe_dump(extravars))
    envvars = dict(env1, **env2)
    envvars.update(ANSIBLE_NOCOLOR="1", ANSIBLE_DEPRECATION_WARNINGS="0", PATH=BIN + os.pathsep + os.environ["PATH"])
    (env_dir / "envvars").write_text(yaml.safe_dump(envvars))
    (env_dir / "cmdline").write_text("--forks 5")
    return pdd, kubeconfigs


def runner(pdd, playbook, ident):
    proc = subprocess.run([RUNNER, "run", str(pdd), "-p", playbook, "--ident", ident],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=1500,
                          check=False, env=dict(os.environ, PATH=BIN + os.pathsep + os.environ["PATH"]))
    art = pdd / "artifacts" / ident
    rc = (art / "rc").read_text().strip() if (art / "rc").exists() else None
    status = (art / "status").read_text().strip() if (art / "status").exists() else None
    stdout = (art / "stdout").read_text() if (art / "stdout").exists() else proc.stdout
    return rc, status, stdout, art


def events(art):
    out = []
    for name in sorted(os.listdir(str(art / "job_events"))):
        with open(str(art / "job_events" / name)) as handle:
            out.append(json.load(handle))
    return out


def test_site_then_status_through_ansible_runner(private_data_dir):
    pdd, kubeconfigs = private_data_dir
    rc, status, stdout, art = runner(pdd, "playbooks/site.yml", "site")
    assert (rc, status) == ("0", "successful"), stdout[-5000:]
    # AWX shows per-stage figures (job events), and the status report ran as the last play
    stage_lines = [e["event_data"]["res"]["msg"] for e in events(art)
                   if e.get("event") == "runner_on_ok" and "Report stage" in (e["event_data"].get("task") or "")]
    assert any(line.startswith("stage services: ") and " ready in " in line for line in stage_lines), stage_lines
    assert (pdd / "fleet-status" / "status.svg").exists()

    rc, status, stdout2, art2 = runner(pdd, "playbooks/status.yml", "status")
    assert (rc, status) == ("0", "successful"), stdout2[-5000:]
    with open(str(pdd / "fleet-status" / "status.json")) as handle:
        report = json.load(handle)
    assert sorted(c["name"] for c in report["clusters"]) == sorted(kubeconfigs)
    assert all(c["reachable"] for c in report["clusters"])
    with open(str(art2 / "command")) as handle:
        assert "--forks" in handle.read()
    # credentials never reach what AWX stores and shows
    for text in (stdout, stdout2, json.dumps(events(art)), json.dumps(events(art2))):
        for kc in kubeconfigs.values():
            assert kc["users"][0]["user"]["token"] not in text
