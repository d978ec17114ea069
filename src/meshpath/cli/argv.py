"""Global options anywhere on the command line, like git, kubectl and ip accept them.

Click only parses a group's options before the subcommand's name, so `meshpath doctor --json`
would be "No such option". Users (and the earlier issues) write it that way, so the global
options are moved in front of the first subcommand before click sees the argv. Nothing after
a bare ``--`` moves: that belongs to the command ``lab exec`` runs.
"""

from __future__ import annotations

from typing import Final

# Global options that take no value, and those that take exactly one.
GLOBAL_FLAGS: Final = frozenset({"--json", "--debug", "--quiet", "-q", "--verbose", "-v"})
GLOBAL_VALUED: Final = frozenset({"--config", "--range"})


def hoist_global_options(args: list[str]) -> list[str]:
    """Return ``args`` with every global option moved before the subcommand (order kept)."""
    hoisted: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest += args[i:]
            break
        name = arg.split("=", 1)[0]
        if arg in GLOBAL_FLAGS or (name in GLOBAL_VALUED and "=" in arg):
            hoisted.append(arg)
        elif arg in GLOBAL_VALUED:
            hoisted += args[i : i + 2]
            i += 1
        else:
            rest.append(arg)
        i += 1
    return hoisted + rest
