"""The kernel's two routing paths for IPv6, and what happens to a packet around them.

* :func:`route_input6` — a packet arriving on a device: the martian drops of
  ``ip6_rcv_core`` (net/ipv6/ip6_input.c), the lookup of ``ip6_route_input_lookup``, then
  for a forwarded packet the gates of ``ip6_forward`` (net/ipv6/ip6_output.c): forwarding
  on (``all.forwarding``), and no unspecified/multicast/loopback/link-local source.
* :func:`route_output6` — a locally generated packet (``ip6_route_output_flags``).

IPv6 has no ``rp_filter``: reverse-path filtering is an nftables ``fib saddr . iif oif
missing drop`` rule (or ip6tables ``rpfilter``), judged by :mod:`meshpath.sim.netfilter`.

``ip -6 route get … iif DEV`` answers with the lookup alone (``inet6_rtm_getroute``): it
applies neither ``ip6_rcv_core``'s martian checks nor ``ip6_forward``'s gates. So a
Decision's ``error``/``dev``/``gateway``/``table`` are what ``ip -6 route get`` prints
(``error`` None when it prints a route), and its ``outcome`` is the packet's fate: a
packet dropped by those later checks has ``error`` None and an outcome such as
``forwarding-disabled`` or ``martian-source`` (so ``Decision.ok`` is False).
"""

from __future__ import annotations

from typing import Final

from meshpath.errors import BadInputError
from meshpath.sim import values as v
from meshpath.sim.addr6 import (
    LOOPBACK6,
    int_to_ip6,
    ip6_to_int,
    is_linklocal6,
    is_multicast6,
    multicast_scope,
    need_strict,
)
from meshpath.sim.fib6 import INVALID_UID, Fib6, Flow6
from meshpath.sim.lookup import LookupResult, ifindex_of, note
from meshpath.sim.multipath import HASHABLE_POLICIES, LegInput, multipath_hash6, upper_bounds
from meshpath.sim.values import Decision, FlowKey, KernelStep, Leg
from meshpath.state import Nexthop

ERROR_OUTCOMES: Final = {
    "EINVAL": v.BLACKHOLE,
    "EACCES": v.PROHIBIT,
    "EHOSTUNREACH": v.UNREACHABLE,
    "ENETUNREACH": v.NO_ROUTE,
}
LOCAL_TYPES: Final = frozenset({"local", "anycast"})


def route_packet6(fib: Fib6, packet: FlowKey, *, trace: bool = True) -> Decision:
    """``ip -6 route get``: the input path when the packet has an ingress device, else output."""
    if packet.iif is None:
        return route_output6(fib, packet, trace=trace)
    return route_input6(fib, packet, trace=trace)


def _addresses(packet: FlowKey) -> tuple[int, int]:
    if packet.src is not None and ":" not in packet.src:
        raise BadInputError(f"from {packet.src!r}: an IPv6 destination needs an IPv6 source")
    return ip6_to_int(packet.dst), ip6_to_int(packet.src) if packet.src else 0


def route_input6(fib: Fib6, packet: FlowKey, *, trace: bool = True) -> Decision:
    """A packet that arrived on ``packet.iif``: ip6_rcv_core, the lookup, ip6_forward."""
    dev = packet.iif or "lo"
    iif = ifindex_of(fib.ifindex, dev, "iif")
    daddr, saddr = _addresses(packet)
    steps: list[KernelStep] | None = [] if trace else None
    martian = check_martians6(fib, dev, saddr, daddr, steps, packet)
    fl = Flow6(
        daddr, saddr, iif=iif, nh_oif=iif, strict=need_strict(daddr), mark=packet.mark,
        tos=packet.tos, proto=packet.proto, sport=packet.sport, dport=packet.dport,
        uid=INVALID_UID if packet.uid is None else packet.uid,
    )  # fmt: skip
    res = fib.fib_lookup(fl, steps)
    if res.error is not None or res.hit is None:
        return _error(packet, res, steps, martian)
    res, picked = pick_leg6(fib, res, fl, steps)
    rtype = res.hit.route.type if res.hit else None
    if martian is not None:
        return _decision(packet, steps, martian, res, picked)
    if rtype in LOCAL_TYPES:
        return _decision(packet, steps, v.LOCAL, res, picked)
    if rtype == "multicast":
        note(steps, "route", "multicast", "multicast routing not modelled")
        return _decision(packet, steps, v.MULTICAST, res, picked)
    outcome = forward_gates(fib, dev, saddr, res, steps)
    return _decision(packet, steps, outcome, res, picked)


def check_martians6(
    fib: Fib6, dev: str, saddr: int, daddr: int, steps: list[KernelStep] | None, packet: FlowKey
) -> str | None:
    """``ip6_rcv_core``'s drops before routing (RFC 4291): loopback source or destination
    from a non-loopback device, a multicast source, a multicast destination of reserved
    (0) or interface-local (1) scope from another node."""
    loop_dev = fib.ifindex.get(dev) == fib.loopback
    problem: tuple[str, str] | None = None
    if (saddr == LOOPBACK6 or daddr == LOOPBACK6) and not loop_dev:
        which = v.MARTIAN_SOURCE if saddr == LOOPBACK6 else v.MARTIAN_DESTINATION
        problem = (which, "loopback address on a non-loopback device")
    elif is_multicast6(saddr):
        problem = (v.MARTIAN_SOURCE, "multicast source")
    elif is_multicast6(daddr) and multicast_scope(daddr) in (0, 1) and not loop_dev:
        problem = (v.MARTIAN_DESTINATION, "multicast destination of scope 0/1 from outside")
    detail = f"{packet.src or '::'} -> {packet.dst} in {dev}" if steps is not None else ""
    if problem is None:
        note(steps, "martian", detail, "addresses are acceptable (ip6_rcv_core)")
        return None
    note(steps, "martian", detail, f"dropped by ip6_rcv_core: {problem[1]}")
    return problem[0]


def forward_gates(
    fib: Fib6, dev: str, saddr: int, res: LookupResult, steps: list[KernelStep] | None
) -> str:
    """``ip6_forward``: ``all.forwarding`` gates every forwarded packet; a packet not sent
    back out of its ingress device (that one gets a redirect) must have a routable source."""
    if not fib.forwarding:
        note(steps, "forwarding", "net.ipv6.conf.all.forwarding=0", "not forwarded: dropped")
        return v.FORWARDING_OFF
    note(steps, "forwarding", "net.ipv6.conf.all.forwarding=1", "may forward")
    hit = res.hit
    assert hit is not None
    if hit.dev != dev:
        why = _bad_forward_source(saddr)
        if why is not None:
            note(steps, "martian", f"from {int_to_ip6(saddr)}", f"not forwarded: {why}")
            return v.MARTIAN_SOURCE
    return v.FORWARD


def _bad_forward_source(saddr: int) -> str | None:
    if saddr == 0:
        return "unspecified source"
    if is_multicast6(saddr) or saddr == LOOPBACK6:
        return "multicast or loopback source"
    if is_linklocal6(saddr):
        return "link-local source (ICMPv6 beyond scope)"
    return None


def route_output6(fib: Fib6, packet: FlowKey, *, trace: bool = True) -> Decision:
    """``ip6_route_output_flags``: a locally generated packet. An ``oif`` without a source
    (and a link-local/multicast/loopback destination) makes the lookup strict."""
    daddr, saddr = _addresses(packet)
    oif = ifindex_of(fib.ifindex, packet.oif, "oif") if packet.oif else 0
    steps: list[KernelStep] | None = [] if trace else None
    fl = Flow6(
        daddr, saddr, iif=fib.loopback, oif=oif, nh_oif=oif,
        strict=bool(oif and not saddr) or need_strict(daddr), mark=packet.mark,
        tos=packet.tos, proto=packet.proto, sport=packet.sport, dport=packet.dport,
        uid=0 if packet.uid is None else packet.uid,
    )  # fmt: skip
    res = fib.fib_lookup(fl, steps)
    if res.error is not None or res.hit is None:
        return _error(packet, res, steps, None)
    res, picked = pick_leg6(fib, res, fl, steps)
    hit = res.hit
    assert hit is not None
    if hit.route.type in LOCAL_TYPES:
        return _decision(packet, steps, v.LOCAL, res, picked, prefsrc=packet.src or packet.dst)
    outcome = v.MULTICAST if hit.route.type == "multicast" else v.OUTPUT
    src = packet.src or hit.route.prefsrc or _first_address(fib, hit.dev)
    return _decision(packet, steps, outcome, res, picked, prefsrc=src)


def _first_address(fib: Fib6, dev: str | None) -> str | None:
    """The device's first global address: an approximation of RFC 6724 source selection
    (``ipv6_dev_get_saddr``), used only to show a source."""
    addrs = [a for a in fib.dev_addrs.get(dev or "", ()) if not is_linklocal6(a)]
    return int_to_ip6(addrs[0]) if addrs else None


def _error(
    packet: FlowKey, res: LookupResult, steps: list[KernelStep] | None, martian: str | None
) -> Decision:
    error = res.error or "ENETUNREACH"
    outcome = ERROR_OUTCOMES.get(error, v.UNKNOWN)
    if error == "ENETUNREACH" and res.rule is not None:
        outcome = v.UNREACHABLE  # an `unreachable` rule, not a missing route
    return Decision(
        packet=packet,
        outcome=martian or outcome,
        error=error,
        rule_priority=res.rule,
        steps=tuple(steps or ()),
    )


Picked6 = tuple[tuple[Leg, ...], str | None]  # the legs a flow may take, how one was found
_NO_LEGS: Final[Picked6] = ((), None)


def pick_leg6(
    fib: Fib6, res: LookupResult, fl: Flow6, steps: list[KernelStep] | None
) -> tuple[LookupResult, Picked6]:
    """``fib6_select_path``: the sibling a flow takes, when that can be known.

    The legs' hash bounds are IPv4's (``rt6_upper_bound_set``: a dead leg gets none). The
    walk starts from the first sibling: the first whose bound holds the hash is taken,
    unless it fails ``rt6_score_route`` (strict, another device): then the sibling
    ``rt6_select`` took stays. A linkdown leg where ``ignore_routes_with_linkdown`` is set
    (a dump shows it dead) has a bound only if the sysctl came after the last rebalance,
    which a snapshot cannot tell: then, as without a seed, any leg may be taken."""
    hit = res.hit
    if hit is None or not hit.route.nexthops:
        return res, _NO_LEGS
    nhs = hit.route.nexthops
    unsettled = [bool(nh.dev) and "linkdown" in nh.flags and fib.ignore_linkdown(nh.dev or "")
                 for nh in nhs]  # fmt: skip
    alive = ["dead" not in nh.flags for nh in nhs]
    legs = tuple(
        Leg(nh.dev, nh.gateway, nh.weight)
        for nh, ok, maybe in zip(nhs, alive, unsettled, strict=True)
        if ok or maybe
    )
    conf = fib.snapshot.sysctls
    seed, policy = conf.fib_multipath_hash_seed, conf.fib6_multipath_hash_policy
    shown = ", ".join(f"dev {leg.dev} via {leg.gateway or '-'} weight {leg.weight}" for leg in legs)
    if not seed or policy not in HASHABLE_POLICIES or any(unsettled):
        note(steps, "multipath", shown, "the kernel hashes each flow over the legs with a "
             "random per-boot seed, or weighs a linkdown leg by when its sysctl was set, or "
             "uses a hash policy not modelled: any of them")  # fmt: skip
        return res, (legs, v.LEG_BY_UNKNOWN)
    bounds = upper_bounds([LegInput(ok, nh.weight, 0) for nh, ok in zip(nhs, alive, strict=True)])
    value = multipath_hash6(seed, policy, fl.saddr, fl.daddr, fl.proto, fl.sport, fl.dport)
    index = next((i for i, bound in enumerate(bounds) if value <= bound), None)
    if index is None or _fails_score(fib, nhs[index], fl):
        return res, (legs, v.LEG_BY_HASH)  # the sibling rt6_select took
    nh = nhs[index]
    note(steps, "multipath", shown, f"hash (seed {seed}, policy {policy}) takes dev {nh.dev}")
    return res._replace(hit=hit._replace(dev=nh.dev, gateway=nh.gateway)), (legs, v.LEG_BY_HASH)


def _fails_score(fib: Fib6, nh: Nexthop, fl: Flow6) -> bool:
    """``rt6_score_route`` < 0: a strict lookup (RT6_LOOKUP_F_IFACE) via another device."""
    return bool(fl.strict and fl.nh_oif and fib.ifindex.get(nh.dev or "") != fl.nh_oif)


def _decision(
    packet: FlowKey,
    steps: list[KernelStep] | None,
    outcome: str,
    res: LookupResult,
    picked: Picked6 = _NO_LEGS,
    *,
    dev: str | None = None,
    prefsrc: str | None = None,
) -> Decision:
    hit = res.hit
    assert hit is not None
    local = hit.route.type in LOCAL_TYPES
    return Decision(
        packet=packet,
        outcome=outcome,
        table=hit.table,
        rule_priority=res.rule,
        dev=dev or ("lo" if local else hit.dev),
        gateway=None if local else hit.gateway,
        prefsrc=prefsrc,
        route=hit.route.dst,
        route_type=hit.route.type,
        multipath=bool(hit.route.nexthops),
        steps=tuple(steps) if steps else (),
        legs=picked[0],
        leg_by=picked[1],
    )
