"""AWX as code without an AWX server: every awx.awx task of playbooks/awx/configure.yml passes only
options the module documents (with valid choices and every required one), the credential types
have the shape AWX accepts, and the survey spec is well formed."""
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
AWX = os.path.join(ROOT, "playbooks", "awx")
BIN = os.path.dirname(sys.executable)
ANSIBLE_DOC = os.path.join(BIN, "ansible-doc") if os.path.exists(os.path.join(BIN, "ansible-doc")) else shutil.which("ansible-doc")


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def load(path):
    with open(path) as handle:
        return yaml.load(handle, Loader=_Loader)  # noqa: S506 - SafeLoader plus !unsafe


def awx_tasks():
    play = load(os.path.join(AWX, "configure.yml"))[0]
    return [(t["name"], mod, args) for t in play["tasks"] for mod, args in t.items() if mod.startswith("awx.awx.")]


@pytest.fixture(scope="module")
def docs():
    modules = sorted(set(m for _n, m, _a in awx_tasks()))
    out = subprocess.run([ANSIBLE_DOC, "-j"] + modules, check=True, stdout=subprocess.PIPE, cwd=ROOT,
                         env=dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg")), timeout=300).stdout
    return dict((k, v["doc"]) for k, v in json.loads(out).items())


def test_every_awx_task_passes_documented_options(docs):
    tasks = awx_tasks()
    assert {m for _n, m, _a in tasks} >= {"awx.awx.credential_type", "awx.awx.job_template", "awx.awx.inventory",
                                          "awx.awx.inventory_source", "awx.awx.project"}
    for name, module, args in tasks:
        options = docs[module]["options"]
        for key, value in args.items():
            assert key in options, "%s: %s has no option %s" % (name, module, key)
            choices = options[key].get("choices")
            if choices and isinstance(value, str) and "{{" not in value:
                assert value in choices, "%s: %s=%s not in %s" % (name, key, value, choices)
        for key, spec in options.items():
            if spec.get("required"):
                assert key in args, "%s: %s needs %s" % (name, module, key)


def test_credential_types_have_inputs_and_injectors_that_match():
    types = load(os.path.join(AWX, "vars", "credential_types.yml"))["c5c3_awx_credential_types"]
    assert {t["name"] for t in types} == {"C5C3 spoke kubeconfigs", "C5C3 Git deploy key"}
    for t in types:
        assert t["kind"] in ("cloud", "net")  # the kinds AWX allows for custom types
        ids = [f["id"] for f in t["inputs"]["fields"]]
        assert set(t["inputs"]["required"]) <= set(ids)
        used = set()
        for section in t["injectors"].values():
            for template in section.values():
                assert "{{" in template  # kept for AWX (not rendered by Ansible: !unsafe)
                used.update(re.findall(r"{{\s*([a-z_]+)\s*}}", template))
        assert set(ids) <= used | {"tower"}, (t["name"], ids, used)
        for field in t["inputs"]["fields"]:
            if field["id"] in ("kubeconfigs", "identity"):
                assert field.get("secret") is True


def test_survey_spec():
    survey = load(os.path.join(AWX, "vars", "survey_site.yml"))["c5c3_awx_site_survey"]
    variables = {q["variable"]: q for q in survey["spec"]}
    assert {"gitops_delivery", "c5c3_awx_stages", "c5c3_awx_check"} <= set(variables)
    assert variables["c5c3_awx_stages"]["choices"] == ["bootstrap", "clusters", "sources", "infrastructure", "services"]
    for q in survey["spec"]:
        assert q["type"] in ("text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect")
        if q["type"] == "multiplechoice":
            assert q["default"] in q["choices"]
    site = open(os.path.join(ROOT, "playbooks", "site.yml")).read()
    for stage in variables["c5c3_awx_stages"]["choices"]:
        assert "tags: [%s]" % stage in site  # every offered stage is a tag of site.yml
