"""The mutable record of one connection attempt while a capture is read.

Filled by :class:`meshpath.trace.flows.Tracker`, judged by
:func:`meshpath.trace.classify.classify`: a module of its own so that neither of the two
imports the other.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from meshpath.trace.model import Endpoint
from meshpath.trace.packet import Packet


@dataclass(slots=True)
class FlowState:
    """The mutable record of one connection attempt while the capture is read."""

    client: Endpoint
    server: Endpoint
    isn: int
    tunnel: int | None  # None: a one-interface capture of the LAN side (the SYN left on it)
    first_ns: int
    syn_data: int = 0  # payload the SYN carried (TCP Fast Open): the SYN-ACK acks past it
    lan: Endpoint | None = None
    lan_iface: int | None = None
    reply_iface: int | None = None
    data_packets: int = 0
    want_ack: bool = True
    ack_probes: int = 0
    packets: int = 0
    evidence: list[Packet] = field(default_factory=list)
    keys: list[bytes] = field(default_factory=list)
    sightings: Counter[tuple[bytes, int, int, int, int]] = field(default_factory=Counter)
    counts: Counter[str] = field(default_factory=Counter)
    times: dict[str, int] = field(default_factory=dict)
    rst: Packet | None = None
    icmp: Packet | None = None
    closed: bool = False

    def mark(self, event: str, ts: int) -> None:
        """Count an event and remember when it first and last happened."""
        self.counts[event] += 1
        self.times.setdefault(event, ts)
        self.times[event + ".last"] = ts
