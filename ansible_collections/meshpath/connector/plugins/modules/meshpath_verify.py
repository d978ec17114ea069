#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: meshpath maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: meshpath_verify
short_description: Prove a meshpath fix holds (FRR, kernel and nftables views)
version_added: "0.1.0"
description:
  - Runs C(meshpath verify) on the managed host and returns its checks.
  - Fails when a check fails (unless O(fail_on_broken=false)); never changes the host.
options:
  mode:
    description: Expect this fix mode (default, the newest applied fix's).
    type: str
    choices: [nat, route, bgp]
  peer:
    description: Also check the BGP session with this peer and what is advertised to it.
    type: str
  fail_on_broken:
    description: Fail the task when a check fails.
    type: bool
    default: true
  netns:
    description: Act inside this network namespace of the managed host.
    type: str
  root:
    description: Root for meshpath's persistent files and journal.
    type: path
  executable:
    description: The meshpath executable (a name on E(PATH) or a path).
    type: path
    default: meshpath
requirements:
  - meshpath on the managed host, run as root
notes:
  - Read-only; supports check mode (it runs the same read-only checks).
attributes:
  check_mode:
    description: Only reads the host, the same in check mode.
    support: full
  diff_mode:
    description: Nothing changes, so there is no diff.
    support: none
author:
  - meshpath maintainers (@meshpath)
"""

EXAMPLES = r"""
- name: The primary's fix holds and the router has exactly the ranges
  meshpath.connector.meshpath_verify:
    peer: 10.0.1.1
"""

RETURN = r"""
ok:
  description: Whether every check held.
  returned: always
  type: bool
  sample: true
checks:
  description: Every check with its view (frr, kernel, nft, worker), name, result and detail.
  returned: always
  type: list
  elements: dict
  sample: [{"view": "kernel", "name": "route 100.64.0.0/12", "ok": true, "detail": "via CloudflareWARP"}]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.meshpath.connector.plugins.module_utils.meshpath import (
    COMMON_ARGS,
    EXIT_FINDINGS,
    run_json,
)


def main():
    argument_spec = dict(
        mode=dict(type="str", choices=["nat", "route", "bgp"]),
        peer=dict(type="str"),
        fail_on_broken=dict(type="bool", default=True),
    )
    argument_spec.update(COMMON_ARGS)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    args = ["verify"]
    if module.params["mode"]:
        args += ["--mode", module.params["mode"]]
    if module.params["peer"]:
        args += ["--peer", module.params["peer"]]
    _rc, doc, _err = run_json(module, "verify", args, ok_codes=(0, EXIT_FINDINGS))
    out = dict(changed=False, ok=bool(doc["ok"]), checks=doc["checks"])
    if not doc["ok"] and module.params["fail_on_broken"]:
        failed = [c["name"] for c in doc["checks"] if not c["ok"]]
        module.fail_json(msg="meshpath verify: failed %s" % ", ".join(failed), **out)
    module.exit_json(**out)


if __name__ == "__main__":
    main()
