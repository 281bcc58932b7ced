#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: c5c3.gitops contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: fleet_waves
short_description: Plan a rollout by waves and build the fleet as it is after wave N
version_added: 0.1.0
description:
  - Every cluster of the fleet is in a rollout wave (C(gitops_wave), default 0). Given the previous
    state and the new C(fleet) of M(c5c3.gitops.fleet_model), returns per wave the objects that
    are added, changed and removed (RV(waves)), and with O(wave) the fleet as it is once that wave
    is rolled out (RV(fleet)) - waves up to O(wave) at the new content, later waves still at
    their previous content. That fleet has the shape of the model's, so
    M(c5c3.gitops.gitops_render) writes it as is (the tree after wave N).
  - The previous state is a rendered tree - O(previous_dir) (the files listed in its
    C(.c5c3-gitops-render.json), i.e. what M(c5c3.gitops.gitops_render) wrote there) or
    O(previous_files) - or O(previous_objects). Without any, nothing was delivered before and
    every object is added in its wave.
  - Objects of no cluster (the sources) belong to the first wave; an object that left the fleet
    is removed in its cluster's wave (a cluster gone from the inventory - in the wave its
    C(gitops.c5c3.io/wave) label names, else the last).
  - Runs where it is executed and contacts no cluster.
author:
  - c5c3.gitops developers (@c5c3)
attributes:
  check_mode:
    support: full
    description: Computes the same result; it never changes anything.
  diff_mode:
    support: none
    description: Returns data, changes nothing.
requirements:
  - PyYAML (to read a previous tree)
options:
  fleet:
    description: The C(fleet) result of M(c5c3.gitops.fleet_model) (the target).
    type: dict
    required: true
  wave:
    description: Build RV(fleet) as it is after this wave. Omitted - RV(fleet) is the target fleet.
    type: int
  previous_dir:
    description: A directory holding the previously rendered tree (a render destination, a checkout of the sync repository).
    type: path
  previous_files:
    description: "The previously rendered tree as C({path: file text})."
    type: dict
  previous_objects:
    description: Previous state as a list of C({path, object}) entries.
    type: list
    elements: dict
notes:
  - docs/site.md of the collection, section "Waves", describes the rollout.
seealso:
  - module: c5c3.gitops.fleet_model
  - module: c5c3.gitops.gitops_render
"""

EXAMPLES = r"""
- name: Build the tree as it will look after wave 0
  c5c3.gitops.fleet_waves:
    fleet: "{{ gitops_fleet }}"
    previous_dir: /srv/c5c3-gitops
    wave: 0
  register: _after0

- name: Render it
  c5c3.gitops.gitops_render:
    fleet: "{{ _after0.fleet }}"
    dest: /srv/c5c3-gitops
"""

RETURN = r"""
waves:
  description:
    - Per wave, in rollout order - C(wave), C(clusters), and C(added), C(changed), C(removed)
      (lists of C({kind, namespace, name, cluster, path})), C(at_target) (nothing to change).
  returned: always
  type: list
  elements: dict
fleet:
  description: The fleet after O(wave) (the target fleet without O(wave)); C(rollout.after_wave) names the wave.
  returned: always
  type: dict
at_target:
  description: Whether the previous state already is the target in every wave.
  returned: always
  type: bool
summary:
  description: One line per wave - what it adds, changes and removes, or C(at target).
  returned: always
  type: list
  elements: str
  sample: ["wave 0 (management, region-one): 1 changed (HelmRelease region-one/mariadb-operator)", "wave 1 (region-two): at target"]
pending:
  description: The waves that still have something to change.
  returned: always
  type: list
  elements: int
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.c5c3.gitops.plugins.module_utils import gitops_writer, waves


def main():
    module = AnsibleModule(
        argument_spec=dict(
            fleet=dict(type="dict", required=True),
            wave=dict(type="int"),
            previous_dir=dict(type="path"),
            previous_files=dict(type="dict"),
            previous_objects=dict(type="list", elements="dict"),
        ),
        mutually_exclusive=[("previous_dir", "previous_files", "previous_objects")],
        supports_check_mode=True,
    )
    params = module.params
    fleet = params["fleet"]
    try:
        if params["previous_objects"] is not None:
            previous = params["previous_objects"]
        elif params["previous_files"] is not None:
            previous = waves.entries_from_tree(params["previous_files"])
        elif params["previous_dir"]:
            previous = waves.entries_from_tree(gitops_writer.read_owned_tree(params["previous_dir"]))
        else:
            previous = []
        plan = waves.plan(previous, fleet)
        result_fleet = fleet if params["wave"] is None else waves.fleet_after_wave(previous, fleet, params["wave"])
    except (waves.WaveError, KeyError, TypeError) as exc:
        module.fail_json(msg="cannot plan the waves: %s" % exc)
    for wave_plan in plan:
        wave_plan["at_target"] = waves.at_target(wave_plan)
    module.exit_json(
        changed=False,
        waves=plan,
        summary=[waves.summarize(w) for w in plan],
        fleet=result_fleet,
        at_target=all(w["at_target"] for w in plan),
        pending=[w["wave"] for w in plan if not w["at_target"]],
    )


if __name__ == "__main__":
    main()
