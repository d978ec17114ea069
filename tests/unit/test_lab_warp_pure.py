"""The living WARP's pure parts: the API emulator's answers, the table a profile yields,
the route diff, and the warp-cli stand-in's output (parsed back by the collector)."""

from __future__ import annotations

import ipaddress
import subprocess
from pathlib import Path
from typing import Any

from meshpath.collect.warp import parse_registration, parse_split_list, parse_warp
from meshpath.lab import cfapi, topology, warp, warpcli

ACCOUNT = "6d1ab0c3e5f74a2b9c8d0e1f2a3b4c5d"
BASE = f"/client/v4/accounts/{ACCOUNT}/devices/policy"


def state() -> dict[str, Any]:
    data = cfapi.new_state(ACCOUNT, {"edit": "edit", "read": "read"}, [{"address": "10.0.0.0/8"}])
    data["profiles"]["p-1"] = {"exclude": [], "include": [{"address": "100.96.0.0/12"}]}
    return data


def test_api_answers_like_cloudflare() -> None:
    s = state()
    assert cfapi.answer(s, "GET", f"{BASE}/exclude", "edit", None) == (
        200,
        {"success": True, "errors": [], "messages": [], "result": [{"address": "10.0.0.0/8"}]},
        False,
    )
    assert cfapi.answer(s, "GET", f"{BASE}/p-1/include", "read", None)[1]["result"] == [
        {"address": "100.96.0.0/12"}
    ]
    code, body, _ = cfapi.answer(s, "GET", f"{BASE}/exclude", "nope", None)
    assert code == 401 and body["success"] is False and body["errors"][0]["code"] == 10000
    assert cfapi.answer(s, "PUT", f"{BASE}/exclude", "read", [])[0] == 403
    assert cfapi.answer(s, "GET", f"{BASE}/nope/exclude", "edit", None)[0] == 404
    other = "/client/v4/accounts/" + "f" * 32 + "/devices/policy/exclude"
    assert cfapi.answer(s, "GET", other, "edit", None)[0] == 404


def test_api_put_validates_and_switches_mode() -> None:
    s = state()
    for bad in ({"address": "x"}, [{"address": "nope"}], [{"host": "a", "address": "1.1.1.1"}],
                [{"address": "1.1.1.1", "description": "d" * 101}]):  # fmt: skip
        assert cfapi.answer(s, "PUT", f"{BASE}/exclude", "edit", bad)[0] == 400
    code, body, changed = cfapi.answer(
        s, "PUT", f"{BASE}/include", "edit", [{"address": "100.64.0.0/12"}]
    )
    assert code == 200 and changed and body["result"] == [{"address": "100.64.0.0/12"}]
    assert s["profiles"]["default"]["exclude"] == []  # one list per profile


def test_tables_for_both_modes() -> None:
    excl = warp.tunnel_prefixes()
    assert ipaddress.ip_network("100.96.0.0/12") in excl  # the lab's profile routes devices
    assert not any(ipaddress.ip_address("100.64.12.189") in n for n in excl)
    incl = warp.tunnel_prefixes(includes=["100.96.0.0/12", "x.example", "2606:4700::/32"])
    assert incl == [ipaddress.IPv4Network("100.96.0.0/12")]
    fixed = warp.tunnel_prefixes(
        excludes=[e for e in warp.LAB_EXCLUDES if e != "100.64.0.0/11"] + ["100.80.0.0/12"]
    )
    assert any(ipaddress.ip_address("100.64.12.189") in n for n in fixed)


def test_route_diff_replaces_and_deletes_only_the_difference() -> None:
    nets = [ipaddress.IPv4Network(n) for n in ("1.0.0.0/8", "2.0.0.0/8")]
    text = warp.route_diff(["2.0.0.0/8", "3.0.0.0/8"], nets)
    assert text == (
        "route del 3.0.0.0/8 table 65743\nroute replace 1.0.0.0/8 dev CloudflareWARP table 65743\n"
    )
    assert warp.route_diff(["1.0.0.0/8", "2.0.0.0/8"], nets) == ""


STATE = {
    "status": "Connected", "mode": "exclude", "account": ACCOUNT, "version": "2025.2.600.0",
    "entries": [{"address": "100.64.0.0/11"}, {"address": "1.2.3.0/24", "description": "x"}],
}  # fmt: skip


def test_stand_in_output_parses_back() -> None:
    out = warpcli.answers(STATE)
    assert parse_warp(out["status"]).status == "Connected"
    split = parse_split_list(out["tunnel-ip-list"])
    assert split is not None and [(e.value, e.note) for e in split[1]] == [
        ("100.64.0.0/11", None),
        ("1.2.3.0/24", "x"),
    ]
    settings = parse_split_list(out["settings"])
    assert settings is not None and settings[0] == "exclude" and len(settings[1]) == 2
    assert parse_registration(out["registration-show"], "") == "connector"
    include = warpcli.answers({**STATE, "mode": "include"})
    assert include["tunnel-ip-list"].startswith("Included routes:\n")


def test_stand_in_script(tmp_path: Path) -> None:
    warpcli.write_answers(STATE, tmp_path / "d")
    script = tmp_path / "warp-cli"
    script.write_text(warpcli.script(tmp_path / "d"))
    script.chmod(0o755)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(script), *args], capture_output=True, text=True, check=False)

    assert run("--accept-tos", "status").stdout == "Status update: Connected\n"
    assert run("tunnel", "ip", "list", "--accept-tos").stdout.startswith("Excluded routes:")
    assert run("--version").stdout == "warp-cli 2025.2.600.0\n"
    bad = run("connect")
    assert bad.returncode == 2 and "unrecognized subcommand 'connect'" in bad.stderr


def _covers(nets: list[ipaddress.IPv6Network], addr: str) -> bool:
    return any(ipaddress.ip_address(addr) in n for n in nets)


def test_v6_table_keeps_the_managed_range_in_the_tunnel() -> None:
    """The Split Tunnels page: the client removes 2606:4700:0cf1::/48 from any exclusion.
    So the default profile tunnels the Worker's IPv6 source but not the ULA LAN, and even a
    profile excluding all of IPv6 leaves exactly the /48; applied literally, nothing."""
    source6, lan6 = topology.WORKER_SOURCE6, topology.SERVICE_IP6
    default = warp.tunnel_prefixes6()
    assert _covers(default, source6) and not _covers(default, lan6)
    assert not _covers(default, "fe80::1") and not _covers(default, "ff02::1")
    assert _covers(default, "2001:db8::1")
    everything = [*warp.LAB_EXCLUDES, warp.ALL_V6]
    assert warp.tunnel_prefixes6(excludes=everything) == [warp.AUTO_MANAGED6]
    assert warp.tunnel_prefixes6(excludes=everything, auto_managed=False) == []
    literal = warp.tunnel_prefixes6(excludes=warp.LAB_EXCLUDES, auto_managed=False)
    assert literal == default  # the default list never touches the /48
    included = warp.tunnel_prefixes6(includes=["10.0.0.0/8", "2001:db8::/32"])
    assert included == [ipaddress.IPv6Network("2001:db8::/32"), warp.AUTO_MANAGED6]
    # The IPv4 table ignores the IPv6 entries the lab's default profile now carries.
    v4_only = [e for e in warp.LAB_EXCLUDES if ":" not in e]
    assert warp.tunnel_prefixes() == warp.tunnel_prefixes(excludes=v4_only)


def test_v6_rules_and_routes_are_batch_lines_of_the_right_family() -> None:
    four, six = warp.rule_lines(4), warp.rule_lines(6)
    assert six[0] == "rule add pref 32764 from ::/0 lookup main suppress_prefixlength 0"
    assert six[1] == "rule add pref 32765 not from ::/0 fwmark 0x100cf lookup 65743"
    assert four == warp.rule_lines()  # IPv4 unchanged
    text = warp.route_diff(["::/1"], [ipaddress.IPv6Network("2606:4700:cf1::/48")])
    assert text == (
        "route del ::/1 table 65743\n"
        "route replace 2606:4700:cf1::/48 dev CloudflareWARP table 65743\n"
    )


def test_lab_hosts_are_dual_stack() -> None:
    svc = topology.host_batch("svc")
    assert "addr add fd00:1::50/64 dev eth0 nodad" in svc
    assert "route add ::/0 via fd00:1::1 dev eth0" in svc
    conn = topology.host_batch("conn")
    assert "addr add 2606:4700:cf1:1000::5/128 dev CloudflareWARP nodad" in conn
    edge = topology.edge_batch()
    assert "addr add 2606:4700:cf1:5000::5/128 dev cfedge nodad" in edge
    assert "route add fd00:1::/64 dev cfedge src 2606:4700:cf1:5000::5" in edge
    assert topology.sysctls_for("conn")["net.ipv6.conf.all.forwarding"] == "1"
    assert "net.ipv6.conf.all.forwarding" not in topology.sysctls_for("svc")
    assert ipaddress.ip_address(topology.WORKER_SOURCE6) in ipaddress.ip_network(
        topology.SOURCE_RANGE6
    )
