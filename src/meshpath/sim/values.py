"""The simulator's values: a packet going in, a decision (with every step) coming out.

All frozen msgspec Structs, so a decision can be compared, hashed, and dumped as JSON
(``msgspec.to_builtins``) by the CLI exactly as the library returns it.
"""

from __future__ import annotations

from typing import Final

import msgspec

# Decision.outcome values. The errno next to each is what ``ip route get`` answers.
FORWARD: Final = "forward"  # an arriving packet is forwarded out of a device
OUTPUT: Final = "output"  # a locally generated packet leaves by a device
LOCAL: Final = "local"  # delivered to this host
BROADCAST: Final = "broadcast"
MULTICAST: Final = "multicast"  # EINVAL on input (no multicast routing modelled)
BLACKHOLE: Final = "blackhole"  # EINVAL
UNREACHABLE: Final = "unreachable"  # EHOSTUNREACH (route) / ENETUNREACH (rule)
PROHIBIT: Final = "prohibit"  # EACCES
NO_ROUTE: Final = "no-route"  # ENETUNREACH: no rule/table gave a route
FORWARDING_OFF: Final = "forwarding-disabled"  # EHOSTUNREACH
MARTIAN_SOURCE: Final = "martian-source"  # EINVAL
MARTIAN_DESTINATION: Final = "martian-destination"  # EINVAL
RP_FILTER: Final = "rp-filter"  # EINVAL: reverse path check failed
LOCAL_SOURCE: Final = "local-source"  # EINVAL: the source is one of this host's addresses
SOURCE_NOT_LOCAL: Final = "source-not-local"  # ENETUNREACH: output from a foreign address
UNKNOWN: Final = "unknown"

DELIVERED_OUTCOMES: Final = frozenset({FORWARD, OUTPUT, LOCAL, BROADCAST})

TCP: Final = 6
UDP: Final = 17


class FlowKey(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """What the kernel routes: the flow key of one packet (``struct flowi4``/``flowi6``).

    A key a routing decision is asked for, not a packet seen on a wire (that one is
    :class:`meshpath.trace.packet.Packet`, the one ``Packet``).

    ``iif`` None means locally generated (``iif lo`` in ip-rule terms); ``oif`` only for
    locally generated packets bound to a device. ``uid`` None is the kernel's default:
    0 (root) for local origin and for forwarded packets (``sock_net_uid``).
    ``proto`` defaults to UDP like ``ip route get`` does.
    """

    dst: str
    src: str | None = None
    iif: str | None = None
    oif: str | None = None
    mark: int = 0
    tos: int = 0
    proto: int = UDP
    sport: int = 0
    dport: int = 0
    uid: int | None = None


class KernelStep(msgspec.Struct, frozen=True, gc=False):
    """One thing the kernel did: ``kind`` (martian, rule, lookup, rp_filter, forwarding,
    netfilter, nat, ...), ``detail`` (what it looked at) and ``reason`` (what followed)."""

    kind: str
    detail: str
    reason: str


class Leg(msgspec.Struct, frozen=True, gc=False):
    """One usable leg of a multipath route."""

    dev: str | None
    gateway: str | None
    weight: int = 1


# Decision.leg_by: how the egress leg of a multipath route was found.
LEG_BY_HASH: Final = "hash"  # the kernel's hash, with its seed known: this is the leg
LEG_BY_OIF: Final = "oif"  # the packet is bound to a device: the leg on it
LEG_BY_UNKNOWN: Final = "unknown"  # the hash seed is random per boot: any of the legs


class Decision(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The kernel's routing decision for one packet, and how it got there.

    ``error`` is the errno name ``ip route get`` would print (None on success); ``dev`` is
    the egress device (``lo`` for local delivery, as the kernel reports it); ``table`` and
    ``rule_priority`` name where the answer came from. For a multipath route ``legs`` holds
    every usable leg and ``leg_by`` says whether ``dev``/``gateway`` is *the* leg (``hash``:
    the seed is known; ``oif``) or only the first of several the kernel may take
    (``unknown``): then no one leg is the answer.
    """

    packet: FlowKey
    outcome: str
    error: str | None = None
    table: int | None = None
    rule_priority: int | None = None
    dev: str | None = None
    gateway: str | None = None
    prefsrc: str | None = None
    route: str | None = None  # the matching route's prefix
    route_type: str | None = None
    multipath: bool = False
    steps: tuple[KernelStep, ...] = ()
    legs: tuple[Leg, ...] = ()
    leg_by: str | None = None
    legs_dropped: tuple[Leg, ...] = ()  # legs a forwarded flow would be dropped on (rp_filter)

    @property
    def ok(self) -> bool:
        return self.error is None and self.outcome in DELIVERED_OUTCOMES
