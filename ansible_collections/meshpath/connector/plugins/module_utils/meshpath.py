# -*- coding: utf-8 -*-
# Copyright: meshpath maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Run the meshpath CLI on the managed host and read its JSON documents.

Every meshpath command prints, with ``--json``, one document tagged
``"schema": "meshpath/<name>/<version>"``; the modules accept the versions listed in
SCHEMAS and fail clearly on any other (a newer meshpath with a changed document).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

SCHEMAS = {
    "fix-plan": (1,),
    "fix-result": (1,),
    "verify": (1,),
    "doctor": (1,),
    "fleet-facts": (1,),
}
# meshpath's exit codes: 0 ok, 1 findings / check failed, 2 bad input, 3 environment.
EXIT_FINDINGS = 1
EXIT_BAD_INPUT = 2

COMMON_ARGS = dict(
    netns=dict(type="str"),
    root=dict(type="path"),
    executable=dict(type="path", default="meshpath"),
)


def base_argv(module, args):
    """``meshpath --json ARGS [--netns N] [--root R]`` as an argv list."""
    exe = module.params["executable"]
    if "/" not in exe:
        exe = module.get_bin_path(exe, required=True)
    argv = [exe, "--json"] + list(args)
    if module.params.get("netns"):
        argv += ["--netns", module.params["netns"]]
    if module.params.get("root"):
        argv += ["--root", module.params["root"]]
    return argv


def run_json(module, name, args, ok_codes=(0,)):
    """Run meshpath; (exit code, document, stderr). Fails the module on an exit code not in
    ``ok_codes`` or a document that is not ``meshpath/<name>/<known version>``."""
    argv = base_argv(module, args)
    rc, out, err = module.run_command(argv)
    if rc not in ok_codes:
        module.fail_json(
            msg="meshpath exited %d: %s" % (rc, (err or out).strip()[-800:]),
            rc=rc, cmd=argv, stdout=out, stderr=err,
        )
    return rc, parse_document(module, name, out, argv), err


def parse_document(module, name, text, argv):
    try:
        doc = json.loads(text)
    except ValueError:
        module.fail_json(msg="meshpath printed no JSON document", cmd=argv, stdout=text)
    tag = doc.get("schema", "") if isinstance(doc, dict) else ""
    parts = tag.split("/")
    want = SCHEMAS[name]
    if len(parts) != 3 or parts[:2] != ["meshpath", name] or not parts[2].isdigit() or (
        int(parts[2]) not in want
    ):
        module.fail_json(
            msg="meshpath printed %r; this collection reads meshpath/%s/%s"
            % (tag, name, "|".join(str(v) for v in want)),
            cmd=argv,
        )
    return doc


def plan_diff(plan):
    """Ansible's diff of a plan: each step's description and, for FRR, its config diff
    (running -> desired); for nftables, the ruleset it loads."""
    out = []
    for step in plan.get("steps", []):
        out.append("# %s" % step.get("description", step.get("key", "")))
        detail = step.get("detail")
        action = step.get("action") or {}
        if detail:
            out.append(detail)
        elif action.get("kind") == "nft" and action.get("text"):
            out.extend("+" + line for line in action["text"].splitlines())
        elif action.get("kind") == "run" and action.get("argv"):
            out.append("+ " + " ".join(action["argv"]))
    return {"prepared": "\n".join(out) + ("\n" if out else "")}
