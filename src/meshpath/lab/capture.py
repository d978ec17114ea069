"""Reading tcpdump's text output (``tcpdump -i any -n``) and matching hop sequences (pure).

The lab asserts traces like the field report's::

    CloudflareWARP In  IP 100.64.12.189.9025 > 10.0.1.50.3000: Flags [S], ...
    eth0           Out IP 100.64.12.189.9025 > 10.0.1.50.3000: Flags [S], ...

as an ordered list of :class:`Hop` patterns that must appear as a subsequence of the
captured lines (other packets may come in between).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from meshpath.trace import text as trace_text
from meshpath.trace.packet import PKTTYPE_NAMES, PROTO_TCP, flags_text
from meshpath.trace.text import TextCapture


@dataclass(frozen=True, slots=True)
class Packet:
    """One TCP packet line of ``tcpdump -i any -n``."""

    iface: str
    direction: str
    src: str
    sport: int
    dst: str
    dport: int
    flags: str

    def describe(self) -> str:
        return (
            f"{self.iface} {self.direction} {self.src}.{self.sport} > "
            f"{self.dst}.{self.dport} [{self.flags}]"
        )


def parse_line(line: str) -> Packet | None:
    """The TCP packet on ``line``, or None for anything else (ICMP, ARP, banners, a line
    without an interface and direction). :mod:`meshpath.trace.text` reads the line (the
    one tcpdump text parser); this keeps what the lab's hop patterns compare."""
    names = TextCapture()
    pkt = trace_text.parse_line(line.strip(), names)
    if pkt is None or pkt.proto != PROTO_TCP or pkt.iface not in names.names:
        return None
    direction = PKTTYPE_NAMES.get(pkt.pkttype)
    if direction is None:
        return None
    return Packet(
        iface=names.names[pkt.iface],
        direction=direction,
        src=str(ipaddress.ip_address(pkt.src)),
        sport=pkt.sport,
        dst=str(ipaddress.ip_address(pkt.dst)),
        dport=pkt.dport,
        flags=flags_text(pkt.flags),
    )


def parse_lines(text: str) -> tuple[Packet, ...]:
    return tuple(p for p in map(parse_line, text.splitlines()) if p is not None)


@dataclass(frozen=True, slots=True)
class Hop:
    """A pattern for one packet: interface, direction, TCP flags, optional addresses."""

    iface: str
    direction: str
    flags: str
    src: str | None = None
    dst: str | None = None

    def matches(self, p: Packet) -> bool:
        return (
            p.iface == self.iface
            and p.direction == self.direction
            and p.flags == self.flags
            and self.src in (None, p.src)
            and self.dst in (None, p.dst)
        )

    def describe(self) -> str:
        addrs = f" {self.src or '*'} > {self.dst or '*'}" if self.src or self.dst else ""
        return f"{self.iface} {self.direction}{addrs} [{self.flags}]"


@dataclass(frozen=True, slots=True)
class SequenceMatch:
    """How far an expected hop sequence got: ``matched`` hops found in order."""

    expected: tuple[Hop, ...]
    matched: int

    @property
    def ok(self) -> bool:
        return self.matched == len(self.expected)

    @property
    def missing(self) -> Hop | None:
        return None if self.ok else self.expected[self.matched]


def match_sequence(expected: Sequence[Hop], packets: Sequence[Packet]) -> SequenceMatch:
    """Find ``expected`` as an ordered subsequence of ``packets`` (greedy, earliest match)."""
    hops = tuple(expected)
    i = 0
    for p in packets:
        if i < len(hops) and hops[i].matches(p):
            i += 1
    return SequenceMatch(hops, i)


def find(hop: Hop, packets: Sequence[Packet]) -> Packet | None:
    """The first packet matching ``hop``, or None."""
    return next((p for p in packets if hop.matches(p)), None)
