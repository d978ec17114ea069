"""I/O edge: ask the live kernel `ip route get` the same question the simulator answers."""

from __future__ import annotations

import json
from dataclasses import dataclass

from meshpath.runner import Runner

# errno text the kernel answers with, mapped to the route outcome it means
# (fib_props[] in net/ipv4/fib_semantics.c and the rp_filter/martian paths).
_ERRORS = {
    "Network is unreachable": "unreachable",  # ENETUNREACH: no route / RTN_UNREACHABLE out
    "No route to host": "unreachable",  # EHOSTUNREACH: RTN_UNREACHABLE or forwarding off
    "Permission denied": "prohibit",  # EACCES: RTN_PROHIBIT
    "Invalid argument": "blackhole",  # EINVAL: RTN_BLACKHOLE (also martians)
    "Invalid cross-device link": "rp_filter",  # EXDEV: fib_validate_source failed
}


@dataclass(frozen=True, slots=True)
class KernelAnswer:
    """The kernel's answer: the egress device and gateway, or an error kind."""

    argv: tuple[str, ...]
    type: str | None = None
    dev: str | None = None
    gateway: str | None = None
    error: str | None = None
    raw: str = ""


def route_get_argv(
    dst: str, *, src: str | None = None, iif: str | None = None, mark: int | None = None
) -> list[str]:
    argv = ["ip", "-j", "route", "get", dst]
    if src:
        argv += ["from", src]
    if iif:
        argv += ["iif", iif]
    if mark is not None:
        argv += ["mark", hex(mark)]
    return argv


def parse_route_get(argv: list[str], returncode: int, stdout: str, stderr: str) -> KernelAnswer:
    """Turn `ip -j route get` output (or its RTNETLINK error) into a KernelAnswer."""
    if returncode != 0:
        text = stderr.strip().removeprefix("RTNETLINK answers: ")
        return KernelAnswer(tuple(argv), error=_ERRORS.get(text, text or "error"), raw=stderr)
    try:
        entry = json.loads(stdout)[0]
    except (ValueError, IndexError, KeyError):
        return KernelAnswer(tuple(argv), error="unparsable", raw=stdout)
    kind = entry.get("type", "unicast")
    return KernelAnswer(
        tuple(argv),
        type=kind,
        dev=entry.get("dev"),
        gateway=entry.get("gateway"),
        error=kind if kind in ("blackhole", "unreachable", "prohibit") else None,
        raw=stdout,
    )


def kernel_route_get(
    runner: Runner,
    dst: str,
    *,
    src: str | None = None,
    iif: str | None = None,
    mark: int | None = None,
) -> KernelAnswer:
    argv = route_get_argv(dst, src=src, iif=iif, mark=mark)
    done = runner.run(argv, check=False, timeout=10)
    return parse_route_get(argv, done.returncode, done.stdout, done.stderr)
