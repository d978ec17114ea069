"""The ha lab's pure parts: nodes, the edge's flow pinning, the edge's replica routes."""

from __future__ import annotations

from meshpath.lab import frr, ha, topology
from meshpath.lab.scenarios import ALL_NAMES, get_scenario


def test_connb_exists_only_in_ha_labs_and_forwards_like_conn() -> None:
    assert "connb" not in topology.nodes_for(False)
    assert "connb" in topology.nodes_for(False, ha=True)
    assert topology.sysctls_for("connb") == topology.sysctls_for("conn")
    assert topology.instance_of("mplab-ab12-connb") == "ab12"
    assert get_scenario("ha").ha and not get_scenario("bgp").ha
    assert "ha" not in ALL_NAMES  # by name: two fixes take ~20 s


def test_router_peers_with_both_replicas_in_the_same_as() -> None:
    peers = {(n.address, n.asn) for n in frr.router_config(False, ha=True).neighbors}
    assert peers == {("10.0.1.2", 65001), ("10.0.1.4", 65001)}
    assert len(frr.router_config(False).neighbors) == 1


def test_the_edge_drops_a_reply_arriving_through_the_other_replicas_session() -> None:
    text = ha.pin_ruleset()
    assert 'ct state new oifname "cfedge" ct mark set 1' in text
    assert 'ct state new oifname "cfedgeb" ct mark set 2' in text
    assert 'iifname "cfedgeb" ct mark != 2 ct mark != 0 counter drop' in text
    assert 'iifname "cfedge" ct mark != 1 ct mark != 0 counter drop' in text


def test_the_primarys_session_is_preferred_at_the_edge() -> None:
    assert ha.edge_routes("conn") == (
        "route replace 10.0.1.0/24 dev cfedge src 100.64.12.189\n"
        "route replace 100.96.0.0/12 dev cfedge src 100.64.12.189\n"
    )
    assert "dev cfedgeb src 100.64.12.189 metric 100\n" in ha.edge_routes("connb")


def test_bgp_args_carry_the_role_and_bfd() -> None:
    assert ha.bgp_args("conn", "primary")[-2:] == ["--role", "primary"]
    assert "--role" not in ha.bgp_args("conn", None)
    assert ha.bgp_args("connb", "standby", bfd=True)[-1] == "--bfd"
