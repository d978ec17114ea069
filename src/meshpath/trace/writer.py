"""Build packets and pcap/pcapng files as bytes (tests, the lab, the benchmark).

Checksums are left zero: meshpath's reader ignores them, as tcpdump does without ``-vv``.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from meshpath.trace.packet import ACK, PROTO_ICMP, PROTO_ICMP6, PROTO_TCP, SYN, Direction

ETH_IPV4: Final = 0x0800
ETH_IPV6: Final = 0x86DD
HATYPE_ETHER: Final = 1
HATYPE_NONE: Final = 65534  # tun devices
IN: Final = 0
OUT: Final = 4


def _packed(addr: str) -> bytes:
    return ipaddress.ip_address(addr).packed


def tcp_segment(
    sport: int, dport: int, flags: int, seq: int, ack: int = 0, win: int = 64240, data: bytes = b""
) -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, win, 0, 0) + data


def ip_packet(src: str, dst: str, proto: int, payload: bytes, ttl: int = 64) -> bytes:
    """An IPv4 or IPv6 packet (family from the addresses)."""
    s, d = _packed(src), _packed(dst)
    if len(s) == 4:
        head = struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(payload), 1, 0x4000, ttl, proto, 0)
        return head + s + d + payload
    return struct.pack("!IHBB", 6 << 28, len(payload), proto, ttl) + s + d + payload


def tcp(
    src: str,
    dst: str,
    sport: int,
    dport: int,
    flags: int = SYN,
    seq: int = 1,
    ack: int = 0,
    data: bytes = b"",
) -> bytes:
    """An IP packet carrying one TCP segment."""
    return ip_packet(src, dst, PROTO_TCP, tcp_segment(sport, dport, flags, seq, ack, data=data))


def syn(src: str, dst: str, sport: int, dport: int, seq: int) -> bytes:
    return tcp(src, dst, sport, dport, SYN, seq)


def synack(src: str, dst: str, sport: int, dport: int, seq: int, ack: int) -> bytes:
    return tcp(src, dst, sport, dport, SYN | ACK, seq, ack)


def icmp_unreachable(src: str, dst: str, quoted: bytes, code: int = 3) -> bytes:
    """ICMP (v4: type 3; v6: type 1) quoting the start of ``quoted``."""
    v6 = len(_packed(src)) == 16
    body = struct.pack("!BBHI", 1 if v6 else 3, code, 0, 0) + quoted[: 48 if v6 else 28]
    return ip_packet(src, dst, PROTO_ICMP6 if v6 else PROTO_ICMP, body)


def _proto(packet: bytes) -> int:
    return ETH_IPV6 if packet[0] >> 4 == 6 else ETH_IPV4


def sll(packet: bytes, pkttype: int = IN, hatype: int = HATYPE_ETHER) -> bytes:
    """Linux cooked v1 header + packet."""
    addr = b"\x02\0\0\0\0\x01\0\0" if hatype == HATYPE_ETHER else bytes(8)
    halen = 6 if hatype == HATYPE_ETHER else 0
    return struct.pack("!HHH8sH", pkttype, hatype, halen, addr, _proto(packet)) + packet


def sll2(packet: bytes, ifindex: int, pkttype: int = IN, hatype: int = HATYPE_ETHER) -> bytes:
    """Linux cooked v2 header + packet."""
    addr = b"\x02\0\0\0\0\x01\0\0" if hatype == HATYPE_ETHER else bytes(8)
    halen = 6 if hatype == HATYPE_ETHER else 0
    head = struct.pack("!HHIHBB8s", _proto(packet), 0, ifindex, hatype, pkttype, halen, addr)
    return head + packet


def ethernet(
    packet: bytes, vlan: int | None = None, *, tags: tuple[int, ...] = (), labels: int = 0
) -> bytes:
    """Ethernet II; ``tags`` are VLAN ids outermost first (802.1ad, then 802.1Q: QinQ);
    ``labels`` an MPLS label stack that deep."""
    macs = b"\x02\0\0\0\0\x02" + b"\x02\0\0\0\0\x01"
    ids = (vlan,) if vlan is not None else tags
    tpids = [0x88A8] * (len(ids) - 1) + [0x8100] if ids else []
    head = b"".join(struct.pack("!HH", tpid, vid) for tpid, vid in zip(tpids, ids, strict=True))
    if labels:
        stack = b"".join(
            struct.pack("!I", (16 + i) << 12 | (i == labels - 1) << 8 | 64) for i in range(labels)
        )
        return macs + head + struct.pack("!H", 0x8847) + stack + packet
    return macs + head + struct.pack("!H", _proto(packet)) + packet


def null(packet: bytes, *, big_endian: bool = False, loop: bool = False) -> bytes:
    """BSD loopback (NULL: the family in the writer's byte order; LOOP: network order)."""
    family = 2 if packet[0] >> 4 == 4 else 24
    order = ">" if big_endian or loop else "<"
    return struct.pack(order + "I", family) + packet


def ppp(packet: bytes, *, hdlc: bool = True, compressed: bool = False) -> bytes:
    """PPP: address/control ff 03 (RFC 1662) unless ``hdlc`` is off, then the protocol."""
    proto = 0x21 if packet[0] >> 4 == 4 else 0x57
    field = bytes([proto]) if compressed else struct.pack("!H", proto)
    return (b"\xff\x03" if hdlc else b"") + field + packet


def nflog(packet: bytes, indev: int = 0, outdev: int = 0, *, big_endian: bool = False) -> bytes:
    """An NFLOG record: header, packet-header TLV, interface TLVs, payload TLV."""
    order = ">" if big_endian else "<"

    def tlv(kind: int, value: bytes) -> bytes:
        body = struct.pack(order + "HH", 4 + len(value), kind) + value
        return body + bytes((-len(body)) % 4)

    family = 2 if packet[0] >> 4 == 4 else 10
    out = struct.pack("!BBH", family, 0, 1) + tlv(1, struct.pack("!HBx", _proto(packet), 2))
    if indev:
        out += tlv(4, struct.pack("!I", indev))
    if outdev:
        out += tlv(5, struct.pack("!I", outdev))
    return out + tlv(9, packet)


def big_tcp_ipv4(packet: bytes) -> bytes:
    """An IPv4 packet as a BIG TCP GSO segment is captured: total length 0."""
    return packet[:2] + b"\0\0" + packet[4:]


def jumbo_ipv6(packet: bytes) -> bytes:
    """An IPv6 packet as a jumbogram (RFC 2675): payload length 0, hop-by-hop jumbo option."""
    payload, nxt = packet[40:], packet[6]
    hbh = struct.pack("!BBBBI", nxt, 0, 0xC2, 4, len(payload) + 8)
    return packet[:4] + b"\0\0" + bytes([0]) + packet[7:40] + hbh + payload


def pcap(
    linktype: int,
    frames: Iterable[tuple[int, bytes]],
    *,
    nanos: bool = False,
    big_endian: bool = False,
    snaplen: int = 262144,
) -> bytes:
    """A pcap file of (timestamp ns, frame) records."""
    order = ">" if big_endian else "<"
    magic = 0xA1B23C4D if nanos else 0xA1B2C3D4
    out = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    div = 1 if nanos else 1000
    for ts, frame in frames:
        sec, frac = divmod(ts, 1_000_000_000)
        out.append(struct.pack(order + "IIII", sec, frac // div, len(frame), len(frame)))
        out.append(frame)
    return b"".join(out)


@dataclass(frozen=True, slots=True)
class NgInterface:
    linktype: int
    name: str | None = None
    tsresol: int | None = None  # if_tsresol byte; None = microseconds


def _option(order: str, code: int, value: bytes) -> bytes:
    pad = (-len(value)) % 4
    return struct.pack(order + "HH", code, len(value)) + value + bytes(pad)


def _block(order: str, btype: int, body: bytes) -> bytes:
    body += bytes((-len(body)) % 4)
    size = len(body) + 12
    return struct.pack(order + "II", btype, size) + body + struct.pack(order + "I", size)


def pcapng(
    interfaces: Iterable[NgInterface],
    frames: Iterable[tuple[int, int, bytes, Direction]],
    *,
    big_endian: bool = False,
) -> bytes:
    """A pcapng file: one section, the interfaces, then (ifid, ts ns, frame, dir) EPBs."""
    order = ">" if big_endian else "<"
    shb = struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1)
    out = [_block(order, 0x0A0D0D0A, shb)]
    scales: list[int] = []
    for idb in interfaces:
        opts = b""
        if idb.name:
            opts += _option(order, 2, idb.name.encode())
        if idb.tsresol is not None:
            opts += _option(order, 9, bytes([idb.tsresol]))
        opts += _option(order, 0, b"") if opts else b""
        out.append(_block(order, 1, struct.pack(order + "HHI", idb.linktype, 0, 0) + opts))
        scales.append(1 if idb.tsresol == 9 else 1000)
    for ifid, ts, frame, dirn in frames:
        units = ts // scales[ifid]
        body = struct.pack(order + "IIIII", ifid, units >> 32, units & 0xFFFFFFFF, len(frame),
                           len(frame))  # fmt: skip
        body += frame + bytes((-len(frame)) % 4)
        if dirn != Direction.UNKNOWN:
            bits = 1 if dirn == Direction.IN else 2
            body += _option(order, 2, struct.pack(order + "I", bits)) + _option(order, 0, b"")
        out.append(_block(order, 6, body))
    return b"".join(out)


def unknown_block(big_endian: bool = False) -> bytes:
    """A block of a type readers must skip (custom block, 0x00000BAD)."""
    return _block(">" if big_endian else "<", 0x00000BAD, b"meshpath-test")
