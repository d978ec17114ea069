"""The kernel's two routing paths for IPv4, and the reverse-path check.

* :func:`route_input` — ``ip_route_input_slow`` (net/ipv4/route.c) for a packet arriving on
  a device: martian checks, the FIB lookup, local delivery, the forwarding gate
  (``IN_DEV_FORWARD`` of the *ingress* device), then :func:`check_rp_filter`.
* :func:`route_output` — ``ip_route_output_key_hash_rcu`` for a locally generated packet.
* :func:`check_rp_filter` — ``fib_validate_source`` / ``__fib_validate_source``
  (net/ipv4/fib_frontend.c).

Each returns a :class:`~meshpath.sim.values.Decision` with the errno ``ip route get`` prints.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import msgspec

from meshpath.sim import values as v
from meshpath.sim.addr import (
    int_to_ip,
    ip_pair_to_int,
    ip_to_int,
    is_lbcast,
    is_loopback,
    is_multicast,
    is_zeronet,
)
from meshpath.sim.fib import Failure, Fib, Flow
from meshpath.sim.lookup import Hit, LookupResult, ifindex_of, note
from meshpath.sim.multipath import LegInput, predict
from meshpath.sim.route6 import route_packet6
from meshpath.sim.values import Decision, FlowKey, KernelStep, Leg
from meshpath.state.model import SCOPE_UNIVERSE

ERROR_OUTCOMES: Final = {
    "EINVAL": v.BLACKHOLE,
    "EACCES": v.PROHIBIT,
    "EHOSTUNREACH": v.UNREACHABLE,
    "ENETUNREACH": v.NO_ROUTE,
}
ALL_HOSTS: Final = ip_to_int("224.0.0.1")  # joined by the kernel on every device (ip_mc_up)
IGMP: Final = 2
ROUTABLE: Final = "addresses are routable"  # the martian step's reason when none applies
Picked = tuple[Hit, tuple[Leg, ...], str | None]  # the hit with the leg taken, legs, how


def route_packet(fib: Fib, packet: FlowKey, *, trace: bool = True) -> Decision:
    """``ip route get``: the input path when the packet has an ingress device, else output.

    ``trace=False`` skips recording the steps (same decision, about 1.5x faster). An IPv6
    destination goes to the IPv6 model (:mod:`meshpath.sim.route6`)."""
    if ":" in packet.dst:  # is_v6, inline: every query asks
        return route_packet6(fib.v6, packet, trace=trace)
    if packet.iif is None:
        return route_output(fib, packet, trace=trace)
    return route_input(fib, packet, trace=trace)


def route_many(fib: Fib, packets: Iterable[FlowKey], *, trace: bool = True) -> list[Decision]:
    """:func:`route_packet` for each packet, in order: the bulk form for many questions of
    one snapshot (its Fib, compiled once, remembers what the questions share)."""
    # route_packet's dispatch inline for the commonest question (IPv4, arriving).
    return [
        route_input(fib, p, trace=trace)
        if p.iif is not None and ":" not in p.dst
        else route_packet(fib, p, trace=trace)
        for p in packets
    ]


def route_input(fib: Fib, packet: FlowKey, *, trace: bool = True) -> Decision:
    """``ip_route_input_slow``: route a packet that arrived on ``packet.iif``."""
    dev = packet.iif or "lo"
    iif = fib.ifindex.get(dev) or ifindex_of(fib.ifindex, dev, "iif")
    dst, src = packet.dst, packet.src or "0.0.0.0"
    daddr, saddr = ip_pair_to_int(dst, src)
    steps: list[KernelStep] | None = [] if trace else None
    s_top, d_top = saddr >> 24, daddr >> 24
    if 0 < s_top < 224 and 0 < d_top < 224 and s_top != 127 and d_top != 127:
        # The common case (check_martians' first test, inline: every query asks).
        if steps is not None:
            steps.append(KernelStep("martian", f"{src} -> {dst} in {dev}", ROUTABLE))
    else:
        if is_multicast(daddr):
            return input_multicast(fib, packet, dev, iif, steps)
        martian = check_martians(fib, dev, saddr, daddr, steps, packet)
        if martian is not None:
            return _failed(packet, steps, martian)
    if fib.fldissect:
        fl = Flow(daddr, saddr, iif=iif, mark=packet.mark, tos=packet.tos, proto=packet.proto,
                  sport=packet.sport, dport=packet.dport)  # fmt: skip
    else:
        fl = Flow(daddr, saddr, iif=iif, mark=packet.mark, tos=packet.tos)
    res = fib.fib_lookup(fl, steps)
    hit = res.hit
    if res.error is not None or hit is None:
        return _input_error(fib, packet, dev, res, steps)
    if hit.route.type == "unicast" and not hit.route.nexthops:
        return _forward(fib, packet, dev, fl, res, steps)  # the commonest, one call less
    return _input_hit(fib, packet, dev, fl, res, steps)


def check_martians(
    fib: Fib, dev: str, saddr: int, daddr: int, steps: list[KernelStep] | None, packet: FlowKey
) -> Failure | None:
    """The martian checks ``ip_route_input_slow`` makes before any lookup."""
    problem: tuple[str, str] | None = None
    s_top, d_top = saddr >> 24, daddr >> 24
    if 0 < s_top < 224 and 0 < d_top < 224 and s_top != 127 and d_top != 127:
        pass  # the common case, none of the classes below (0/8, 127/8, 224/3, lbcast)
    elif is_multicast(daddr):
        problem = (v.MULTICAST, "multicast destination (multicast routing not modelled)")
    elif is_multicast(saddr) or is_lbcast(saddr):
        problem = (v.MARTIAN_SOURCE, "source is multicast or limited broadcast")
    elif is_lbcast(daddr) or (saddr == 0 and daddr == 0):
        problem = None  # limited broadcast: delivered locally (brd_input), checked below
    elif is_zeronet(saddr):
        problem = (v.MARTIAN_SOURCE, "source in 0.0.0.0/8")
    elif is_zeronet(daddr):
        problem = (v.MARTIAN_DESTINATION, "destination in 0.0.0.0/8")
    elif is_loopback(daddr) and not fib.orconf(dev, "route_localnet"):
        problem = (v.MARTIAN_DESTINATION, "destination in 127.0.0.0/8 without route_localnet")
    elif is_loopback(saddr) and not fib.orconf(dev, "route_localnet"):
        problem = (v.MARTIAN_SOURCE, "source in 127.0.0.0/8 without route_localnet")
    detail = f"{packet.src or '0.0.0.0'} -> {packet.dst} in {dev}" if steps is not None else ""
    if problem is None:
        note(steps, "martian", detail, ROUTABLE)
        return None
    note(steps, "martian", detail, f"dropped: {problem[1]}")
    return problem[0], "EINVAL"


def _input_error(
    fib: Fib, packet: FlowKey, dev: str, res: LookupResult, steps: list[KernelStep] | None
) -> Decision:
    """``no_route``: the lookup failed; without forwarding on the ingress device the
    kernel answers EHOSTUNREACH whatever the lookup said."""
    error = res.error or "ENETUNREACH"
    outcome = ERROR_OUTCOMES.get(error, v.UNKNOWN)
    if error == "ENETUNREACH" and res.rule is not None:
        outcome = v.UNREACHABLE  # an `unreachable` rule, not a missing route
    if not fib.forwarding(dev):
        note(steps, "forwarding", f"net.ipv4.conf.{dev}.forwarding=0", "EHOSTUNREACH")
        error = "EHOSTUNREACH"
    return Decision(
        packet=packet,
        outcome=outcome,
        error=error,
        rule_priority=res.rule,
        steps=tuple(steps or ()),
    )


def _input_hit(
    fib: Fib, packet: FlowKey, dev: str, fl: Flow, res: LookupResult, steps: list[KernelStep] | None
) -> Decision:
    """A route was found: broadcast and local are delivered here (after the source check);
    anything else must be unicast and the ingress device must forward (a plain unicast
    route goes straight to :func:`_forward`)."""
    hit = res.hit
    assert hit is not None
    rtype = hit.route.type
    if rtype in ("broadcast", "local"):
        # brd_input validates the source against destination 0.0.0.0.
        failure = fib.validate_source(fl, dev, 0, steps, dst=0 if rtype == "broadcast" else None)
        if failure is not None:
            return _failed(packet, steps, failure, res)
        outcome = v.BROADCAST if rtype == "broadcast" else v.LOCAL
        return _decision(packet, steps, outcome, res, dev="lo", gateway=None)
    refused = _forwarding_refused(fib, packet, dev, res, steps)
    if refused is not None:
        return refused
    if rtype != "unicast":
        note(steps, "route", f"type {rtype}", "not unicast: martian destination")
        return _failed(packet, steps, (v.MARTIAN_DESTINATION, "EINVAL"), res)
    return _forward_multipath(fib, packet, dev, fl, res, steps)


def _forwarding_refused(
    fib: Fib, packet: FlowKey, dev: str, res: LookupResult, steps: list[KernelStep] | None
) -> Decision | None:
    """``ip_route_input_slow``: a packet to be forwarded needs forwarding on its ingress
    device (``IN_DEV_FORWARD``); the failure, or None with the gate's step noted."""
    gate = fib.forward_gate(dev)
    if gate is None:
        note(
            steps, "forwarding", f"net.ipv4.conf.{dev}.forwarding=0", "not forwarded: EHOSTUNREACH"
        )
        return _failed(packet, steps, (v.FORWARDING_OFF, "EHOSTUNREACH"), res)
    if steps is not None:
        steps.append(gate)
    return None


def _forward(
    fib: Fib, packet: FlowKey, dev: str, fl: Flow, res: LookupResult, steps: list[KernelStep] | None
) -> Decision:
    """A plain unicast route (one nexthop): the ingress device must forward, then
    ``ip_mkroute_input``: the source is validated against the egress device, the gateway
    checked (:func:`_on_link`, inline: every forwarded query asks)."""
    hit = res.hit
    assert hit is not None
    route = hit.route
    refused = _forwarding_refused(fib, packet, dev, res, steps)
    if refused is not None:
        return refused
    oif = fib.ifindex.get(hit.dev or "", 0)
    failure = fib.validate_source(fl, dev, oif, steps, src=packet.src or "0.0.0.0")
    if failure is not None:
        return _failed(packet, steps, failure, res)
    gateway = hit.gateway
    if gateway and fib.gateway_is_local(hit, gateway):
        note(steps, "nexthop", f"via {gateway}", "gateway resolves to a local route: on-link")
        gateway = None
    return Decision(
        packet=packet, outcome=v.FORWARD, table=hit.table, rule_priority=res.rule, dev=hit.dev,
        gateway=gateway, route=route.dst, route_type=route.type,
        steps=tuple(steps) if steps else (),
    )  # fmt: skip


def _forward_multipath(
    fib: Fib, packet: FlowKey, dev: str, fl: Flow, res: LookupResult, steps: list[KernelStep] | None
) -> Decision:
    """``ip_mkroute_input`` for a multipath route: the leg is taken, then the source is
    validated against it."""
    hit = res.hit
    assert hit is not None
    legs: tuple[Leg, ...] = ()
    leg_by: str | None = None
    if hit.route.nexthops:
        hit, legs, leg_by = pick_leg(fib, hit, packet, fl.saddr, 0, steps)
    dropped: tuple[Leg, ...] = ()
    if leg_by == v.LEG_BY_UNKNOWN:
        legs, dropped = _legs_past_rp_filter(fib, fl, dev, legs)
        if legs:  # check (and show) the source against a leg the flow may take
            hit = hit._replace(dev=legs[0].dev, gateway=legs[0].gateway)
    oif = fib.ifindex.get(hit.dev or "", 0)
    failure = fib.validate_source(fl, dev, oif, steps, src=packet.src or "0.0.0.0")
    if failure is not None:
        return _failed(packet, steps, failure, res._replace(hit=hit))
    if dropped:
        shown = ", ".join(f"dev {leg.dev}" for leg in dropped)
        note(steps, "rp_filter", f"legs {shown}", "a flow hashed onto these is dropped")
    gateway = hit.gateway and _on_link(fib, hit, steps)
    decision = _decision(
        packet, steps, v.FORWARD, res if hit is res.hit else res._replace(hit=hit), dev=hit.dev,
        gateway=gateway, legs=legs, leg_by=leg_by,
    )  # fmt: skip
    return msgspec.structs.replace(decision, legs_dropped=dropped) if dropped else decision


def _legs_past_rp_filter(
    fib: Fib, fl: Flow, dev: str, legs: tuple[Leg, ...]
) -> tuple[tuple[Leg, ...], tuple[Leg, ...]]:
    """With the leg unknown, the reverse-path check (which looks up the source with the
    egress leg as iif) is judged per leg: (legs that pass, legs that drop)."""
    passing: list[Leg] = []
    dropping: list[Leg] = []
    for leg in legs:
        ok = fib.validate_source(fl, dev, fib.ifindex.get(leg.dev or "", 0), None) is None
        (passing if ok else dropping).append(leg)
    return tuple(passing), tuple(dropping)


def check_rp_filter(
    fib: Fib,
    fl: Flow,
    dev: str,
    oif: int,
    steps: list[KernelStep] | None,
    *,
    dst: int | None = None,
) -> Failure | None:
    """``fib_validate_source``: :meth:`Fib.validate_source` (the Fib memoises verdicts)."""
    return fib.validate_source(fl, dev, oif, steps, dst=dst)


def route_output(fib: Fib, packet: FlowKey, *, trace: bool = True) -> Decision:
    """``ip_route_output_key_hash_rcu``: route a locally generated packet."""
    daddr, saddr = ip_to_int(packet.dst), ip_to_int(packet.src or "0.0.0.0")
    oif = ifindex_of(fib.ifindex, packet.oif, "oif") if packet.oif else 0
    steps: list[KernelStep] | None = [] if trace else None
    early = _output_source_checks(fib, packet, saddr, oif, steps)
    if early is not None:
        return _failed(packet, steps, early)
    if daddr == 0:
        # "Apparently, routing tables are wrong... loopback": the source is the given one
        # or 127.0.0.1 (ip_route_output_key_hash_rcu).
        src = None if packet.src else "127.0.0.1"
        note(steps, "route", "destination 0.0.0.0", "local (loopback)")
        return Decision(
            packet=packet, outcome=v.LOCAL, dev="lo", prefsrc=src, steps=tuple(steps or ())
        )
    if saddr and not oif and (is_multicast(daddr) or is_lbcast(daddr)):
        return _output_by_source(fib, packet, saddr, daddr, steps)
    if oif and (daddr >> 8 == 0xE00000 or is_lbcast(daddr)):
        return _output_on_oif(fib, packet, daddr, steps)
    if oif and not saddr and is_multicast(daddr):
        saddr = _multicast_source(fib, packet, steps)
    fl = Flow(
        daddr, saddr, iif=fib.loopback, oif=oif, mark=packet.mark, tos=packet.tos,
        proto=packet.proto, sport=packet.sport, dport=packet.dport,
        uid=0 if packet.uid is None else packet.uid,
    )  # fmt: skip
    res = fib.fib_lookup(fl, steps)
    if res.error is not None or res.hit is None:
        return _output_error(fib, packet, saddr, res, oif, steps)
    return _output_hit(fib, packet, saddr, daddr, res, steps)


def _output_by_source(
    fib: Fib, packet: FlowKey, saddr: int, daddr: int, steps: list[KernelStep] | None
) -> Decision:
    """``ip_route_output_key_hash_rcu``'s "special hack": a multicast or limited broadcast
    sent from a source address leaves by the device that has that address, no lookup."""
    dev = local_dev(fib, saddr)
    if dev is None:
        note(steps, "route", f"from {packet.src}", "no device has this address: ENETUNREACH")
        return _failed(packet, steps, (v.NO_ROUTE, "ENETUNREACH"))
    outcome = v.MULTICAST if is_multicast(daddr) else v.BROADCAST
    note(steps, "route", f"{outcome} from {packet.src}", f"leaves by {dev}, which has it")
    return Decision(packet=packet, outcome=outcome, dev=dev, steps=tuple(steps or ()))


def _multicast_source(fib: Fib, packet: FlowKey, steps: list[KernelStep] | None) -> int:
    """``ip_route_output_key_hash_rcu``: a group sent on a bound device without a source
    gets one *before* the lookup (``inet_select_addr(dev_out, 0, RT_SCOPE_UNIVERSE)``), so
    rules with a ``from`` selector see it: the first global address of the device, else of
    any device in index order (lo first). Secondary addresses are not told apart in a
    snapshot; they are listed after their primary, which is chosen first."""
    dev = packet.oif or ""
    by_dev = [a for a in fib.snapshot.addresses if a.family == 4 and a.scope == SCOPE_UNIVERSE]
    order = [dev, *(link.name for link in sorted(fib.snapshot.links, key=lambda x: x.index))]
    for name in order:
        found = next((a.local for a in by_dev if a.dev == name), None)
        if found is not None:
            note(
                steps,
                "source",
                f"{packet.dst} oif {dev}",
                f"source {found} chosen before the lookup",
            )
            return ip_to_int(found)
    return 0


def _output_on_oif(
    fib: Fib, packet: FlowKey, daddr: int, steps: list[KernelStep] | None
) -> Decision:
    """A link-local group (224.0.0.0/24) or the limited broadcast sent on a bound device
    goes out there with no lookup (``ip_route_output_key_hash_rcu``)."""
    dev = packet.oif or "lo"
    outcome = v.MULTICAST if is_multicast(daddr) else v.BROADCAST
    note(steps, "route", f"{packet.dst} oif {dev}", f"{outcome} on the bound device, no lookup")
    src = packet.src or _first_address(fib, dev)
    return Decision(packet=packet, outcome=outcome, dev=dev, prefsrc=src, steps=tuple(steps or ()))


def _output_source_checks(
    fib: Fib, packet: FlowKey, saddr: int, oif: int, steps: list[KernelStep] | None
) -> Failure | None:
    """A given source must be a host address (``__ip_dev_find``); a given oif must be up."""
    if saddr:
        if is_multicast(saddr) or is_lbcast(saddr):
            note(steps, "martian", f"from {packet.src}", "multicast/broadcast source")
            return v.MARTIAN_SOURCE, "EINVAL"
        if not is_local_address(fib, saddr):
            note(steps, "source", f"from {packet.src}", "not an address of this host")
            return v.SOURCE_NOT_LOCAL, "ENETUNREACH"
    if oif:
        link = fib.snapshot.link_by_index(oif)
        if link is None or not link.admin_up:
            note(steps, "source", f"oif {packet.oif}", "device is down: ENETUNREACH")
            return v.NO_ROUTE, "ENETUNREACH"
    return None


def is_local_address(fib: Fib, addr: int) -> bool:
    """``__ip_dev_find`` finds a device for ``addr``."""
    return local_dev(fib, addr) is not None


def local_dev(fib: Fib, addr: int) -> str | None:
    """``__ip_dev_find``: the device of an interface address, else the device of a
    ``local`` route in table local (which, before any custom rule, is one trie with main:
    main's local routes count), e.g. ``lo`` for any of 127.0.0.0/8."""
    dev = fib.local_addrs.get(addr)
    if dev is not None:
        return dev
    local = fib.tables.get(255) if fib.custom_rules else fib.merged_main()
    if local is None:
        return None
    error, hit = fib.lookup_table(local, Flow(addr, 0, iif=fib.loopback), None)
    if error is None and hit is not None and hit.route.type == "local":
        return hit.dev or "lo"
    return None


def _output_error(
    fib: Fib,
    packet: FlowKey,
    saddr: int,
    res: LookupResult,
    oif: int,
    steps: list[KernelStep] | None,
) -> Decision:
    if oif:
        # "Apparently, routing tables are wrong. Assume, that the destination is on link."
        # That goes on to make_route: __mkroute_output's loopback-source check still applies.
        dev = packet.oif or "lo"
        if is_loopback(saddr) and dev != "lo" and not fib.orconf(dev, "route_localnet"):
            note(steps, "martian", f"from {packet.src} out {dev}", "loopback source: EINVAL")
            return _failed(packet, steps, (v.MARTIAN_SOURCE, "EINVAL"))
        note(steps, "route", f"oif {packet.oif}", "no route: assumed on-link")
        daddr = ip_to_int(packet.dst)
        outcome = (
            v.MULTICAST if is_multicast(daddr) else v.BROADCAST if is_lbcast(daddr) else v.OUTPUT
        )
        return Decision(packet=packet, outcome=outcome, dev=packet.oif, steps=tuple(steps or ()))
    error = res.error or "ENETUNREACH"
    outcome = ERROR_OUTCOMES.get(error, v.UNKNOWN)
    if error == "ENETUNREACH" and res.rule is not None:
        outcome = v.UNREACHABLE
    return Decision(
        packet=packet,
        outcome=outcome,
        error=error,
        rule_priority=res.rule,
        steps=tuple(steps or ()),
    )


def _output_hit(
    fib: Fib,
    packet: FlowKey,
    saddr: int,
    daddr: int,
    res: LookupResult,
    steps: list[KernelStep] | None,
) -> Decision:
    """``RTN_LOCAL`` goes to lo; else ``__mkroute_output``'s checks on the egress device."""
    hit = res.hit
    assert hit is not None
    if hit.route.type == "local":
        if is_zeronet(daddr):
            note(steps, "martian", f"to {packet.dst}", "destination in 0.0.0.0/8: EINVAL")
            return _failed(packet, steps, (v.MARTIAN_DESTINATION, "EINVAL"), res)
        # __mkroute_output names the type by the destination: a group or limited
        # broadcast stays one even when a local route caught it (then by lo).
        outcome = (
            v.MULTICAST if is_multicast(daddr) else v.BROADCAST if is_lbcast(daddr) else v.LOCAL
        )
        local_src = packet.src or hit.route.prefsrc or packet.dst
        return _decision(packet, steps, outcome, res, dev="lo", gateway=None, prefsrc=local_src)
    legs: tuple[Leg, ...] = ()
    leg_by: str | None = None
    if not packet.oif:  # fib_select_path: a packet bound to a device keeps the leg on it
        hit, legs, leg_by = pick_leg(fib, hit, packet, saddr, saddr, steps)
    elif hit.route.nexthops:
        hit, legs, leg_by = hit, _usable_legs(fib, hit)[1], v.LEG_BY_OIF
    res = res._replace(hit=hit)
    dev = hit.dev or "lo"
    if is_loopback(saddr) and dev != "lo" and not fib.orconf(dev, "route_localnet"):
        note(steps, "martian", f"from {packet.src} out {dev}", "loopback source: EINVAL")
        return _failed(packet, steps, (v.MARTIAN_SOURCE, "EINVAL"), res)
    if is_zeronet(daddr) and not is_lbcast(daddr):
        note(steps, "martian", f"to {packet.dst}", "destination in 0.0.0.0/8: EINVAL")
        return _failed(packet, steps, (v.MARTIAN_DESTINATION, "EINVAL"), res)
    outcome = v.OUTPUT
    if is_lbcast(daddr) or hit.route.type == "broadcast":
        outcome = v.BROADCAST
    elif is_multicast(daddr):
        outcome = v.MULTICAST
    # The source the kernel chose before the lookup (a group on a bound device) stays.
    chosen = int_to_ip(saddr) if saddr else None
    src = packet.src or chosen or hit.route.prefsrc or _first_address(fib, dev)
    gateway = _on_link(fib, hit, steps)
    if outcome == v.MULTICAST and hit.plen < 4:
        # __mkroute_output: "If multicast route do not exist use default one, but do not
        # gateway in this case."
        gateway = None
        legs = tuple(Leg(leg.dev, None, leg.weight) for leg in legs)
    return _decision(
        packet, steps, outcome, res, dev=dev, gateway=gateway, prefsrc=src, legs=legs,
        leg_by=leg_by,
    )  # fmt: skip


def _usable_legs(fib: Fib, hit: Hit) -> tuple[list[LegInput], tuple[Leg, ...], bool]:
    """Each leg as ``fib_rebalance`` sees it, the ones that may be taken, and whether the
    weights are settled. ``fib_rebalance`` leaves out a linkdown leg only if
    ``ignore_routes_with_linkdown`` was set when it last ran (a route change or a link
    event), which a snapshot cannot tell: such a leg may still be taken."""
    inputs: list[LegInput] = []
    legs: list[Leg] = []
    settled = True
    for nh in hit.route.nexthops:
        # A dump reports a linkdown leg as dead too where the sysctl is set (fib_dump_info).
        if "linkdown" in nh.flags and fib.orconf(nh.dev or "", "ignore_routes_with_linkdown"):
            settled = False
        elif "dead" in nh.flags:
            inputs.append(LegInput(False, nh.weight, 0))
            continue
        addrs = fib.dev_addrs.get(nh.dev or "") or [0]
        inputs.append(LegInput(True, nh.weight, addrs[0]))
        gateway = _on_link(fib, hit._replace(dev=nh.dev, gateway=nh.gateway), None)
        legs.append(Leg(nh.dev, gateway, nh.weight))
    return inputs, tuple(legs), settled


def pick_leg(
    fib: Fib, hit: Hit, packet: FlowKey, saddr: int, prefer: int, steps: list[KernelStep] | None
) -> Picked:
    """``fib_select_multipath``: the leg of a multipath route a flow takes, when knowable.

    ``saddr`` is the source the hash sees (0 for a locally generated packet without
    one); ``prefer`` the source a locally generated packet prefers a leg for.
    """
    if not hit.route.nexthops:
        return hit, (), None
    inputs, legs, settled = _usable_legs(fib, hit)
    conf = fib.snapshot.sysctls
    flow = (saddr, ip_to_int(packet.dst), packet.proto, packet.sport, packet.dport)
    seed = conf.fib_multipath_hash_seed
    index = None if conf.fib_multipath_use_neigh or not settled else predict(
        inputs, seed, conf.fib_multipath_hash_policy, flow, prefer
    )  # fmt: skip
    shown = ", ".join(f"dev {leg.dev} via {leg.gateway or '-'} weight {leg.weight}" for leg in legs)
    if index is None:
        why = (
            "the kernel hashes each flow over the legs with a random per-boot seed "
            "(net.ipv4.fib_multipath_hash_seed unset): any of them"
            if not seed
            else "a leg is linkdown with ignore_routes_with_linkdown set (the kernel weighs it "
            "by when that was set), or the hash policy or neighbour use is not modelled: any "
            "of them"
        )
        note(steps, "multipath", shown, why)
        return hit, legs, v.LEG_BY_UNKNOWN
    nh = hit.route.nexthops[index]
    policy = conf.fib_multipath_hash_policy
    note(steps, "multipath", shown, f"hash (seed {seed}, policy {policy}) takes dev {nh.dev}")
    return hit._replace(dev=nh.dev, gateway=nh.gateway), legs, v.LEG_BY_HASH


def input_multicast(
    fib: Fib, packet: FlowKey, dev: str, iif: int, steps: list[KernelStep] | None
) -> Decision:
    """``ip_route_input_rcu``'s multicast branch: a group the ingress device has joined is
    delivered locally (``ip_route_input_mc``, dev lo); any other is EINVAL (multicast
    forwarding is not modelled). The kernel joins 224.0.0.1 on every device itself; groups
    sockets join are not in a snapshot, so they count as not joined."""
    daddr, saddr = ip_to_int(packet.dst), ip_to_int(packet.src or "0.0.0.0")
    where = f"group {packet.dst} on {dev}"
    link = fib.snapshot.link_by_index(iif)
    if daddr == ALL_HOSTS and link is not None and not link.admin_up:
        note(steps, "multicast", where, "device down: the group is joined when it comes up: EINVAL")
        return _failed(packet, steps, (v.MULTICAST, "EINVAL"))
    if daddr != ALL_HOSTS:
        note(steps, "multicast", where, "not joined (groups sockets join are not in the "
             "snapshot; multicast forwarding is not modelled): EINVAL")  # fmt: skip
        return _failed(packet, steps, (v.MULTICAST, "EINVAL"))
    dissect = fib.fldissect  # as route_input: rules on ports dissect the packet early
    fl = Flow(
        daddr, saddr, iif=iif, mark=packet.mark, tos=packet.tos,
        proto=packet.proto if dissect else 0, sport=packet.sport if dissect else 0,
        dport=packet.dport if dissect else 0,
    )  # fmt: skip
    failure = _mc_validate_source(fib, fl, dev, packet, steps)
    if failure is not None:
        return _failed(packet, steps, failure)
    note(steps, "multicast", where, "joined by the kernel (all hosts): delivered locally")
    return Decision(
        packet=packet, outcome=v.MULTICAST, dev="lo", route_type="multicast",
        steps=tuple(steps) if steps else (),
    )  # fmt: skip


def _mc_validate_source(
    fib: Fib, fl: Flow, dev: str, packet: FlowKey, steps: list[KernelStep] | None
) -> Failure | None:
    """``ip_mc_validate_source``: the source of a multicast packet that arrived."""
    saddr = fl.saddr
    if is_multicast(saddr) or is_lbcast(saddr):
        note(steps, "martian", f"from {packet.src}", "multicast/broadcast source: EINVAL")
        return v.MARTIAN_SOURCE, "EINVAL"
    if is_loopback(saddr) and not fib.orconf(dev, "route_localnet"):
        note(steps, "martian", f"from {packet.src}", "loopback source: EINVAL")
        return v.MARTIAN_SOURCE, "EINVAL"
    if is_zeronet(saddr):
        local_group = fl.daddr >> 8 == 0xE00000  # 224.0.0.0/24
        if not local_group and packet.proto != IGMP:
            note(steps, "martian", "source in 0.0.0.0/8", "not IGMP to a local group: EINVAL")
            return v.MARTIAN_SOURCE, "EINVAL"
        return None
    return fib.validate_source(fl, dev, 0, steps, dst=0)


def _first_address(fib: Fib, dev: str) -> str | None:
    addrs = fib.dev_addrs.get(dev)
    return int_to_ip(addrs[0]) if addrs else None


def _on_link(fib: Fib, hit: Hit, steps: list[KernelStep] | None) -> str | None:
    """The gateway ``ip route get`` reports: none when it resolved to a local route
    (:meth:`Fib.gateway_is_local`; ``rt_uses_gateway`` stays 0)."""
    gateway = hit.gateway
    if gateway is None or not fib.gateway_is_local(hit, gateway):
        return gateway
    note(steps, "nexthop", f"via {gateway}", "gateway resolves to a local route: on-link")
    return None


def _decision(
    packet: FlowKey,
    steps: list[KernelStep] | None,
    outcome: str,
    res: LookupResult,
    *,
    dev: str | None,
    gateway: str | None,
    prefsrc: str | None = None,
    legs: tuple[Leg, ...] = (),
    leg_by: str | None = None,
) -> Decision:
    hit: Hit | None = res.hit
    return Decision(
        packet=packet,
        outcome=outcome,
        table=hit.table if hit else None,
        rule_priority=res.rule,
        dev=dev,
        gateway=gateway,
        prefsrc=prefsrc,
        route=hit.route.dst if hit else None,
        route_type=hit.route.type if hit else None,
        multipath=bool(hit and hit.route.nexthops),
        steps=tuple(steps) if steps else (),
        legs=legs,
        leg_by=leg_by,
    )


def _failed(
    packet: FlowKey,
    steps: list[KernelStep] | None,
    failure: Failure,
    res: LookupResult | None = None,
) -> Decision:
    hit = res.hit if res else None
    return Decision(
        packet=packet,
        outcome=failure[0],
        error=failure[1],
        table=hit.table if hit else None,
        rule_priority=res.rule if res else None,
        dev=hit.dev if hit else None,
        route=hit.route.dst if hit else None,
        route_type=hit.route.type if hit else None,
        steps=tuple(steps) if steps else (),
    )
