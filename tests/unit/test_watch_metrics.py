"""The metrics of meshpath watch: families and labels pinned, values from lab-recorded
snapshots, and Prometheus' own linter (promtool) on the real exposition."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from meshpath.checks.targets import parse_target
from meshpath.cli import main
from meshpath.config import Settings
from meshpath.runner import RecordedRunner
from meshpath.state import codec
from meshpath.watch.evaluate import Evaluation, Evaluator
from meshpath.watch.metrics import (
    TEXTFILE_NAME,
    WatchView,
    exposition,
    new_registry,
    read_samples,
    write_textfile,
)

SNAPSHOTS = Path(__file__).parent.parent / "data" / "snapshots"
TARGET = (parse_target("10.0.1.50:3000"),)

# Every family and its label names: a change here is a change users' dashboards see.
FAMILIES = {
    "meshpath_path_ok": ("gauge", ()),
    "meshpath_target_ok": ("gauge", ("target",)),
    "meshpath_target_info": ("gauge", ("reply_device", "status", "target")),
    "meshpath_finding_active": ("gauge", ("id", "severity")),
    "meshpath_findings": ("gauge", ("severity",)),
    "meshpath_range_route_present": ("gauge", ("cidr", "range")),
    "meshpath_range_egress_info": ("gauge", ("cidr", "device", "range")),
    "meshpath_bgp_session_established": ("gauge", ("peer",)),
    "meshpath_bgp_session_info": ("gauge", ("peer", "state")),
    "meshpath_bgp_advertised_prefixes": ("gauge", ("peer",)),
    "meshpath_nat_present": ("gauge", ()),
    "meshpath_last_evaluation_timestamp_seconds": ("gauge", ()),
    "meshpath_last_evaluation_duration_seconds": ("gauge", ()),
    "meshpath_changes": ("counter", ("source",)),
    "meshpath_evaluations": ("counter", ()),
    "meshpath_evaluation_errors": ("counter", ()),
    "meshpath_heals": ("counter", ("kind",)),
    "meshpath_heal_failures": ("counter", ()),
    "meshpath_keeper_enabled": ("gauge", ()),
    "meshpath_build_info": ("gauge", ("version",)),
}


def evaluation(name: str) -> Evaluation:
    snap = codec.load(SNAPSHOTS / f"{name}.json")
    return Evaluator(Settings(), RecordedRunner(), targets=TARGET).offline(snap)


def text_of(view: WatchView) -> str:
    return exposition(new_registry(lambda: view)).decode()


def families_in(text: str) -> dict[str, tuple[str, tuple[str, ...]]]:
    out = {}
    for family in text_string_to_metric_families(text):
        labels = {k for s in family.samples for k in s.labels}
        out[family.name] = (family.type, tuple(sorted(labels)))
    return out


def test_families_and_labels_are_pinned() -> None:
    view = WatchView(evaluation("bgp"), 1, changes={"rtnetlink": 3}, keeper=True)
    assert families_in(text_of(view)) == FAMILIES


def test_before_the_first_evaluation_only_activity_is_shown() -> None:
    found = families_in(text_of(WatchView()))
    assert set(found) == {
        "meshpath_changes",
        "meshpath_evaluations",
        "meshpath_evaluation_errors",
        "meshpath_heals",
        "meshpath_heal_failures",
        "meshpath_keeper_enabled",
        "meshpath_build_info",
    }


def sample(text: str, name: str, **labels: str) -> float | None:
    return read_samples(text).get((name, frozenset(labels.items())))


def test_the_field_reports_connector_is_broken_by_mp101() -> None:
    text = text_of(WatchView(evaluation("broken")))
    assert sample(text, "meshpath_path_ok") == 0.0
    assert sample(text, "meshpath_target_ok", target="10.0.1.50:3000") == 0.0
    info = {"target": "10.0.1.50:3000", "status": "misrouted", "reply_device": "eth0"}
    assert sample(text, "meshpath_target_info", **info) == 1.0
    assert sample(text, "meshpath_finding_active", id="MP101", severity="error") == 1.0
    # and why the route is missing: the Split Tunnels keep the source range out (MP104)
    assert sample(text, "meshpath_finding_active", id="MP104", severity="error") == 1.0
    assert sample(text, "meshpath_findings", severity="error") == 2.0
    source = {"range": "source_v4", "cidr": "100.64.0.0/12"}
    assert sample(text, "meshpath_range_route_present", **source) == 0.0
    assert sample(text, "meshpath_range_egress_info", device="eth0", **source) == 1.0
    assert sample(text, "meshpath_nat_present") == 0.0


def test_the_route_fix_routes_the_source_range_into_the_tunnel() -> None:
    text = text_of(WatchView(evaluation("route")))
    assert sample(text, "meshpath_path_ok") == 1.0
    source = {"range": "source_v4", "cidr": "100.64.0.0/12"}
    assert sample(text, "meshpath_range_route_present", **source) == 1.0
    assert sample(text, "meshpath_range_egress_info", device="CloudflareWARP", **source) == 1.0
    assert sample(text, "meshpath_findings", severity="error") == 0.0
    active = {dict(labels)["id"] for name, labels in read_samples(text) if "active" in name}
    assert "MP101" not in active


def test_bgp_sessions_and_advertised_prefixes() -> None:
    text = text_of(WatchView(evaluation("bgp")))
    assert sample(text, "meshpath_bgp_session_established", peer="10.0.1.1") == 1.0
    assert sample(text, "meshpath_bgp_session_info", peer="10.0.1.1", state="Established") == 1.0
    assert sample(text, "meshpath_bgp_advertised_prefixes", peer="10.0.1.1") == 2.0
    idle = text_of(WatchView(evaluation("no-carrier")))
    assert sample(idle, "meshpath_bgp_session_established", peer="10.0.1.1") == 0.0


def test_nat_present_after_the_nat_fix() -> None:
    assert sample(text_of(WatchView(evaluation("nat"))), "meshpath_nat_present") == 1.0


def test_counters_carry_the_loops_tallies() -> None:
    view = WatchView(
        evaluation("route"), 7, 2, {"rtnetlink": 10000, "frr": 1}, {"route": 3}, 1, True
    )
    text = text_of(view)
    assert sample(text, "meshpath_changes_total", source="rtnetlink") == 10000.0
    assert sample(text, "meshpath_changes_total", source="nftables") == 0.0
    assert sample(text, "meshpath_evaluations_total") == 7.0
    assert sample(text, "meshpath_evaluation_errors_total") == 2.0
    assert sample(text, "meshpath_heals_total", kind="route") == 3.0
    assert sample(text, "meshpath_heal_failures_total") == 1.0
    assert sample(text, "meshpath_keeper_enabled") == 1.0


def test_a_vanished_finding_leaves_the_next_scrape() -> None:
    current = [WatchView(evaluation("broken"))]
    registry = new_registry(lambda: current[0])
    assert "MP101" in exposition(registry).decode()
    current[0] = WatchView(evaluation("route"))
    assert "MP101" not in exposition(registry).decode()


def test_textfile_is_written_whole(tmp_path: Path) -> None:
    view = WatchView(evaluation("broken"))
    path = write_textfile(tmp_path, new_registry(lambda: view))
    assert path == tmp_path / TEXTFILE_NAME
    assert path.read_text() == text_of(view)
    assert [p.name for p in tmp_path.iterdir()] == [TEXTFILE_NAME]  # no temp file left


def test_textfile_is_readable_by_node_exporter_under_a_strict_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)  # the service's UMask
    try:
        path = write_textfile(tmp_path, new_registry(lambda: WatchView()))
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (Debian package prometheus; make system)"
)


def promtool(text: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    argv = [PROMTOOL, "check", "metrics"]
    return subprocess.run(argv, input=text, capture_output=True, text=True, check=False)


@needs_promtool
@pytest.mark.parametrize("name", ["broken", "route", "bgp", "nat", "no-carrier"])
def test_promtool_accepts_the_cli_output(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "watch",
            "--once",
            "--snapshot",
            str(SNAPSHOTS / f"{name}.json"),
            "--target",
            "10.0.1.50:3000",
        ]
    )
    out = capsys.readouterr().out
    assert code == (0 if name in ("route", "bgp", "nat") else 1)
    assert "meshpath_path_ok" in out
    done = promtool(out)
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr


@needs_promtool
def test_promtool_is_a_real_check() -> None:
    """The linter does reject a badly named counter: the test above can fail."""
    bad = "# HELP meshpath_changes Changes\n# TYPE meshpath_changes counter\nmeshpath_changes 1\n"
    done = promtool(bad)
    assert done.returncode != 0 and "_total" in done.stdout + done.stderr
