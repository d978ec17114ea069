"""I/O edge: ask the live kernel `ip route get` the same question the simulator answers.

The comparison of its answers with the simulator's is a check: :mod:`meshpath.checks.kernel`.
"""

from __future__ import annotations

from collections.abc import Callable

from meshpath.checks.kernel import KernelAnswer
from meshpath.collect.iproute import ip_json
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
        entry = ip_json(stdout, strict=False)[0]  # names may hold control characters
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


def route_get(runner: Runner) -> Callable[..., KernelAnswer]:
    """``kernel_route_get`` bound to ``runner``: the question the cross-check asks."""

    def ask(
        dst: str, *, src: str | None = None, iif: str | None = None, mark: int | None = None
    ) -> KernelAnswer:
        return kernel_route_get(runner, dst, src=src, iif=iif, mark=mark)

    return ask
