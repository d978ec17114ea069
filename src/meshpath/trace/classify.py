"""Name what happened to one connection attempt, from what the capture saw of it.

The order of the tests is the order of the path: a reply that made it back into the
tunnel is ok whatever else happened; a reset or ICMP error from the LAN explains a
failure better than silence; a SYN-ACK that arrived and left anywhere but the tunnel is
the field report's misrouted return; then how far the SYN itself got.
"""

from __future__ import annotations

from meshpath.trace.flowstate import FlowState
from meshpath.trace.model import (
    ICMP_UNREACHABLE,
    NO_REPLY,
    NOT_FORWARDED,
    OK,
    REFUSED,
    REPLY_DROPPED,
    RETURN_MISROUTED,
    FlowVerdict,
    Timing,
)


def classify(flow: FlowState) -> FlowVerdict:
    """The verdict for one flow plus its counts, timing and evidence."""
    counts = flow.counts
    syn_sightings = counts["syn.in"]
    nat = flow.lan is not None and flow.lan != flow.client
    return FlowVerdict(
        verdict=_verdict(flow),
        client=flow.client,
        server=flow.server,
        service_saw=flow.lan,
        nat=nat,
        tunnel_iface=flow.tunnel,
        lan_iface=flow.lan_iface,
        reply_iface=flow.reply_iface,
        syn_retransmissions=max(syn_sightings - 1, 0),
        synack_retransmissions=max(counts["synack.in"] - 1, 0),
        packets=flow.packets + flow.data_packets,
        timing=_timing(flow),
        evidence=tuple(flow.evidence),
        notes=_notes(flow),
    )


def _verdict(flow: FlowState) -> str:
    counts = flow.counts
    if counts["synack.tunnel"]:
        return OK
    if flow.rst is not None:
        return REFUSED
    if flow.icmp is not None:
        return ICMP_UNREACHABLE
    if counts["synack.other"]:
        return RETURN_MISROUTED
    if counts["synack.in"]:
        return REPLY_DROPPED
    if counts["syn.out"]:
        return NO_REPLY
    return NOT_FORWARDED


def _ms(times: dict[str, int], start: str, end: str) -> float | None:
    a, b = times.get(start), times.get(end)
    if a is None or b is None or a < 0 or b < 0:
        return None
    return round((b - a) / 1e6, 3)


def _timing(flow: FlowState) -> Timing:
    t = flow.times
    return Timing(
        first_seen_ns=flow.first_ns,
        forward_ms=_ms(t, "syn.in", "syn.out"),
        rtt_ms=_ms(t, "syn.out", "synack.in"),
        return_ms=_ms(t, "synack.in", "synack.tunnel") or _ms(t, "synack.in", "synack.other"),
        retry_span_ms=_ms(t, "syn.in", "syn.in.last") if flow.counts["syn.in"] > 1 else None,
    )


def _notes(flow: FlowState) -> tuple[str, ...]:
    notes: list[str] = []
    if flow.evidence and all(p.pkttype < 0 for p in flow.evidence):
        ifaces = {p.iface for p in flow.evidence}
        if len(ifaces) == 1:
            notes.append(
                "the capture shows a single interface: the tunnel and the LAN cannot be "
                "told apart, so where the reply left is a guess"
            )
    if flow.counts["inferred"]:
        notes.append("directions were not recorded; inferred from the order of sightings")
    return tuple(notes)
