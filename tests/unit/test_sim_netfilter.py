"""netfilter_verdict on hand-written `nft -j` rulesets."""

from __future__ import annotations

from typing import Any

import pytest

from meshpath.sim import NfPacket, Ruleset, netfilter_verdict, simulate_flow
from meshpath.sim.flow import DELIVERED
from meshpath.state import Route
from tests.builders import broken_connector, nft_chain, with_nft, with_routes


def _pkt(**kw: Any) -> NfPacket:
    base: dict[str, Any] = {"src": "100.64.1.9", "dst": "10.0.1.50", "proto": 6, "sport": 9025,
                            "dport": 3000, "iif": "CloudflareWARP", "oif": "eth0"}  # fmt: skip
    base.update(kw)
    return NfPacket(**base)


def _verdict(items: list[dict[str, Any]], pkt: NfPacket, hook: str = "forward") -> str:
    ruleset = Ruleset.parse({"nftables": items})
    return netfilter_verdict(ruleset, hook, pkt, lambda dev: "10.0.1.2").verdict


def _match(left: dict[str, Any], right: Any, op: str = "==") -> dict[str, Any]:
    return {"match": {"op": op, "left": left, "right": right}}


SADDR = {"payload": {"protocol": "ip", "field": "saddr"}}


def test_named_set_of_prefixes() -> None:
    items = nft_chain("forward", [[_match(SADDR, "@cf"), {"drop": None}]])
    items.append({"set": {"family": "inet", "table": "t", "name": "cf", "type": "ipv4_addr",
                          "flags": ["interval"],
                          "elem": [{"prefix": {"addr": "100.64.0.0", "len": 10}}]}})  # fmt: skip
    assert _verdict(items, _pkt()) == "drop"
    assert _verdict(items, _pkt(src="8.8.8.8")) == "accept"


def test_wildcard_ifname_l4proto_and_not_equal() -> None:
    rule = [_match({"meta": {"key": "iifname"}}, "Cloudflare*"),
            _match({"meta": {"key": "l4proto"}}, "udp", "!="), {"reject": None}]  # fmt: skip
    items = nft_chain("forward", [rule])
    assert _verdict(items, _pkt()) == "drop"  # reject drops the packet
    assert _verdict(items, _pkt(proto=17)) == "accept"
    assert _verdict(items, _pkt(iif="eth0")) == "accept"


def test_mark_set_then_matched_by_a_later_chain() -> None:
    mark = {"meta": {"key": "mark"}}
    items = nft_chain("forward", [[{"mangle": {"key": mark, "value": 0x100CF}}]], priority=-10,
                      name="setmark")  # fmt: skip
    items += nft_chain("forward", [[_match(mark, 0x100CF), {"drop": None}]], name="check")
    assert _verdict(items, _pkt()) == "drop"


def test_accept_ends_only_its_own_chain() -> None:
    items = nft_chain("forward", [[{"accept": None}]], priority=-5, name="first")
    items += nft_chain("forward", [], policy="drop", name="second")
    assert _verdict(items, _pkt()) == "drop"


def test_other_families_are_ignored() -> None:
    items = nft_chain("forward", [], policy="drop")
    items[0]["chain"]["family"] = "ip6"
    assert _verdict(items, _pkt()) == "accept"


def test_dnat_in_prerouting_changes_the_routed_destination() -> None:
    dport = {"payload": {"protocol": "tcp", "field": "dport"}}
    items = nft_chain("prerouting", [[_match(dport, 8080), {"dnat": {"addr": "10.0.1.50",
                      "port": 3000}}]], chain_type="nat", priority=-100)  # fmt: skip
    snap = with_routes(
        broken_connector(), Route(table=254, family=4, dst="100.64.0.0/12", dev="CloudflareWARP")
    )
    r = simulate_flow(with_nft(snap, *items), "100.64.12.189", "10.0.1.2", 8080)
    assert r.outcome == DELIVERED
    assert r.request.left is not None and r.request.left.dst == "10.0.1.50"
    assert r.request.egress == "eth0"
    assert r.reply is not None and r.reply.left is not None
    assert (r.reply.left.src, r.reply.left.sport) == ("10.0.1.2", 8080)


# -- values the model cannot compare with an IPv4 packet are "unknown" (issue 10, item 14) --
def _set_with(*elements: Any) -> list[dict[str, Any]]:
    items = nft_chain("forward", [[_match(SADDR, "@s"), {"drop": None}]])
    items.append({"set": {"family": "inet", "table": "t", "name": "s", "elem": list(elements)}})
    return items


@pytest.mark.parametrize(
    "element",
    [
        "2001:db8::1",  # an IPv6 element where an IPv4 one is compared
        {"prefix": {"addr": "100.64.0.0", "len": 40}},  # no IPv4 prefix is that long
        {"prefix": {"addr": "fd00::", "len": 8}},
        {"range": ["100.64.0.1", 7]},
        {"range": ["low", "high"]},
    ],
)
def test_set_element_the_model_cannot_compare_is_unknown(element: Any) -> None:
    assert _verdict(_set_with(element), _pkt()) == "unknown"


def test_port_range_of_words_and_unhashable_ct_state_are_unknown_or_no_match() -> None:
    dport = {"payload": {"protocol": "tcp", "field": "dport"}}
    items = nft_chain(
        "forward", [[_match(dport, {"set": [{"range": ["a", "b"]}]}), {"drop": None}]]
    )
    assert _verdict(items, _pkt()) == "unknown"
    state = {"ct": {"key": "state"}}
    items = nft_chain("forward", [[_match(state, [["new"], {"x": 1}]), {"drop": None}]])
    assert _verdict(items, _pkt()) == "accept"  # neither element is a state name


def test_dnat_to_a_name_is_unknown() -> None:
    items = nft_chain("prerouting", [[{"dnat": {"addr": "backend"}}]], chain_type="nat")
    assert _verdict(items, _pkt(), hook="prerouting") == "unknown"


def test_chain_priority_by_name_orders_like_the_collector() -> None:
    first = nft_chain("forward", [[{"drop": None}]], name="named")
    first[0]["chain"]["prio"] = "raw"  # -300: runs before the numbered chain
    items = first + nft_chain("forward", [[{"accept": None}]], priority=0, name="numbered")
    assert _verdict(items, _pkt()) == "drop"
