"""One captured packet worth keeping, and how tcpdump would print it.

Only packets that can change a verdict become a :class:`Packet` (SYN, SYN-ACK, RST, FIN,
ICMP errors, the first ACK/data of a leg); everything else is only counted, so memory
stays flat however large the capture is. Addresses stay as raw bytes until printed.
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime
from enum import IntEnum
from typing import Final, NamedTuple

# TCP flag bits (RFC 9293 section 3.1) and tcpdump's letters for them, in its print order.
FIN: Final = 0x01
SYN: Final = 0x02
RST: Final = 0x04
PSH: Final = 0x08
ACK: Final = 0x10
URG: Final = 0x20
ECE: Final = 0x40
CWR: Final = 0x80
_FLAG_LETTERS: Final = ((SYN, "S"), (FIN, "F"), (PSH, "P"), (RST, "R"), (URG, "U"), (ECE, "E"))
_FLAG_LETTERS_TAIL: Final = ((CWR, "W"),)

PROTO_ICMP: Final = 1
PROTO_TCP: Final = 6
PROTO_ICMP6: Final = 58


class Direction(IntEnum):
    """Which way a packet crossed the capturing interface (SLL pkttype / pcapng epb_flags)."""

    IN = 0
    OUT = 1
    UNKNOWN = 2


# Linux packet types (if_packet.h PACKET_*) as tcpdump prints them in `-i any` output.
# The last instant a timestamp can name (9999-12-31 23:59:59 UTC, datetime's limit): readers
# turn anything later into "unknown" (-1), so every Packet.ts is printable.
MAX_TS_NS: Final = 253_402_300_799 * 1_000_000_000
PKTTYPE_NAMES: Final = {0: "In", 1: "B", 2: "M", 3: "P", 4: "Out"}
PKTTYPE_OUTGOING: Final = 4
PKTTYPE_OTHERHOST: Final = 3


class Inner(NamedTuple):
    """The original header an ICMP error quotes (RFC 792 / RFC 4443): ties it to a flow."""

    src: bytes
    dst: bytes
    proto: int
    sport: int
    dport: int
    seq: int


class Packet(NamedTuple):
    """A decoded packet. ``iface`` is an interface key (see :mod:`meshpath.trace.decode`).

    A NamedTuple, not a frozen dataclass: it is built in the hot path, and tuple
    construction is several times cheaper than a frozen dataclass's ``__init__``.
    """

    ts_ns: int  # -1 when unknown (tcpdump text without timestamps)
    iface: int
    direction: Direction
    pkttype: int  # Linux PACKET_* type, or -1 when the link type has none
    src: bytes
    dst: bytes
    proto: int
    sport: int = 0
    dport: int = 0
    flags: int = 0
    seq: int = 0
    ack: int = 0
    win: int = 0
    length: int = 0  # TCP payload bytes, or the IP payload length for ICMP
    icmp_type: int = -1
    icmp_code: int = -1
    inner: Inner | None = None
    line: str = ""  # the original text, when the packet came from tcpdump text

    @property
    def is_syn(self) -> bool:
        return self.proto == PROTO_TCP and self.flags & (SYN | ACK) == SYN

    @property
    def is_synack(self) -> bool:
        return self.proto == PROTO_TCP and self.flags & (SYN | ACK) == SYN | ACK

    @property
    def is_rst(self) -> bool:
        return self.proto == PROTO_TCP and bool(self.flags & RST)


def addr_text(raw: bytes) -> str:
    """Dotted quad or compressed IPv6, as tcpdump -n prints it."""
    if len(raw) == 4:
        return f"{raw[0]}.{raw[1]}.{raw[2]}.{raw[3]}"
    return ipaddress.IPv6Address(raw).compressed


def flags_text(flags: int) -> str:
    """tcpdump's flag string: ``S``, ``S.``, ``R.``, ``P.``, ``F.``; ``none`` when empty."""
    out = "".join(ch for bit, ch in _FLAG_LETTERS if flags & bit)
    out += "".join(ch for bit, ch in _FLAG_LETTERS_TAIL if flags & bit)
    if flags & ACK:
        out += "."
    return out or "none"


def time_text(ts_ns: int) -> str:
    """``HH:MM:SS.ffffff`` in UTC (tcpdump uses local time; captures travel between zones)."""
    if ts_ns < 0:
        return ""
    stamp = datetime.fromtimestamp(ts_ns // 1_000_000_000, tz=UTC)
    return f"{stamp:%H:%M:%S}.{(ts_ns % 1_000_000_000) // 1000:06d}"


def tcpdump_line(pkt: Packet, ifname: str | None) -> str:
    """The packet in tcpdump's ``-i any -n -S`` style (absolute sequence numbers).

    ``ifname`` None means the capture had no interface (tcpdump prints only the direction
    for Linux cooked v1 and nothing for Ethernet/raw).
    """
    if pkt.line:
        return pkt.line
    head = _head(pkt, ifname)
    family = "IP" if len(pkt.src) == 4 else "IP6"
    body = _tcp_body(pkt) if pkt.proto == PROTO_TCP else _icmp_body(pkt)
    stamp = time_text(pkt.ts_ns)
    prefix = f"{stamp} " if stamp else ""
    return f"{prefix}{head}{family} {body}"


def _head(pkt: Packet, ifname: str | None) -> str:
    if pkt.pkttype >= 0:
        kind = PKTTYPE_NAMES.get(pkt.pkttype, "?")
    elif pkt.direction != Direction.UNKNOWN:
        kind = "In" if pkt.direction == Direction.IN else "Out"
    else:
        kind = ""
    # print-sll.c: "%-5s " for the interface name, "%-3s " for the packet type.
    name = f"{ifname:<5} " if ifname else ""
    kind = f"{kind:<3} " if kind else ""
    return f"{name}{kind}"


def _tcp_body(pkt: Packet) -> str:
    src, dst = addr_text(pkt.src), addr_text(pkt.dst)
    parts = [f"{src}.{pkt.sport} > {dst}.{pkt.dport}: Flags [{flags_text(pkt.flags)}]"]
    if pkt.length and not pkt.flags & SYN:
        parts.append(f"seq {pkt.seq}:{(pkt.seq + pkt.length) & 0xFFFFFFFF}")
    else:
        parts.append(f"seq {pkt.seq}")
    if pkt.flags & ACK:
        parts.append(f"ack {pkt.ack}")
    parts.append(f"win {pkt.win}")
    parts.append(f"length {pkt.length}")
    return ", ".join(parts)


_UNREACH4: Final = {0: "net {d} unreachable", 1: "host {d} unreachable"}
_UNREACH6: Final = {0: "{d} unreachable route", 1: "{d} unreachable prohibited"}


def _icmp_body(pkt: Packet) -> str:
    src, dst = addr_text(pkt.src), addr_text(pkt.dst)
    word = "ICMP" if pkt.proto == PROTO_ICMP else "ICMP6"
    return f"{src} > {dst}: {word} {icmp_text(pkt)}, length {pkt.length}"


def icmp_text(pkt: Packet) -> str:
    """What the ICMP error says, in tcpdump's words where it has fixed ones."""
    inner = pkt.inner
    target = addr_text(inner.dst) if inner else "?"
    if pkt.proto == PROTO_ICMP and pkt.icmp_type == 3:
        if pkt.icmp_code == 3 and inner:
            return f"{target} tcp port {inner.dport} unreachable"
        fixed = _UNREACH4.get(pkt.icmp_code)
        if fixed:
            return fixed.format(d=target)
        return f"{target} unreachable - code {pkt.icmp_code}"
    if pkt.proto == PROTO_ICMP6 and pkt.icmp_type == 1:
        fixed = _UNREACH6.get(pkt.icmp_code)
        if fixed:
            return fixed.format(d=target)
        return f"{target} unreachable code {pkt.icmp_code}"
    return f"type {pkt.icmp_type} code {pkt.icmp_code} about {target}"
