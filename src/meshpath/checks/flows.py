"""Run the simulator for each Worker target and express the result as PathOutcomes."""

from __future__ import annotations

from collections.abc import Iterator

from meshpath.checks.context import CheckContext
from meshpath.checks.finding import Finding, Severity
from meshpath.checks.path import PathOutcome
from meshpath.checks.targets import Target, worker_for
from meshpath.sim import Decision, FlowKey, FlowResult, PathResult, route_input, simulate_flow
from meshpath.sim import values as v
from meshpath.values import endpoint

_DECISION_CAUSES = {
    v.RP_FILTER: "rp_filter",
    v.FORWARDING_OFF: "forwarding",
    v.BLACKHOLE: "route-type",
    v.UNREACHABLE: "route-type",
    v.PROHIBIT: "route-type",
    v.NO_ROUTE: "no-route",
    v.MARTIAN_SOURCE: "martian",
    v.MARTIAN_DESTINATION: "martian",
    v.LOCAL_SOURCE: "martian",
}


def simulate_targets(
    ctx: CheckContext, targets: tuple[Target, ...], worker_ip: str | None = None
) -> tuple[PathOutcome, ...]:
    ranges = ctx.settings.ranges
    return tuple(
        to_outcome(
            t,
            simulate_flow(
                ctx.snapshot,
                worker_for(t, ranges, worker_ip),
                t.address,
                t.port,
                tunnel=ctx.tunnel,
                fib=ctx.fib,
            ),  # fmt: skip
        )
        for t in targets
    )


def to_outcome(target: Target, flow: FlowResult) -> PathOutcome:
    """The doctor's view of one simulated flow: status, where it failed, and the evidence."""
    failed = _failed_path(flow)
    reply = flow.reply
    return PathOutcome(
        target=target,
        worker_ip=flow.worker_ip,
        status=flow.outcome,
        stage=failed.direction if failed is not None else None,
        cause=_cause(flow, failed),
        detail=flow.reason if flow.outcome != "delivered" else "",
        egress=reply.egress if reply is not None else None,
        request_dev=flow.request.egress,
        hops=tuple(_hop_line(p) for p in (flow.request, reply) if p is not None),
        seen_source=flow.source_seen_by_target,
    )


def _failed_path(flow: FlowResult) -> PathResult | None:
    if flow.outcome == "delivered":
        return None
    if flow.reply is None or flow.request.status in ("dropped", "unknown"):
        return flow.request
    return flow.reply


def _cause(flow: FlowResult, failed: PathResult | None) -> str | None:
    if failed is None:
        return None
    if flow.outcome == "misrouted":
        return "no-return-route"
    if flow.outcome == "unknown" or failed.status == "unknown":
        return "unknown"
    decision = failed.decision
    if decision is not None and not decision.ok:
        if decision.outcome == v.FORWARDING_OFF and ":" in flow.worker_ip:
            return "forwarding6"  # net.ipv6.conf.all.forwarding, not ip_forward
        return _DECISION_CAUSES.get(decision.outcome, "unknown")
    if failed.status == "local":
        return "unknown"
    return "netfilter"


def _hop_line(path: PathResult) -> str:
    pkt = path.arrived
    # A flow always has a source by now; "?" only keeps an impossible None readable.
    src, dst = endpoint(pkt.src or "?", pkt.sport), endpoint(pkt.dst, pkt.dport)
    head = f"{path.direction} {src} > {dst} in {pkt.iif}"
    return f"{head}: {_decision_text(path.decision)} -> {path.reason}"


def _decision_text(decision: Decision | None) -> str:
    if decision is None:
        return "not routed"
    where = f" via {decision.gateway}" if decision.gateway else ""
    route = f"route {decision.route} (table {decision.table}, rule {decision.rule_priority})"
    return f"{route} dev {decision.dev}{where}" if decision.route else decision.outcome


def check_device_range(ctx: CheckContext) -> Iterator[Finding]:
    """MP102: replies to Mesh devices (not Workers) must also go back into the tunnel.

    Asked of the model like any reply: a packet from the LAN to the device range's first
    address, arriving on the LAN interface, must leave by the tunnel.
    """
    device = ctx.settings.ranges.device_v4
    lan = ctx.lan_interfaces[0] if ctx.lan_interfaces else None
    lan_addr = next((a.local for a in ctx.snapshot.addresses_of(lan or "") if a.family == 4), None)
    if ctx.tunnel_link is None or lan is None or lan_addr is None:
        return
    probe = FlowKey(dst=str(device.network_address + 1), src=lan_addr, iif=lan, proto=v.TCP)
    decision = route_input(ctx.fib, probe)
    if decision.dev == ctx.tunnel:
        return
    yield Finding(
        "MP102",
        Severity.INFO,
        f"replies to the device range {device} do not go back into {ctx.tunnel}",
        evidence=(f"reply to {probe.dst} in {lan}: {_decision_text(decision)}",),
        why="Only needed when Mesh devices (not just Workers) must reach this LAN.",
        fix_mode="route",
        fix_commands=("meshpath fix --mode route --also-device-range",),
    )
