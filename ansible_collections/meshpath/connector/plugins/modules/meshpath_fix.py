#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: meshpath maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: meshpath_fix
short_description: Fix the return path of a Cloudflare WARP Connector host with meshpath
version_added: "0.1.0"
description:
  - Runs C(meshpath fix) on the managed host, which must have the meshpath CLI installed.
  - With O(state=present), plans the fix for O(mode) and applies it (journaled, rolled back
    on failure). A plan with no step is reported as not changed, so the module is idempotent.
  - With O(state=absent), runs C(meshpath fix --rollback), which undoes the newest applied fix.
  - In check mode nothing is applied; the plan is returned and C(changed) says whether it has
    steps. With C(--diff) the FRR config diff and the nftables ruleset of every step are shown.
  - For connectors that are replicas of one Mesh node, use O(role=primary) on the replica
    Cloudflare keeps active and O(role=standby) on the others.
options:
  mode:
    description:
      - The fix. Required with O(state=present).
    type: str
    choices: [nat, route, bgp]
  state:
    description:
      - V(present) applies the fix, V(absent) rolls back the newest applied one.
    type: str
    default: present
    choices: [present, absent]
  peer:
    description: The BGP peer (O(mode=bgp)).
    type: str
  asn:
    description: This connector's AS number (O(mode=bgp)), for example V(65001) or V(1.10).
    type: str
  peer_asn:
    description: The peer's AS number, V(external) or V(internal) (O(mode=bgp)).
    type: str
    default: external
  role:
    description:
      - V(standby) prepends the AS path of the advertised ranges so the LAN prefers the
        primary; V(primary) sets no preference (O(mode=bgp)).
    type: str
    choices: [primary, standby]
  bfd:
    description: Run BFD on the BGP session (bfdd must run on the host) (O(mode=bgp)).
    type: bool
    default: false
  also_device_range:
    description: Also route Cloudflare's device range.
    type: bool
    default: false
  bgp_timeout:
    description: Seconds to wait for the session and the advertisement (O(mode=bgp)).
    type: float
    default: 30
  netns:
    description: Act inside this network namespace of the managed host.
    type: str
  root:
    description: Root for meshpath's persistent files and journal (tests use a temporary one).
    type: path
  executable:
    description: The meshpath executable (a name on E(PATH) or a path).
    type: path
    default: meshpath
requirements:
  - meshpath on the managed host, run as root
notes:
  - Supports check mode and diff mode.
attributes:
  check_mode:
    description: Returns the plan (C(meshpath fix) without C(--apply)) and changes nothing.
    support: full
  diff_mode:
    description: Shows the FRR configuration diff and the nftables ruleset of the plan.
    support: full
author:
  - meshpath maintainers (@meshpath)
"""

EXAMPLES = r"""
- name: The primary connector advertises the Cloudflare ranges to the LAN router
  meshpath.connector.meshpath_fix:
    mode: bgp
    peer: 10.0.1.1
    asn: "65001"
    peer_asn: "65000"
    role: primary

- name: A standby replica prepends its AS path, with BFD for fast failover
  meshpath.connector.meshpath_fix:
    mode: bgp
    peer: 10.0.1.1
    asn: "65001"
    role: standby
    bfd: true

- name: Roll the newest fix back
  meshpath.connector.meshpath_fix:
    state: absent
"""

RETURN = r"""
plan:
  description: The plan (meshpath's fix-plan document's C(plan)); empty steps when nothing is to do.
  returned: when O(state=present)
  type: dict
  sample: {"mode": "bgp", "steps": [], "already": ["FRR config for peer 10.0.1.1 (AS 65001)"]}
result:
  description: How the run ended (meshpath's fix-result document's C(result)).
  returned: when something ran (not in check mode)
  type: dict
  sample: {"status": "applied", "changed": ["frr:meshpath"], "undone": []}
steps_changed:
  description: Keys of the steps that changed the host (or, in check mode, would).
  returned: always
  type: list
  elements: str
  sample: ["frr:meshpath", "wait:10.0.1.1"]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.meshpath.connector.plugins.module_utils.meshpath import (
    COMMON_ARGS,
    EXIT_BAD_INPUT,
    EXIT_FINDINGS,
    plan_diff,
    run_json,
)


def fix_args(params):
    args = ["fix", "--mode", params["mode"]]
    for name, flag in (("peer", "--peer"), ("asn", "--asn"), ("role", "--role")):
        if params.get(name):
            args += [flag, params[name]]
    if params["mode"] == "bgp":
        args += ["--peer-asn", params["peer_asn"], "--bgp-timeout", "%g" % params["bgp_timeout"]]
    if params["bfd"]:
        args.append("--bfd")
    if params["also_device_range"]:
        args.append("--also-device-range")
    return args


def present(module):
    args = fix_args(module.params)
    if module.check_mode:
        _rc, doc, _err = run_json(module, "fix-plan", args)
        plan = doc["plan"]
        steps = [s["key"] for s in plan.get("steps", [])]
        return dict(changed=bool(steps), plan=plan, steps_changed=steps, diff=plan_diff(plan))
    _rc, doc, _err = run_json(module, "fix-result", args + ["--apply"], ok_codes=(0, 1))
    result, plan = doc["result"], doc.get("plan", {})
    if result["status"] not in ("applied", "nothing-to-do"):
        module.fail_json(msg="meshpath fix %s at %s: %s" % (
            result["status"], result.get("failed_step"), result.get("error")), result=result)
    changed = list(result.get("changed", []))
    return dict(changed=bool(changed), plan=plan, result=result, steps_changed=changed,
                diff=plan_diff(plan) if changed else {"prepared": ""})


def absent(module):
    if module.check_mode:
        # verify exits 2 ("no applied meshpath fix found") when there is nothing to undo.
        rc, _doc, _err = run_json(module, "verify", ["verify"],
                                  ok_codes=(0, EXIT_FINDINGS, EXIT_BAD_INPUT))
        applied = rc != EXIT_BAD_INPUT
        return dict(changed=applied, steps_changed=["rollback"] if applied else [])
    _rc, doc, _err = run_json(module, "fix-result", ["fix", "--rollback"], ok_codes=(0, 1))
    result = doc["result"]
    if result["status"] not in ("rolled-back", "nothing-to-do"):
        module.fail_json(msg="meshpath fix --rollback %s: %s" % (
            result["status"], result.get("error")), result=result)
    undone = list(result.get("undone", []))
    return dict(changed=result["status"] == "rolled-back", result=result, steps_changed=undone)


def main():
    argument_spec = dict(
        mode=dict(type="str", choices=["nat", "route", "bgp"]),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        peer=dict(type="str"),
        asn=dict(type="str"),
        peer_asn=dict(type="str", default="external"),
        role=dict(type="str", choices=["primary", "standby"]),
        bfd=dict(type="bool", default=False),
        also_device_range=dict(type="bool", default=False),
        bgp_timeout=dict(type="float", default=30),
    )
    argument_spec.update(COMMON_ARGS)
    module = AnsibleModule(
        argument_spec=argument_spec,
        required_if=[("state", "present", ("mode",))],
        supports_check_mode=True,
    )
    out = present(module) if module.params["state"] == "present" else absent(module)
    module.exit_json(**out)


if __name__ == "__main__":
    main()
