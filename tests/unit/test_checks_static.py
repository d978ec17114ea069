from __future__ import annotations

from typing import Any

import msgspec
import pytest

from meshpath.checks import CheckContext, Finding, run_static_checks
from meshpath.config import Settings
from meshpath.state import FrrState, Ipv4Conf, NftState, Route, Rule, Snapshot
from tests.builders import broken_connector, conf, link


def ids(snap: Snapshot, settings: Settings | None = None) -> list[str]:
    ctx = CheckContext(snap, settings or Settings(), lan_interfaces=("eth0",))
    return [f.id for f in run_static_checks(ctx)]


def find(snap: Snapshot, fid: str) -> Finding:
    ctx = CheckContext(snap, Settings(), lan_interfaces=("eth0",))
    return next(f for f in run_static_checks(ctx) if f.id == fid)


def with_sysctl(snap: Snapshot, name: str, **kw: int) -> Snapshot:
    ipv4 = dict(snap.sysctls.ipv4)
    ipv4[name] = msgspec.structs.replace(ipv4.get(name, conf()), **kw)
    return msgspec.structs.replace(snap, sysctls=msgspec.structs.replace(snap.sysctls, ipv4=ipv4))


def with_nft(snap: Snapshot, *rules: dict[str, Any]) -> Snapshot:
    items = [{"metainfo": {"json_schema_version": 1}}, *({"rule": r} for r in rules)]
    return msgspec.structs.replace(snap, nft=NftState(available=True, ruleset={"nftables": items}))


def masquerade(prefix: str | None, handle: int = 4) -> dict[str, Any]:
    expr: list[dict[str, Any]] = [
        {"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "eth0"}}
    ]
    if prefix:
        addr, length = prefix.split("/")
        expr.append(
            {
                "match": {
                    "op": "==",
                    "left": {"payload": {"protocol": "ip", "field": "saddr"}},
                    "right": {"prefix": {"addr": addr, "len": int(length)}},
                }
            }
        )
    expr.append({"masquerade": None})
    return {
        "family": "inet",
        "table": "nat",
        "chain": "postrouting",
        "handle": handle,
        "expr": expr,
    }


def test_clean_broken_connector_has_only_the_mss_warning() -> None:
    # The field report's host is "broken" only on the path (simulated), not in config.
    assert ids(broken_connector()) == ["MP180"]


def test_ip_forward_off() -> None:
    f = find(with_sysctl(broken_connector(), "all", forwarding=0), "MP120")
    assert "net.ipv4.ip_forward = 0" in f.evidence
    assert any("sysctl -w net.ipv4.ip_forward=1" in c for c in f.fix_commands)


def test_forwarding_off_on_tunnel_only() -> None:
    got = ids(with_sysctl(broken_connector(), "CloudflareWARP", forwarding=0))
    assert "MP122" in got and "MP120" not in got


@pytest.mark.parametrize(
    ("up", "carrier", "missing", "needle"),
    [
        (False, False, False, "administratively down"),
        (True, False, False, "no carrier"),
        (True, True, True, "no interface named"),
    ],
)
def test_tunnel_states(up: bool, carrier: bool, missing: bool, needle: str) -> None:
    snap = broken_connector()
    links = [lk for lk in snap.links if lk.name != "CloudflareWARP"]
    if not missing:
        tun = link(3, "CloudflareWARP", "tun", up=up, mtu=1280)
        links.append(msgspec.structs.replace(tun, carrier=carrier, flags=("UP",) if up else ()))
    f = find(msgspec.structs.replace(snap, links=tuple(links)), "MP150")
    assert needle in f.title


def test_src_valid_mark_with_fwmark_rules_and_rp_filter() -> None:
    snap = with_sysctl(broken_connector(), "all", rp_filter=1)
    assert "MP131" in ids(snap)
    assert "MP131" not in ids(with_sysctl(snap, "all", rp_filter=1, src_valid_mark=1))
    assert "MP131" not in ids(with_sysctl(snap, "all", rp_filter=2))


def test_mss_clamp_present_silences_mp180() -> None:
    clamp = {
        "family": "inet",
        "table": "meshpath",
        "chain": "forward",
        "handle": 2,
        "expr": [
            {
                "mangle": {
                    "key": {"tcp option": {"name": "maxseg", "field": "size"}},
                    "value": {"rt": {"key": "mtu"}},
                }
            }
        ],
    }
    assert "MP180" not in ids(with_nft(broken_connector(), clamp))


def test_scoped_nat_warns_but_is_not_broad() -> None:
    got = ids(with_nft(broken_connector(), masquerade("100.64.0.0/12")))
    assert "MP110" in got and "MP111" not in got


def test_report_nat_slash10_is_too_broad() -> None:
    f = find(with_nft(broken_connector(), masquerade("100.64.0.0/10")), "MP111")
    assert "100.64.0.0/10" in f.title
    assert f.evidence[0].startswith("nft inet nat postrouting handle 4")


def test_nat_without_source_match_is_broad() -> None:
    assert "MP111" in ids(with_nft(broken_connector(), masquerade(None)))


def test_nat_of_other_range_is_ignored() -> None:
    assert "MP110" not in ids(with_nft(broken_connector(), masquerade("192.168.0.0/16")))


def test_report_route_slash10_is_broad() -> None:
    snap = broken_connector()
    route = Route(table=254, family=4, dst="100.64.0.0/10", dev="CloudflareWARP")
    got = find(msgspec.structs.replace(snap, routes=(*snap.routes, route)), "MP112")
    assert "100.64.0.0/10" in got.title


def test_exact_source_route_is_not_broad() -> None:
    snap = broken_connector()
    route = Route(table=254, family=4, dst="100.64.0.0/12", dev="CloudflareWARP")
    assert "MP112" not in ids(msgspec.structs.replace(snap, routes=(*snap.routes, route)))


def tailscale(snap: Snapshot, prio: int = 5270) -> Snapshot:
    routes = (*snap.routes, Route(table=52, family=4, dst="100.64.0.0/10", dev="tailscale0"))
    rules = (Rule(family=4, priority=prio, table=52), *snap.rules)
    return msgspec.structs.replace(snap, routes=routes, rules=rules)


def test_tailscale_table52_ahead_of_warp() -> None:
    f = find(tailscale(broken_connector()), "MP170")
    assert "rule 5270: lookup 52 (before WARP's rule 32765)" in f.evidence


def test_tailscale_after_warp_is_fine() -> None:
    assert "MP170" not in ids(tailscale(broken_connector(), prio=40000))


def test_ts_input_drop() -> None:
    drop = {
        "family": "ip",
        "table": "filter",
        "chain": "ts-input",
        "handle": 9,
        "expr": [
            {"match": {"op": "!=", "left": {"meta": {"key": "iifname"}}, "right": "tailscale0"}},
            {
                "match": {
                    "op": "==",
                    "left": {"payload": {"protocol": "ip", "field": "saddr"}},
                    "right": {"prefix": {"addr": "100.64.0.0", "len": 10}},
                }
            },
            {"counter": {"packets": 0, "bytes": 0}},
            {"drop": None},
        ],
    }
    f = find(with_nft(broken_connector(), drop), "MP172")
    assert "iifname != tailscale0" in f.evidence[0]


def test_tunnel_address_outside_configured_device_range() -> None:
    settings = Settings(ranges=Settings().ranges.with_overrides({"device_v4": "100.104.0.0/13"}))
    assert "MP190" in ids(broken_connector(), settings)


def frr_state(**kw: Any) -> FrrState:
    kw.setdefault("daemons", ("zebra", "staticd", "bgpd"))
    return FrrState(available=True, running=True, **kw)


def peers(**peer: dict[str, Any]) -> dict[str, Any]:
    return {"ipv4Unicast": {"peers": {"10.0.1.1": peer}}}


def test_static_route_not_installed() -> None:
    table = {
        "100.64.0.0/12": [
            {
                "protocol": "static",
                "installed": False,
                "selected": False,
                "nexthops": [{"interfaceName": "CloudflareWARP"}],
            }
        ]
    }
    snap = broken_connector(frr=frr_state(ip_route=table))
    assert "MP151" in ids(snap)


def test_bgp_session_states() -> None:
    idle = broken_connector(frr=frr_state(bgp_summary=peers(state="Active")))
    assert "MP161" in ids(idle)
    policy = broken_connector(
        frr=frr_state(
            bgp_summary=peers(
                state="Established", peerState="Policy", pfxRcd="(Policy)", pfxSnt="(Policy)"
            )
        )
    )
    assert "MP162" in ids(policy) and "MP161" not in ids(policy)


def test_a_session_down_names_why_and_an_open_refused_says_it_will_not_come_up() -> None:
    neighbors = {
        "10.0.1.1": {
            "bgpState": "Idle",
            "lastResetTimerMsecs": 12000,
            "lastResetDueTo": "BGP Notification send",
            "lastErrorCodeSubcode": "0202",
            "lastNotificationReason": "OPEN Message Error/Bad Peer AS",
        }
    }
    down = peers(state="Idle")
    refused = find(
        broken_connector(frr=frr_state(bgp_summary=down, bgp_neighbors=neighbors)), "MP161"
    )
    assert (
        "show bgp neighbors json: 10.0.1.1 last reset: BGP Notification send: "
        "OPEN Message Error/Bad Peer AS (2/2), 12 s ago"
    ) in refused.evidence
    assert "cannot come up" in refused.why and "remote-as" in refused.why
    # A hold timer that expired may recover: named, without the verdict.
    hold = {
        "10.0.1.1": {
            **neighbors["10.0.1.1"],
            "lastErrorCodeSubcode": "0400",
            "lastNotificationReason": "Hold Timer Expired",
        }
    }
    expired = find(broken_connector(frr=frr_state(bgp_summary=down, bgp_neighbors=hold)), "MP161")
    assert any("Hold Timer Expired (4/0)" in e for e in expired.evidence)
    assert "cannot come up" not in expired.why
    # Without the document (older snapshots; all sessions up): the summary alone.
    plain = find(broken_connector(frr=frr_state(bgp_summary=down)), "MP161")
    assert plain.evidence == ("show bgp summary json: 10.0.1.1 state Idle",)


def test_bgpd_without_watchfrr_is_a_warning_only_when_the_processes_are_known() -> None:
    config = "router bgp 65001\n"
    daemons = ("bgpd", "staticd", "zebra")
    bare = broken_connector(frr=frr_state(running_config=config, daemons=daemons))
    assert "MP165" not in ids(bare)  # an older snapshot: processes unknown, nothing said
    unwatched = msgspec.structs.replace(bare, processes=("bgpd", "staticd", "zebra", "sshd"))
    finding = find(unwatched, "MP165")
    assert finding.severity.value == "warning" and "watchfrr" in finding.evidence[0]
    watched = msgspec.structs.replace(unwatched, processes=(*unwatched.processes, "watchfrr"))
    assert "MP165" not in ids(watched)
    no_bgpd = broken_connector(frr=frr_state(running_config="", daemons=("staticd", "zebra")))
    assert "MP165" not in ids(msgspec.structs.replace(no_bgpd, processes=("zebra",)))


def test_bgpd_missing() -> None:
    snap = broken_connector(
        frr=frr_state(running_config="router bgp 65001\n", daemons=("zebra", "staticd"))
    )
    assert "MP160" in ids(snap)


def test_advertised_exact_missing_and_leak() -> None:
    summary = peers(state="Established", peerState="OK", pfxSnt=2)
    good = {"10.0.1.1": {"advertisedRoutes": {"100.64.0.0/12": {}, "100.96.0.0/12": {}}}}
    assert not {"MP163", "MP164"} & set(
        ids(broken_connector(frr=frr_state(bgp_summary=summary, bgp_advertised=good)))
    )
    leak = {"10.0.1.1": {"advertisedRoutes": {"100.64.0.0/12": {}, "192.168.9.0/24": {}}}}
    assert "MP164" in ids(broken_connector(frr=frr_state(bgp_summary=summary, bgp_advertised=leak)))
    none = {"10.0.1.1": {"advertisedRoutes": {}}}
    assert "MP163" in ids(broken_connector(frr=frr_state(bgp_summary=summary, bgp_advertised=none)))


def test_ipv4conf_defaults_roundtrip() -> None:
    assert Ipv4Conf(forwarding=1, rp_filter=0).src_valid_mark == 0
