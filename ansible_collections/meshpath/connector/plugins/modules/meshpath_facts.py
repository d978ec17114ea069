#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: meshpath maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: meshpath_facts
short_description: The doctor's verdict on a WARP Connector host, as facts
version_added: "0.1.0"
description:
  - Runs C(meshpath doctor) on the managed host and sets the fact C(meshpath) with the
    verdict, the root cause, the findings and a summary of the Worker flows it simulated.
  - Also runs C(meshpath fleet facts) and sets C(meshpath.fleet) to what the host advertises
    over BGP; C(meshpath fleet check) on the controller judges every connector's C(fleet)
    together (two replicas advertising with equal preference, MP401).
  - Never changes the host.
options:
  targets:
    description: LAN services to simulate a Worker's flow to (C(IP:PORT)); default, one per LAN subnet.
    type: list
    elements: str
    default: []
  fleet_name:
    description:
      - The name this connector has in C(meshpath.fleet) (use C(inventory_hostname)).
      - Default, the host's name (and C(/NETNS) with O(netns)).
    type: str
  netns:
    description: Act inside this network namespace of the managed host.
    type: str
  root:
    description: Unused by the doctor; accepted so the modules share their connection options.
    type: path
  executable:
    description: The meshpath executable (a name on E(PATH) or a path).
    type: path
    default: meshpath
requirements:
  - meshpath on the managed host, run as root
attributes:
  check_mode:
    description: Only reads the host, the same in check mode.
    support: full
  diff_mode:
    description: Nothing changes, so there is no diff.
    support: none
  facts:
    description: Sets C(ansible_facts.meshpath).
    support: full
author:
  - meshpath maintainers (@meshpath)
"""

EXAMPLES = r"""
- name: Read the doctor's verdict
  meshpath.connector.meshpath_facts:

- name: Broken connectors
  ansible.builtin.debug:
    msg: "{{ inventory_hostname }}: {{ ansible_facts.meshpath.root_cause }}"
  when: not ansible_facts.meshpath.ok

- name: Facts named after the inventory, for meshpath fleet check
  meshpath.connector.meshpath_facts:
    fleet_name: "{{ inventory_hostname }}"
"""

RETURN = r"""
ansible_facts:
  description: Facts under C(meshpath).
  returned: always
  type: complex
  contains:
    meshpath:
      description:
        - The doctor's verdict, root cause, finding ids and flows.
        - C(fleet) is the C(meshpath/fleet-facts/1) document of C(meshpath fleet facts).
      type: dict
      returned: always
      sample: {"ok": false, "verdict": "PATH BROKEN", "root_cause": "...", "finding_ids": ["MP101"],
               "fleet": {"schema": "meshpath/fleet-facts/1", "host": "conn-a", "advertisements": []}}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.meshpath.connector.plugins.module_utils.meshpath import (
    COMMON_ARGS,
    EXIT_FINDINGS,
    run_json,
)


def summary(doc):
    findings = doc.get("findings", [])
    return dict(
        ok=bool(doc["ok"]),
        verdict=doc["verdict"],
        root_cause=doc.get("root_cause"),
        explanation=doc.get("explanation"),
        finding_ids=sorted(set(f["id"] for f in findings)),
        findings=findings,
        flows=doc.get("flows", []),
    )


def main():
    argument_spec = dict(
        targets=dict(type="list", elements="str", default=[]),
        fleet_name=dict(type="str"),
    )
    argument_spec.update(COMMON_ARGS)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    args = ["doctor"]
    for target in module.params["targets"]:
        args += ["--target", target]
    module.params["root"] = None  # doctor and fleet facts take no --root
    _rc, doc, _err = run_json(module, "doctor", args, ok_codes=(0, EXIT_FINDINGS))
    facts = summary(doc)
    fleet = ["fleet", "facts"]
    if module.params["fleet_name"]:
        fleet += ["--name", module.params["fleet_name"]]
    _rc, facts["fleet"], _err = run_json(module, "fleet-facts", fleet)
    module.exit_json(changed=False, ansible_facts=dict(meshpath=facts))


if __name__ == "__main__":
    main()
