"""I/O edge: ask the live kernel `ip route get` the same question the simulator answers."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from meshpath.checks.context import CheckContext
from meshpath.checks.path import PathOutcome
from meshpath.checks.report import Disagreement
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


def cross_check(
    runner: Runner, ctx: CheckContext, flows: tuple[PathOutcome, ...]
) -> tuple[tuple[PathOutcome, ...], tuple[Disagreement, ...]]:
    """Ask the live kernel the flows' two routing questions; the kernel wins a disagreement.

    Request: `route get TARGET from WORKER iif TUNNEL`. Reply: `route get WORKER from TARGET
    iif LAN` (conntrack restores a NATed reply's destination before this lookup, so the
    question is the same with or without NAT).
    """
    checked: list[PathOutcome] = []
    disagreements: list[Disagreement] = []
    for flow in flows:
        request = kernel_route_get(runner, flow.target.address, src=flow.worker_ip, iif=ctx.tunnel)
        lan = flow.request_dev or request.dev or (ctx.lan_interfaces or ("eth0",))[0]
        reply = kernel_route_get(runner, flow.worker_ip, src=flow.target.address, iif=lan)
        if flow.status == "unknown":  # the model could not decide: the kernel answers
            checked.append(_kernel_flow(ctx, flow, request, reply))
            continue
        found = _compare(flow, request, reply)
        disagreements += found
        checked.append(_kernel_flow(ctx, flow, request, reply) if found else flow)
    return tuple(checked), tuple(disagreements)


def _said(answer: KernelAnswer) -> str:
    return answer.error or answer.dev or "?"


def _compare(flow: PathOutcome, request: KernelAnswer, reply: KernelAnswer) -> list[Disagreement]:
    out = []
    if flow.request_dev and not request.error and request.dev != flow.request_dev:
        out.append(Disagreement(f"request to {flow.target}", flow.request_dev, _said(request)))
    if flow.stage != "request" and flow.egress and reply.dev != flow.egress:
        out.append(Disagreement(f"reply from {flow.target}", flow.egress, _said(reply)))
    return out


def _kernel_flow(
    ctx: CheckContext, flow: PathOutcome, request: KernelAnswer, reply: KernelAnswer
) -> PathOutcome:
    """The flow as the kernel answers it (routing only: the kernel's route get has no nft)."""
    hops = (
        f"kernel: {' '.join(request.argv[3:])} -> {_said(request)}",
        f"kernel: {' '.join(reply.argv[3:])} -> {_said(reply)}",
    )
    if request.error:
        status, stage, cause = "dropped", "request", _cause(request.error)
    elif reply.error:
        status, stage, cause = "dropped", "reply", _cause(reply.error)
    elif reply.dev == ctx.tunnel:
        status, stage, cause = "delivered", None, None
    else:
        status, stage, cause = "misrouted", "reply", "no-return-route"
    return dataclasses.replace(
        flow,
        status=status,
        stage=stage,
        cause=cause,
        egress=reply.dev,
        request_dev=request.dev,
        hops=(*flow.hops, *hops),
        detail=f"the kernel's routing decides: the reply leaves by {_said(reply)}",
        source="kernel",
        model_detail=flow.detail if flow.status == "unknown" else None,
    )


def _cause(error: str) -> str:
    return {"rp_filter": "rp_filter", "blackhole": "route-type", "prohibit": "route-type"}.get(
        error, "no-route"
    )
