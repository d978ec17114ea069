"""IPv6 fixes (#16 item 4), the pure parts: route (v6 statics), nat (NAT66 only with
--nat6), bgp (an ipv6 unicast family with its own prefix-list on the same session, or a
v6 session), their inverses and what verify expects. Real FRR takes the same texts in
tests/lab/test_frr_merge_real.py."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from meshpath.config import Settings
from meshpath.errors import BadInputError
from meshpath.fix import FixOptions, FrrReload, NftFile, Run, WaitBgp, frrfit, plan_fix
from meshpath.fix.model import Plan
from meshpath.fix.verify import frr_static_checks
from meshpath.render import frr
from meshpath.state import Address, FrrState, Snapshot
from meshpath.state.frr import frr_view
from meshpath.values import parse_peer
from tests.builders import broken_connector
from tests.fix_builders import with_frr

S = Settings()
V6 = "2606:4700:cf1:5000::/64"
DEV6 = "2606:4700:cf1:1000::/64"
BGP = FixOptions(peer="10.0.1.1", asn=65001, peer_asn="65000")
EMPTY_FRR = "frr version 8.4.4\nhostname conn\n!\nend\n"


def dual_stack(**changes: Any) -> Snapshot:
    """The broken connector whose tunnel also carries IPv6 (a device address)."""
    snap = broken_connector(**changes)
    v6 = Address(dev="CloudflareWARP", family=6, local="2606:4700:cf1:1000::5", prefixlen=128)
    return msgspec.structs.replace(snap, addresses=(*snap.addresses, v6))


def frr_plan(mode: str, options: FixOptions, running: str = EMPTY_FRR) -> Plan:
    return plan_fix(with_frr(dual_stack(), running), S, mode, options)  # type: ignore[arg-type]


def frr_action(plan: Plan) -> FrrReload:
    action = next(s.action for s in plan.steps if isinstance(s.action, FrrReload))
    assert isinstance(action, FrrReload)
    return action


# -- route ------------------------------------------------------------------------------------
def test_route_without_frr_adds_a_v6_kernel_route_for_the_v6_source_range() -> None:
    plan = plan_fix(dual_stack(), S, "route", FixOptions())
    argvs = [s.action.argv for s in plan.steps if isinstance(s.action, Run)]
    assert argvs[1][:5] == ("ip", "-6", "route", "replace", V6)
    assert plan.expect.ranges == ("100.64.0.0/12", V6)


def test_route_also_device_range_adds_the_v6_device_range() -> None:
    plan = plan_fix(dual_stack(), S, "route", FixOptions(also_device_range=True))
    assert plan.expect.ranges == ("100.64.0.0/12", "100.96.0.0/12", V6, DEV6)


def test_route_with_frr_writes_ipv6_route_for_v6_ranges_and_strips_only_them() -> None:
    plan = frr_plan("route", FixOptions())
    intent = frr_action(plan).intent
    desired = frr.merge_text(EMPTY_FRR, intent)
    assert f"ipv6 route {V6} CloudflareWARP" in desired.splitlines()
    assert "ip route 100.64.0.0/12 CloudflareWARP" in desired.splitlines()
    assert f"ip route {V6} CloudflareWARP" not in desired  # what FRR would refuse
    assert frr.strip_text(desired, intent) == EMPTY_FRR
    # applied: the next plan finds the v6 static in place
    assert frrfit.is_applied(desired, intent)


def test_a_users_own_ipv6_static_is_not_meshpaths_to_remove() -> None:
    running = f"frr version 8.4.4\n!\nipv6 route {V6} CloudflareWARP\n!\nend\n"
    intent = frr_action(frr_plan("route", FixOptions(), running)).intent
    assert intent.owned_statics == ("100.64.0.0/12",)
    desired = frr.merge_text(running, intent)
    assert f"ipv6 route {V6} CloudflareWARP" in frr.strip_text(desired, intent)


def test_verify_reads_staticd_v6_routes_from_show_ipv6_route_json() -> None:
    v6_doc = {V6: [{"protocol": "static", "selected": True, "installed": True}]}
    view = frr_view(None, None, None, v6_doc)
    assert [r.prefix for r in view.statics] == [V6]
    snap = msgspec.structs.replace(
        dual_stack(), frr=FrrState(available=True, running=True, ipv6_route=v6_doc)
    )
    plan = frr_plan("route", FixOptions())
    checks = {c.name: c.ok for c in frr_static_checks(snap, plan.expect)}
    assert checks == {"static 100.64.0.0/12": False, f"static {V6}": True}


# -- nat --------------------------------------------------------------------------------------
def nat_text(plan: Plan) -> str:
    action = plan.steps[0].action
    assert isinstance(action, NftFile)
    return action.text


def test_nat_masquerades_ipv6_only_when_asked() -> None:
    plain = plan_fix(dual_stack(), S, "nat", FixOptions())
    assert "ip6 saddr" not in nat_text(plain)
    assert plain.expect.nat_sources == ("100.64.0.0/12",)
    assert V6 in plain.expect.ranges  # the v6 route back into the tunnel is still planned
    asked = plan_fix(dual_stack(), S, "nat", FixOptions(nat6=True))
    assert f'oifname "eth0" ip6 saddr {V6} masquerade' in nat_text(asked)
    assert asked.expect.nat_sources == ("100.64.0.0/12", V6)


def test_nat6_without_ipv6_on_the_tunnel_or_outside_nat_mode_is_bad_input() -> None:
    with pytest.raises(BadInputError, match="--nat6: CloudflareWARP has no IPv6 address"):
        plan_fix(broken_connector(), S, "nat", FixOptions(nat6=True))
    with pytest.raises(BadInputError, match="--nat6 only applies to --mode nat"):
        plan_fix(dual_stack(), S, "route", FixOptions(nat6=True))


# -- bgp --------------------------------------------------------------------------------------
def test_bgp_advertises_the_v6_range_in_its_own_family_on_the_same_session() -> None:
    plan = frr_plan("bgp", BGP)
    intent = frr_action(plan).intent
    desired = frr.merge_text(EMPTY_FRR, intent)
    lines = desired.splitlines()
    assert f"ipv6 prefix-list MESHPATH-CF6 seq 10 permit {V6}" in lines
    assert "ip prefix-list MESHPATH-CF seq 10 permit 100.64.0.0/12" in lines
    assert not any(line.startswith("ip prefix-list") and ":" in line for line in lines)
    assert "route-map MESHPATH-OUT permit 20" in lines
    assert " match ipv6 address prefix-list MESHPATH-CF6" in lines
    v6 = lines[lines.index(" address-family ipv6 unicast") :]
    assert v6[: v6.index(" exit-address-family")] == [
        " address-family ipv6 unicast",
        "  redistribute static route-map MESHPATH-OUT",
        "  neighbor 10.0.1.1 activate",
        "  neighbor 10.0.1.1 route-map MESHPATH-IN in",
        "  neighbor 10.0.1.1 route-map MESHPATH-OUT out",
    ]
    assert plan.expect.advertised == ("100.64.0.0/12", V6)
    wait = plan.steps[-1].action
    assert isinstance(wait, WaitBgp) and wait.prefixes == ("100.64.0.0/12", V6)
    assert frr.strip_text(desired, intent) == EMPTY_FRR


def test_bgp_without_ipv6_on_the_tunnel_renders_what_it_did_before() -> None:
    plan = plan_fix(with_frr(broken_connector(), EMPTY_FRR), S, "bgp", BGP)
    desired = frr.merge_text(EMPTY_FRR, frr_action(plan).intent)
    assert "ipv6" not in desired and "permit 20" not in desired
    assert plan.expect.advertised == ("100.64.0.0/12",)


USERS_BGP = """frr version 8.4.4
hostname conn
!
router bgp 65001
 neighbor 10.0.1.1 remote-as 65000
 !
 address-family ipv6 unicast
  network fd00:9::/64
  neighbor 10.0.1.1 activate
 exit-address-family
exit
!
end
"""


def test_bgp_joins_the_users_ipv6_family_and_rollback_gives_it_back() -> None:
    intent = frr_action(frr_plan("bgp", BGP, USERS_BGP)).intent
    assert intent.user_neighbor and not intent.af6_created and not intent.activate6
    desired = frr.merge_text(USERS_BGP, intent)
    lines = desired.splitlines()
    v6 = lines[lines.index(" address-family ipv6 unicast") :]
    v6 = v6[: v6.index(" exit-address-family")]
    assert v6.count("  neighbor 10.0.1.1 activate") == 1
    assert "  network fd00:9::/64" in v6 and "  redistribute static route-map MESHPATH-OUT" in v6
    assert " address-family ipv4 unicast" in lines  # opened for the v4 range
    assert frr.strip_text(desired, intent) == USERS_BGP


def test_bgp_opens_the_ipv6_family_in_the_users_block_and_removes_it_again() -> None:
    running = USERS_BGP.replace(
        " !\n address-family ipv6 unicast\n  network fd00:9::/64\n  neighbor 10.0.1.1 activate\n"
        " exit-address-family\n",
        "",
    )
    intent = frr_action(frr_plan("bgp", BGP, running)).intent
    assert intent.af6_created and intent.activate6
    desired = frr.merge_text(running, intent)
    assert desired.index("address-family ipv4 unicast") < desired.index(
        "address-family ipv6 unicast"
    )
    assert frr.strip_text(desired, intent) == running


def test_bgp_refuses_to_replace_the_users_ipv6_redistribute_static() -> None:
    running = USERS_BGP.replace("  network fd00:9::/64\n", "  redistribute static\n")
    with pytest.raises(BadInputError, match="ipv6 unicast family already has 'redistribute"):
        frr_plan("bgp", BGP, running)


def test_a_v6_peer_is_a_v6_session_carrying_both_families() -> None:
    plan = frr_plan("bgp", msgspec.structs.replace(BGP, peer="FD00:1::1"))
    assert plan.expect.peer == "fd00:1::1"
    desired = frr.merge_text(EMPTY_FRR, frr_action(plan).intent).splitlines()
    assert " neighbor fd00:1::1 remote-as 65000" in desired
    assert "  neighbor fd00:1::1 route-map MESHPATH-OUT out" in desired


@pytest.mark.parametrize(
    ("peer", "message"),
    [
        ("fe80::1", "not link-local"),
        ("fd00::1%eth0", "not an IP address"),
        ("ff02::1", "expected a unicast address"),
        ("::1", "expected a unicast address"),
    ],
)
def test_v6_peers_that_frr_cannot_take_plainly_are_refused(peer: str, message: str) -> None:
    with pytest.raises(BadInputError, match=message):
        parse_peer(peer)


def test_a_v6_peer_inside_the_v6_source_range_is_refused() -> None:
    with pytest.raises(BadInputError, match="inside a range meshpath routes"):
        frr_plan("bgp", msgspec.structs.replace(BGP, peer="2606:4700:cf1:5000::1"))
