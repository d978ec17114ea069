"""The lab's ``warp-cli`` stand-in: answers from the WARP emulator's state.

The WARP emulator renders every answer (:func:`answers`) into a directory whenever its
state changes; the lab writes a ``warp-cli`` shell script into ``<run dir>/bin`` that
prints the right one (:func:`script`: a ``cat``, so a snapshot's five warp-cli calls cost
milliseconds, not five Python start-ups). With that directory first on PATH,
``meshpath snapshot --netns <conn>`` collects the lab exactly as it collects a real host.
Formats are warp-cli's own (see ``tests/data/warp/SOURCES``): ``status``, ``settings``,
``tunnel ip list``, ``registration show`` and ``--version``; ``--accept-tos`` is accepted
anywhere. ``python -m meshpath.lab.warpcli --status FILE ARGS`` answers from the JSON state
directly (for tests and by hand).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REGISTRATION = (
    "Account type: Team\nDevice ID: 6b5c3f0e-lab0-4c9e-9d5e-000000000005\n"
    "Public key: (lab)\nAccount ID: {account}\nOrganization: mplab\n"
    "Email: warp_connector@mplab.cloudflareaccess.com\n"
)


def _entries(state: dict[str, Any]) -> list[str]:
    out = []
    for entry in state.get("entries", []):
        value = entry.get("address") or entry.get("host") or ""
        note = entry.get("description")
        out.append(f"  {value} ({note})" if note else f"  {value}")
    return out


def render(state: dict[str, Any], command: list[str]) -> tuple[int, str]:
    """(exit code, stdout) of one warp-cli invocation against ``state``."""
    words = [w for w in command if w != "--accept-tos"]
    mode = str(state.get("mode", "exclude"))
    if words == ["--version"]:
        return 0, f"warp-cli {state.get('version', '2025.2.600.0')}\n"
    if words == ["status"]:
        return 0, f"Status update: {state.get('status', 'Connecting')}\n"
    if words == ["tunnel", "ip", "list"]:
        head = "Excluded routes:" if mode == "exclude" else "Included routes:"
        return 0, "\n".join([head, *_entries(state)]) + "\n"
    if words == ["settings"]:
        head = "Exclude" if mode == "exclude" else "Include"
        lines = [
            "Merged configuration:",
            "(network policy)\tMode: WarpWithDnsOverHttps",
            f"(network policy)\t{head} mode, with hosts/ips:",
            *_entries(state),
            "",
            "(network policy)\tProfile ID: " + str(state.get("policy") or "default"),
        ]
        return 0, "\n".join(lines) + "\n"
    if words == ["registration", "show"]:
        return 0, REGISTRATION.format(account=state.get("account", ""))
    return 2, ""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="warp-cli", add_help=False)
    p.add_argument("--status", type=Path, required=True)
    args, rest = p.parse_known_args(argv)
    try:
        state = json.loads(args.status.read_text())
    except (OSError, ValueError):
        sys.stderr.write("Error: Unable to connect to the CloudflareWARP daemon\n")
        return 1
    code, out = render(state, rest)
    if code == 2:
        sys.stderr.write(f"error: unrecognized subcommand '{' '.join(rest)}'\n")
    sys.stdout.write(out)
    return code


COMMANDS: dict[str, tuple[str, ...]] = {
    "status": ("status",),
    "settings": ("settings",),
    "tunnel-ip-list": ("tunnel", "ip", "list"),
    "registration-show": ("registration", "show"),
    "version": ("--version",),
}


def answers(state: dict[str, Any]) -> dict[str, str]:
    """file name -> warp-cli's output, for every command the stand-in answers."""
    return {name: render(state, list(words))[1] for name, words in COMMANDS.items()}


def write_answers(state: dict[str, Any], directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in answers(state).items():
        tmp = directory / f".{name}.tmp"
        tmp.write_text(text)
        tmp.replace(directory / name)


def script(directory: Path) -> str:
    """The ``warp-cli`` shell script the lab puts on the connector's PATH."""
    cases = "\n".join(
        f'  "{" ".join(words)}") exec cat {directory / name} ;;' for name, words in COMMANDS.items()
    )
    return (
        "#!/bin/sh\n"
        "# meshpath lab: warp-cli stand-in (answers rendered by the WARP emulator)\n"
        'args=""\n'
        'for a in "$@"; do [ "$a" = "--accept-tos" ] || args="${args:+$args }$a"; done\n'
        'case "$args" in\n'
        f"{cases}\n"
        "  *) echo \"error: unrecognized subcommand '$args'\" >&2; exit 2 ;;\n"
        "esac\n"
    )


if __name__ == "__main__":
    raise SystemExit(main())
