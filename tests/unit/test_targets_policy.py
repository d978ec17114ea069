"""#17 item 2: one default-target policy (checks.targets.choose_targets) for doctor, watch,
fix's prediction and flow: the targets given, else one address in each LAN subnet."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from meshpath.checks.targets import Target, choose_targets, default_targets, worker_for
from meshpath.cli import main
from meshpath.config import Settings
from meshpath.fix import FixOptions
from meshpath.fix.desired import desired_state
from meshpath.state import Address, Route, codec
from meshpath.usecase.fix import prediction
from tests.builders import broken_connector

S = Settings()


def test_given_targets_win_else_one_per_lan_subnet() -> None:
    snap = broken_connector()
    given = (Target("10.0.1.50", 3000),)
    assert choose_targets(snap, "CloudflareWARP", given) == given
    assert choose_targets(snap, "CloudflareWARP") == default_targets(snap, "CloudflareWARP")
    assert [str(t) for t in choose_targets(snap, "CloudflareWARP")] == ["10.0.1.1:80"]


def test_worker_for_follows_the_targets_family() -> None:
    ranges = S.ranges
    assert worker_for(Target("10.0.1.50", 80), ranges) == "100.64.12.189"
    assert worker_for(Target("fd00:1::50", 80), ranges) == ranges.worker_probe_v6()
    assert worker_for(Target("10.0.1.50", 80), ranges, "100.64.0.9") == "100.64.0.9"
    assert worker_for(Target("fd00:1::50", 80), ranges, "100.64.0.9") == ranges.worker_probe_v6()


def test_fix_predicts_for_each_lan_like_the_doctor_not_the_gateway_on_443() -> None:
    snap = broken_connector()
    forecast = prediction(snap, desired_state(snap, S, "route", FixOptions()), None, S)
    assert forecast is not None and ":443" not in forecast
    assert forecast.splitlines() == [
        line for line in forecast.splitlines() if line.startswith("Worker 100.64.12.189 -> ")
    ]
    assert "-> 10.0.1.1:80 after the fix: delivered" in forecast


def test_fix_predicts_a_v6_lan_from_the_v6_source_range() -> None:
    snap = broken_connector()
    lan6 = Address(dev="eth0", family=6, local="fd00:1::2", prefixlen=64)
    route6 = Route(table=254, family=6, dst="fd00:1::/64", dev="eth0", scope=253)
    snap = msgspec.structs.replace(
        snap, addresses=(*snap.addresses, lan6), routes=(*snap.routes, route6)
    )
    forecast = prediction(snap, desired_state(snap, S, "route", FixOptions()), None, S) or ""
    lines = forecast.splitlines()
    assert len(lines) == 2
    assert lines[1].startswith(f"Worker {S.ranges.worker_probe_v6()} -> [fd00:1::1]:80")


def test_flow_without_targets_uses_the_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "snap.json"
    path.write_bytes(codec.dumps(broken_connector()))
    assert main(["--json", "flow", "--snapshot", str(path)]) == 1
    flows = json.loads(capsys.readouterr().out)["flows"]
    assert [(f["target"], f["port"]) for f in flows] == [("10.0.1.1", 80)]
