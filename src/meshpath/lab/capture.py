"""Reading tcpdump's text output (``tcpdump -i any -n``) and matching hop sequences (pure).

The lab asserts traces like the field report's::

    CloudflareWARP In  IP 100.64.12.189.9025 > 10.0.1.50.3000: Flags [S], ...
    eth0           Out IP 100.64.12.189.9025 > 10.0.1.50.3000: Flags [S], ...

as an ordered list of :class:`Hop` patterns that must appear as a subsequence of the
captured lines (other packets may come in between).

The lines are parsed by :mod:`meshpath.trace.text`, the one tcpdump text parser, into
the one :class:`~meshpath.trace.packet.Packet`; a :class:`Sighting` is such a packet
seen on a named interface, its fields as tcpdump prints them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from meshpath.trace.packet import PKTTYPE_NAMES, PROTO_TCP, Packet, addr_text, flags_text
from meshpath.trace.text import TextCapture
from meshpath.trace.text import parse_line as parse_text_line


@dataclass(frozen=True, slots=True)
class Sighting:
    """One TCP packet line of ``tcpdump -i any -n``: the packet and the interface name."""

    packet: Packet
    iface: str

    @property
    def direction(self) -> str:
        """``In``, ``Out`` (or ``B``, ``M``, ``P``) as tcpdump prints the packet type."""
        return PKTTYPE_NAMES.get(self.packet.pkttype, "?")

    @property
    def src(self) -> str:
        return addr_text(self.packet.src)

    @property
    def sport(self) -> int:
        return self.packet.sport

    @property
    def dst(self) -> str:
        return addr_text(self.packet.dst)

    @property
    def dport(self) -> int:
        return self.packet.dport

    @property
    def flags(self) -> str:
        """tcpdump's flag letters: ``S``, ``S.``, ``R.``, ``FP.``."""
        return flags_text(self.packet.flags)

    def describe(self) -> str:
        return (
            f"{self.iface} {self.direction} {self.src}.{self.sport} > "
            f"{self.dst}.{self.dport} [{self.flags}]"
        )


def parse_line(line: str) -> Sighting | None:
    """The TCP packet on ``line``, or None for anything else (ICMP, ARP, banners)."""
    capture = TextCapture()
    pkt = parse_text_line(line.strip(), capture)
    if pkt is None or pkt.proto != PROTO_TCP or pkt.pkttype < 0:
        return None
    return Sighting(pkt, capture.names.get(pkt.iface, ""))


def parse_lines(text: str) -> tuple[Sighting, ...]:
    return tuple(p for p in map(parse_line, text.splitlines()) if p is not None)


@dataclass(frozen=True, slots=True)
class Hop:
    """A pattern for one packet: interface, direction, TCP flags, optional addresses."""

    iface: str
    direction: str
    flags: str
    src: str | None = None
    dst: str | None = None

    def matches(self, p: Sighting) -> bool:
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


def match_sequence(expected: Sequence[Hop], packets: Sequence[Sighting]) -> SequenceMatch:
    """Find ``expected`` as an ordered subsequence of ``packets`` (greedy, earliest match)."""
    hops = tuple(expected)
    i = 0
    for p in packets:
        if i < len(hops) and hops[i].matches(p):
            i += 1
    return SequenceMatch(hops, i)


def find(hop: Hop, packets: Sequence[Sighting]) -> Sighting | None:
    """The first packet matching ``hop``, or None."""
    return next((p for p in packets if hop.matches(p)), None)
