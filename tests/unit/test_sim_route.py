"""The kernel model's routing: rules, tables, the input/output paths, rp_filter."""

from __future__ import annotations

import msgspec
import pytest

from meshpath.errors import BadInputError
from meshpath.sim import Fib, FlowKey, route_get
from meshpath.sim import values as v
from meshpath.state import TABLE_MAIN, TABLE_WARP, Link, PortRange, Route, Rule
from tests.builders import broken_connector, conf, with_conf, with_routes, with_rules

SYN = FlowKey(dst="10.0.1.50", src="100.64.12.189", iif="CloudflareWARP", proto=6, dport=3000)
REPLY = FlowKey(dst="100.64.12.189", src="10.0.1.50", iif="eth0", proto=6, sport=3000)
TUNNEL_ROUTE = Route(table=TABLE_MAIN, family=4, dst="100.64.0.0/12", dev="CloudflareWARP")


def test_field_report_syn_is_forwarded_out_eth0() -> None:
    d = route_get(broken_connector(), SYN)
    assert (d.outcome, d.dev, d.table, d.rule_priority) == (v.FORWARD, "eth0", TABLE_MAIN, 32764)


def test_field_report_reply_leaves_by_the_default_route() -> None:
    d = route_get(broken_connector(), REPLY)
    assert (d.outcome, d.dev, d.gateway, d.route) == (v.FORWARD, "eth0", "10.0.1.1", "0.0.0.0/0")
    assert d.rule_priority == 32766
    reasons = [s.reason for s in d.steps]
    assert any("suppressed" in r for r in reasons)  # rule 32764 drops the /0 result
    assert any("throw" in r for r in reasons)  # WARP's table excludes 100.64.0.0/10


def test_route_via_tunnel_fixes_the_reply() -> None:
    d = route_get(with_routes(broken_connector(), TUNNEL_ROUTE), REPLY)
    assert (d.dev, d.route, d.rule_priority) == ("CloudflareWARP", "100.64.0.0/12", 32764)


def test_warp_rule_not_fwmark_sends_unmarked_traffic_into_the_tunnel() -> None:
    snap = broken_connector()
    assert route_get(snap, FlowKey(dst="8.8.8.8")).dev == "CloudflareWARP"
    marked = route_get(snap, FlowKey(dst="8.8.8.8", mark=0x100CF))
    assert (marked.dev, marked.table, marked.rule_priority) == ("eth0", TABLE_MAIN, 32766)


def test_suppress_prefixlength_keeps_more_specific_routes() -> None:
    snap = broken_connector()
    d = route_get(snap, FlowKey(dst="10.0.1.9"))
    assert (d.rule_priority, d.dev) == (32764, "eth0")
    rule = Rule(family=4, priority=100, table=TABLE_MAIN, suppress_prefixlength=24)
    d = route_get(with_rules(snap, rule), FlowKey(dst="10.0.1.9"))
    assert d.rule_priority == 32764  # /24 <= 24: suppressed by rule 100


def test_throw_continues_with_next_rule() -> None:
    snap = with_routes(
        broken_connector(),
        Route(table=100, family=4, dst="20.0.0.0/8", type="throw"),
        Route(table=100, family=4, dst="0.0.0.0/0", dev="CloudflareWARP"),
    )
    snap = with_rules(snap, Rule(family=4, priority=10, table=100))
    assert route_get(snap, FlowKey(dst="20.1.1.1")).rule_priority == 32765
    assert route_get(snap, FlowKey(dst="21.1.1.1")).rule_priority == 10


@pytest.mark.parametrize(
    ("route_type", "outcome", "error"),
    [("blackhole", v.BLACKHOLE, "EINVAL"), ("unreachable", v.UNREACHABLE, "EHOSTUNREACH"),
     ("prohibit", v.PROHIBIT, "EACCES")],
)  # fmt: skip
def test_route_types_end_the_lookup(route_type: str, outcome: str, error: str) -> None:
    snap = with_routes(
        broken_connector(), Route(table=TABLE_MAIN, family=4, dst="10.9.0.0/16", type=route_type)
    )
    d = route_get(snap, FlowKey(dst="10.9.1.1"))
    assert (d.outcome, d.error) == (outcome, error)


@pytest.mark.parametrize(
    ("action", "error"), [("unreachable", "ENETUNREACH"), ("prohibit", "EACCES"),
                          ("blackhole", "EINVAL")]
)  # fmt: skip
def test_rule_actions(action: str, error: str) -> None:
    snap = with_rules(
        broken_connector(), Rule(family=4, priority=5, action=action, dst="1.0.0.0/8")
    )
    assert route_get(snap, FlowKey(dst="1.2.3.4")).error == error
    assert route_get(snap, FlowKey(dst="2.2.3.4")).error is None


def test_goto_skips_rules_and_missing_target_is_ignored() -> None:
    snap = with_rules(
        broken_connector(),
        Rule(family=4, priority=5, action="goto", goto=32766),
        Rule(family=4, priority=6, action="goto", goto=31000),  # no such rule
    )
    d = route_get(snap, FlowKey(dst="8.8.8.8"))
    assert (d.rule_priority, d.dev) == (32766, "eth0")


def test_selectors_iif_lo_fwmark_mask_ports_invert() -> None:
    snap = with_rules(
        broken_connector(),
        Rule(family=4, priority=5, iif="lo", action="prohibit", dst="9.0.0.0/8"),
        Rule(family=4, priority=6, fwmark=0x10, fwmask=0xF0, action="blackhole"),
        Rule(family=4, priority=7, ipproto=6, dport=PortRange(start=22, end=23),
             action="unreachable"),
    )  # fmt: skip
    assert route_get(snap, FlowKey(dst="9.1.1.1")).error == "EACCES"  # local origin
    assert route_get(snap, FlowKey(dst="9.1.1.1", src="10.0.1.9", iif="eth0")).error is None
    assert route_get(snap, FlowKey(dst="8.8.8.8", mark=0x1F)).error == "EINVAL"
    assert route_get(snap, FlowKey(dst="8.8.8.8", mark=0x20)).error is None
    assert route_get(snap, FlowKey(dst="8.8.8.8", proto=6, dport=22)).error == "ENETUNREACH"
    assert route_get(snap, FlowKey(dst="8.8.8.8", proto=17, dport=22)).error is None


def test_not_inverts_the_whole_selector() -> None:
    rule = Rule(family=4, priority=8, invert=True, src="10.0.0.0/8", iif="eth0", action="prohibit")
    snap = with_rules(broken_connector(), rule)
    assert route_get(snap, FlowKey(dst="8.8.8.8", src="10.0.1.9", iif="eth0")).error is None
    assert route_get(snap, FlowKey(dst="8.8.8.8", src="100.64.1.1", iif="eth0")).error == "EACCES"
    assert route_get(snap, FlowKey(dst="8.8.8.8")).error == "EACCES"  # iif lo: not eth0


def test_longest_prefix_then_metric() -> None:
    snap = with_routes(
        broken_connector(),
        Route(table=TABLE_MAIN, family=4, dst="30.0.0.0/8", dev="CloudflareWARP", metric=5),
        Route(table=TABLE_MAIN, family=4, dst="30.0.0.0/8", dev="eth0", gateway="10.0.1.7",
              metric=1),
        Route(table=TABLE_MAIN, family=4, dst="30.1.0.0/16", dev="CloudflareWARP"),
    )  # fmt: skip
    assert route_get(snap, FlowKey(dst="30.2.0.1")).gateway == "10.0.1.7"
    assert route_get(snap, FlowKey(dst="30.1.0.1")).dev == "CloudflareWARP"


def test_linkdown_nexthop_skipped_only_with_ignore_routes_with_linkdown() -> None:
    snap = with_routes(
        broken_connector(),
        Route(table=TABLE_MAIN, family=4, dst="40.0.0.0/16", dev="CloudflareWARP",
              flags=("linkdown",)),
        Route(table=TABLE_MAIN, family=4, dst="40.0.0.0/8", dev="eth0", gateway="10.0.1.1"),
    )  # fmt: skip
    assert route_get(snap, FlowKey(dst="40.0.0.1")).dev == "CloudflareWARP"
    snap = with_conf(snap, "CloudflareWARP", ignore_routes_with_linkdown=1)
    assert route_get(snap, FlowKey(dst="40.0.0.1")).dev == "eth0"


def test_forwarding_off_on_ingress_device() -> None:
    snap = with_conf(broken_connector(), "CloudflareWARP", forwarding=0)
    d = route_get(snap, SYN)
    assert (d.outcome, d.error) == (v.FORWARDING_OFF, "EHOSTUNREACH")
    assert route_get(snap, FlowKey(dst="10.0.1.2", src="100.64.1.1", iif="CloudflareWARP")).ok


@pytest.mark.parametrize(
    ("src", "dst", "outcome"),
    [("0.1.2.3", "10.0.1.50", v.MARTIAN_SOURCE), ("224.0.0.9", "10.0.1.50", v.MARTIAN_SOURCE),
     ("100.64.1.1", "127.0.0.1", v.MARTIAN_DESTINATION),
     ("127.0.0.1", "10.0.1.50", v.MARTIAN_SOURCE), ("100.64.1.1", "0.0.0.9",
                                                    v.MARTIAN_DESTINATION)],
)  # fmt: skip
def test_martians(src: str, dst: str, outcome: str) -> None:
    d = route_get(broken_connector(), FlowKey(dst=dst, src=src, iif="CloudflareWARP"))
    assert (d.outcome, d.error) == (outcome, "EINVAL")


def test_rp_filter_strict_drops_the_request_loose_accepts() -> None:
    strict = with_conf(broken_connector(), "CloudflareWARP", rp_filter=1)
    d = route_get(strict, SYN)
    assert (d.outcome, d.error) == (v.RP_FILTER, "EINVAL")
    assert any("strict" in s.reason for s in d.steps)
    loose = with_conf(broken_connector(), "CloudflareWARP", rp_filter=2)
    assert route_get(loose, SYN).outcome == v.FORWARD
    fixed = with_routes(strict, TUNNEL_ROUTE)
    assert route_get(fixed, SYN).outcome == v.FORWARD


def test_rp_filter_uses_max_of_all_and_device() -> None:
    snap = with_conf(broken_connector(), "all", rp_filter=1)
    assert route_get(snap, SYN).outcome == v.RP_FILTER


def test_local_delivery_and_local_source() -> None:
    snap = broken_connector()
    d = route_get(snap, FlowKey(dst="10.0.1.2", src="10.0.1.50", iif="eth0"))
    assert (d.outcome, d.dev, d.table) == (v.LOCAL, "lo", 255)
    d = route_get(snap, FlowKey(dst="10.0.1.50", src="10.0.1.2", iif="CloudflareWARP"))
    assert (d.outcome, d.error) == (v.LOCAL_SOURCE, "EINVAL")


def test_output_from_a_foreign_source_is_refused() -> None:
    d = route_get(broken_connector(), FlowKey(dst="10.0.1.50", src="100.64.1.1"))
    assert (d.outcome, d.error) == (v.SOURCE_NOT_LOCAL, "ENETUNREACH")


def test_no_custom_rules_merges_local_and_main() -> None:
    snap = broken_connector()
    plain = msgspec.structs.replace(
        snap, rules=tuple(r for r in snap.rules if r.priority in (0, 32766, 32767))
    )
    fib = Fib(plain)
    assert not fib.custom_rules
    d = route_get(plain, FlowKey(dst="10.0.1.2"))
    assert (d.outcome, d.table) == (v.LOCAL, TABLE_MAIN)  # the kernel reports table main
    assert route_get(plain, FlowKey(dst="8.8.8.8")).dev == "eth0"


def test_multipath_first_usable_leg_is_noted() -> None:
    from meshpath.state import Nexthop

    snap = with_routes(
        broken_connector(),
        Route(table=TABLE_MAIN, family=4, dst="50.0.0.0/8",
              nexthops=(Nexthop(gateway="10.0.1.8", dev="eth0", flags=("dead",)),
                        Nexthop(dev="CloudflareWARP"))),
    )  # fmt: skip
    d = route_get(snap, FlowKey(dst="50.1.1.1"))
    assert d.multipath and d.dev == "CloudflareWARP"


def test_unknown_interface_is_bad_input() -> None:
    with pytest.raises(BadInputError, match="nope"):
        route_get(broken_connector(), FlowKey(dst="1.1.1.1", src="2.2.2.2", iif="nope"))


def test_fib_belongs_to_its_caller_and_tables_sized() -> None:
    # No module-level cache: each Fib is its caller's, with its own memos (issue 17 item 4).
    snap = broken_connector()
    assert Fib.from_snapshot(snap) is not Fib.from_snapshot(snap)
    assert len(Fib.from_snapshot(snap).tables[TABLE_WARP]) == 4
    assert isinstance(snap.links[0], Link) and conf().forwarding == 1


def test_suppress_ifgroup() -> None:
    snap = broken_connector()
    links = tuple(
        msgspec.structs.replace(link, group=7) if link.name == "eth0" else link
        for link in snap.links
    )
    snap = with_rules(
        msgspec.structs.replace(snap, links=links),
        Rule(family=4, priority=5, table=TABLE_MAIN, suppress_ifgroup=7),
        Rule(family=4, priority=6, action="prohibit"),
    )
    assert route_get(snap, FlowKey(dst="10.0.1.9")).error == "EACCES"  # eth0 result suppressed
    assert route_get(snap, FlowKey(dst="100.96.1.1")).dev == "CloudflareWARP"


def test_src_valid_mark_carries_the_mark_into_the_reverse_lookup() -> None:
    # The reverse route for the Worker exists only for marked packets (via the tunnel).
    snap = with_rules(
        with_routes(
            with_conf(broken_connector(), "CloudflareWARP", rp_filter=1),
            Route(table=100, family=4, dst="100.64.0.0/10", dev="CloudflareWARP"),
        ),
        Rule(family=4, priority=5, fwmark=0x5, table=100),
    )
    syn = msgspec.structs.replace(SYN, mark=0x5)
    assert route_get(snap, syn).outcome == v.RP_FILTER  # mark not used: reverse via eth0
    marked = with_conf(snap, "CloudflareWARP", src_valid_mark=1)
    assert route_get(marked, syn).outcome == v.FORWARD


def test_accept_local_allows_a_local_source() -> None:
    packet = FlowKey(dst="10.0.1.50", src="10.0.1.2", iif="CloudflareWARP")
    snap = with_conf(broken_connector(), "CloudflareWARP", accept_local=1)
    assert route_get(snap, packet).outcome == v.FORWARD


def test_tos_specific_route_wins_only_for_its_tos() -> None:
    snap = with_routes(
        broken_connector(),
        Route(table=TABLE_MAIN, family=4, dst="60.0.0.0/8", dev="CloudflareWARP", tos=0x10),
        Route(table=TABLE_MAIN, family=4, dst="60.0.0.0/8", dev="eth0", gateway="10.0.1.1"),
    )
    assert route_get(snap, FlowKey(dst="60.1.1.1", tos=0x10)).dev == "CloudflareWARP"
    assert route_get(snap, FlowKey(dst="60.1.1.1")).dev == "eth0"


def test_output_bound_to_a_device() -> None:
    d = route_get(broken_connector(), FlowKey(dst="10.0.1.9", oif="CloudflareWARP"))
    assert (d.outcome, d.dev) == (v.OUTPUT, "CloudflareWARP")  # no route there: on-link


def test_oif_without_route_still_refuses_a_loopback_source() -> None:
    # The differential found it: with oif, a failed lookup is "assumed on-link", but the
    # route is then made by __mkroute_output, whose loopback-source check answers EINVAL.
    snap = with_routes(
        broken_connector(), Route(table=TABLE_MAIN, family=4, dst="20.0.0.0/8", type="blackhole")
    )
    looped = route_get(snap, FlowKey(dst="20.3.2.6", src="127.0.0.1", oif="eth0"))
    assert (looped.outcome, looped.error) == (v.MARTIAN_SOURCE, "EINVAL")
    plain = route_get(snap, FlowKey(dst="20.3.2.6", src="10.0.1.2", oif="eth0"))
    assert (plain.outcome, plain.dev, plain.error) == (v.OUTPUT, "eth0", None)


def test_ipv4_route_via_an_ipv6_gateway_is_followed() -> None:
    # `ip route add 10.9.0.0/16 via inet6 fe80::1 dev eth0` (RFC 5549, BGP unnumbered): the
    # snapshot holds it as it is; the nexthop check asked for an IPv4 address and failed.
    route = Route(table=TABLE_MAIN, family=4, dst="10.9.0.0/16", gateway="fe80::1", dev="eth0")
    decision = route_get(with_routes(broken_connector(), route), FlowKey(dst="10.9.1.1"))
    assert decision.ok and (decision.dev, decision.gateway) == ("eth0", "fe80::1")


def test_a_dumped_dead_linkdown_nexthop_still_resolves_a_gateway() -> None:
    # The dump adds "dead" to a linkdown nexthop where ignore_routes_with_linkdown is set
    # (fib_nexthop_info); the gateway check ignores the link state, so eth0's connected
    # route still resolves 10.0.1.8 (not table 102's local route behind it): the kernel
    # keeps the gateway. Found by the differential suite (seed 1741059381).
    from meshpath.state import Nexthop

    base = broken_connector()
    routes = tuple(
        msgspec.structs.replace(r, flags=("dead", "linkdown")) if r.dst == "10.0.1.0/24" else r
        for r in base.routes
    )
    snap = with_rules(
        with_routes(
            msgspec.structs.replace(base, routes=routes),
            Route(table=102, family=4, dst="10.0.0.0/8", type="local", dev="eth0", scope=254),
            Route(table=TABLE_MAIN, family=4, dst="60.0.0.0/8",
                  nexthops=(Nexthop(gateway="10.0.1.8", dev="eth0", flags=("dead", "linkdown")),
                            Nexthop(dev="CloudflareWARP"))),
        ),
        Rule(family=4, priority=40000, table=102),
    )  # fmt: skip
    snap = with_conf(snap, "eth0", ignore_routes_with_linkdown=1)
    legs = route_get(snap, FlowKey(dst="60.1.1.1")).legs
    assert {leg.dev: leg.gateway for leg in legs}["eth0"] == "10.0.1.8", legs


def test_multicast_from_a_local_route_source_leaves_by_that_routes_device() -> None:
    # __ip_dev_find falls back to table local: 127.0.0.0/8 is local on lo, so a multicast
    # sent from 127.253.203.124 leaves by lo (the kernel; differential seed 520082471).
    from meshpath.state import TABLE_LOCAL

    snap = with_routes(
        broken_connector(),
        Route(table=TABLE_LOCAL, family=4, dst="127.0.0.0/8", type="local", dev="lo", scope=254),
    )
    d = route_get(snap, FlowKey(dst="239.232.179.1", src="127.253.203.124"))
    assert (d.outcome, d.dev, d.error) == (v.MULTICAST, "lo", None), d
    assert route_get(snap, FlowKey(dst="239.1.1.1", src="10.9.9.9")).error == "ENETUNREACH"
