"""The netlink parser on recorded kernel dumps, checked against iproute2's view of the same
state (both recorded by tests/unit/data/record_netlink.py from one namespace)."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest

from meshpath.collect import rtnl_parse
from meshpath.collect.netlink import (
    NLM_F_DUMP,
    NLM_F_REQUEST,
    RTM_GETROUTE,
    NetlinkError,
    dump_request,
    messages,
    split_messages,
)
from meshpath.state import Address, Link, Route, Rule
from tests import iproute_json, snapshot_keys

DATA = Path(__file__).parent / "data"


def recorded(name: str) -> list[tuple[bytes, int, int, int]]:
    return list(messages((DATA / f"netlink_{name}.bin").read_bytes()))


def ip_json(name: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads((DATA / f"ip_{name}.json").read_text())
    return data


def links() -> tuple[Link, ...]:
    parsed = (rtnl_parse.parse_link(b, s, e) for b, _t, s, e in recorded("links"))
    return rtnl_parse.resolve_masters(parsed)


def names() -> dict[int, str]:
    return {link.index: link.name for link in links()}


def routes(family: int) -> list[Route]:
    parser = rtnl_parse.RouteParser(names())
    parsed = [parser.parse(b, s, e) for b, _t, s, e in recorded(f"routes{family}")]
    return [r for r in parsed if r is not None]


def rules(family: int) -> list[Rule]:
    return [rtnl_parse.parse_rule(b, s, e) for b, _t, s, e in recorded(f"rules{family}")]


def test_links_match_iproute2() -> None:
    ours = {link.name: link for link in links()}
    for theirs in ip_json("links"):
        link = ours[theirs["ifname"]]
        assert link.index == theirs["ifindex"]
        assert link.mtu == theirs["mtu"]
        assert link.operstate == theirs["operstate"]
        assert set(link.flags) == set(theirs["flags"]) - {"NO-CARRIER"}
        assert link.carrier == ("NO-CARRIER" not in theirs["flags"])
        assert link.address == theirs.get("address")
    assert len(ours) == len(ip_json("links"))


def test_link_kinds_and_state() -> None:
    ours = {link.name: link for link in links()}
    tun = ours["CloudflareWARP"]
    assert (tun.kind, tun.mtu, tun.carrier, tun.operstate) == ("tun", 1280, False, "DOWN")
    assert "POINTOPOINT" in tun.flags and "UP" in tun.flags and tun.address is None
    assert ours["eth0"].kind == "veth" and ours["eth0"].carrier
    assert ours["lo"].kind == "" and ours["lo"].master is None


@pytest.mark.parametrize("family", [4, 6])
def test_addresses_match_iproute2(family: int) -> None:
    table = names()
    ours = {
        (a.dev, a.local, a.prefixlen, a.peer)
        for b, _t, s, e in recorded(f"addrs{family}")
        for a in [rtnl_parse.parse_address(b, s, e, table)]
    }
    theirs = {
        (dev["ifname"], info["local"], info["prefixlen"], info.get("address"))
        for dev in ip_json(f"addrs{family}")
        for info in dev["addr_info"]
    }
    assert ours == theirs


def test_point_to_point_address_has_peer() -> None:
    parsed = [rtnl_parse.parse_address(b, s, e, names()) for b, _t, s, e in recorded("addrs4")]
    assert (
        Address(dev="eth0", family=4, local="192.0.2.9", prefixlen=32, peer="192.0.2.10") in parsed
    )


@pytest.mark.parametrize("family", [4, 6])
def test_routes_match_iproute2(family: int) -> None:
    ours = sorted(map(snapshot_keys.route_detail, routes(family)), key=repr)
    theirs = sorted(
        (iproute_json.route_detail(r, family) for r in ip_json(f"routes{family}")), key=repr
    )
    assert ours == theirs


def test_route_fields_exactly() -> None:
    by_dst = {(r.table, r.dst): r for r in routes(4)}
    assert by_dst[(65743, "10.0.0.0/8")].type == "throw"
    assert by_dst[(65743, "100.64.0.0/10")].type == "blackhole"
    assert by_dst[(65743, "203.0.113.0/24")].metric == 7
    warp = by_dst[(65743, "0.0.0.0/1")]
    assert (warp.dev, warp.scope, warp.flags, warp.gateway) == (
        "CloudflareWARP",
        253,
        ("linkdown",),
        None,
    )
    assert by_dst[(254, "192.168.50.0/24")].flags == ("onlink",)
    mtu = by_dst[(254, "10.9.0.0/16")]
    assert (mtu.mtu, mtu.metric, mtu.protocol) == (1280, 50, 4)
    multi = by_dst[(100, "172.16.0.0/16")]
    assert multi.dev is None and multi.gateway is None
    assert [(h.gateway, h.dev, h.weight) for h in multi.nexthops] == [
        ("10.0.1.1", "eth0", 2),
        ("10.0.1.3", "eth0", 1),
    ]
    assert by_dst[(254, "0.0.0.0/0")].gateway == "10.0.1.1"
    via = by_dst[(254, "10.50.0.0/16")]  # RTA_VIA: an IPv4 route with an IPv6 next hop
    assert (via.gateway, via.dev, via.family) == ("2001:db8:1::1", "eth0", 4)


@pytest.mark.parametrize("family", [4, 6])
def test_rules_match_iproute2(family: int) -> None:
    ours = [snapshot_keys.rule_key(r) for r in rules(family)]
    theirs = [iproute_json.rule_key(r) for r in ip_json(f"rules{family}")]
    assert ours == theirs


def test_rule_selectors_exactly() -> None:
    by_pref = {r.priority: r for r in rules(4)}
    warp = by_pref[32765]
    assert (warp.invert, warp.fwmark, warp.fwmask, warp.table, warp.action) == (
        True,
        0x100CF,
        0xFFFFFFFF,
        65743,
        "lookup",
    )
    assert warp.suppress_prefixlength is None  # kernel's 0xffffffff means "none"
    full = by_pref[100]
    assert (full.src, full.dst, full.iif, full.ipproto, full.tos, full.protocol) == (
        "10.0.0.0/8",
        "192.168.0.0/16",
        "eth0",
        6,
        0x10,
        99,
    )
    assert (full.fwmark, full.fwmask) == (0x10, 0xFF)
    assert full.sport is not None and (full.sport.start, full.sport.end) == (1000, 2000)
    assert full.dport is not None and (full.dport.start, full.dport.end) == (443, 443)
    assert full.uidrange is not None and (full.uidrange.start, full.uidrange.end) == (100, 200)
    assert (by_pref[101].oif, by_pref[101].suppress_prefixlength) == ("CloudflareWARP", 0)
    assert by_pref[102].suppress_ifgroup == 5
    assert (by_pref[200].action, by_pref[200].goto, by_pref[200].table) == ("goto", 300, None)
    assert (by_pref[1000].l3mdev, by_pref[1000].table) == (True, None)
    assert [by_pref[p].action for p in (201, 202, 203, 300)] == [
        "blackhole",
        "unreachable",
        "prohibit",
        "nop",
    ]


def test_dump_request_layout() -> None:
    raw = dump_request(RTM_GETROUTE, 10, seq=7)
    length, mtype, flags, seq, pid = struct.unpack_from("=IHHII", raw)
    assert (length, mtype, flags, seq, pid) == (
        len(raw),
        RTM_GETROUTE,
        NLM_F_REQUEST | NLM_F_DUMP,
        7,
        0,
    )
    assert len(raw) == 16 + 12 and raw[16] == 10


def test_netlink_error_is_raised_with_errno_name() -> None:
    err = struct.pack("=IHHII", 36, 2, 0, 1, 0) + struct.pack("=i", -1) + bytes(16)
    with pytest.raises(NetlinkError, match="EPERM"):
        list(messages(err))


def test_truncated_header_is_malformed() -> None:
    with pytest.raises(NetlinkError, match="malformed"):
        list(split_messages(struct.pack("=IHHII", 8, 16, 0, 0, 0)))


def test_done_ends_messages() -> None:
    done = struct.pack("=IHHIIi", 20, 3, 2, 1, 0, 0)
    assert list(messages(done)) == []
