"""WARP state: recorded warp-cli outputs (tests/data/warp/SOURCES), the Split Tunnels view
inferred from table 65743, the host files and processes, and schema 2 with schema 1 still
loading."""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path

import msgspec
import pytest

from meshpath.collect.host import (
    forwarding_lines,
    parse_sysctl_conf,
    processes_in_netns,
    read_persisted_sysctls,
)
from meshpath.collect.warp import (
    REGISTRATION_ARGV,
    SETTINGS_ARGV,
    STATUS_ARGV,
    TUNNEL_IP_ARGV,
    VERSION_ARGV,
    collect_warp,
    parse_registration,
    parse_split_list,
    parse_warp,
)
from meshpath.ranges import DEFAULT_RANGES
from meshpath.runner import RecordedRunner
from meshpath.state import SCHEMA_VERSION, TABLE_WARP, Route, codec
from meshpath.state.split import cover_of, gap_around, infer_split, paint, split_ranges
from tests.builders import broken_connector

DATA = Path(__file__).resolve().parents[1] / "data"
WARP = DATA / "warp"
TUN = "CloudflareWARP"


def _text(name: str) -> str:
    return (WARP / name).read_text()


# -------------------------------------------------------------------- recorded outputs
def test_every_fixture_is_named_in_sources() -> None:
    sources = _text("SOURCES")
    for path in WARP.glob("*.txt"):
        assert path.name in sources, f"{path.name} has no source in SOURCES"


@pytest.mark.parametrize(
    ("name", "status"),
    [("status-connected.txt", "Connected"), ("status-disconnected.txt", "Disconnected")],
)
def test_status_lines(name: str, status: str) -> None:
    assert parse_warp(_text(name)).status == status


def test_settings_of_the_troubleshooting_guide() -> None:
    text = _text("settings-troubleshooting-guide.txt")
    state = parse_warp(text)
    assert state.mode == "WarpWithDnsOverHttps"
    split = parse_split_list(text)
    assert split is not None
    mode, entries = split
    # The "..." elisions are skipped; the block ends at "(network policy) Fallback domains".
    assert mode == "exclude"
    assert [(e.value, e.note) for e in entries] == [
        ("1xx.1xx.1xx.1xx/25", "zoom"),
        ("cname.user.net", None),
    ]


def test_tunnel_ip_list_exclude_and_include() -> None:
    excl = parse_split_list(_text("tunnel-ip-list-exclude.txt"))
    incl = parse_split_list(_text("tunnel-ip-list-include.txt"))
    assert excl is not None and incl is not None
    assert excl[0] == "exclude" and "100.64.0.0/10" in [e.value for e in excl[1]]
    assert excl[1][-1].note == "CLI exclude"
    assert incl[0] == "include" and [e.value for e in incl[1]][:2] == [
        "100.96.0.0/12",
        "100.64.0.0/12",
    ]


def test_no_split_block_is_none() -> None:
    assert parse_split_list(_text("status-connected.txt")) is None


@pytest.mark.parametrize(
    ("text", "status", "want"),
    [
        ("", "Unable\nReason: Registration Missing", "missing"),
        ("Account type: Team\nDevice ID: x\n", "Connected", "device"),
        ("Account type: Team\nwarp_connector@example.cloudflareaccess.com", "", "connector"),
        ("", "Connected", None),
    ],
)
def test_registration_kind(text: str, status: str, want: str | None) -> None:
    assert parse_registration(text, status) == want


def _runner(answers: dict[tuple[str, ...], str]) -> RecordedRunner:
    runner = RecordedRunner(programs=frozenset({"warp-cli"}))
    for argv, out in answers.items():
        runner.answer(argv, out)
    return runner


def test_collect_prefers_tunnel_ip_list() -> None:
    runner = _runner(
        {
            STATUS_ARGV: _text("status-connected.txt"),
            SETTINGS_ARGV: _text("settings-troubleshooting-guide.txt"),
            TUNNEL_IP_ARGV: _text("tunnel-ip-list-exclude.txt"),
            VERSION_ARGV: "warp-cli 2025.2.600.0\n",
        }
    )
    state = collect_warp(runner)
    assert state.status == "Connected" and state.version == "2025.2.600.0"
    assert state.split_mode == "exclude" and state.split_entries is not None
    assert state.split_entries[1].value == "100.64.0.0/10"
    assert state.registration is None  # `registration show` unanswered: unknown, no error
    assert state.error is None


def test_collect_falls_back_to_settings() -> None:
    """An older client without `tunnel ip list` (exit 127 here): the settings block."""
    runner = _runner(
        {
            STATUS_ARGV: _text("status-disconnected.txt"),
            SETTINGS_ARGV: _text("settings-troubleshooting-guide.txt"),
            REGISTRATION_ARGV: "Account type: Team\nDevice ID: abc\n",
        }
    )
    state = collect_warp(runner)
    assert state.status == "Disconnected" and state.split_mode == "exclude"
    assert state.registration == "device" and state.version is None


# ------------------------------------------------------------- table 65743 inference
def _warp_table(*dsts: str, family: int = 4) -> list[Route]:
    return [Route(table=TABLE_WARP, family=family, dst=d, dev=TUN) for d in dsts]


def _complement(excludes: list[str]) -> list[str]:
    space = [ipaddress.IPv4Network("0.0.0.0/0")]
    for text in excludes:
        ex = ipaddress.IPv4Network(text)
        nxt: list[ipaddress.IPv4Network] = []
        for net in space:
            if net.overlaps(ex):
                nxt.extend(net.address_exclude(ex) if ex.subnet_of(net) else [])
            else:
                nxt.append(net)
        space = nxt
    return [str(n) for n in space]


DEFAULT_EXCLUDES = ["10.0.0.0/8", "100.64.0.0/10", "169.254.0.0/16", "172.16.0.0/12",
                    "192.168.0.0/16", "224.0.0.0/24", "240.0.0.0/4"]  # fmt: skip


def _view(routes: list[Route]) -> dict[str, tuple[str, tuple[str, ...]]]:
    snap = msgspec.structs.replace(broken_connector(), routes=tuple(routes))
    view = infer_split(snap, TUN, split_ranges(DEFAULT_RANGES))
    return {"mode": (view.mode, ())} | {c.key: (c.cover, c.gap) for c in view.ranges}


def test_default_exclude_list_leaves_the_cgnat_gap() -> None:
    got = _view(_warp_table(*_complement(DEFAULT_EXCLUDES)))
    assert got["mode"][0] == "exclude"
    assert got["source_v4"] == ("none", ("100.64.0.0/10",))
    assert got["device_v4"] == ("none", ("100.64.0.0/10",))
    assert got["source_v6"][0] == "none"  # no IPv6 routes at all in this table


def test_documented_fix_covers_both_ranges() -> None:
    """Reserved IPs page: delete 100.64.0.0/10, add back 100.80.0.0/12 and 100.112.0.0/12."""
    excludes = [e for e in DEFAULT_EXCLUDES if e != "100.64.0.0/10"]
    got = _view(_warp_table(*_complement([*excludes, "100.80.0.0/12", "100.112.0.0/12"])))
    assert got["mode"][0] == "exclude"
    assert got["source_v4"] == ("full", ()) and got["device_v4"] == ("full", ())


def test_old_docs_recipe_covers_devices_only() -> None:
    """The warp-to-warp recipe (re-add 100.64.0.0/11 and 100.112.0.0/12) keeps the source
    range excluded: the gap is exactly the re-added /11."""
    excludes = [e for e in DEFAULT_EXCLUDES if e != "100.64.0.0/10"]
    got = _view(_warp_table(*_complement([*excludes, "100.64.0.0/11", "100.112.0.0/12"])))
    assert got["source_v4"] == ("none", ("100.64.0.0/11",))
    assert got["device_v4"] == ("full", ())


@pytest.mark.parametrize(
    ("include", "source", "device"),
    [
        (["100.96.0.0/12", "10.0.2.0/24"], "none", "full"),
        (["100.64.0.0/12", "100.96.0.0/12"], "full", "full"),
        (["100.64.0.0/13"], "partial", "none"),
    ],
)
def test_include_mode(include: list[str], source: str, device: str) -> None:
    got = _view(_warp_table(*include))
    assert got["mode"][0] == "include"
    assert (got["source_v4"][0], got["device_v4"][0]) == (source, device)


def test_no_table_is_empty() -> None:
    got = _view([])
    assert got["mode"][0] == "empty" and got["source_v4"] == ("none", ("0.0.0.0/0",))


def test_more_specific_non_tunnel_route_punches_a_hole() -> None:
    """Longest prefix wins: a throw for 100.64.0.0/10 inside 0.0.0.0/1 is a gap."""
    got = _view(
        [
            *_warp_table("0.0.0.0/1", "128.0.0.0/1"),
            Route(table=TABLE_WARP, family=4, dst="100.64.0.0/10", type="throw"),
            Route(table=TABLE_WARP, family=4, dst="100.64.0.0/12", dev="eth0"),
        ]
    )
    assert got["source_v4"] == ("none", ("100.64.0.0/10",))


def test_ipv6_coverage() -> None:
    got = _view(_warp_table("2606:4700:cf1::/48", family=6))
    assert got["source_v6"] == ("full", ()) and got["device_v6"] == ("full", ())


def test_builder_snapshot_view() -> None:
    view = infer_split(broken_connector(), TUN, split_ranges(DEFAULT_RANGES))
    assert view.mode == "exclude" and view.table_routes == 2


def test_paint_matches_a_brute_force_lookup() -> None:
    """The painted coverage equals a longest-prefix lookup of sample addresses."""
    routes = [
        *_warp_table("0.0.0.0/1", "128.0.0.0/2", "100.64.0.0/12", "100.70.0.0/16"),
        Route(table=TABLE_WARP, family=4, dst="100.64.0.0/10", type="throw"),
        Route(table=TABLE_WARP, family=4, dst="100.70.1.0/24", type="blackhole"),
    ]
    segments = paint(routes, TUN, 4)
    for text in ("1.2.3.4", "100.65.0.1", "100.70.1.9", "100.70.2.9", "100.90.0.1", "200.1.1.1"):
        ip = ipaddress.IPv4Address(text)
        best = max(
            (r for r in routes if ip in ipaddress.IPv4Network(r.dst)),
            key=lambda r: ipaddress.IPv4Network(r.dst).prefixlen,
            default=None,
        )
        want = best is not None and best.type == "unicast" and best.dev == TUN
        net = ipaddress.IPv4Network(f"{text}/32")
        assert (cover_of(segments, net) == "full") is want, text
    assert gap_around(segments, ipaddress.IPv4Network("100.70.1.0/24")) == ("100.70.1.0/24",)


# ----------------------------------------------------------------- host files, processes
def test_sysctl_conf_parsing() -> None:
    text = "# c\n; c\nnet.ipv4.ip_forward = 1\n-net/ipv6/conf/all/forwarding=1\nkernel.x = 3\n"
    assert parse_sysctl_conf(text) == [
        ("net.ipv4.ip_forward", "1"),
        ("net.ipv6.conf.all.forwarding", "1"),
        ("kernel.x", "3"),
    ]
    keys = [p.key for p in forwarding_lines("/etc/sysctl.d/x.conf", text)]
    assert keys == ["net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"]


def test_persisted_sysctls_in_apply_order(tmp_path: Path) -> None:
    (tmp_path / "etc/sysctl.d").mkdir(parents=True)
    (tmp_path / "usr/lib/sysctl.d").mkdir(parents=True)
    (tmp_path / "etc/sysctl.d/99-zzz-cloudflare-warp-connector.conf").write_text(
        "net.ipv4.ip_forward = 1\n"
    )
    (tmp_path / "usr/lib/sysctl.d/50-default.conf").write_text("net.ipv4.ip_forward = 0\n")
    (tmp_path / "usr/lib/sysctl.d/99-zzz-cloudflare-warp-connector.conf").write_text(
        "net.ipv4.ip_forward = 0\n"  # shadowed by /etc's file of the same name
    )
    (tmp_path / "etc/sysctl.conf").write_text("#net.ipv4.ip_forward=1\n")
    got = [(p.file, p.value) for p in read_persisted_sysctls(tmp_path)]
    assert got == [
        ("/usr/lib/sysctl.d/50-default.conf", "0"),
        ("/etc/sysctl.d/99-zzz-cloudflare-warp-connector.conf", "1"),
    ]


def test_processes_in_this_namespace(tmp_path: Path) -> None:
    """Only processes whose ns/net is this namespace count (symlinks stand in for /proc)."""
    for pid, comm, ns in (("10", "cloudflared", "/proc/self/ns/net"), ("11", "x", "/")):
        (tmp_path / pid / "ns").mkdir(parents=True)
        (tmp_path / pid / "comm").write_text(comm + "\n")
        os.symlink(ns, tmp_path / pid / "ns" / "net")
    assert processes_in_netns(None, proc=tmp_path) == ("cloudflared",)


# --------------------------------------------------------------------------- schema 2
@pytest.mark.parametrize("name", sorted(p.name for p in (DATA / "snapshots").glob("*.json")))
def test_schema_1_fixtures_still_load(name: str) -> None:
    snap = codec.load(DATA / "snapshots" / name)
    assert snap.schema_version == 1
    assert snap.warp_split is None and snap.persisted_sysctls is None and snap.processes is None
    assert snap.warp.split_entries is None


def test_schema_2_round_trip() -> None:
    snap = broken_connector()
    view = infer_split(snap, TUN, split_ranges(DEFAULT_RANGES))
    snap = msgspec.structs.replace(snap, warp_split=view, processes=("cloudflared",))
    again = codec.loads(codec.dumps(snap))
    assert again == snap and again.schema_version == SCHEMA_VERSION == 2
    assert json.loads(codec.dumps(snap))["warp_split"]["mode"] == "exclude"
