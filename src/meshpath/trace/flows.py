"""Follow each TCP connection from the Cloudflare source range through the connector.

A flow starts with a SYN whose source lies in a Cloudflare source range (or the sources
``trace --source`` names) and that arrives (``In``) on some interface: that interface *is*
the tunnel side, whatever its name. Every later sighting of the same handshake is placed
relative to it: the SYN leaving on another interface is the LAN leg (its source differs
from the tunnel-side source when the connector NATs; such a leg is the same connection:
same destination, port and initial sequence number, seen leaving on another interface after
the SYN came in), the SYN-ACK coming back in on the LAN, and where that SYN-ACK leaves: the
tunnel (ok) or anywhere else (misrouted). ICMP errors are tied to a flow by the header they
quote.

What a capture can show depends on what it recorded (:attr:`Tracker.single`): a capture of
every interface (``-i any``, NFLOG) or of several follows a connection through the
connector; a capture of one interface only shows whether the SYN was answered *there*. It
cannot have NAT legs, any reset coming back on it is the target refusing, and an unanswered
SYN is ``no-reply`` (it cannot show whether the SYN was forwarded).

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
# Handshake packets that match no flow are kept this long (a count) in case their SYN is
# stored after them: merged captures and -i any on several CPUs store some packets out of
# order (a SYN-ACK before its SYN, with the later timestamp).
ORPHANS: Final = 64
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


def _acknowledges(flow: FlowState, pkt: Packet) -> bool:
    """The SYN-ACK acknowledges this flow's SYN (ISN + 1, plus any Fast Open data).

    Text pasted without the ``ack`` field parses as 0: unknown, so accepted.
    """
    if pkt.ack == 0:
        return True
    return (pkt.ack - flow.isn - 1) & 0xFFFFFFFF <= flow.syn_data


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
        sources: Iterable[Network] | None = None,
    ) -> None:
        chosen = list(sources) if sources is not None else None
        self.sources = AddressSet(chosen if chosen is not None else ranges.source_ranges())
        # With sources of the user's choosing every destination counts: Cloudflare's own
        # ranges are excluded only from the default, where they are the Mesh's addresses.
        self.cloudflare = AddressSet(() if chosen else (net for _key, net in ranges.items()))
        self.target = target
        self.single = False  # set from the capture's interfaces (see the module docstring)
        self.max_examples = max_examples
        self.legs: dict[bytes, FlowState] = {}
        self._pending: dict[tuple[bytes, int, int], FlowState] = {}
        self._closed: deque[FlowState] = deque()
        self._orphans: deque[Packet] = deque(maxlen=ORPHANS)
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
                self._orphan(pkt)
                return
            self._observe(flow, pkt)
            self._adopt(flow)
            return
        self._observe(flow, pkt)

    def _orphan(self, pkt: Packet) -> None:
        """A packet of no flow: ignored, but a handshake packet is kept a while (ORPHANS)."""
        self.ignored += 1
        if pkt.flags & (SYN | RST):
            self._orphans.append(pkt)

    def _adopt(self, flow: FlowState) -> None:
        """Follow the kept packets that prove to belong to a flow that just started.

        Proof, not timestamps (captures reorder both): a reply acknowledges the SYN's
        sequence number, a leg of the same SYN carries it.
        """
        isn, server = flow.isn, flow.server
        after = (isn + 1) & 0xFFFFFFFF
        mine = [
            p
            for p in self._orphans
            if (
                (p.src, p.sport, p.ack) == (server.address, server.port, after)
                and flow_key(p.src, p.dst, p.sport, p.dport) in flow.keys
            )
            or (p.is_syn and (p.dst, p.dport, p.seq) == (server.address, server.port, isn))
        ]
        for pkt in mine:  # all taken out first: following one may start (and adopt for) another
            self._orphans.remove(pkt)
        self.ignored -= len(mine)
        for pkt in mine:
            self._tcp(pkt)

    def _start(self, pkt: Packet, key: bytes) -> FlowState | None:
        """A new flow (SYN from a Cloudflare source) or the NATed LAN leg of one."""
        leg = self._pending.get((pkt.dst, pkt.dport, pkt.seq))
        if leg is not None and self._is_nat_leg(leg, pkt):
            self._add_leg(leg, Endpoint(pkt.src, pkt.sport), key)
            return leg
        if pkt.src not in self.sources:
            return None
        if pkt.direction == Direction.OUT and not self.single:
            return None  # a SYN leaving is a leg of a flow that came in, or not ours
        if not self._wanted(pkt.dst, pkt.dport):
            return None
        flow = FlowState(
            client=Endpoint(pkt.src, pkt.sport),
            server=Endpoint(pkt.dst, pkt.dport),
            isn=pkt.seq,
            tunnel=None if pkt.direction == Direction.OUT else pkt.iface,
            first_ns=pkt.ts_ns,
            syn_data=pkt.length,
        )
        self._add_leg(flow, flow.client, key)
        self._pending[(pkt.dst, pkt.dport, pkt.seq)] = flow
        return flow

    def _is_nat_leg(self, flow: FlowState, pkt: Packet) -> bool:
        """The same connection, NATed: seen leaving on another interface after it came in.

        Destination, port and ISN alone are not enough: scanners and test traffic reuse
        them across clients, and those SYNs arrive on the same interface as the first.
        """
        if self.single or pkt.src == flow.client.address or flow.tunnel is None:
            return False
        if pkt.iface == flow.tunnel or pkt.direction == Direction.IN:
            return False
        if flow.lan is not None and flow.lan != Endpoint(pkt.src, pkt.sport):
            return False  # this flow already left with another source
        return pkt.ts_ns < 0 or flow.first_ns < 0 or pkt.ts_ns >= flow.first_ns

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
        # Toward the server's endpoint (address *and* port: on loopback both ends share
        # the address) is the client's direction, on every leg.
        forward = pkt.dst == flow.server.address and pkt.dport == flow.server.port
        if pkt.direction == Direction.UNKNOWN:
            pkt = self._infer_direction(flow, pkt, forward)
        if forward:
            self._forward(flow, pkt)
        else:
            self._reverse(flow, pkt)
        if len(flow.evidence) < EVIDENCE_CAP and (pkt.flags & (SYN | RST | FIN) or flow.want_ack):
            flow.evidence.append(pkt)
        if flow.counts["fin.fwd"] and flow.counts["fin.rev"]:
            self._close(flow)

    def _infer_direction(self, flow: FlowState, pkt: Packet, client_side: bool) -> Packet:
        """No direction recorded (pcapng without epb_flags, plain text): infer it.

        The client's packets enter on the tunnel and leave elsewhere; the server's leave
        on the tunnel. A server packet seen again on the same other interface went back
        out there (the misrouted reply), so sightings there alternate in, out.
        """
        flow.counts["inferred"] += 1
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
            # A reset coming in is the target's answer; so is one coming back on the only
            # interface a capture has. (In on the tunnel itself: a loopback-like link.)
            back = self.single or pkt.direction == Direction.IN
            if back and flow.rst is None:
                flow.rst = pkt
            flow.mark("rst.rev", pkt.ts_ns)
            self._close(flow)
        elif pkt.is_synack:
            self._synack(flow, pkt, on_tunnel)
        elif pkt.flags & FIN:
            flow.mark("fin.rev", pkt.ts_ns)

    def _synack(self, flow: FlowState, pkt: Packet, on_tunnel: bool) -> None:
        if not _acknowledges(flow, pkt):
            return  # a SYN-ACK for some other SYN on this 4-tuple answers nothing here
        if pkt.direction == Direction.IN and not on_tunnel:
            flow.mark("synack.in", pkt.ts_ns)
        elif on_tunnel:
            # Out on the tunnel: back where the SYN came from. In on it: a link where both
            # ends receive (loopback captured as cooked, -i lo), answered all the same.
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
        result = classify(flow, single=self.single)
        self.verdicts[result.verdict] += 1
        if self.verdicts[result.verdict] <= self.max_examples:
            self.examples.append(result)
