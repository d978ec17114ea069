"""What a trace concludes: per-flow results and the capture summary (immutable values)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Final

from meshpath.trace.packet import Packet

OK: Final = "ok"
RETURN_MISROUTED: Final = "return-misrouted"
REPLY_DROPPED: Final = "reply-dropped"
NO_REPLY: Final = "no-reply"
REFUSED: Final = "refused"
ICMP_UNREACHABLE: Final = "icmp-unreachable"
NOT_FORWARDED: Final = "not-forwarded"
NO_SYN: Final = "no-syn"
VERDICTS: Final = (
    OK,
    RETURN_MISROUTED,
    REPLY_DROPPED,
    NO_REPLY,
    REFUSED,
    ICMP_UNREACHABLE,
    NOT_FORWARDED,
    NO_SYN,
)


@dataclass(frozen=True, slots=True)
class Endpoint:
    address: bytes
    port: int

    @classmethod
    def of(cls, address: str, port: int) -> Endpoint:
        """An endpoint from an address's text (a parsed target's) and a port."""
        return cls(ipaddress.ip_address(address).packed, port)


@dataclass(frozen=True, slots=True)
class Timing:
    """Milliseconds between the handshake's sightings (None when one side is missing)."""

    first_seen_ns: int
    forward_ms: float | None  # SYN in on the tunnel -> SYN out on the LAN
    rtt_ms: float | None  # SYN out -> SYN-ACK in (the LAN round trip)
    return_ms: float | None  # SYN-ACK in -> SYN-ACK out
    retry_span_ms: float | None  # first SYN -> last SYN retransmission


@dataclass(frozen=True, slots=True)
class FlowVerdict:
    """One TCP connection attempt from the Cloudflare source range, classified."""

    verdict: str
    client: Endpoint  # as it arrived from the tunnel
    server: Endpoint
    service_saw: Endpoint | None  # the source the LAN leg carried (NAT or not)
    nat: bool
    tunnel_iface: int | None  # None: the tunnel side is not in a one-interface capture
    lan_iface: int | None
    reply_iface: int | None  # where the SYN-ACK left the connector
    syn_retransmissions: int
    synack_retransmissions: int
    packets: int  # all packets of the flow, across every leg and interface
    timing: Timing
    evidence: tuple[Packet, ...]
    notes: tuple[str, ...] = ()
    single: bool = False  # seen in a capture of one interface (what it can show is less)


@dataclass(frozen=True, slots=True)
class TraceReport:
    """Everything a trace found: flows (examples per verdict), counts, and what was skipped."""

    source: str
    format: str
    packets: int
    flows: tuple[FlowVerdict, ...]
    verdict_counts: dict[str, int]
    skipped: dict[str, int]
    target: Endpoint | None
    iface_names: dict[int, str]
    truncated: bool = False
    single: bool = False  # a capture of one interface (see meshpath.trace.flows)

    @property
    def broken(self) -> bool:
        return any(v != OK and n for v, n in self.verdict_counts.items())
