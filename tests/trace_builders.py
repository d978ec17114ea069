"""Hand-made connector traffic for the trace tests: one scenario per verdict, any encoding.

A scenario is a list of :class:`Step` (which side of the connector, which way, the IP
packet); the encoders turn it into the link types and containers meshpath reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from meshpath.trace import writer as w
from meshpath.trace.decode import (
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_RAW,
)
from meshpath.trace.packet import ACK, FIN, RST, SYN, Direction

TUN_INDEX: Final = 5
ETH_INDEX: Final = 7
T0: Final = 1_780_000_000_000_000_000


@dataclass(frozen=True)
class Step:
    side: str  # "tun" or "eth"
    direction: Direction
    packet: bytes


@dataclass(frozen=True)
class Addrs:
    client: str = "100.64.12.189"
    server: str = "10.0.1.50"
    connector: str = "10.0.1.2"
    router: str = "10.0.1.1"
    cport: int = 9025
    sport: int = 3000


V4: Final = Addrs()
V6: Final = Addrs(
    client="2606:4700:cf1:5000::bd",
    server="fd00:1::50",
    connector="fd00:1::2",
    router="fd00:1::1",
)
ISN: Final = 710527279
SISN: Final = 830383984
IN, OUT = Direction.IN, Direction.OUT


def _syn(a: Addrs, src: str | None = None, sport: int | None = None) -> bytes:
    return w.syn(src or a.client, a.server, sport or a.cport, a.sport, ISN)


def _synack(a: Addrs, dst: str | None = None, dport: int | None = None) -> bytes:
    return w.synack(a.server, dst or a.client, a.sport, dport or a.cport, SISN, ISN + 1)


def _ack(a: Addrs) -> bytes:
    return w.tcp(a.client, a.server, a.cport, a.sport, ACK, ISN + 1, SISN + 1)


def scenario(kind: str, a: Addrs = V4) -> list[Step]:
    """The packets a connector sees for one Worker request in the named situation."""
    syn_in, syn_out = Step("tun", IN, _syn(a)), Step("eth", OUT, _syn(a))
    synack_in = Step("eth", IN, _synack(a))
    steps = {
        "ok": [syn_in, syn_out, synack_in, Step("tun", OUT, _synack(a)),
               Step("tun", IN, _ack(a)), Step("eth", OUT, _ack(a))],
        "return-misrouted": [syn_in, syn_out, synack_in, Step("eth", OUT, _synack(a)), syn_in],
        "reply-dropped": [syn_in, syn_out, synack_in, syn_in, syn_out],
        "no-reply": [syn_in, syn_out, syn_in, syn_out, syn_in, syn_out],
        "not-forwarded": [syn_in, syn_in, syn_in],
        "refused": [syn_in, syn_out, Step("eth", IN, _rst(a)), Step("tun", OUT, _rst(a))],
        "icmp-unreachable": [syn_in, syn_out, Step("eth", IN, w.icmp_unreachable(
            a.router, a.client, _syn(a), code=1 if ":" not in a.client else 3))],
        "no-syn": [Step("eth", IN, w.syn(a.router, a.server, 5555, a.sport, 1)),
                   Step("eth", IN, w.synack(a.server, a.router, a.sport, 5555, 9, 2))],
    }  # fmt: skip
    if kind == "ok-nat":
        return _nat(a)
    return steps[kind]


def _rst(a: Addrs) -> bytes:
    return w.tcp(a.server, a.client, a.sport, a.cport, RST | ACK, 0, ISN + 1)


def _nat(a: Addrs) -> list[Step]:
    """Masquerade on eth0: the LAN leg carries the connector's address and a new port."""
    nat_port = 40001
    return [
        Step("tun", IN, _syn(a)),
        Step("eth", OUT, _syn(a, a.connector, nat_port)),
        Step("eth", IN, _synack(a, a.connector, nat_port)),
        Step("tun", OUT, _synack(a)),
        Step("tun", IN, _ack(a)),
        Step("eth", OUT, w.tcp(a.connector, a.server, nat_port, a.sport, ACK, ISN + 1, SISN + 1)),
        Step("tun", IN, w.tcp(a.client, a.server, a.cport, a.sport, FIN | ACK, ISN + 1, SISN + 1)),
    ]


def frames(steps: list[Step]) -> list[tuple[int, Step]]:
    return [(T0 + i * 1_000_000, step) for i, step in enumerate(steps)]


def sll2_pcap(steps: list[Step], **kw: bool) -> bytes:
    index = {"tun": TUN_INDEX, "eth": ETH_INDEX}
    return w.pcap(
        LINKTYPE_LINUX_SLL2,
        [(ts, w.sll2(s.packet, index[s.side], _pkttype(s), _hatype(s))) for ts, s in frames(steps)],
        **kw,
    )


def sll_pcap(steps: list[Step], **kw: bool) -> bytes:
    return w.pcap(
        LINKTYPE_LINUX_SLL,
        [(ts, w.sll(s.packet, _pkttype(s), _hatype(s))) for ts, s in frames(steps)],
        **kw,
    )


def pcapng_sll2(steps: list[Step], big_endian: bool = False) -> bytes:
    index = {"tun": TUN_INDEX, "eth": ETH_INDEX}
    return w.pcapng(
        [w.NgInterface(LINKTYPE_LINUX_SLL2, "any")],
        [
            (0, ts, w.sll2(s.packet, index[s.side], _pkttype(s), _hatype(s)), Direction.UNKNOWN)
            for ts, s in frames(steps)
        ],
        big_endian=big_endian,
    )


def pcapng_per_interface(steps: list[Step], directions: bool = True, **kw: bool) -> bytes:
    """dumpcap-style: tun as raw IP, eth0 as Ethernet, one IDB each, epb_flags direction."""
    ifid = {"tun": 0, "eth": 1}
    return w.pcapng(
        [
            w.NgInterface(LINKTYPE_RAW, "CloudflareWARP", tsresol=9),
            w.NgInterface(LINKTYPE_ETHERNET, "eth0"),
        ],
        [
            (
                ifid[s.side],
                ts,
                s.packet if s.side == "tun" else w.ethernet(s.packet),
                s.direction if directions else Direction.UNKNOWN,
            )
            for ts, s in frames(steps)
        ],
        **kw,
    )


def _pkttype(step: Step) -> int:
    return w.OUT if step.direction == Direction.OUT else w.IN


def _hatype(step: Step) -> int:
    return w.HATYPE_NONE if step.side == "tun" else w.HATYPE_ETHER


__all__ = ["SYN", "Step", "scenario"]
