from __future__ import annotations

import msgspec

from meshpath.checks.context import CheckContext
from meshpath.checks.path import PathOutcome
from meshpath.checks.report import Disagreement, build_report
from meshpath.checks.targets import Target, default_targets, parse_target
from meshpath.config import Settings
from meshpath.state import Route
from tests.builders import broken_connector

T = Target("10.0.1.50", 3000, "eth0")
CTX = CheckContext(broken_connector(), Settings(), lan_interfaces=("eth0",))

MISROUTED = PathOutcome(
    T,
    "100.64.12.189",
    "misrouted",
    stage="reply",
    cause="no-return-route",
    egress="eth0",
    hops=("reply 10.0.1.50:3000 > 100.64.12.189 in eth0: main 0.0.0.0/0 via 10.0.1.1 dev eth0",),
)
DELIVERED = PathOutcome(T, "100.64.12.189", "delivered", egress="CloudflareWARP")


def test_field_report_root_cause_and_handshake_explanation() -> None:
    report = build_report(CTX, (MISROUTED,))
    assert not report.ok
    cause = report.root_cause
    assert cause is not None and cause.id == "MP101"
    assert report.verdict.startswith("PATH BROKEN: no route for the Cloudflare source range")
    assert report.explanation is not None and "handshake timeout" in report.explanation
    assert "ip route add 100.64.0.0/12 dev CloudflareWARP" in " ".join(cause.fix_commands)
    assert MISROUTED.hops[0] in cause.evidence


def test_delivered_path_is_ok_with_lan_return_warning() -> None:
    snap = broken_connector()
    route = Route(table=254, family=4, dst="100.64.0.0/12", dev="CloudflareWARP")
    ctx = CheckContext(
        msgspec.structs.replace(snap, routes=(*snap.routes, route)),
        Settings(),
        lan_interfaces=("eth0",),
    )
    report = build_report(ctx, (DELIVERED,))
    assert report.ok and report.verdict == "PATH OK"
    ids = [f.id for f in report.findings]
    assert "MP103" in ids  # meshpath cannot see the LAN's way back: warn, don't fail
    assert "MP101" not in ids


def test_rp_filter_drop_outranks_misroute() -> None:
    dropped = PathOutcome(
        T,
        "100.64.12.189",
        "dropped",
        stage="request",
        cause="rp_filter",
        detail="rp_filter=1 on CloudflareWARP: reverse route via eth0",
    )
    report = build_report(CTX, (dropped, MISROUTED))
    assert report.root_cause is not None and report.root_cause.id == "MP130"
    assert report.explanation is None


def test_many_targets_same_cause_is_one_finding() -> None:
    other = PathOutcome(
        Target("10.0.2.9", 80),
        "100.64.12.189",
        "misrouted",
        stage="reply",
        cause="no-return-route",
        egress="eth0",
    )
    report = build_report(CTX, (MISROUTED, other))
    assert [f.id for f in report.findings].count("MP101") == 1


def test_unknown_model_part_is_named() -> None:
    unknown = PathOutcome(
        T,
        "100.64.12.189",
        "unknown",
        cause="unknown",
        detail="nft inet filter forward handle 7: osf name Linux",
    )
    report = build_report(CTX, (unknown,))
    mp199 = next(f for f in report.findings if f.id == "MP199")
    assert "osf" in mp199.evidence[-1]
    assert not report.ok


def test_disagreement_is_reported() -> None:
    report = build_report(CTX, (MISROUTED,), (Disagreement("reply", "eth0", "CloudflareWARP"),))
    assert "MP198" in [f.id for f in report.findings]
    assert report.as_dict()["disagreements"] == [
        {"question": "reply", "model": "eth0", "kernel": "CloudflareWARP"}
    ]


def test_targets() -> None:
    assert parse_target("10.0.1.50:3000") == Target("10.0.1.50", 3000)
    assert parse_target("10.0.1.50").port == 80
    assert parse_target("[2001:db8::5]:443") == Target("2001:db8::5", 443)
    targets = default_targets(broken_connector(), "CloudflareWARP")
    assert targets == (Target("10.0.1.1", 80, "eth0"),)


def test_bad_targets() -> None:
    import pytest

    from meshpath.errors import BadInputError

    for bad in ("10.0.1.500:80", "host:80", "10.0.1.5:0", "10.0.1.5:x"):
        with pytest.raises(BadInputError, match="target"):
            parse_target(bad)
