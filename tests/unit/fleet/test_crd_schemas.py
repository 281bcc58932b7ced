"""Every rendered Flux object validates against the upstream CRD openAPIV3Schema.

Strict on unknown fields: a structural schema makes the API server silently *prune* a field it
does not know (a typo such as ``dependOn`` would just vanish), so here every object schema with
``properties`` and no ``additionalProperties`` / ``x-kubernetes-preserve-unknown-fields`` rejects
extra keys.
"""
import copy
import glob
import os

import jsonschema
import pytest
import yaml

from ansible_collections.c5c3.gitops.plugins.module_utils.fleet_model import build_fleet
from ansible_collections.c5c3.gitops.plugins.module_utils.gitops_tree import render_tree

from fleet_helpers import CRD_DIR, TWO_REGIONS, load_catalog, make_inventory

pytestmark = pytest.mark.skipif(not os.path.isdir(CRD_DIR), reason="upstream CRDs not found at %s" % CRD_DIR)


def _strict(schema):
    schema = copy.deepcopy(schema)

    def walk(node):
        if not isinstance(node, dict):
            return
        if node.get("type") == "object" and "properties" in node and "additionalProperties" not in node \
                and not node.get("x-kubernetes-preserve-unknown-fields"):
            node["additionalProperties"] = False
        for key in ("properties", "patternProperties"):
            for sub in (node.get(key) or {}).values():
                walk(sub)
        for key in ("items", "additionalProperties", "not"):
            walk(node.get(key))
        for key in ("allOf", "anyOf", "oneOf"):
            for sub in node.get(key) or []:
                walk(sub)

    walk(schema)
    # metadata is ObjectMeta, not described by CRDs
    schema.setdefault("properties", {})["metadata"] = {"type": "object"}
    return schema


def _schemas():
    out = {}
    for path in glob.glob(os.path.join(CRD_DIR, "*.yaml")):
        with open(path) as handle:
            crd = yaml.safe_load(handle)
        group = crd["spec"]["group"]
        kind = crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            out[("%s/%s" % (group, version["name"]), kind)] = _strict(version["schema"]["openAPIV3Schema"])
    return out


SCHEMAS = _schemas() if os.path.isdir(CRD_DIR) else {}


def _flux_docs():
    catalog = load_catalog()
    # turn every optional part on, so that they are validated too
    for comp in catalog["components"]["control_plane"]:
        comp["enabled"] = True
    catalog["flux_instance"].update({
        "kustomize": {"patches": [{"patch": "- op: add\n  path: /spec/x\n  value: 1", "target": {"kind": "Deployment", "name": "kustomize-controller"}}]},
        "sharding": {"key": "sharding.fluxcd.io/key", "shards": ["shard1"]},
        "storage": {"class": "standard", "size": "10Gi"},
        "commonMetadata": {"labels": {"team": "c5c3"}},
    })
    catalog["sources"].append({"name": "extra-git", "kind": "GitRepository", "url": "https://git.example.com/x.git",
                               "ref": {"tag": "v1.0.0"}, "secretRef": "extra-git-auth"})
    catalog["sources"].append({"name": "extra-oci", "kind": "OCIRepository", "url": "oci://ghcr.io/x/y",
                               "ref": {"semver": ">=1.0.0"}})
    fleet = build_fleet(make_inventory(layout=TWO_REGIONS), catalog)
    # The FluxInstance is a bootstrap object (Ansible writes it, the tree never holds it).
    docs = [(i["path"], i["object"]) for i in fleet["objects"] if i["writer"] == "bootstrap"]
    for path, text in render_tree(fleet).items():
        for doc in yaml.safe_load_all(text):
            if doc and "fluxcd" in doc["apiVersion"].split("/")[0]:
                docs.append((path, doc))
    return docs


DOCS = _flux_docs() if os.path.isdir(CRD_DIR) else []


def test_every_flux_kind_is_rendered():
    kinds = {d["kind"] for _p, d in DOCS}
    assert kinds == {"FluxInstance", "HelmRepository", "GitRepository", "OCIRepository", "Kustomization", "HelmRelease"}


@pytest.mark.parametrize("path,doc", DOCS, ids=["%s:%s/%s" % (p, d["kind"], d["metadata"]["name"]) for p, d in DOCS])
def test_rendered_object_matches_crd_schema(path, doc):
    schema = SCHEMAS.get((doc["apiVersion"], doc["kind"]))
    assert schema is not None, "no CRD for %s %s" % (doc["apiVersion"], doc["kind"])
    jsonschema.validate(doc, schema, cls=jsonschema.Draft7Validator)


@pytest.mark.parametrize("mutate,fragment", [
    (lambda d: d["spec"]["install"].__setitem__("crds", "Replace"), "is not one of"),
    (lambda d: d["spec"].__setitem__("dependOn", []), "Additional properties"),
    (lambda d: d["spec"]["upgrade"]["remediation"].__setitem__("retries", "3"), "is not of type"),
    (lambda d: d["spec"].pop("interval"), "'interval' is a required property"),
])
def test_the_schema_check_catches_mistakes(mutate, fragment):
    doc = copy.deepcopy([d for _p, d in DOCS if d["kind"] == "HelmRelease"][0])
    mutate(doc)
    schema = SCHEMAS[(doc["apiVersion"], doc["kind"])]
    with pytest.raises(jsonschema.ValidationError, match=fragment):
        jsonschema.validate(doc, schema, cls=jsonschema.Draft7Validator)


def _cel_rules():
    """Every x-kubernetes-validations rule of the served versions of the kinds the model renders."""
    rendered = {"FluxInstance", "HelmRepository", "GitRepository", "OCIRepository", "Kustomization", "HelmRelease"}
    out = []

    def walk(node, kind):
        if not isinstance(node, dict):
            return
        for rule in node.get("x-kubernetes-validations") or []:
            out.append((kind, rule["message"]))
        for sub in (node.get("properties") or {}).values():
            walk(sub, kind)
        walk(node.get("items"), kind)
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], kind)

    for path in glob.glob(os.path.join(CRD_DIR, "*.yaml")):
        with open(path) as handle:
            crd = yaml.safe_load(handle)
        kind = crd["spec"]["names"]["kind"]
        if kind in rendered:
            for version in crd["spec"]["versions"]:
                if version.get("served"):
                    walk(version["schema"]["openAPIV3Schema"], kind)
    return sorted(set(out))


def test_every_upstream_cel_rule_is_enforced_by_the_model():
    from ansible_collections.c5c3.gitops.plugins.module_utils.fleet_validate import CEL_NOT_CHECKABLE, CEL_RULES
    enforced = {(kind, message) for kind, message, _check in CEL_RULES}
    rules = _cel_rules()
    assert len(rules) >= 10
    missing = [r for r in rules if r not in enforced and r[1] not in CEL_NOT_CHECKABLE]
    assert not missing, "CEL rules of the upstream CRDs the model does not enforce: %s" % missing


def test_chart_ref_form_objects_match_crd_schemas():
    catalog = load_catalog()
    for src in catalog["sources"]:
        if src["name"] == "c5c3-charts":
            src["chartForm"] = "chartRef"
    fleet = build_fleet(make_inventory(), catalog)
    kinds = set()
    for item in fleet["objects"]:
        doc = item["object"]
        if "fluxcd" in doc["apiVersion"].split("/")[0]:
            jsonschema.validate(doc, SCHEMAS[(doc["apiVersion"], doc["kind"])], cls=jsonschema.Draft7Validator)
            kinds.add(doc["kind"])
    assert "OCIRepository" in kinds
