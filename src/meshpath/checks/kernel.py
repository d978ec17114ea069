"""The kernel cross-check: hold the simulated flows to the live kernel's `ip route get`.

Pure: the question goes through an ``ask`` callable (the live one is
:func:`meshpath.collect.kernel_route.route_get`); where the kernel and the model disagree,
the kernel wins and the disagreement is reported.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Protocol

from meshpath.checks.context import CheckContext
from meshpath.checks.path import PathOutcome
from meshpath.checks.report import Disagreement


@dataclass(frozen=True, slots=True)
class KernelAnswer:
    """The kernel's answer: the egress device and gateway, or an error kind."""

    argv: tuple[str, ...]
    type: str | None = None
    dev: str | None = None
    gateway: str | None = None
    error: str | None = None
    raw: str = ""


class RouteGet(Protocol):
    """Ask the kernel `ip route get DST from SRC iif IIF`."""

    def __call__(self, dst: str, *, src: str | None = ..., iif: str | None = ...) -> KernelAnswer:
        """The kernel's answer."""
        ...


def cross_check(
    ask: RouteGet, ctx: CheckContext, flows: tuple[PathOutcome, ...]
) -> tuple[tuple[PathOutcome, ...], tuple[Disagreement, ...]]:
    """Ask the live kernel the flows' two routing questions; the kernel wins a disagreement.

    Request: `route get TARGET from WORKER iif TUNNEL`. Reply: `route get WORKER from TARGET
    iif LAN` (conntrack restores a NATed reply's destination before this lookup, so the
    question is the same with or without NAT).
    """
    checked: list[PathOutcome] = []
    disagreements: list[Disagreement] = []
    for flow in flows:
        request = ask(flow.target.address, src=flow.worker_ip, iif=ctx.tunnel)
        lan = flow.request_dev or request.dev or (ctx.lan_interfaces or ("eth0",))[0]
        reply = ask(flow.worker_ip, src=flow.target.address, iif=lan)
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
