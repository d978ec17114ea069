"""Follow each TCP connection from the Cloudflare source range through the connector.

A flow starts with a SYN whose source lies in a Cloudflare source range and that arrives
(``In``) on some interface: that interface *is* the tunnel side, whatever its name. Every
later sighting of the same handshake is placed relative to it: the SYN leaving on another
interface is the LAN leg (its source differs from the tunnel-side source when the connector
NATs; such a leg is matched by destination, port and initial sequence number), the SYN-ACK
coming back in on the LAN, and where that SYN-ACK leaves: the tunnel (ok) or anywhere else
(misrouted). ICMP errors are tied to a flow by the header they quote.

Memory stays bounded: each flow keeps at most :data:`EVIDENCE_CAP` packets, closed flows
are classified and folded into counts (plus a few examples per verdict) as the capture
goes on, so the tracker holds only the connections that are open at one moment.
"""

from __future__ import annotations

import ipaddress
import struct
from collections import Counter, deque
from collections.abc import Iterable
from typing import Final

from meshpath.ranges import CloudflareRanges
from meshpath.trace.classify import classify
from meshpath.trace.flowstate import FlowState
from meshpath.trace.model import Endpoint, FlowVerdict
from meshpath.trace.packet import (
    ACK,
    FIN,
    PKTTYPE_OTHERHOST,
    PROTO_TCP,
    RST,
    SYN,
    Direction,
    Packet,
)

EVIDENCE_CAP: Final = 24
_ACK_PROBES: Final = 8  # data segments inspected per flow while waiting for the final ACK
_CLOSED_BACKLOG: Final = 256  # closed flows kept a while for late sightings (forwarded RST)
_PORTS: Final = struct.Struct("!HH")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class AddressSet:
    """Membership of raw address bytes in a few networks, without ipaddress objects."""

    def __init__(self, networks: Iterable[Network]) -> None:
        self._nets: list[tuple[int, int, int]] = []  # (length, shift, prefix value)
        for net in networks:
            size = 4 if net.version == 4 else 16
            shift = size * 8 - net.prefixlen
            self._nets.append((size, shift, int(net.network_address) >> shift))

    def __contains__(self, raw: bytes) -> bool:
        value = int.from_bytes(raw, "big")
        size = len(raw)
        return any(s == size and value >> shift == p for s, shift, p in self._nets)


def flow_key(src: bytes, dst: bytes, sport: int, dport: int) -> bytes:
    """The hot path's key: source, destination, ports (as they sit in the packet)."""
    return src + dst + _PORTS.pack(sport, dport)


class Tracker:
    """Consumes packets in capture order; yields classified flows."""

    def __init__(
        self,
        ranges: CloudflareRanges,
        target: Endpoint | None = None,
        max_examples: int = 10,
    ) -> None:
        self.sources = AddressSet(ranges.source_ranges())
        self.cloudflare = AddressSet(net for _key, net in ranges.items())
        self.target = target
        self.max_examples = max_examples
        self.legs: dict[bytes, FlowState] = {}
        self._pending: dict[tuple[bytes, int, int], FlowState] = {}
        self._closed: deque[FlowState] = deque()
        self.examples: list[FlowVerdict] = []
        self.verdicts: Counter[str] = Counter()
        self.ignored = 0

    # -- entry points ------------------------------------------------------------------

    def packet(self, pkt: Packet) -> None:
        if pkt.pkttype == PKTTYPE_OTHERHOST:
            # Addressed to another host's MAC: seen in passing, not part of this host's path.
            self.ignored += 1
        elif pkt.proto == PROTO_TCP:
            self._tcp(pkt)
        elif pkt.inner is not None:
            self._icmp(pkt)

    def finish(self) -> None:
        """Classify every flow still open (end of capture)."""
        seen: set[int] = set()
        for flow in [*self._closed, *self.legs.values()]:
            if id(flow) not in seen:
                seen.add(id(flow))
                self._fold(flow)
        self.legs.clear()
        self._closed.clear()
        self._pending.clear()

    # -- TCP ---------------------------------------------------------------------------

    def _tcp(self, pkt: Packet) -> None:
        key = flow_key(pkt.src, pkt.dst, pkt.sport, pkt.dport)
        flow = self.legs.get(key)
        if (
            flow is not None
            and pkt.is_syn
            and pkt.seq != flow.isn
            and pkt.src == flow.client.address
        ):
            self._close(flow)  # the 4-tuple is reused by a new connection attempt
            flow = None
        if flow is None:
            flow = self._start(pkt, key) if pkt.is_syn else None
            if flow is None:
                self.ignored += 1
                return
        self._observe(flow, pkt)

    def _start(self, pkt: Packet, key: bytes) -> FlowState | None:
        """A new flow (SYN from a Cloudflare source) or the NATed LAN leg of one."""
        leg = self._pending.get((pkt.dst, pkt.dport, pkt.seq))
        if leg is not None and pkt.src != leg.client.address:
            self._add_leg(leg, Endpoint(pkt.src, pkt.sport), key)
            return leg
        if pkt.src not in self.sources or pkt.direction == Direction.OUT:
            return None
        if not self._wanted(pkt.dst, pkt.dport):
            return None
        flow = FlowState(
            client=Endpoint(pkt.src, pkt.sport),
            server=Endpoint(pkt.dst, pkt.dport),
            isn=pkt.seq,
            tunnel=pkt.iface,
            first_ns=pkt.ts_ns,
        )
        self._add_leg(flow, flow.client, key)
        self._pending[(pkt.dst, pkt.dport, pkt.seq)] = flow
        return flow

    def _wanted(self, dst: bytes, dport: int) -> bool:
        if self.target is not None:
            return dst == self.target.address and dport == self.target.port
        return dst not in self.cloudflare

    def _add_leg(self, flow: FlowState, source: Endpoint, key: bytes) -> None:
        back = flow_key(flow.server.address, source.address, flow.server.port, source.port)
        for k in (key, back):
            if k not in flow.keys:
                flow.keys.append(k)
            self.legs[k] = flow

    def _observe(self, flow: FlowState, pkt: Packet) -> None:
        flow.packets += 1
        if pkt.direction == Direction.UNKNOWN:
            pkt = self._infer_direction(flow, pkt)
        forward = pkt.dst == flow.server.address and pkt.dport == flow.server.port
        if forward:
            self._forward(flow, pkt)
        else:
            self._reverse(flow, pkt)
        if len(flow.evidence) < EVIDENCE_CAP and (pkt.flags & (SYN | RST | FIN) or flow.want_ack):
            flow.evidence.append(pkt)
        if flow.counts["fin.fwd"] and flow.counts["fin.rev"]:
            self._close(flow)

    def _infer_direction(self, flow: FlowState, pkt: Packet) -> Packet:
        """No direction recorded (pcapng without epb_flags, plain text): infer it.

        The client's packets enter on the tunnel and leave elsewhere; the server's leave
        on the tunnel. A server packet seen again on the same other interface went back
        out there (the misrouted reply), so sightings there alternate in, out.
        """
        flow.counts["inferred"] += 1
        client_side = pkt.src in (flow.client.address, flow.lan.address if flow.lan else b"")
        on_tunnel = pkt.iface == flow.tunnel
        if client_side:
            dirn = Direction.IN if on_tunnel else Direction.OUT
        elif on_tunnel:
            dirn = Direction.OUT
        else:
            sig = (pkt.src, pkt.sport, pkt.flags, pkt.seq, pkt.iface)
            flow.sightings[sig] += 1
            dirn = Direction.IN if flow.sightings[sig] % 2 else Direction.OUT
        return pkt._replace(direction=dirn)

    def _forward(self, flow: FlowState, pkt: Packet) -> None:
        on_tunnel = pkt.iface == flow.tunnel
        if pkt.is_syn:
            if on_tunnel and pkt.direction == Direction.IN:
                flow.mark("syn.in", pkt.ts_ns)
            elif pkt.direction == Direction.OUT:
                flow.mark("syn.out", pkt.ts_ns)
                flow.lan_iface = pkt.iface
                if flow.lan is None:
                    flow.lan = Endpoint(pkt.src, pkt.sport)
            return
        if pkt.flags & FIN:
            flow.mark("fin.fwd", pkt.ts_ns)
        if pkt.flags & ACK and on_tunnel and flow.counts["synack.tunnel"]:
            flow.mark("ack.in", pkt.ts_ns)
            flow.want_ack = False
        elif not pkt.flags & (SYN | RST | FIN):
            flow.ack_probes += 1
            flow.want_ack = flow.ack_probes < _ACK_PROBES

    def _reverse(self, flow: FlowState, pkt: Packet) -> None:
        on_tunnel = pkt.iface == flow.tunnel
        if pkt.flags & RST:
            if not on_tunnel and pkt.direction == Direction.IN and flow.rst is None:
                flow.rst = pkt
            flow.mark("rst.rev", pkt.ts_ns)
            self._close(flow)
        elif pkt.is_synack:
            self._synack(flow, pkt, on_tunnel)
        elif pkt.flags & FIN:
            flow.mark("fin.rev", pkt.ts_ns)

    def _synack(self, flow: FlowState, pkt: Packet, on_tunnel: bool) -> None:
        if pkt.direction == Direction.IN and not on_tunnel:
            flow.mark("synack.in", pkt.ts_ns)
        elif pkt.direction == Direction.OUT and on_tunnel:
            flow.mark("synack.tunnel", pkt.ts_ns)
            flow.reply_iface = pkt.iface
        elif pkt.direction == Direction.OUT:
            flow.mark("synack.other", pkt.ts_ns)
            flow.reply_iface = pkt.iface

    # -- ICMP --------------------------------------------------------------------------

    def _icmp(self, pkt: Packet) -> None:
        inner = pkt.inner
        assert inner is not None  # noqa: S101 - the caller checked
        if inner.sport >= 0:
            flow = self.legs.get(flow_key(inner.src, inner.dst, inner.sport, inner.dport))
        else:
            flow = self._loose_match(inner.src, inner.dst, inner.dport)
        if flow is None:
            self.ignored += 1
            return
        flow.packets += 1
        if flow.icmp is None and pkt.direction != Direction.OUT:
            flow.icmp = pkt
        flow.mark("icmp", pkt.ts_ns)
        if len(flow.evidence) < EVIDENCE_CAP:
            flow.evidence.append(pkt)

    def _loose_match(self, src: bytes, dst: bytes, dport: int) -> FlowState | None:
        """The newest open flow from ``src`` to ``dst`` (text ICMP quotes no source port)."""
        for flow in reversed(self.legs.values()):
            sources = {flow.client.address, flow.lan.address if flow.lan else b""}
            if flow.server.address == dst and src in sources and dport in (-1, flow.server.port):
                return flow
        return None

    # -- folding finished flows --------------------------------------------------------

    def _close(self, flow: FlowState) -> None:
        if flow.closed:
            return
        flow.closed = True
        self._closed.append(flow)
        while len(self._closed) > _CLOSED_BACKLOG:
            self._fold(self._closed.popleft())

    def _fold(self, flow: FlowState) -> None:
        for key in flow.keys:
            if self.legs.get(key) is flow:
                del self.legs[key]
        pending = (flow.server.address, flow.server.port, flow.isn)
        if self._pending.get(pending) is flow:
            del self._pending[pending]
        result = classify(flow)
        self.verdicts[result.verdict] += 1
        if self.verdicts[result.verdict] <= self.max_examples:
            self.examples.append(result)
