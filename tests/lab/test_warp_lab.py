"""The lab's living WARP: the profile drives table 65743, a reconnect re-creates the device,
the warp-cli stand-in feeds the collector, and the doctor names the Split Tunnels."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from meshpath.cli import main
from meshpath.collect import collect_snapshot
from meshpath.collect.host import processes_in_netns
from meshpath.config import Settings
from meshpath.lab import Lab
from meshpath.lab.topology import SOURCE_RANGE
from meshpath.state import TABLE_WARP
from meshpath.state.split import infer_split, split_ranges
from tests.conftest import needs_root

pytestmark = [needs_root, pytest.mark.lab]


def _cover(lab: Lab, key: str) -> tuple[str, str]:
    snap = collect_snapshot(netns=lab.ns("conn"))
    view = infer_split(snap, "CloudflareWARP", split_ranges(Settings().ranges))
    cover = next(c for c in view.ranges if c.key == key)
    return view.mode, cover.cover


def test_doctor_names_the_profile_entry_and_both_remedies(
    lab: Lab, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lab's default connector, with warp-cli (the stand-in) on PATH as on a host."""
    lab.setup("broken")
    monkeypatch.setenv("PATH", lab.meshpath_env()["PATH"])
    code = main(["--json", "doctor", "--netns", lab.ns("conn"), "--target", "10.0.1.50:3000"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and report["root_cause"] == "MP101"
    assert "the Split Tunnels keep it out (excluded by 100.64.0.0/11)" in report["verdict"]
    cause = next(f for f in report["findings"] if f["id"] == "MP101")
    assert (
        "warp-cli: Split Tunnels exclude entry 100.64.0.0/11 covers 100.64.0.0/12"
        in cause["evidence"]
    )
    fixes = " | ".join(cause["fix_commands"])
    assert "meshpath fix --mode profile" in fixes and "add back 100.80.0.0/12" in fixes
    assert "ip route add 100.64.0.0/12 dev CloudflareWARP" in fixes  # the host-side one


def test_snapshot_reads_warp_cli_like_a_host(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    lab.setup("broken")
    monkeypatch.setenv("PATH", lab.meshpath_env()["PATH"])
    snap = collect_snapshot(netns=lab.ns("conn"))
    warp = snap.warp
    assert warp.available and warp.status == "Connected" and warp.registration == "connector"
    assert warp.split_mode == "exclude" and warp.split_entries is not None
    assert "100.64.0.0/11" in [e.value for e in warp.split_entries]
    assert snap.warp_split is not None and snap.warp_split.mode == "exclude"
    assert snap.processes is not None and any(p.startswith("python") for p in snap.processes)


def test_profile_change_is_installed_within_a_second(lab: Lab) -> None:
    lab.setup("broken")
    generation = lab.warp_status()["generation"]
    excludes = [e for e in lab.profile()["exclude"] if e != "100.64.0.0/11"] + ["100.80.0.0/12"]
    lab.set_profile(exclude=excludes)
    seconds = lab.wait_warp(generation, timeout=1.0)
    assert seconds < 1.0
    assert _cover(lab, "source_v4") == ("exclude", "full")
    # Include mode: only what is listed goes through the tunnel.
    generation = lab.warp_status()["generation"]
    lab.set_profile(include=["100.96.0.0/12", "203.0.113.0/24"])
    lab.wait_warp(generation, timeout=1.0)
    assert _cover(lab, "source_v4") == ("include", "none")
    assert _cover(lab, "device_v4") == ("include", "full")


def test_reconnect_recreates_the_device_and_warp_state(
    lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    lab.setup("broken")
    conn = lab.ns("conn")
    lab.exec("conn", ["ip", "route", "add", SOURCE_RANGE, "dev", "CloudflareWARP"], check=True)
    before = lab.warp_status()["ifindex"]
    table_before = lab.exec("conn", ["ip", "route", "show", "table", str(TABLE_WARP)]).stdout
    start = time.monotonic()
    assert main(["--json", "lab", "warp", "reconnect", "--instance", lab.instance]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ifindex_before"] == before and data["ifindex"] != before
    assert time.monotonic() - start < 5
    # The host's own route went with the old device; WARP's state is back on the new one.
    assert SOURCE_RANGE not in lab.exec("conn", ["ip", "route", "show"]).stdout
    table_after = lab.exec("conn", ["ip", "route", "show", "table", str(TABLE_WARP)]).stdout
    assert table_after == table_before
    addr = lab.exec("conn", ["ip", "-4", "addr", "show", "dev", "CloudflareWARP"]).stdout
    assert "100.96.0.5/32" in addr
    link = json.loads(lab.exec("conn", ["ip", "-j", "link", "show", "CloudflareWARP"]).stdout)
    assert link[0]["ifindex"] == data["ifindex"] and "LOWER_UP" in link[0]["flags"]
    assert os.path.exists(f"/run/netns/{conn}")


def test_stand_in_formats(lab: Lab) -> None:
    lab.setup("broken")
    env = lab.meshpath_env()

    def cli(*args: str) -> str:
        argv = ["ip", "netns", "exec", lab.ns("conn"), "warp-cli", "--accept-tos", *args]
        return subprocess.run(argv, capture_output=True, text=True, env=env, check=True).stdout

    assert cli("status") == "Status update: Connected\n"
    assert cli("tunnel", "ip", "list").startswith("Excluded routes:\n  0.0.0.0/8\n")
    assert "warp_connector@" in cli("registration", "show")
    assert cli("--version").startswith("warp-cli 2025.")
    bad = subprocess.run(
        ["ip", "netns", "exec", lab.ns("conn"), "warp-cli", "nope"],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert bad.returncode == 2 and "unrecognized subcommand" in bad.stderr


def test_warpd_stays_in_conn_while_it_fetches_the_profile(lab: Lab) -> None:
    # warpd fetches from the API in edge every 0.25 s; setns in its main thread moved the
    # whole process (as /proc/PID/ns/net shows it) to edge meanwhile, and a snapshot taken
    # then listed no process in conn (CI lost that race under load).
    lab.setup("broken")
    missing = 0
    for _ in range(300):
        if not any(p.startswith("python") for p in processes_in_netns(lab.ns("conn"))):
            missing += 1
    assert missing == 0, f"warpd not in conn in {missing} of 300 looks"
