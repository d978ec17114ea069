"""The lab's pure parts: scenarios, FRR rendering, WARP state, tcpdump-line matching."""

from __future__ import annotations

import ipaddress
from dataclasses import replace

import pytest

from meshpath.errors import BadInputError
from meshpath.lab import FIXES, SCENARIOS, frr, topology, warp
from meshpath.lab.capture import Hop, match_sequence, parse_line, parse_lines
from meshpath.lab.drift import DRILLS
from meshpath.lab.scenarios import (
    REPORT_TRACE,
    Observation,
    WorkerResult,
    evaluate,
    get_scenario,
)
from meshpath.lab.state import LabState, is_stale

# The field report's trace (tcpdump -i any -n host 10.0.1.50), as the report prints it.
REPORT_TEXT = """\
CloudflareWARP In  IP 100.64.12.189.9025 > 10.0.1.50.3000: [S], seq 710527279
eth0           Out IP 100.64.12.189.9025 > 10.0.1.50.3000: [S], seq 710527279
eth0           In  IP 10.0.1.50.3000 > 100.64.12.189.9025: [S.], seq 830383984, ack 710527280
eth0           Out IP 10.0.1.50.3000 > 100.64.12.189.9025: [S.], seq 830383984, ack 710527280
CloudflareWARP In  IP 100.64.12.189.9025 > 10.0.1.50.3000: [S], seq 710527279
"""
# The same failure over IPv6, as the lab's broken scenario captures it on conn.
REPORT_TEXT6 = """\
CloudflareWARP In  IP6 2606:4700:cf1:5000::5.43901 > fd00:1::50.3000: Flags [S], seq 3836865506
eth0  Out IP6 2606:4700:cf1:5000::5.43901 > fd00:1::50.3000: Flags [S], seq 3836865506
eth0  In  IP6 fd00:1::50.3000 > 2606:4700:cf1:5000::5.43901: Flags [S.], seq 3926163976, ack 1
eth0  Out IP6 fd00:1::50.3000 > 2606:4700:cf1:5000::5.43901: Flags [S.], seq 3926163976, ack 1
CloudflareWARP In  IP6 2606:4700:cf1:5000::5.43901 > fd00:1::50.3000: Flags [S], seq 3836865506
"""
TCPDUMP_LINE = (
    "22:34:00.930967 CloudflareWARP In  IP 100.64.12.189.55063 > 10.0.1.50.3000: "
    "Flags [S], seq 1350041185, win 64480, options [mss 1240], length 0"
)


def test_parse_real_tcpdump_line() -> None:
    p = parse_line(TCPDUMP_LINE)
    assert p is not None
    assert (p.iface, p.direction, p.src, p.sport, p.dst, p.dport, p.flags) == (
        "CloudflareWARP",
        "In",
        "100.64.12.189",
        55063,
        "10.0.1.50",
        3000,
        "S",
    )


def test_non_tcp_lines_are_skipped() -> None:
    assert parse_line("tcpdump: listening on any, link-type LINUX_SLL2") is None
    assert parse_line("12:00:00.1 eth0 Out IP 10.0.1.2 > 10.0.1.50: ICMP redirect") is None


def test_report_trace_matches_report_text() -> None:
    assert match_sequence(REPORT_TRACE, parse_lines(REPORT_TEXT)).ok


def test_sequence_needs_order_and_names_the_missing_hop() -> None:
    packets = parse_lines(REPORT_TEXT)
    reordered = (packets[2], packets[0], packets[1])
    m = match_sequence(REPORT_TRACE[:3], reordered)
    assert not m.ok and m.matched == 2
    assert m.missing == REPORT_TRACE[2]
    assert "eth0 In" in m.missing.describe()


def test_hop_address_filters() -> None:
    p = parse_lines(REPORT_TEXT)[0]
    assert Hop("CloudflareWARP", "In", "S", src="100.64.12.189").matches(p)
    assert not Hop("CloudflareWARP", "In", "S", src="100.64.12.190").matches(p)
    assert not Hop("CloudflareWARP", "Out", "S").matches(p)


def test_scenarios_are_complete() -> None:
    names = [s.name for s in SCENARIOS]
    assert names == [
        "broken",
        "gateway",
        "nat",
        "route",
        "bgp",
        "nat-only",
        "tailscale-overlap",
        "drift",
        "profile",
        "reconnect",
        "ha",
        "ha-equal",
    ]
    for s in SCENARIOS:
        assert s.fix is None or s.fix in FIXES, s.name
        assert s.drill is None or s.drill in DRILLS, s.name
    assert get_scenario("nat-only").expect.status == 500
    assert get_scenario("route").expect.seen_source == topology.WORKER_SOURCE
    assert get_scenario("nat").expect.seen_source == topology.LAN_ADDR["conn"]


def test_unknown_scenario_is_bad_input() -> None:
    with pytest.raises(BadInputError, match="unknown lab scenario 'nope'.*broken"):
        get_scenario("nope")


def _obs(status: int, body: str, sources: tuple[str, ...], text: str = "") -> Observation:
    """An observation of the IPv4 call; its IPv6 half is broken's evidence (the scenarios
    without an IPv6 call ignore it)."""
    return Observation(
        WorkerResult(status, body, None),
        sources,
        parse_lines(text),
        worker6=WorkerResult(500, "handshake timeout", None),
        packets6=parse_lines(REPORT_TEXT6),
    )


def test_evaluate_broken_judges_the_ipv6_call_on_its_own() -> None:
    """broken's IPv6 expectation: the report's five hops over IPv6, nothing at the
    service. Each deviation of the IPv6 half fails a (v6) check; a missing call too."""
    broken = get_scenario("broken")
    base = _obs(500, "handshake timeout", (), REPORT_TEXT)
    served = replace(base, worker6=WorkerResult(200, "{}", None), service_sources6=("fd00:1::2",))
    bad = {c.name for c in evaluate(broken, served) if not c.ok}
    assert bad == {"worker status (v6)", "worker body (v6)", "service log (v6)"}
    v4_hops = replace(base, packets6=parse_lines(REPORT_TEXT))
    assert [c.name for c in evaluate(broken, v4_hops) if not c.ok] == ["trace on conn (v6)"]
    uncalled = replace(base, worker6=None)
    assert [c.name for c in evaluate(broken, uncalled) if not c.ok] == ["worker status (v6)"]


def test_evaluate_broken_passes_on_the_reports_evidence() -> None:
    checks = evaluate(get_scenario("broken"), _obs(500, "handshake timeout", (), REPORT_TEXT))
    assert all(c.ok for c in checks), checks


def test_evaluate_catches_each_deviation() -> None:
    broken = get_scenario("broken")
    served = evaluate(broken, _obs(200, "{}", ("100.64.12.189",), REPORT_TEXT))
    assert {c.name for c in served if not c.ok} == {"worker status", "worker body", "service log"}
    no_trace = evaluate(broken, _obs(500, "handshake timeout", (), REPORT_TEXT.splitlines()[0]))
    assert [c.name for c in no_trace if not c.ok] == ["trace on conn"]
    nat_seen_wrong = evaluate(get_scenario("nat"), _obs(200, "{}", ("100.64.12.189",)))
    assert any(c.name == "service saw" and not c.ok for c in nat_seen_wrong)


def test_evaluate_bgp_requires_exactly_the_two_ranges() -> None:
    scn = get_scenario("bgp")
    base = _obs(200, "{}", ("100.64.12.189",))
    leaked = Observation(
        base.worker,
        base.service_sources,
        base.packets,
        frozenset({"100.64.0.0/12", "100.96.0.0/12", frr.LEAK_CANARY}),
    )
    bad = [c for c in evaluate(scn, leaked) if not c.ok]
    assert "bgp table" in {c.name for c in bad}


def test_connector_frr_config_filters_out_and_has_inbound_policy() -> None:
    text = frr.render_bgpd(frr.connector_config())
    assert "ip prefix-list CF-MESH seq 10 permit 100.64.0.0/12" in text
    assert "ip prefix-list CF-MESH seq 20 permit 100.96.0.0/12" in text
    assert "redistribute static route-map CF-MESH-OUT" in text
    assert "neighbor 10.0.1.1 route-map CF-MESH-OUT out" in text
    assert "neighbor 10.0.1.1 route-map ALLOW-ALL in" in text  # RFC 8212
    assert "timers bgp 1 3" in text
    statics = frr.render_staticd(frr.connector_config())
    assert "ip route 100.64.0.0/12 CloudflareWARP" in statics
    assert frr.LEAK_CANARY in statics  # present as a static, kept out by the prefix-list
    assert frr.LEAK_CANARY not in text


def test_every_neighbor_has_both_policies() -> None:
    for cfg in (frr.router_config(True), frr.connector_config(), frr.tailnet_config()):
        text = frr.render_bgpd(cfg)
        for n in cfg.neighbors:
            assert f"neighbor {n.address} route-map {n.policy_in} in" in text
            assert f"neighbor {n.address} route-map {n.policy_out} out" in text


def test_daemon_argv_keeps_every_path_in_the_run_dir() -> None:
    argv = frr.daemon_argv("bgpd", "/r/bgpd.conf", "/r")
    assert argv[0] == "/usr/lib/frr/bgpd"
    assert argv[argv.index("-z") : argv.index("-z") + 2] == ["-z", "/r/zserv.api"]
    assert argv[-2:] == ["--vty_socket", "/r"]


def test_warp_table_leaves_out_the_source_range_and_the_lan() -> None:
    nets = warp.tunnel_prefixes()
    assert 200 < len(nets) < 5000
    for addr in ("100.64.12.189", "10.0.1.50", "100.64.0.5"):
        ip = ipaddress.ip_address(addr)
        assert not any(ip in n for n in nets), addr
    assert ipaddress.ip_network(topology.DEVICE_RANGE) in nets
    assert any(ipaddress.ip_address("1.1.1.1") in n for n in nets)
    batch = warp.route_batch()
    assert "rule add pref 32765 not fwmark 0x100cf lookup 65743" in batch
    assert "suppress_prefixlength 0" in batch


def test_namespace_names_round_trip() -> None:
    assert topology.ns_name("ab12", "conn") == "mplab-ab12-conn"
    assert topology.instance_of("mplab-ab12-conn") == "ab12"
    assert topology.instance_of("mplab-ab12-nosuchnode") is None
    assert topology.instance_of("mpt-1-0") is None


def test_interface_names_fit_the_kernel_limit() -> None:
    names = {topology.TUN_EDGE, topology.TUN_CONN, topology.LAN_IF, topology.BRIDGE}
    names |= set(topology.HOSTS)
    assert all(len(n) <= 15 for n in names)
    batch = topology.lan_batch("ab12", ["conn"])
    assert "link add conn type veth peer name eth0 netns mplab-ab12-conn" in batch


def test_stale_lab_detection() -> None:
    assert is_stale(None)
    assert not is_stale(LabState(instance="a", run_dir="/x", owner_pid=None))
    assert not is_stale(LabState(instance="a", run_dir="/x", owner_pid=1))
    assert is_stale(LabState(instance="a", run_dir="/x", owner_pid=2**22 + 7))


def test_not_root_is_exit_3_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from meshpath.cli import main

    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert main(["lab", "run", "broken"]) == 3
    err = capsys.readouterr().err.strip()
    assert "needs root" in err and "\n" not in err


def test_missing_frr_is_exit_3_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from meshpath.cli import main

    monkeypatch.setattr("os.geteuid", lambda: 0)
    monkeypatch.setattr("meshpath.lab.core.FRR_BINARIES", ("/nonexistent/frr/zebra",))
    assert main(["lab", "down"]) == 3
    err = capsys.readouterr().err.strip()
    assert "'/nonexistent/frr/zebra' not found" in err and "install FRR" in err
    assert "\n" not in err


def test_unknown_scenario_on_the_cli_is_exit_2() -> None:
    from meshpath.cli import main

    assert main(["lab", "up", "nope"]) == 2


def test_public_lab_api_is_pinned() -> None:
    import meshpath.lab as lab_pkg

    assert set(lab_pkg.__all__) == {
        "FIXES",
        "SCENARIOS",
        "SCENARIO_NAMES",
        "CaptureResult",
        "Check",
        "FixStep",
        "Hop",
        "Lab",
        "Packet",
        "Scenario",
        "ScenarioResult",
        "WorkerResult",
        "clean_leftovers",
        "get_scenario",
        "match_sequence",
        "parse_lines",
        "preflight",
        "remove_lab",
        "run_many",
        "run_scenario",
    }
    for name in ("create", "attach", "setup", "ns", "exec", "worker_call", "capture", "down"):
        assert callable(getattr(lab_pkg.Lab, name)), name


def test_pure_lab_modules_do_no_io() -> None:
    import ast
    from pathlib import Path

    import meshpath.lab as lab_pkg

    root = Path(lab_pkg.__file__).parent
    for module in ("topology", "warp", "frr", "capture", "scenarios"):
        tree = ast.parse((root / f"{module}.py").read_text())
        imported: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                imported.add((node.module or "").split(".")[0])
        assert not imported & {"subprocess", "socket", "os"}, module


def test_router_accepts_ipv6_routes_on_the_same_sessions() -> None:
    text = frr.render_bgpd(frr.router_config(False))
    v6 = text[text.index(" address-family ipv6 unicast") :]
    assert "  neighbor 10.0.1.2 activate" in v6
    assert "  neighbor 10.0.1.2 route-map ALLOW-ALL in" in v6
    assert "  neighbor 10.0.1.2 route-map DENY-ALL out" in v6  # advertises nothing, v6 too
    assert "address-family ipv6" not in frr.render_bgpd(frr.connector_config())


def test_evaluate_bgp_holds_the_ipv6_table_to_the_ipv6_source_range() -> None:
    scn = get_scenario("bgp")
    both = frozenset({"2606:4700:cf1:5000::/64", "2606:4700:cf1:1000::/64"})
    assert scn.expect6 is not None and scn.expect6.bgp_from_conn == both
    route6 = """\
CloudflareWARP In  IP6 2606:4700:cf1:5000::5.40000 > fd00:1::50.3000: Flags [S], seq 1
CloudflareWARP Out IP6 fd00:1::50.3000 > 2606:4700:cf1:5000::5.40000: Flags [S.], seq 2, ack 2
"""
    good = Observation(
        WorkerResult(200, "{}", None),
        ("100.64.12.189",),
        parse_lines(REPORT_TEXT),
        worker6=WorkerResult(200, "{}", None),
        service_sources6=("2606:4700:cf1:5000::5",),
        packets6=parse_lines(route6),
        bgp6_from_conn=both,
    )
    v6_checks = {c.name: c.ok for c in evaluate(scn, good) if c.name.endswith("(v6)")}
    assert v6_checks == {
        "worker status (v6)": True,
        "service saw (v6)": True,
        "trace on conn (v6)": True,
        "bgp table (v6)": True,
    }
    leaked = replace(good, bgp6_from_conn=both | {"2001:db8::/32"})
    assert [c.name for c in evaluate(scn, leaked) if c.name.endswith("(v6)") and not c.ok] == [
        "bgp table (v6)"
    ]
