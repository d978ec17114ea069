"""The snapshot's typed parts (state/nft.py, state/frr.py), derived from the raw JSON it keeps.

The recorded fixtures are schema version 1: the typed parts come from their raw part, the
file format is unchanged, and the derived view never reaches the JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from meshpath.collect.frr import decode_show
from meshpath.state import NftState, codec
from meshpath.state.frr import (
    BgpPeer,
    FrrRoute,
    bgp_peers,
    frr_view,
    learned_from,
    path_lengths,
)
from meshpath.state.model import FrrState
from meshpath.state.nft import Masquerade, parse_ruleset, replace_own_table

SNAPSHOTS = Path(__file__).parents[1] / "data" / "snapshots"
FIXTURES = sorted(SNAPSHOTS.glob("*.json"))


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_recorded_snapshots_derive_what_collect_kept(path: Path) -> None:
    snap = codec.load(path)
    assert snap.nft.view.base_chains == snap.nft.base_chains
    items = (snap.nft.ruleset or {}).get("nftables", [])
    assert len(snap.nft.view.rules) == sum(1 for i in items if "rule" in i)
    # the view is not part of the value's JSON: the file reads back byte for byte
    assert codec.dumps(codec.loads(codec.dumps(snap))) == codec.dumps(snap)
    assert b'"view"' not in codec.dumps(snap)


def test_recorded_nat_and_bgp_parts() -> None:
    nat = codec.load(SNAPSHOTS / "nat.json")
    assert nat.nft.view.masquerades == {Masquerade("eth0", "100.64.0.0/12")}
    assert codec.load(SNAPSHOTS / "broken.json").nft.view.masquerades is None
    bgp = codec.load(SNAPSHOTS / "bgp.json").frr.view
    assert bgp.peers == (BgpPeer("10.0.1.1", "Established", "OK", 0, 2),)
    assert bgp.advertised == {"10.0.1.1": frozenset({"100.64.0.0/12", "100.96.0.0/12"})}
    assert FrrRoute("100.64.0.0/12", "static", True, True, ("CloudflareWARP",)) in bgp.statics


def test_view_follows_a_replaced_ruleset() -> None:
    """A changed value (fix/predict's) gets its own view, never the old one's cache."""
    before = NftState(available=True, ruleset={"nftables": []})
    assert before.view.masquerades is None
    expr = [
        {"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "eth0"}},
        {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}},
                   "right": {"prefix": {"addr": "100.64.0.0", "len": 12}}}},
        {"masquerade": None},
    ]  # fmt: skip
    items = [
        {"table": {"family": "inet", "name": "meshpath"}},
        {"rule": {"family": "inet", "table": "meshpath", "chain": "postrouting", "expr": expr}},
    ]
    after = msgspec.structs.replace(before, ruleset=replace_own_table(before.ruleset, items))
    assert after.view.masquerades == {Masquerade("eth0", "100.64.0.0/12")}
    assert replace_own_table(after.ruleset, []) == {"nftables": []}


def test_junk_documents_give_empty_parts() -> None:
    assert parse_ruleset({"nftables": "x"}).rules == ()
    assert (
        parse_ruleset({"nftables": [1, {"rule": "x"}, {"rule": {"expr": 3}}]}).rules[0].expr == ()
    )
    assert bgp_peers({"ipv4Unicast": []}) == ()
    assert bgp_peers({"ipv4Unicast": {"peers": {"p": 7}}}) == (BgpPeer("p", None),)
    assert frr_view(None, {"p": {"error": "x"}}, {"1.0.0.0/8": "x"}).advertised == {"p": None}
    assert FrrState(available=True, ip_route={"1.0.0.0/8": [3]}).view.statics == ()


def test_policy_peer_and_learned_routes() -> None:
    summary = {"ipv4Unicast": {"peers": {"10.0.1.1": {"state": "Established",
                                                       "pfxRcd": "(Policy)"}}}}  # fmt: skip
    (peer,) = bgp_peers(summary)
    assert peer.established and peer.policy_blocked
    table = {"routes": {"100.64.0.0/12": [{"peerId": "10.0.1.2"}], "10.9.0.0/16": [{}]}}
    assert learned_from(table, "10.0.1.2") == {"100.64.0.0/12"}


def test_decode_show_names_the_command() -> None:
    assert decode_show("show x json", json.dumps({"a": 1})) == ({"a": 1}, None)
    assert decode_show("show x json", "% Unknown command") == (
        None,
        "show x json: not JSON: % Unknown command",
    )
    assert decode_show("show x json", "[]") == (None, "show x json: expected a JSON object")


def test_path_lengths_per_peer() -> None:
    """``show bgp ipv4 unicast PREFIX json``: the lab's HA drill compares these lengths."""
    doc = {
        "paths": [
            {"peer": {"peerId": "10.0.0.2"}, "aspath": {"length": 1}},
            {"peer": {"peerId": "10.0.0.3"}, "aspath": {"length": 4}},
            {"peer": {}, "aspath": {"length": 9}},  # no peer id: not a peer's path
            "junk",
        ]
    }
    assert path_lengths(doc) == {"10.0.0.2": 1, "10.0.0.3": 4}
    assert path_lengths({"paths": "junk"}) == {}
    assert path_lengths(None) == {}
