"""The doctor over IPv6: a Worker flow from the v6 source range to each v6 LAN, the v6
findings (MP101 for the v6 source range, MP124 forwarding, MP125 accept_ra, MP126 ICMPv6
packet-too-big, MP127 tunnel MTU) and nft's `fib saddr . iif oif missing drop`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from meshpath.checks.diagnose import diagnose
from meshpath.checks.report import Report
from meshpath.checks.targets import parse_target
from meshpath.cli import main
from meshpath.config import Settings
from meshpath.sim import simulate_flow
from meshpath.state import TABLE_MAIN, TABLE_WARP, FrrState, NftState, Route, Snapshot, codec
from tests.builders import (
    SVC6,
    WORKER6,
    dual_stack_connector,
    link,
    with_routes,
    with_v6conf,
)
from tests.schema_check import assert_schema

TUNNEL = "CloudflareWARP"
V4_FIX = Route(table=TABLE_MAIN, family=4, dst="100.64.0.0/12", dev=TUNNEL)
V6_FIX = Route(table=TABLE_MAIN, family=6, dst="2606:4700:cf1:5000::/64", dev=TUNNEL, metric=1024)


def report(snap: Snapshot, *targets: str) -> Report:
    return diagnose(snap, Settings(), tuple(parse_target(t) for t in targets))


def ids(rep: Report) -> set[str]:
    return {f.id for f in rep.findings}


def nft(*rules: list[dict[str, Any]], hook: str = "forward", policy: str = "accept") -> NftState:
    items: list[dict[str, Any]] = [
        {"table": {"family": "inet", "name": "f", "handle": 1}},
        {"chain": {"family": "inet", "table": "f", "name": "c", "handle": 1, "type": "filter",
                   "hook": hook, "prio": 0, "policy": policy}},
    ]  # fmt: skip
    for n, expr in enumerate(rules, 2):
        items.append({"rule": {"family": "inet", "table": "f", "chain": "c", "handle": n,
                               "expr": expr}})  # fmt: skip
    return NftState(available=True, ruleset={"nftables": items})


def test_v6_lan_is_a_default_target_and_its_reply_is_misrouted() -> None:
    rep = diagnose(dual_stack_connector(), Settings())
    v6 = [f for f in rep.flows if ":" in f.target.address]
    assert [str(f.target) for f in v6] == ["[fd00:1::1]:80"]
    assert v6[0].worker_ip == WORKER6  # from the v6 source range
    assert (v6[0].status, v6[0].egress) == ("misrouted", "eth0")
    titles = [f.title for f in rep.findings if f.id == "MP101"]
    assert any("2606:4700:cf1:5000::/64" in t for t in titles)
    v6_finding = next(f for f in rep.findings if "2606:4700:cf1:5000::/64" in f.title)
    assert any("ip -6 route add 2606:4700:cf1:5000::/64" in c for c in v6_finding.fix_commands)
    assert any("route ::/0" in e for e in v6_finding.evidence)


def test_both_routes_path_ok_for_both_families() -> None:
    rep = report(with_routes(dual_stack_connector(), V4_FIX, V6_FIX), "10.0.1.50:3000",
                 f"[{SVC6}]:3000")  # fmt: skip
    assert [f.status for f in rep.flows] == ["delivered", "delivered"]
    assert rep.verdict == "PATH OK"


def test_only_the_v4_route_leaves_v6_broken() -> None:
    rep = report(with_routes(dual_stack_connector(), V4_FIX), "10.0.1.50:3000", f"[{SVC6}]:3000")
    assert rep.verdict.startswith("PATH BROKEN") and "2606:4700:cf1:5000::/64" in rep.verdict


def test_v6_forwarding_off_is_mp124() -> None:
    snap = with_v6conf(with_routes(dual_stack_connector(), V4_FIX, V6_FIX), "all", forwarding=0)
    rep = report(snap, f"[{SVC6}]:3000")
    assert rep.root_cause is not None and rep.root_cause.id == "MP124"
    assert "net.ipv6.conf.all.forwarding=1" in rep.root_cause.fix_commands[0]


def test_nft_fib_rpf_drops_the_syn_without_a_v6_route_and_passes_with_it() -> None:
    """`fib saddr . iif oif missing drop` in prerouting is IPv6's rp_filter: the Worker's
    source is routed back out eth0 (not the tunnel) until the v6 route exists."""
    rpf = nft([{"match": {"op": "==", "left": {"fib": {"result": "oif", "flags": ["saddr",
              "iif"]}}, "right": False}}, {"drop": None}], hook="prerouting")  # fmt: skip
    broken = dual_stack_connector(nft=rpf)
    flow = simulate_flow(broken, WORKER6, SVC6, 3000)
    assert (flow.outcome, flow.request.status) == ("dropped", "dropped")
    assert "prerouting" in flow.request.reason
    fixed = with_routes(broken, V6_FIX)
    assert simulate_flow(fixed, WORKER6, SVC6, 3000).outcome == "delivered"


def test_ip_rules_do_not_touch_v6_and_ip6_rules_not_v4() -> None:
    drop_ip6 = nft([{"match": {"op": "==", "left": {"payload": {"protocol": "ip6", "field":
                   "saddr"}}, "right": {"prefix": {"addr": "2606:4700:cf1:5000::", "len": 64}}}},
                   {"drop": None}])  # fmt: skip
    snap = with_routes(dual_stack_connector(nft=drop_ip6), V4_FIX, V6_FIX)
    assert simulate_flow(snap, WORKER6, SVC6, 3000).outcome == "dropped"
    assert simulate_flow(snap, "100.64.12.189", "10.0.1.50", 3000).outcome == "delivered"


def test_icmpv6_packet_too_big_dropped_is_mp126() -> None:
    drop_icmp = nft([{"match": {"op": "==", "left": {"payload": {"protocol": "icmpv6",
                    "field": "type"}}, "right": "packet-too-big"}}, {"drop": None}])  # fmt: skip
    snap = with_routes(dual_stack_connector(nft=drop_icmp), V4_FIX, V6_FIX)
    assert "MP126" in ids(report(snap, f"[{SVC6}]:3000"))
    assert "MP126" not in ids(report(with_routes(dual_stack_connector(), V4_FIX, V6_FIX)))


def test_forwarding_device_with_accept_ra_1_and_an_ra_default_is_mp125() -> None:
    base = dual_stack_connector()
    routes = tuple(
        msgspec.structs.replace(r, protocol=9) if r.family == 6 and r.dst == "::/0" else r
        for r in base.routes
    )
    snap = msgspec.structs.replace(base, routes=routes)
    assert "MP125" in ids(report(snap))
    assert "MP125" not in ids(report(with_v6conf(snap, "eth0", accept_ra=2)))


def test_tunnel_mtu_below_1280_with_v6_is_mp127() -> None:
    base = dual_stack_connector()
    links = tuple(link(3, TUNNEL, "tun", mtu=1200) if lk.name == TUNNEL else lk
                  for lk in base.links)  # fmt: skip
    assert "MP127" in ids(report(msgspec.structs.replace(base, links=links)))
    assert "MP127" not in ids(report(base))


def test_warp_table_v6_exclusion_names_the_entry() -> None:
    rep = diagnose(dual_stack_connector(), Settings())
    v6 = next(f for f in rep.findings if f.id == "MP101" and "2606" in f.title)
    assert v6.fix_mode == "profile"
    assert "delete 2606:4700:cf1:5000::/64 from the Exclude list" in v6.why


def test_v6_target_in_warp_table_goes_back_through_the_tunnel() -> None:
    """A route for the v6 source range in WARP's own table (a profile that includes it)."""
    snap = with_routes(
        dual_stack_connector(),
        Route(table=TABLE_WARP, family=6, dst="2606:4700:cf1:5000::/64", dev=TUNNEL, metric=5),
    )
    flow = simulate_flow(snap, WORKER6, SVC6, 3000)
    assert flow.outcome == "delivered"


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = main(list(argv))
    return code, json.loads(capsys.readouterr().out)


def test_route_get_and_flow_take_v6_on_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ds.json"
    codec.save(dual_stack_connector(), path)
    get = ["route", "get", WORKER6, "--from", SVC6, "--iif", "eth0", "--snapshot", str(path)]
    code, doc = _cli(capsys, *get, "--json")
    assert code == 0 and doc["dev"] == "eth0" and doc["packet"]["proto"] == 0
    assert_schema(doc)
    code, doc = _cli(capsys, "flow", f"[{SVC6}]:3000", "10.0.1.50:3000", "--snapshot",
                     str(path), "--json")  # fmt: skip
    assert code == 1 and [f["worker_ip"] for f in doc["flows"]] == [WORKER6, "100.64.12.189"]
    assert_schema(doc)
    assert main(["flow", f"[{SVC6}]:3000", "--worker-ip", "100.64.12.189", "--snapshot",
                 str(path)]) == 2  # fmt: skip


# -- BGP in the IPv6 unicast family (MP163/MP164) -------------------------------------------
def _bgp(snap: Snapshot, sent6: list[str], *, v4: list[str] | None = None) -> Snapshot:
    """FRR with one router peer Established in both families, sending ``v4`` (the source
    range by default) in IPv4 and ``sent6`` in IPv6 unicast."""
    peer = {"10.0.1.1": {"state": "Established", "pfxRcd": 0, "pfxSnt": 1}}
    frr = FrrState(
        available=True,
        running=True,
        daemons=("bgpd", "staticd", "zebra"),
        bgp_summary={"ipv4Unicast": {"peers": peer}, "ipv6Unicast": {"peers": peer}},
        bgp_advertised={
            "10.0.1.1": {"advertisedRoutes": dict.fromkeys(v4 or ["100.64.0.0/12"], {})}
        },
        bgp_advertised6={"10.0.1.1": {"advertisedRoutes": dict.fromkeys(sent6, {})}},
    )
    return msgspec.structs.replace(snap, frr=frr)


def _advert_findings(snap: Snapshot) -> list[tuple[str, str]]:
    return [(f.id, f.title) for f in report(snap).findings if f.id in ("MP163", "MP164")]


def test_the_v6_source_range_must_go_out_in_ipv6_unicast_when_the_tunnel_carries_ipv6() -> None:
    snap = dual_stack_connector()
    assert _advert_findings(_bgp(snap, ["2606:4700:cf1:5000::/64"])) == []
    assert _advert_findings(_bgp(snap, [])) == [
        ("MP163", "2606:4700:cf1:5000::/64 not advertised to 10.0.1.1")
    ]
    leak = _advert_findings(_bgp(snap, ["2606:4700:cf1:5000::/64", "fd00:1::/64"]))
    assert leak == [("MP164", "1 route(s) beyond the Cloudflare ranges advertised to 10.0.1.1")]


def test_without_ipv6_on_the_tunnel_only_a_v6_leak_is_a_finding() -> None:
    v4_only = dual_stack_connector(
        addresses=tuple(
            a for a in dual_stack_connector().addresses if not (a.dev == TUNNEL and a.family == 6)
        )
    )
    assert _advert_findings(_bgp(v4_only, [])) == []
    assert [i for i, _ in _advert_findings(_bgp(v4_only, ["fd00:1::/64"]))] == ["MP164"]
