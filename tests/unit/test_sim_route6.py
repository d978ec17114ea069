"""The IPv6 kernel model: what tests/differential cannot ask `ip -6 route get` (the packet
path's gates) and the places IPv6 routing differs from IPv4's, on hand-built snapshots."""

from __future__ import annotations

import msgspec
import pytest

from meshpath.errors import BadInputError
from meshpath.sim import FlowKey, route_get
from meshpath.sim import values as v
from meshpath.sim.addr6 import ip6_to_int
from meshpath.sim.multipath import LegInput, multipath_hash6, select_leg
from meshpath.state import TABLE_MAIN, TABLE_WARP, Route, Rule
from tests.builders import (
    CONN6,
    SVC6,
    WORKER6,
    dual_stack_connector,
    with_routes,
    with_rules,
    with_v6conf,
)

TUNNEL = "CloudflareWARP"


def test_request_is_forwarded_to_the_lan() -> None:
    d = route_get(dual_stack_connector(), FlowKey(dst=SVC6, src=WORKER6, iif=TUNNEL, proto=6))
    assert (d.outcome, d.dev, d.table, d.error) == (v.FORWARD, "eth0", TABLE_MAIN, None)


def test_reply_takes_the_default_route_without_a_v6_source_route() -> None:
    """The field report over IPv6: WARP's table 65743 throws fd00::/8 and the source range
    (excluded), so the reply to the Worker leaves by the default route out eth0."""
    d = route_get(dual_stack_connector(), FlowKey(dst=WORKER6, src=SVC6, iif="eth0", proto=6))
    assert (d.outcome, d.dev, d.gateway, d.route) == (v.FORWARD, "eth0", "fd00:1::1", "::/0")


def test_v6_source_route_brings_the_reply_back_into_the_tunnel() -> None:
    fixed = with_routes(
        dual_stack_connector(),
        Route(table=TABLE_MAIN, family=6, dst="2606:4700:cf1:5000::/64", dev=TUNNEL, metric=1024),
    )
    d = route_get(fixed, FlowKey(dst=WORKER6, src=SVC6, iif="eth0", proto=6))
    assert (d.outcome, d.dev) == (v.FORWARD, TUNNEL)


def test_all_forwarding_gates_forwarding_and_the_lookup_stays_reported() -> None:
    """ip6_forward reads all.forwarding only; `ip -6 route get` still prints the route."""
    snap = with_v6conf(dual_stack_connector(), "all", forwarding=0)
    d = route_get(snap, FlowKey(dst=SVC6, src=WORKER6, iif=TUNNEL))
    assert (d.outcome, d.error, d.dev) == (v.FORWARDING_OFF, None, "eth0")
    assert not d.ok
    # a device's own forwarding=0 does not stop it
    snap = with_v6conf(dual_stack_connector(), TUNNEL, forwarding=0)
    assert route_get(snap, FlowKey(dst=SVC6, src=WORKER6, iif=TUNNEL)).outcome == v.FORWARD


@pytest.mark.parametrize(
    ("src", "dst", "outcome"),
    [
        ("::1", SVC6, v.MARTIAN_SOURCE),  # ip6_rcv_core: loopback from outside
        ("ff02::1", SVC6, v.MARTIAN_SOURCE),  # multicast source
        (WORKER6, "ff01::1", v.MARTIAN_DESTINATION),  # interface-local multicast from outside
        ("fe80::1", SVC6, v.MARTIAN_SOURCE),  # ip6_forward: link-local source not forwarded
    ],
)
def test_martians(src: str, dst: str, outcome: str) -> None:
    d = route_get(dual_stack_connector(), FlowKey(dst=dst, src=src, iif=TUNNEL))
    assert d.outcome == outcome and not d.ok


def test_local_delivery_and_loopback_strictness() -> None:
    snap = dual_stack_connector()
    d = route_get(snap, FlowKey(dst=CONN6, src=WORKER6, iif=TUNNEL))
    assert (d.outcome, d.dev, d.route_type) == (v.LOCAL, "lo", "local")
    # ::1 is looked up through the ingress device only (rt6_need_strict): not the local
    # route on lo but eth0's default; the packet itself is a martian (ip6_rcv_core)
    d = route_get(snap, FlowKey(dst="::1", src=WORKER6, iif="eth0"))
    assert (d.route, d.outcome) == ("::/0", v.MARTIAN_DESTINATION)


def test_from_rule_never_matches_a_flow_without_source() -> None:
    """fib6_rule_match: no source address, no `from` match; `not from` then matches."""
    snap = with_rules(
        dual_stack_connector(),
        Rule(family=6, priority=100, src="fc00::/7", action="prohibit"),
        Rule(family=6, priority=101, src="fc00::/7", invert=True, action="blackhole"),
    )
    assert route_get(snap, FlowKey(dst=SVC6)).error == "EINVAL"
    assert route_get(snap, FlowKey(dst=SVC6, src=CONN6)).error == "EACCES"


def test_table_default_is_not_consulted_by_the_default_rules() -> None:
    """IPv6's default rules are `0 lookup local` and `32766 lookup main`: no 32767."""
    base = dual_stack_connector(rules=())
    snap = msgspec.structs.replace(
        base,
        routes=(
            *(r for r in base.routes if not (r.family == 6 and r.dst == "::/0")),
            Route(table=253, family=6, dst="2001:db8::/32", dev="eth0", metric=1024),
        ),
    )
    assert route_get(snap, FlowKey(dst="2001:db8::1")).error == "ENETUNREACH"
    with_rule = with_rules(snap, Rule(family=6, priority=32767, table=253))
    assert route_get(with_rule, FlowKey(dst="2001:db8::1")).dev == "eth0"


def test_oif_without_source_skips_routes_via_other_devices() -> None:
    """RT6_LOOKUP_F_IFACE: an oif and no source: the reject route (dev lo) is passed by and
    the lookup backtracks; with a source the oif only prefers."""
    snap = with_routes(
        dual_stack_connector(),
        Route(table=TABLE_MAIN, family=6, dst="2001:db8::/32", type="unreachable", dev="lo"),
    )
    assert route_get(snap, FlowKey(dst="2001:db8::1", oif="eth0")).dev == "eth0"
    assert route_get(snap, FlowKey(dst="2001:db8::1", oif="eth0", src=CONN6)).error == (
        "EHOSTUNREACH"
    )


def test_linkdown_is_ignored_per_device_only() -> None:
    snap = with_routes(
        dual_stack_connector(),
        Route(table=TABLE_WARP, family=6, dst="2606:4700:cf1:5000::/64", dev=TUNNEL,
              flags=("linkdown",)),
    )  # fmt: skip
    pkt = FlowKey(dst=WORKER6, src=SVC6, iif="eth0")
    assert route_get(with_v6conf(snap, "all", ignore_routes_with_linkdown=1), pkt).dev == TUNNEL
    assert route_get(with_v6conf(snap, TUNNEL, ignore_routes_with_linkdown=1), pkt).dev == "eth0"


def test_mixed_families_are_bad_input() -> None:
    with pytest.raises(BadInputError, match="IPv6 source"):
        route_get(dual_stack_connector(), FlowKey(dst=SVC6, src="10.0.1.50", iif="eth0"))
    with pytest.raises(BadInputError, match="not an IPv6 address"):
        route_get(dual_stack_connector(), FlowKey(dst="fd00::zz"))


# Measured on kernel 6.18 (`ip -6 route get DST from SRC iif in0 ipproto P sport S dport D`,
# seed 0x1234567, legs a0/a1/a2 with weights 1/3/2): the leg each flow took, per policy.
HASH6_VECTORS = [
    ("2a00:1450::82c9:b791", "2001:db8::ed9", 17, 50854, 61824, ("a1", "a0")),
    ("2a00:1450::7f83:1a8c", "2001:db8::504e", 6, 24366, 30741, ("a2", "a1")),
    ("2a00:1450::7e3e:c2f2", "2001:db8::3435", 6, 860, 47919, ("a1", "a1")),
    ("2a00:1450::6ef7:d0f9", "2001:db8::8f18", 6, 60054, 56850, ("a2", "a0")),
]


@pytest.mark.parametrize("policy", [0, 1])
@pytest.mark.parametrize(("src", "dst", "proto", "sport", "dport", "legs"), HASH6_VECTORS)
def test_multipath_hash6_takes_the_kernels_leg(
    src: str, dst: str, proto: int, sport: int, dport: int, legs: tuple[str, str], policy: int
) -> None:
    # The IPv6 flow keys hash 72 bytes (the addresses, then the struct's padding) and
    # policy 0 includes the protocol: the leg differs from the kernel's otherwise.
    inputs = [LegInput(True, w, 0) for w in (1, 3, 2)]
    value = multipath_hash6(
        0x1234567, policy, ip6_to_int(src), ip6_to_int(dst), proto, sport, dport
    )
    assert ("a0", "a1", "a2")[select_leg(inputs, value) or 0] == legs[policy]
