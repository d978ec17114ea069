"""Flows both ways and netfilter: the field report's case, its fixes, and drops/unknowns."""

from __future__ import annotations

from meshpath.sim import simulate_flow
from meshpath.sim.flow import DELIVERED, DROPPED, MISROUTED, UNKNOWN
from meshpath.state import TABLE_MAIN, Route
from tests.builders import (
    broken_connector,
    masquerade_lan,
    nft_chain,
    with_conf,
    with_nft,
    with_routes,
)

WORKER, TARGET, PORT = "100.64.12.189", "10.0.1.50", 3000
TUNNEL_ROUTE = Route(table=TABLE_MAIN, family=4, dst="100.64.0.0/12", dev="CloudflareWARP")


def test_field_report_reply_is_misrouted() -> None:
    r = simulate_flow(broken_connector(), WORKER, TARGET, PORT)
    assert r.outcome == MISROUTED
    assert r.request.egress == "eth0" and r.reply is not None and r.reply.egress == "eth0"
    assert r.reply.decision is not None and r.reply.decision.route == "0.0.0.0/0"
    assert r.source_seen_by_target == WORKER
    assert "eth0" in r.reason and "CloudflareWARP" in r.reason


def test_route_via_tunnel_delivers_with_real_source() -> None:
    r = simulate_flow(with_routes(broken_connector(), TUNNEL_ROUTE), WORKER, TARGET, PORT)
    assert (r.outcome, r.source_seen_by_target) == (DELIVERED, WORKER)


def test_nat_alone_is_still_misrouted() -> None:
    snap = with_nft(broken_connector(), *masquerade_lan())
    r = simulate_flow(snap, WORKER, TARGET, PORT)
    assert r.source_seen_by_target == "10.0.1.2"  # the LAN sees the connector
    assert r.reply is not None and r.reply.arrived.dst == WORKER  # de-NAT before routing
    assert r.outcome == MISROUTED


def test_nat_plus_route_delivers_with_nated_source() -> None:
    snap = with_nft(with_routes(broken_connector(), TUNNEL_ROUTE), *masquerade_lan())
    r = simulate_flow(snap, WORKER, TARGET, PORT)
    assert (r.outcome, r.source_seen_by_target) == (DELIVERED, "10.0.1.2")


def test_nat_scoped_to_other_interface_does_not_apply() -> None:
    snap = with_nft(with_routes(broken_connector(), TUNNEL_ROUTE), *masquerade_lan(oif="eth9"))
    assert simulate_flow(snap, WORKER, TARGET, PORT).source_seen_by_target == WORKER


def test_forward_policy_drop_and_an_accepting_rule() -> None:
    fixed = with_routes(broken_connector(), TUNNEL_ROUTE)
    drop = with_nft(fixed, *nft_chain("forward", [], policy="drop"))
    r = simulate_flow(drop, WORKER, TARGET, PORT)
    assert r.outcome == DROPPED and "policy drop" in r.reason
    allow = with_nft(
        fixed,
        *nft_chain(
            "forward",
            [
                [{"match": {"op": "in", "left": {"ct": {"key": "state"}},
                            "right": ["established", "related"]}}, {"accept": None}],
                [{"match": {"op": "==", "left": {"meta": {"key": "iifname"}},
                            "right": "CloudflareWARP"}},
                 {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}},
                            "right": {"set": [22, {"range": [2999, 3001]}]}}},
                 {"counter": None}, {"accept": None}],
            ],
            policy="drop",
        ),
    )  # fmt: skip
    assert simulate_flow(allow, WORKER, TARGET, PORT).outcome == DELIVERED
    assert simulate_flow(allow, WORKER, TARGET, 80).outcome == DROPPED


def test_jump_and_return() -> None:
    fixed = with_routes(broken_connector(), TUNNEL_ROUTE)
    items = nft_chain("forward", [[{"jump": {"target": "sub"}}]], policy="accept")
    items.append({"chain": {"family": "inet", "table": "t", "name": "sub", "handle": 9}})
    items.append({"rule": {"family": "inet", "table": "t", "chain": "sub", "handle": 10,
                           "expr": [{"match": {"op": "==", "left": {"payload": {
                               "protocol": "ip", "field": "daddr"}}, "right": "10.0.1.50"}},
                               {"drop": None}]}})  # fmt: skip
    assert simulate_flow(with_nft(fixed, *items), WORKER, TARGET, PORT).outcome == DROPPED
    assert simulate_flow(with_nft(fixed, *items), WORKER, "10.0.1.51", PORT).outcome == DELIVERED


def test_unknown_expression_names_the_rule() -> None:
    fixed = with_routes(broken_connector(), TUNNEL_ROUTE)
    snap = with_nft(fixed, *nft_chain("forward", [[{"match": {"op": "==", "left": {
        "fib": {"flags": ["saddr", "iif"], "result": "oif"}}, "right": False}},
        {"drop": None}]]))  # fmt: skip
    r = simulate_flow(snap, WORKER, TARGET, PORT)
    assert r.outcome == UNKNOWN
    assert "inet t forward handle 2" in r.reason and "fib" in r.reason


def test_rp_filter_strict_drops_the_syn() -> None:
    snap = with_conf(broken_connector(), "CloudflareWARP", rp_filter=1)
    r = simulate_flow(snap, WORKER, TARGET, PORT)
    assert r.outcome == DROPPED and "rp-filter" in r.reason


def test_missing_tunnel_is_unknown() -> None:
    r = simulate_flow(broken_connector(), WORKER, TARGET, PORT, tunnel="wg0")
    assert r.outcome == UNKNOWN and "wg0" in r.reason
