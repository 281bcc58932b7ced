"""The collection's own metadata: galaxy.yml, meta/runtime.yml, roles' argument specs, EE files.

These are the contracts the build stage and Ansible rely on but that no module test exercises:
module_defaults only reaches modules listed in the action group, `ansible-doc -t role` and role
argument validation read meta/argument_specs.yml, and the EE installs what its files name.
"""
from __future__ import annotations

import ast
import os
import re

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")


def load(*parts):
    with open(os.path.join(ROOT, *parts), encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def modules():
    mdir = os.path.join(ROOT, "plugins", "modules")
    return sorted(f[:-3] for f in os.listdir(mdir) if f.endswith(".py") and f != "__init__.py")


def module_doc(name):
    """DOCUMENTATION of a module, read from its source without importing it."""
    with open(os.path.join(ROOT, "plugins", "modules", name + ".py"), encoding="utf-8") as fh:
        tree = ast.parse(fh.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "DOCUMENTATION" for t in node.targets):
            return yaml.safe_load(ast.literal_eval(node.value))
    raise AssertionError(f"plugins/modules/{name}.py has no DOCUMENTATION")


def roles():
    rdir = os.path.join(ROOT, "roles")
    return sorted(r for r in os.listdir(rdir) if os.path.isdir(os.path.join(rdir, r)))


def test_galaxy_yml():
    galaxy = load("galaxy.yml")
    assert (galaxy["namespace"], galaxy["name"]) == ("c5c3", "gitops")
    assert SEMVER.match(str(galaxy["version"])), galaxy["version"]
    assert "kubernetes.core" in galaxy["dependencies"]
    assert galaxy["license"] == ["Apache-2.0"]
    for path in (".venv", ".collections", ".cache", "build"):
        assert path in galaxy["build_ignore"], f"{path} would be packed into the collection tarball"


def test_requires_ansible_at_least_2_17():
    runtime = load("meta", "runtime.yml")
    m = re.match(r"^>=\s*(\d+)\.(\d+)", runtime["requires_ansible"])
    assert m and (int(m.group(1)), int(m.group(2))) >= (2, 17), runtime["requires_ansible"]


def test_k8s_action_group_names_existing_modules():
    group = load("meta", "runtime.yml")["action_groups"]["k8s"]
    missing = sorted(set(group) - set(modules()))
    assert not missing, f"meta/runtime.yml action group k8s lists modules that do not exist: {missing}"


@pytest.mark.parametrize("name", modules())
def test_cluster_facing_module_is_in_k8s_group(name):
    """A module taking the shared connection options must get them from module_defaults."""
    fragments = module_doc(name).get("extends_documentation_fragment") or []
    if isinstance(fragments, str):
        fragments = [fragments]
    group = load("meta", "runtime.yml")["action_groups"]["k8s"]
    assert ("c5c3.gitops.k8s_auth" in fragments) == (name in group), (
        f"{name}: uses k8s_auth={'c5c3.gitops.k8s_auth' in fragments}, in action group k8s={name in group}")


@pytest.mark.parametrize("role", roles())
def test_role_argument_specs_mirror_defaults(role):
    spec_path = os.path.join(ROOT, "roles", role, "meta", "argument_specs.yml")
    assert os.path.isfile(spec_path), f"roles/{role} has no meta/argument_specs.yml"
    specs = load("roles", role, "meta", "argument_specs.yml")["argument_specs"]
    assert "main" in specs, f"roles/{role}: argument_specs has no main entry point"
    options = specs["main"].get("options") or {}
    defaults_path = os.path.join(ROOT, "roles", role, "defaults", "main.yml")
    defaults = (load("roles", role, "defaults", "main.yml") if os.path.isfile(defaults_path) else None) or {}
    public = {k for k in defaults if not k.startswith("_")}
    assert public == set(options) - {k for k, o in options.items() if o.get("required")}, (
        f"roles/{role}: defaults and argument_specs differ: only in defaults {sorted(public - set(options))}, "
        f"only in argument_specs {sorted(set(options) - public)}")
    for key in public:
        if "default" in options[key]:
            assert options[key]["default"] == defaults[key], f"roles/{role}: {key} default differs from defaults/main.yml"
    for key, option in options.items():
        assert option.get("description"), f"roles/{role}: option {key} has no description"


def test_execution_environment_files():
    ee = load("execution-environment.yml")
    assert ee["version"] == 3
    assert ee["images"]["base_image"]["name"]
    deps = ee["dependencies"]
    reqs = load(deps["galaxy"])
    assert "kubernetes.core" in [c["name"] for c in reqs["collections"]]
    with open(os.path.join(ROOT, deps["python"]), encoding="utf-8") as fh:
        names = {re.split(r"[<>=!~ ;\[]", line.strip(), maxsplit=1)[0].lower()
                 for line in fh if line.strip() and not line.startswith("#")}
    assert {"kubernetes", "jsonpatch", "pyyaml"} <= names, names
    assert os.path.isfile(os.path.join(ROOT, deps["system"]))


def test_changelog_fragments_use_known_sections():
    config = load("changelogs", "config.yaml")
    sections = {s[0] for s in config["sections"]} | {config["prelude_section_name"], config["trivial_section_name"]}
    fdir = os.path.join(ROOT, "changelogs", "fragments")
    fragments = sorted(f for f in os.listdir(fdir) if f.endswith((".yml", ".yaml")))
    for frag in fragments:
        data = load("changelogs", "fragments", frag)
        assert isinstance(data, dict) and data, f"{frag}: not a mapping of sections"
        assert set(data) <= sections, f"{frag}: unknown sections {sorted(set(data) - sections)}"
