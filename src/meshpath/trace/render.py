"""A trace report for people (tcpdump-style evidence, then the verdict) and for machines."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from rich.text import Text

from meshpath.trace.decode import IDB_BASE
from meshpath.trace.model import (
    ICMP_UNREACHABLE,
    NO_REPLY,
    NO_SYN,
    NOT_FORWARDED,
    OK,
    REFUSED,
    REPLY_DROPPED,
    RETURN_MISROUTED,
    VERDICTS,
    Endpoint,
    FlowVerdict,
    TraceReport,
)
from meshpath.trace.packet import addr_text, icmp_text, tcpdump_line
from meshpath.trace.text import TEXT_IFACE_BASE

_HATYPES: Final = {65534: "a tun device", 1: "an Ethernet device", 772: "loopback"}
_STYLE: Final = {OK: "bold green"}


def endpoint_text(ep: Endpoint | None) -> str:
    if ep is None:
        return "-"
    addr = addr_text(ep.address)
    return f"[{addr}]:{ep.port}" if len(ep.address) == 16 else f"{addr}:{ep.port}"


def line_name(key: int, names: Mapping[int, str]) -> str | None:
    """The interface column tcpdump would print (None: it prints none)."""
    if key in names:
        return names[key]
    if 0 < key < IDB_BASE:
        return f"if{key}"  # an SLL2 ifindex we have no name for
    return None


def iface_label(key: int | None, names: Mapping[int, str]) -> str:
    """An interface named in prose, also when the capture did not name it."""
    if key is None:
        return "?"
    name = line_name(key, names)
    if name:
        return name
    if key >= TEXT_IFACE_BASE or key == -1:  # -1: text or a link type that names none
        return "the capture's interface"
    if key < 0:
        return _HATYPES.get(-1 - key, f"an interface of hardware type {-1 - key}")
    return f"capture interface #{key - IDB_BASE}"


def explain(flow: FlowVerdict, names: Mapping[int, str]) -> str:
    """One sentence on what went wrong (or right), naming interfaces and addresses."""
    if flow.single and flow.verdict in (OK, NO_REPLY, RETURN_MISROUTED):
        return _explain_single(flow, names)
    tun = iface_label(flow.tunnel_iface, names)
    lan = iface_label(flow.lan_iface, names)
    out = iface_label(flow.reply_iface, names)
    client, server = addr_text(flow.client.address), endpoint_text(flow.server)
    reasons = {
        OK: f"handshake completed through {tun}; the service saw "
        f"{endpoint_text(flow.service_saw)} ({'NAT' if flow.nat else 'the real source, no NAT'})",
        RETURN_MISROUTED: f"the SYN-ACK came in on {lan} and left on {out}, not through {tun}: "
        f"the connector has no route for {client} via the tunnel, so the reply follows "
        "another route (usually the default) and never re-enters the tunnel",
        REPLY_DROPPED: f"the SYN-ACK came in on {lan} and never left: dropped on the way back "
        "(forward chain, rp_filter on the reply, or no route at all)",
        NO_REPLY: f"the SYN left on {lan} toward {server} and nothing came back: the LAN has "
        "no return route to the Cloudflare range, a host firewall drops it, or the service "
        "is down without answering",
        REFUSED: f"{server} answered with a reset: nothing listens there (or a firewall rejects)",
        ICMP_UNREACHABLE: _icmp_reason(flow),
        NOT_FORWARDED: f"the SYN came in on {tun} and never left: forwarding is off, the "
        "forward chain drops it, or rp_filter rejects the source",
    }
    return reasons.get(flow.verdict, flow.verdict)


def _explain_single(flow: FlowVerdict, names: Mapping[int, str]) -> str:
    """What a capture of one interface shows, and what it cannot (flows.py docstring)."""
    seen_on = flow.tunnel_iface if flow.tunnel_iface is not None else flow.lan_iface
    where = iface_label(seen_on, names)
    server = endpoint_text(flow.server)
    if flow.verdict == NO_REPLY:
        return (
            f"the SYN toward {server} was seen on {where} and nothing came back on it; a "
            "capture of one interface cannot tell whether the connector forwarded the SYN, "
            "whether the service answered, or which way its reply left"
        )
    if flow.verdict == RETURN_MISROUTED:
        return (
            f"the SYN-ACK came in on {where} and left on it again: the connector sent the "
            "reply back out the LAN instead of into the tunnel (no route for "
            f"{addr_text(flow.client.address)} via the tunnel)"
        )
    if flow.tunnel_iface is None:
        return (
            f"{server} answered (its SYN-ACK came in on {where}); the tunnel is not in this "
            "capture, so whether the reply went back into it is not shown"
        )
    return f"{server} answered: the SYN-ACK went back out on {where}, where the SYN came in"


def vantage_text(report: TraceReport) -> str:
    """What the capture recorded, hence what its verdicts can say."""
    if report.single:
        return (
            "one interface: it shows whether each SYN was answered there, not how the "
            "connector forwarded it (capture with 'tcpdump -i any' to follow both sides)"
        )
    return "every interface or several: each connection is followed through the connector"


def _icmp_reason(flow: FlowVerdict) -> str:
    icmp = next((p for p in flow.evidence if p.inner is not None), None)
    if icmp is None:
        return "an ICMP error came back"
    return f"{addr_text(icmp.src)} answered ICMP {icmp_text(icmp)}"


def no_syn_text(
    report: TraceReport, ranges_text: str, who: str = "the Cloudflare source range"
) -> str:
    toward = f" toward {endpoint_text(report.target)}" if report.target else ""
    return (
        f"no SYN from {who} ({ranges_text}){toward} at all: the "
        "request never reached this host (Mesh route advertisement, connector health, "
        "or the capture ran on the wrong host/interface)"
    )


def format_report(
    report: TraceReport, ranges_text: str, who: str = "the Cloudflare source range"
) -> Text:
    out = Text()
    for flow in report.flows:
        _format_flow(out, flow, report.iface_names)
    if not report.flows:
        out.append("verdict: ", style="bold")
        out.append(NO_SYN, style="bold red")
        out.append(f" - {no_syn_text(report, ranges_text, who)}\n")
    out.append(_summary_line(report) + "\n", style="dim")
    if report.single:
        out.append(f"note: the capture recorded {vantage_text(report)}\n")
    for reason, count in report.skipped.items():
        out.append(f"note: skipped {count} {'record' if count == 1 else 'records'}: {reason}\n")
    return out


def _format_flow(out: Text, flow: FlowVerdict, names: Mapping[int, str]) -> None:
    head = f"flow {endpoint_text(flow.client)} -> {endpoint_text(flow.server)}"
    tunnel = iface_label(flow.tunnel_iface, names)
    out.append(f"{head}  (tunnel side: {tunnel})\n", style="bold")
    for pkt in flow.evidence:
        out.append("  " + tcpdump_line(pkt, line_name(pkt.iface, names)) + "\n")
    out.append("  verdict: ", style="bold")
    out.append(flow.verdict, style=_STYLE.get(flow.verdict, "bold red"))
    out.append(f" - {explain(flow, names)}\n")
    out.append(f"  {_stats(flow)}\n", style="dim")
    for note in flow.notes:
        out.append(f"  note: {note}\n", style="yellow")
    out.append("\n")


def _stats(flow: FlowVerdict) -> str:
    t = flow.timing
    parts = [
        f"retransmissions: SYN {flow.syn_retransmissions}, "
        f"SYN-ACK {flow.synack_retransmissions}; {flow.packets} packets"
    ]
    for label, value in (
        ("forwarded in", t.forward_ms),
        ("LAN round trip", t.rtt_ms),
        ("reply turned in", t.return_ms),
        ("SYN retried for", t.retry_span_ms),
    ):
        if value is not None:
            parts.append(f"{label} {value:g} ms")
    return "; ".join(parts)


def _summary_line(report: TraceReport) -> str:
    counts = ", ".join(
        f"{report.verdict_counts[v]} {v}" for v in VERDICTS if report.verdict_counts.get(v)
    )
    shown = len(report.flows)
    total = sum(n for v, n in report.verdict_counts.items() if v != NO_SYN)
    more = f" (showing {shown})" if shown < total else ""
    cut = "; the file ends mid-record" if report.truncated else ""
    return f"{report.source}: {report.format}, {report.packets} packets; {counts}{more}{cut}"


def report_data(
    report: TraceReport, ranges_text: str, who: str = "the Cloudflare source range"
) -> dict[str, Any]:
    names = report.iface_names
    return {
        "source": report.source,
        "format": report.format,
        "packets": report.packets,
        "truncated": report.truncated,
        "skipped": report.skipped,
        "target": endpoint_text(report.target) if report.target else None,
        "verdict_counts": report.verdict_counts,
        "broken": report.broken,
        "vantage": "one-interface" if report.single else "through",
        "vantage_text": vantage_text(report),
        "no_syn": no_syn_text(report, ranges_text, who) if not report.flows else None,
        "flows": [_flow_data(flow, names) for flow in report.flows],
    }


def _flow_data(flow: FlowVerdict, names: Mapping[int, str]) -> dict[str, Any]:
    t = flow.timing
    return {
        "verdict": flow.verdict,
        "reason": explain(flow, names),
        "client": endpoint_text(flow.client),
        "server": endpoint_text(flow.server),
        "service_saw": endpoint_text(flow.service_saw) if flow.service_saw else None,
        "nat": flow.nat,
        "tunnel_interface": (
            iface_label(flow.tunnel_iface, names)
            if flow.tunnel_iface is not None
            else "not in the capture"
        ),
        "lan_interface": iface_label(flow.lan_iface, names) if flow.lan_iface else None,
        "reply_interface": iface_label(flow.reply_iface, names) if flow.reply_iface else None,
        "retransmissions": {"syn": flow.syn_retransmissions, "synack": flow.synack_retransmissions},
        "packets": flow.packets,
        "timing_ms": {
            "forward": t.forward_ms,
            "lan_rtt": t.rtt_ms,
            "reply_turn": t.return_ms,
            "syn_retry_span": t.retry_span_ms,
        },
        "evidence": [tcpdump_line(p, line_name(p.iface, names)) for p in flow.evidence],
        "notes": list(flow.notes),
        "single": flow.single,
    }
