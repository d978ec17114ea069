"""The kernel model (pure): what Linux would do with a packet, given a Snapshot.

Public API (what doctor/fix call)::

    route_get(snapshot, packet, *, trace=True) -> Decision   # like `ip route get` + every step
    fib = Fib.from_snapshot(snapshot)                # compile once, then ask many questions:
    route_many(fib, packets, *, trace=True) -> list[Decision]   # (the Fib owns every memo)
    simulate_flow(snapshot, worker_ip, target, port, *, tunnel="CloudflareWARP", fib=fib)

A hypothetical change is just another Snapshot: ``msgspec.structs.replace(snap,
routes=snap.routes + (Route(...),))`` (or a new ``nft`` ruleset), then simulate again —
that is how a fix predicts its outcome before anything is applied.

The steps, named for the kernel functions they model: :func:`match_rule` (fib_rule_match),
``Fib.fib_lookup`` (fib_rules_lookup), ``Fib.lookup_table`` (fib_table_lookup, longest
prefix), :func:`check_rp_filter` (fib_validate_source), ``route_input``/``route_output``
(ip_route_input_slow / ip_route_output_key_hash_rcu), :func:`netfilter_verdict` (nf_hook
over nftables base chains) and NAT (masquerade/snat/dnat and conntrack's reverse).
"""

from __future__ import annotations

from meshpath.sim.fib import Fib, match_rule
from meshpath.sim.flow import FlowResult, PathResult, simulate_flow
from meshpath.sim.netfilter import HookResult, NfPacket, Ruleset, netfilter_verdict
from meshpath.sim.route import check_rp_filter, route_input, route_many, route_output, route_packet
from meshpath.sim.values import Decision, FlowKey, KernelStep
from meshpath.state import Snapshot


def route_get(snapshot: Snapshot, packet: FlowKey, *, trace: bool = True) -> Decision:
    """The kernel's routing decision for ``packet`` (input path when ``packet.iif`` is set).

    ``trace=False`` leaves ``Decision.steps`` empty: the same decision, faster, for bulk use.
    One question compiles the snapshot: for several, compile a :class:`Fib` once and use
    :func:`route_many` (or ``route_packet``).
    """
    return route_packet(Fib.from_snapshot(snapshot), packet, trace=trace)


__all__ = [
    "Decision",
    "Fib",
    "FlowKey",
    "FlowResult",
    "HookResult",
    "NfPacket",
    "PathResult",
    "Ruleset",
    "KernelStep",
    "check_rp_filter",
    "match_rule",
    "netfilter_verdict",
    "route_get",
    "route_input",
    "route_many",
    "route_output",
    "simulate_flow",
]
