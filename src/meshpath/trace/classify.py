"""Name what happened to one connection attempt, from what the capture saw of it.

The order of the tests is the order of the path: a reply that made it back into the
tunnel is ok whatever else happened; a reset or ICMP error from the LAN explains a
failure better than silence; a SYN-ACK that arrived and left anywhere but the tunnel is
the field report's misrouted return; then how far the SYN itself got.

A capture of one interface (``single``) answers a smaller question: was the SYN answered
on that interface? It has no verdict about forwarding (``not-forwarded`` needs a view of
both sides), so an unanswered SYN is ``no-reply`` there, with a note saying what the
capture cannot show.
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


def classify(flow: FlowState, *, single: bool = False) -> FlowVerdict:
    """The verdict for one flow plus its counts, timing and evidence."""
    counts = flow.counts
    syn_sightings = counts["syn.in"] or counts["syn.out"]
    nat = flow.lan is not None and flow.lan != flow.client
    return FlowVerdict(
        verdict=_single_verdict(flow) if single else _verdict(flow),
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
        notes=_notes(flow, single),
        single=single,
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


def _single_verdict(flow: FlowState) -> str:
    """One interface: what came back on it (see the module docstring)."""
    counts = flow.counts
    if counts["synack.tunnel"]:
        return OK  # the reply left the way the SYN came in
    if flow.rst is not None:
        return REFUSED
    if flow.icmp is not None:
        return ICMP_UNREACHABLE
    if counts["synack.other"]:
        return RETURN_MISROUTED  # LAN side: the reply came in and went back out on it
    if counts["synack.in"]:
        return OK  # LAN side: the service answered; the tunnel is not in the capture
    return NO_REPLY


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


SINGLE_NOTE = (
    "a capture of one interface shows whether the SYN was answered there; it cannot show "
    "whether the connector forwarded it or which way the reply left (capture with "
    "'tcpdump -i any' for that)"
)


def _notes(flow: FlowState, single: bool) -> tuple[str, ...]:
    notes: list[str] = []
    if single:
        notes.append(SINGLE_NOTE)
    elif flow.evidence and all(p.pkttype < 0 for p in flow.evidence):
        ifaces = {p.iface for p in flow.evidence}
        if len(ifaces) == 1:
            notes.append(
                "the capture shows a single interface: the tunnel and the LAN cannot be "
                "told apart, so where the reply left is a guess"
            )
    if flow.counts["inferred"]:
        notes.append("directions were not recorded; inferred from the order of sightings")
    return tuple(notes)
