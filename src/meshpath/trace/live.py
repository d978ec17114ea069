"""The capture edge of `meshpath trace --live`: tcpdump on ``any``, through a Runner.

``-i any -y LINUX_SLL2`` records each packet's interface index and direction (libpcap
1.10 offers LINUX_SLL2 on ``any``); the indexes are named from the same namespace the
capture ran in. The capture is bounded by coreutils ``timeout -s INT`` so tcpdump flushes
and closes the file itself.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from meshpath.errors import BadInputError, CommandError, MissingToolError
from meshpath.runner import Runner
from meshpath.trace.model import Endpoint
from meshpath.trace.packet import addr_text

MAX_DURATION: Final = 3600.0
_LINK_LINE: Final = re.compile(r"^(\d+):\s+([^:@\s]+)")


def capture_filter(target: Endpoint | None) -> str:
    """Only what a verdict can use: TCP to/from the target (or all TCP) and ICMP errors."""
    icmp = "icmp or icmp6"
    if target is None:
        return f"tcp or {icmp}"
    return f"(tcp and host {addr_text(target.address)} and port {target.port}) or {icmp}"


def capture_argv(path: Path, duration: float, target: Endpoint | None) -> list[str]:
    if not 0 < duration <= MAX_DURATION:
        raise BadInputError(f"--duration {duration}: expected 0 < seconds <= {MAX_DURATION:g}")
    return [
        # --foreground: keep tcpdump in our process group so a Ctrl-C reaches it too
        # (else timeout's own group orphans it); -k 5: SIGKILL if SIGINT is not enough.
        "timeout", "--foreground", "-k", "5", "-s", "INT", f"{duration:g}",
        "tcpdump", "-i", "any", "-y", "LINUX_SLL2", "-n", "-U", "--immediate-mode", "-s", "256",
        "-w", str(path), capture_filter(target),
    ]  # fmt: skip


def capture(runner: Runner, path: Path, duration: float, target: Endpoint | None) -> None:
    """Capture for ``duration`` seconds into ``path`` (a pcap with LINUX_SLL2 records)."""
    argv = capture_argv(path, duration, target)
    for program in ("timeout", "tcpdump"):
        if not runner.has(program):
            raise MissingToolError(program, "install tcpdump (apt-get install tcpdump)")
    done = runner.run(argv, check=False, timeout=duration + 30)
    if done.returncode not in (0, 124):  # 124: timeout stopped it, as intended
        raise CommandError(done.argv, done.returncode, done.stderr)


def link_names(runner: Runner) -> dict[int, str]:
    """ifindex -> name from ``ip -o link show`` (in the runner's namespace)."""
    done = runner.run(["ip", "-o", "link", "show"])
    names: dict[int, str] = {}
    for line in done.stdout.splitlines():
        m = _LINK_LINE.match(line)
        if m:
            names[int(m.group(1))] = m.group(2)
    return names
