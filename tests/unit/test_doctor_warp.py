"""The doctor's WARP findings: the Split Tunnels as root cause (MP101 text, MP104/MP105)
and the host checks Cloudflare's Mesh pages ask for (MP123, MP144, MP152/153, MP191-193)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from meshpath.checks import CheckContext, Finding, run_static_checks
from meshpath.checks.diagnose import diagnose
from meshpath.checks.report import Report
from meshpath.checks.targets import parse_target
from meshpath.config import Settings
from meshpath.state import (
    TABLE_MAIN,
    TABLE_WARP,
    BaseChain,
    NftState,
    PersistedSysctl,
    Route,
    Snapshot,
    SplitEntry,
    WarpState,
)
from tests.builders import broken_connector

TUN = "CloudflareWARP"
TARGET = (parse_target("10.0.1.50:3000"),)
DEFAULT_EXCLUDES = tuple(
    SplitEntry(value=v)
    for v in ("10.0.0.0/8", "100.64.0.0/10", "169.254.0.0/16", "172.16.0.0/12", "x.example")
)


def report(snap: Snapshot) -> Report:
    return diagnose(snap, Settings(), TARGET)


def finding(rep: Report, fid: str) -> Finding:
    return next(f for f in rep.findings if f.id == fid)


def without_warp_table(snap: Snapshot) -> Snapshot:
    routes = tuple(r for r in snap.routes if r.table != TABLE_WARP)
    return msgspec.structs.replace(snap, routes=routes)


def with_warp(snap: Snapshot, **fields: Any) -> Snapshot:
    return msgspec.structs.replace(snap, warp=msgspec.structs.replace(snap.warp, **fields))


# ------------------------------------------------------------------ the root cause
def test_profile_is_named_as_the_root_cause_from_the_table_gap() -> None:
    rep = report(broken_connector())
    cause = rep.root_cause
    assert cause is not None and cause.id == "MP101" and cause.fix_mode == "profile"
    assert "the Split Tunnels keep it out (excluded by 100.64.0.0/10)" in cause.title
    assert rep.verdict.startswith("PATH BROKEN: no route for the Cloudflare source range")
    assert "Split Tunnels" in rep.verdict
    joined = "\n".join(cause.evidence)
    assert "the gap there is 100.64.0.0/10" in joined
    fixes = " | ".join(cause.fix_commands)
    # Both remedies: the profile (the documented edit, computed) and the host.
    assert "meshpath fix --mode profile" in fixes
    assert "delete 100.64.0.0/10 from the Exclude list; add back 100.80.0.0/12" in fixes
    assert "ip route add 100.64.0.0/12 dev CloudflareWARP" in fixes
    assert "overrides manual routing" in cause.why
    mp104 = finding(rep, "MP104")
    assert mp104.severity == "error" and mp104.fix_mode == "profile"


def test_documented_example_with_both_ranges_excluded() -> None:
    """The builder routes the device range via main, not 65743: both ranges are outside
    WARP's table, so the edit is exactly the Reserved IPs page's example."""
    rep = report(broken_connector())
    mp105 = finding(rep, "MP105")
    assert "device range 100.96.0.0/12" in mp105.title
    edit = "delete 100.64.0.0/10 from the Exclude list; add back 100.80.0.0/12, 100.112.0.0/12"
    assert edit in " | ".join(mp105.fix_commands)


def test_evidence_from_warp_cli_entries() -> None:
    snap = with_warp(broken_connector(), split_mode="exclude", split_entries=DEFAULT_EXCLUDES)
    cause = report(snap).root_cause
    assert cause is not None
    assert (
        "warp-cli: Split Tunnels exclude entry 100.64.0.0/10 covers 100.64.0.0/12" in cause.evidence
    )
    assert "the gap there is" not in "\n".join(cause.evidence)


def test_include_mode_wants_an_include_entry() -> None:
    snap = broken_connector()
    routes = tuple(r for r in snap.routes if r.table != TABLE_WARP) + (
        Route(table=TABLE_WARP, family=4, dst="100.96.0.0/12", dev=TUN),
        Route(table=TABLE_WARP, family=4, dst="10.0.9.0/24", dev=TUN),
    )
    rep = report(msgspec.structs.replace(snap, routes=routes))
    cause = rep.root_cause
    assert cause is not None and cause.id == "MP101"
    assert "no include entry for 100.64.0.0/12" in cause.title
    assert "add 100.64.0.0/12 to the Include list" in " | ".join(cause.fix_commands)


def test_host_cause_when_warp_installed_no_table() -> None:
    rep = report(without_warp_table(broken_connector()))
    cause = rep.root_cause
    assert cause is not None and cause.id == "MP101" and cause.fix_mode == "route"
    assert "a host-side routing problem" in cause.title
    assert not any(f.id in ("MP104", "MP105") for f in rep.findings)


def test_host_route_works_but_profile_still_excludes() -> None:
    snap = broken_connector()
    fix = Route(table=TABLE_MAIN, family=4, dst="100.64.0.0/12", dev=TUN, protocol=232, metric=64)
    rep = report(msgspec.structs.replace(snap, routes=(*snap.routes, fix)))
    assert rep.ok
    mp104 = finding(rep, "MP104")
    assert mp104.severity == "warning" and "host-side route carries it" in mp104.title


def test_covered_range_has_no_split_finding() -> None:
    snap = broken_connector()
    routes = tuple(
        r for r in snap.routes if not (r.table == TABLE_WARP and r.dst == "100.64.0.0/10")
    )
    rep = report(msgspec.structs.replace(snap, routes=routes))
    assert rep.ok and not any(f.id in ("MP101", "MP104") for f in rep.findings)


# --------------------------------------------------------------------- host checks
def static_ids(snap: Snapshot) -> list[str]:
    ctx = CheckContext(snap, Settings(), lan_interfaces=("eth0",))
    return [f.id for f in run_static_checks(ctx)]


def persisted(*pairs: tuple[str, str]) -> tuple[PersistedSysctl, ...]:
    return tuple(PersistedSysctl(file=f, key="net.ipv4.ip_forward", value=v) for f, v in pairs)


@pytest.mark.parametrize(
    ("files", "fires"),
    [
        ((), True),
        ((("/usr/lib/sysctl.d/50-x.conf", "0"),), True),
        ((("/etc/sysctl.d/99-zzz-cloudflare-warp-connector.conf", "1"),), False),
        ((("/etc/sysctl.d/10-a.conf", "1"), ("/etc/sysctl.d/90-b.conf", "0")), True),
        (None, False),  # a schema-1 snapshot: not collected, not judged
    ],
)
def test_forwarding_not_persisted(files: tuple[tuple[str, str], ...] | None, fires: bool) -> None:
    value = None if files is None else persisted(*files)
    snap = msgspec.structs.replace(broken_connector(), persisted_sysctls=value)
    assert ("MP123" in static_ids(snap)) is fires


def _forward_drop(*rules: dict[str, Any]) -> Snapshot:
    chain = BaseChain(
        family="ip", table="filter", name="FORWARD", type="filter", hook="forward",
        priority=0, policy="drop",
    )  # fmt: skip
    items = [{"rule": r} for r in rules]
    nft = NftState(available=True, ruleset={"nftables": items}, base_chains=(chain,))
    return msgspec.structs.replace(broken_connector(), nft=nft)


def _iif_accept(dev: str) -> dict[str, Any]:
    return {
        "family": "ip", "table": "filter", "chain": "FORWARD", "handle": 5,
        "expr": [{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": dev}},
                 {"counter": None}, {"accept": None}],
    }  # fmt: skip


def test_forward_policy_drop_without_tunnel_accept() -> None:
    assert "MP144" in static_ids(_forward_drop())
    assert "MP144" in static_ids(_forward_drop(_iif_accept("docker0")))
    assert "MP144" not in static_ids(_forward_drop(_iif_accept(TUN)))


def test_warp_client_state() -> None:
    snap = with_warp(broken_connector(), status="Disconnected", registration="device")
    assert {"MP152", "MP153"} <= set(static_ids(snap))
    ok = with_warp(broken_connector(), registration="connector")
    assert not {"MP152", "MP153"} & set(static_ids(ok))
    absent = msgspec.structs.replace(broken_connector(), warp=WarpState(available=False))
    assert not {"MP152", "MP153"} & set(static_ids(absent))


def test_what_else_runs_here() -> None:
    procs = ("cloudflared", "tailscaled", "dnsmasq", "python3")
    snap = msgspec.structs.replace(broken_connector(), processes=procs)
    assert {"MP191", "MP192", "MP193"} <= set(static_ids(snap))
    edge = tuple(SplitEntry(value=v) for v in ("198.41.192.0/24", "198.41.200.0/24"))
    excluded = with_warp(snap, split_mode="exclude", split_entries=edge)
    assert "MP191" not in static_ids(excluded)
