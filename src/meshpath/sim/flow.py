"""A Worker's TCP flow through the connector, both ways, hop by hop.

Request: the Worker's SYN arrives on the tunnel (``CloudflareWARP``) for target:port —
prerouting (dnat), the routing decision, forward (or input), postrouting (snat/masquerade).
Reply: the target's SYN-ACK arrives on the interface the SYN left by; conntrack first undoes
the source NAT (the destination becomes the Worker again — in prerouting, *before* the
reply's route lookup, which is why NAT alone does not bring it back into the tunnel), then
prerouting, routing, forward, postrouting (un-dnat). The reply must leave by the tunnel.

The same walk serves IPv6 (a Worker source in the v6 source range, a v6 target): routing
then goes through :mod:`meshpath.sim.route6`, the ``ip6``/``inet`` chains run, and an
``fib saddr . iif oif`` rule gets its reverse lookup from :func:`fib6_oif`.
"""

from __future__ import annotations

from typing import Final

import msgspec

from meshpath.sim import values as v
from meshpath.sim.addr import int_to_ip
from meshpath.sim.addr6 import int_to_ip6, ip6_to_int, is_linklocal6, is_v6
from meshpath.sim.fib import Fib
from meshpath.sim.fib6 import Fib6, Flow6
from meshpath.sim.netfilter import ACCEPT, HookResult, NfPacket, Ruleset, netfilter_verdict
from meshpath.sim.route import route_packet
from meshpath.sim.route6 import LOCAL_TYPES
from meshpath.sim.values import TCP, Decision, FlowKey, KernelStep
from meshpath.state import Snapshot
from meshpath.state.nft import NftView

DELIVERED: Final = "delivered"
MISROUTED: Final = "misrouted"
DROPPED: Final = "dropped"
UNKNOWN: Final = "unknown"
DEFAULT_TUNNEL: Final = "CloudflareWARP"


class PathResult(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One direction: the packet as it arrived and as it left, and every hop."""

    direction: str  # request | reply
    arrived: FlowKey
    left: FlowKey | None  # after NAT; None when it never left
    status: str  # passed | local | dropped | unknown
    egress: str | None
    reason: str
    decision: Decision | None = None
    hops: tuple[KernelStep, ...] = ()


class FlowResult(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Does a Worker's connection to target:port work through this host, and why not."""

    outcome: str  # delivered | misrouted | dropped | unknown
    reason: str
    worker_ip: str
    target: str
    port: int
    tunnel: str
    source_seen_by_target: str | None
    request: PathResult
    reply: PathResult | None = None


class _Walk:
    """The hooks and routing of one packet through the host."""

    def __init__(self, snapshot: Snapshot, fib: Fib, *, v6: bool = False) -> None:
        self.fib = fib
        self.fib6 = fib.v6 if v6 else None
        self.ruleset = Ruleset.of(snapshot.nft.view if snapshot.nft.available else NftView())
        self.hops: list[KernelStep] = []

    def addr_of(self, dev: str) -> str | None:
        """The device's primary address of the walk's family (masquerade's choice; for
        IPv6 a global one: link-local sources are never forwarded)."""
        if self.fib6 is not None:
            found = [a for a in self.fib6.dev_addrs.get(dev, ()) if not is_linklocal6(a)]
            return int_to_ip6(found[0]) if found else None
        addrs = self.fib.dev_addrs.get(dev)
        return int_to_ip(addrs[0]) if addrs else None

    def hook(self, name: str, pkt: NfPacket) -> HookResult:
        if self.fib6 is not None:
            fib6 = self.fib6
            pkt.fib_oif = lambda p: fib6_oif(fib6, p)
        result = netfilter_verdict(self.ruleset, name, pkt, self.addr_of)
        self.hops.extend(result.steps)
        self.hops.append(KernelStep("hook", name, f"{result.verdict}: {result.reason}"))
        return result

    def route(self, pkt: NfPacket) -> Decision:
        packet = _packet(pkt)
        decision = route_packet(self.fib, packet)
        self.hops.extend(decision.steps)
        where = f"{decision.dev} via {decision.gateway}" if decision.gateway else decision.dev
        text = f"{decision.outcome} {where or ''}".strip()
        self.hops.append(KernelStep("routing", f"{pkt.src} -> {pkt.dst}", text))
        return decision


def fib6_oif(fib: Fib6, pkt: NfPacket) -> str | None:
    """``nft_fib6_eval`` for ``fib saddr . iif oif``: the packet's source looked up from its
    destination, as a locally generated flow (iif lo, the packet's protocol, no mark); the
    ingress device when the unicast route found leaves by it, else None ("missing"). Only a
    link-local source is looked up through the ingress device alone."""
    iif = fib.ifindex.get(pkt.iif or "", 0)
    daddr = ip6_to_int(pkt.src)
    strict = is_linklocal6(daddr)
    fl = Flow6(daddr, ip6_to_int(pkt.dst), iif=fib.loopback, oif=iif if strict else 0,
               nh_oif=iif if strict else 0, strict=strict, proto=pkt.proto)  # fmt: skip
    res = fib.fib_lookup(fl)
    hit = res.hit
    if res.error is not None or hit is None or hit.route.type in (*LOCAL_TYPES, "multicast"):
        return None
    return hit.dev if hit.dev == pkt.iif else None


def _packet(pkt: NfPacket) -> FlowKey:
    return FlowKey(
        dst=pkt.dst, src=pkt.src, iif=pkt.iif, mark=pkt.mark, proto=pkt.proto,
        sport=pkt.sport, dport=pkt.dport,
    )  # fmt: skip


def _walk(walk: _Walk, pkt: NfPacket, direction: str) -> PathResult:
    """prerouting -> routing -> forward|input -> postrouting (or routing -> output ->
    postrouting for a locally generated packet)."""
    arrived = _packet(pkt)
    if pkt.iif is not None:
        pre = walk.hook("prerouting", pkt)
        if pre.verdict != ACCEPT:
            return _stopped(walk, direction, arrived, pre)
    decision = walk.route(pkt)
    if not decision.ok:
        reason = f"routing: {decision.outcome} ({decision.error})"
        return _path(walk, direction, arrived, None, "dropped", None, reason, decision)
    if decision.outcome == v.LOCAL:
        result = walk.hook("input", pkt)
        if result.verdict != ACCEPT:
            return _stopped(walk, direction, arrived, result, decision)
        return _path(walk, direction, arrived, None, "local", "lo", "delivered locally", decision)
    pkt.oif = decision.dev
    middle = walk.hook("forward" if pkt.iif else "output", pkt)
    if middle.verdict != ACCEPT:
        return _stopped(walk, direction, arrived, middle, decision)
    post = walk.hook("postrouting", pkt)
    if post.verdict != ACCEPT:
        return _stopped(walk, direction, arrived, post, decision)
    left = _packet(pkt)
    return _path(walk, direction, arrived, left, "passed", decision.dev, "left", decision)


def _stopped(
    walk: _Walk,
    direction: str,
    arrived: FlowKey,
    hook: HookResult,
    decision: Decision | None = None,
) -> PathResult:
    status = "unknown" if hook.verdict == "unknown" else "dropped"
    reason = f"{hook.hook}: {hook.verdict} by {hook.reason}"
    return _path(walk, direction, arrived, None, status, None, reason, decision)


def _path(
    walk: _Walk,
    direction: str,
    arrived: FlowKey,
    left: FlowKey | None,
    status: str,
    egress: str | None,
    reason: str,
    decision: Decision | None,
) -> PathResult:
    return PathResult(
        direction=direction,
        arrived=arrived,
        left=left,
        status=status,
        egress=egress,
        reason=reason,
        decision=decision,
        hops=tuple(walk.hops),
    )


def simulate_flow(
    snapshot: Snapshot,
    worker_ip: str,
    target: str,
    port: int,
    *,
    tunnel: str = DEFAULT_TUNNEL,
    sport: int = 9025,
    fib: Fib | None = None,
) -> FlowResult:
    """The Worker's SYN in on ``tunnel`` to target:port, then the target's SYN-ACK back.

    ``fib``: the snapshot's compiled model when the caller asks several questions of one
    snapshot (it then shares its memos); built here otherwise."""
    fib = Fib.from_snapshot(snapshot) if fib is None else fib
    syn = NfPacket(worker_ip, target, TCP, sport, port, iif=tunnel, oif=None)

    def result(
        outcome: str, reason: str, request: PathResult, reply: PathResult | None = None
    ) -> FlowResult:
        return FlowResult(
            outcome=outcome, reason=reason, worker_ip=worker_ip, target=target, port=port,
            tunnel=tunnel, source_seen_by_target=syn.src if reply else None,
            request=request, reply=reply,
        )  # fmt: skip

    if tunnel not in fib.ifindex:
        missing = PathResult(
            direction="request", arrived=_packet(syn), left=None, status="unknown",
            egress=None, reason=f"no interface {tunnel!r} in the snapshot",
        )  # fmt: skip
        return result(UNKNOWN, missing.reason, missing)
    v6 = is_v6(target)
    request = _walk(_Walk(snapshot, fib, v6=v6), syn, "request")
    if request.status in ("dropped", "unknown"):
        outcome = DROPPED if request.status == "dropped" else UNKNOWN
        return result(outcome, f"the SYN: {request.reason}", request)
    reply = _undo_dnat(_walk(_Walk(snapshot, fib, v6=v6), _reply_packet(syn, request), "reply"),
                       syn, target, port)  # fmt: skip
    outcome, reason = _judge(reply, tunnel, worker_ip)
    return result(outcome, reason, request, reply)


def _reply_packet(syn: NfPacket, request: PathResult) -> NfPacket:
    """The SYN-ACK as it arrives: from the (possibly dnat'ed) target to the source the target
    saw, on the interface the SYN left by; conntrack then restores the Worker's address."""
    local = request.status == "local"
    reply = NfPacket(
        syn.dst, syn.src, TCP, syn.dport, syn.sport,
        iif=None if local else request.egress, oif=None, ct_state="established",
    )  # fmt: skip
    original_src = request.arrived.src or syn.src
    if any(kind in ("snat", "masquerade") for kind, _ in syn.nat):
        # nf_nat_ipv4_pre_routing: the reply's destination is translated back first.
        reply.dst = original_src
    return reply


def _undo_dnat(reply: PathResult, syn: NfPacket, target: str, port: int) -> PathResult:
    """Conntrack's reverse of a dnat: in postrouting the reply's source becomes the address
    and port the Worker asked for."""
    if reply.left is None or not any(kind == "dnat" for kind, _ in syn.nat):
        return reply
    left = msgspec.structs.replace(reply.left, src=target, sport=port)
    step = KernelStep("conntrack", "reply (postrouting)", f"dnat undone: source {target}:{port}")
    return msgspec.structs.replace(reply, left=left, hops=(*reply.hops, step))


def _judge(reply: PathResult, tunnel: str, worker_ip: str) -> tuple[str, str]:
    if reply.status == "unknown":
        return UNKNOWN, f"the reply: {reply.reason}"
    if reply.status in ("dropped", "local"):
        return DROPPED, f"the reply: {reply.reason}"
    if reply.egress == tunnel:
        return DELIVERED, f"the reply to {worker_ip} goes back into {tunnel}"
    d = reply.decision
    via = ""
    if d is not None:
        via = f" by route {d.route} (table {d.table}, rule {d.rule_priority})"
    return MISROUTED, (
        f"the reply to {worker_ip} leaves by {reply.egress}{via}, not by {tunnel}: "
        f"no route for the Worker's source range via {tunnel}"
    )
