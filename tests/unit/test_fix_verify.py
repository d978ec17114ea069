"""verify's judgement on hand-built snapshots, and the CLI's refusals (no host touched)."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from meshpath.cli import main
from meshpath.fix import PROTO_MESHPATH, Expect
from meshpath.fix.verify import judge
from meshpath.state import FrrState
from meshpath.state.model import PROTO_FRR_STATIC
from tests.builders import broken_connector
from tests.fix_builders import bgp_fixed, nat_fixed

NAT = Expect(
    tunnel="CloudflareWARP", ranges=("100.64.0.0/12",), route_proto=PROTO_MESHPATH, nat=True
)
BGP = Expect(
    tunnel="CloudflareWARP",
    ranges=("100.64.0.0/12", "100.96.0.0/12"),
    route_proto=PROTO_FRR_STATIC,
    nat=False,
    peer="10.0.1.1",
    advertised=("100.64.0.0/12", "100.96.0.0/12"),
)


def by_name(checks: tuple[object, ...]) -> dict[str, bool]:
    return {c.name: c.ok for c in checks}  # type: ignore[attr-defined]


def test_nat_fixed_connector_passes_and_broken_one_fails() -> None:
    assert all(by_name(judge(nat_fixed(), NAT)).values())
    broken = by_name(judge(broken_connector(), NAT))
    assert broken == {"route 100.64.0.0/12": False, "meshpath NAT": False}


def test_bgp_needs_selected_statics_established_session_and_exact_advertisement() -> None:
    routes = {p: [{"protocol": "static", "selected": True, "installed": True}] for p in BGP.ranges}
    summary = {"ipv4Unicast": {"peers": {"10.0.1.1": {"state": "Established"}}}}
    snap = bgp_fixed()
    frr = FrrState(
        available=True,
        running=True,
        daemons=snap.frr.daemons,
        ip_route=routes,
        bgp_summary=summary,
        running_config=snap.frr.running_config,
    )
    good = msgspec.structs.replace(snap, frr=frr)
    exact = frozenset(BGP.ranges)
    assert all(by_name(judge(good, BGP, exact)).values())
    leaked = by_name(judge(good, BGP, exact | {"198.51.100.0/24"}))
    assert leaked["advertised to 10.0.1.1"] is False
    assert by_name(judge(good, BGP, exact, (False, "status 500")))["worker round trip"] is False
    assert by_name(judge(bgp_fixed(), BGP, exact))["session 10.0.1.1"] is False


def test_fix_apply_without_root_is_exit_3_before_anything(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert main(["fix", "--mode", "nat", "--apply", "--root", str(tmp_path)]) == 3
    assert "needs root" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_unknown_mode_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fix", "--mode", "vpn"]) == 2
    assert "expected one of nat, route, bgp" in capsys.readouterr().err


def test_verify_without_a_journal_asks_for_the_mode(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["verify", "--root", str(tmp_path)]) == 2
    assert "pass --mode" in capsys.readouterr().err


def test_plan_from_a_saved_snapshot_prints_every_command(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from meshpath.state import codec

    path = tmp_path / "conn.json"
    codec.save(broken_connector(), path)
    assert main(["fix", "--mode", "nat", "--snapshot", str(path), "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "ip -4 route replace 100.64.0.0/12 dev CloudflareWARP proto 232" in out
    assert 'oifname "eth0" ip saddr 100.64.0.0/12 masquerade' in out
