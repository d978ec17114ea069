"""``meshpath fix`` when the host or the disk does not play along (issue 10 items 2, 8, 9).

Real kernel, nft and FRR in the lab's connector namespace: the route gone before the
rollback (what a WARP reconnect does), each kind of undo finding its effect already
absent, a rollback killed between undoing and journaling, a read-only or full state dir
(in a private mount namespace: the host's mounts are never touched), the journal failing
in the middle of an apply, and two applies racing. After each, the connector is either
fully fixed or exactly as before.
"""

from __future__ import annotations

import errno
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest

from meshpath.apply import Applier
from meshpath.apply import journal as jr
from meshpath.collect import collect_snapshot
from meshpath.config import Settings
from meshpath.fix import FixOptions, plan_fix
from meshpath.lab import Lab
from meshpath.lab.fixes import fix_root, meshpath_argv, start_conn_frr
from meshpath.runner import SubprocessRunner
from tests.conftest import needs_root
from tests.lab.test_fix_lab import assert_same, conn_state, mp

pytestmark = [needs_root, pytest.mark.lab, pytest.mark.root]
ROUTE = ["100.64.0.0/12", "dev", "CloudflareWARP", "proto", "232", "metric", "64"]


def states(lab: Lab) -> Path:
    return fix_root(lab) / "var/lib/meshpath"


def nothing_of_meshpath(lab: Lab) -> None:
    assert lab.exec("conn", ["ip", "route", "show", "proto", "232"]).stdout == ""
    assert "meshpath" not in lab.exec("conn", ["nft", "list", "tables"]).stdout


def apply_nat(lab: Lab) -> None:
    code, data, err = mp(lab, "fix", "--mode", "nat", "--apply")
    assert code == 0 and data["result"]["status"] == "applied", err


# -- item 2: undo finds its effect already absent ------------------------------------------
def test_rollback_after_the_route_was_flushed_succeeds(lab: Lab) -> None:
    lab.setup("gateway")
    before = conn_state(lab)
    apply_nat(lab)
    lab.exec("conn", ["ip", "route", "del", *ROUTE], check=True)  # a WARP reconnect
    code, data, err = mp(lab, "fix", "--rollback")
    assert code == 0 and data["result"]["status"] == "rolled-back", (data, err)
    assert_same(conn_state(lab), before)
    nothing_of_meshpath(lab)
    last = jr.latest(states(lab))
    assert last is not None and last.status == "rolled-back"
    apply_nat(lab)  # not refused afterwards


def test_rollback_after_the_nft_table_was_deleted_succeeds(lab: Lab) -> None:
    lab.setup("gateway")
    before = conn_state(lab)
    apply_nat(lab)
    lab.exec("conn", ["nft", "delete", "table", "inet", "meshpath"], check=True)
    code, data, err = mp(lab, "fix", "--rollback")
    assert code == 0 and data["result"]["status"] == "rolled-back", (data, err)
    assert_same(conn_state(lab), before)


def test_rollback_after_frrs_lines_were_removed_by_hand_succeeds(lab: Lab) -> None:
    lab.setup("route")
    start_conn_frr(lab)
    before = conn_state(lab)
    code, data, err = mp(lab, "fix", "--mode", "route", "--apply")
    assert code == 0 and [s["key"] for s in data["plan"]["steps"]] == ["frr:meshpath"], err
    ns = lab.ns("conn")
    lab.exec(
        "conn",
        ["vtysh", "-N", ns, "-c", "conf t", "-c", "no ip route 100.64.0.0/12 CloudflareWARP"],
        check=True,
    )
    code, data, err = mp(lab, "fix", "--rollback")
    assert code == 0 and data["result"]["status"] == "rolled-back", (data, err)
    assert_same(conn_state(lab), before)


def test_rollback_after_the_unit_files_were_removed_by_hand_succeeds(lab: Lab) -> None:
    lab.setup("route")
    before = conn_state(lab)
    code, _, err = mp(lab, "fix", "--mode", "route", "--apply")
    assert code == 0, err
    system = fix_root(lab) / "etc/systemd/system"
    wants = system / "sys-subsystem-net-devices-CloudflareWARP.device.wants"
    (wants / "meshpath-routes.service").unlink()
    (system / "meshpath-routes.service").unlink()
    code, data, err = mp(lab, "fix", "--rollback")
    assert code == 0 and data["result"]["status"] == "rolled-back", (data, err)
    assert_same(conn_state(lab), before)
    assert not (fix_root(lab) / "etc").exists()  # every directory meshpath made is gone


@pytest.mark.parametrize("undo", ["2", "1"])
def test_a_rollback_killed_mid_way_finishes_when_run_again(lab: Lab, undo: str) -> None:
    lab.setup("gateway")
    before = conn_state(lab)
    apply_nat(lab)
    code, _, _ = mp(lab, "fix", "--rollback", faults=["--kill-in-undo", undo])
    assert code == -9
    stuck = jr.latest(states(lab))
    assert stuck is not None and stuck.status == "rolling-back"
    code, _, err = mp(lab, "fix", "--mode", "nat", "--apply")
    assert code == 3 and "--rollback" in err  # refused until the rollback is finished
    code, data, err = mp(lab, "fix", "--rollback")
    assert code == 0 and data["result"]["status"] == "rolled-back", (data, err)
    assert_same(conn_state(lab), before)


# -- item 8: a state dir that cannot take the journal --------------------------------------
def in_private_mounts(lab: Lab, setup: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``meshpath ARGS`` in a private mount namespace after the shell ``setup``: mounts
    made there vanish with the process and never reach the host."""
    command = f"{setup} && exec {shlex.join(meshpath_argv(lab, '--json', *args))}"
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-euc", command],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_read_only_state_dir_is_one_line_exit_3_and_changes_nothing(
    lab: Lab, tmp_path: Path
) -> None:
    lab.setup("gateway")
    before = conn_state(lab)
    state = tmp_path / "ro-state"
    state.mkdir()
    ro = f"mount --bind {state} {state} && mount -o remount,ro,bind {state}"
    for args in (["fix", "--mode", "nat", "--apply"], ["fix", "--rollback"]):
        done = in_private_mounts(lab, ro, *args, "--state-dir", str(state))
        err = done.stderr.strip()
        assert done.returncode == 3 and err.count("\n") == 0, done.stderr
        assert "Read-only file system" in err and "Traceback" not in err
    assert_same(conn_state(lab), before)


def test_a_full_state_dir_is_one_line_exit_3_and_changes_nothing(lab: Lab, tmp_path: Path) -> None:
    lab.setup("gateway")
    before = conn_state(lab)
    state = tmp_path / "full-state"
    state.mkdir()
    full = (
        f"mount -t tmpfs -o size=64k tmpfs {state} && "
        f"(dd if=/dev/zero of={state}/fill bs=4k 2>/dev/null || true)"
    )
    done = in_private_mounts(
        lab, full, "fix", "--mode", "nat", "--apply", "--state-dir", str(state)
    )
    err = done.stderr.strip()
    assert done.returncode == 3 and err.count("\n") == 0, done.stderr
    assert "No space left on device" in err and "Traceback" not in err
    assert_same(conn_state(lab), before)


def test_the_journal_failing_mid_apply_still_rolls_back_the_real_host(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The audit's case: the nft table was applied, the disk filled, the rollback was
    skipped and the table stayed without its route."""
    lab.setup("gateway")
    before = conn_state(lab)
    conn = lab.ns("conn")
    plan = plan_fix(collect_snapshot(netns=conn), Settings(), "nat", FixOptions())
    real = jr.write
    writes: list[Any] = []

    def write(state_dir: Path, journal: jr.Journal) -> Path:
        writes.append(journal.status)
        if len(writes) >= 4:  # new journal, step 1 running, step 1 done: then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(state_dir, journal)

    monkeypatch.setattr(jr, "write", write)
    result = Applier(SubprocessRunner(netns=conn), tmp_path, netns=conn).apply(plan)
    assert result.status == "failed" and result.journal_error is not None
    assert_same(conn_state(lab), before)


# -- item 9: two applies at once ------------------------------------------------------------
def finished(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


def test_two_concurrent_applies_apply_once(lab: Lab) -> None:
    lab.setup("gateway")
    before = conn_state(lab)
    for _ in range(3):
        argv = meshpath_argv(lab, "--json", "fix", "--mode", "nat", "--apply")
        runs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(2)]  # fmt: skip
        outs = [finished(p) for p in runs]
        codes = sorted(code for code, _, _ in outs)
        assert codes in ([0, 0], [0, 3]), outs
        for code, _out, err in outs:
            if code == 3:
                assert "another meshpath fix is running" in err and err.strip().count("\n") == 0
        applied = [j for j in jr.load_all(states(lab)) if j.status == "applied"]
        assert len(applied) == 1, [j.status for j in jr.load_all(states(lab))]
        code, data, err = mp(lab, "fix", "--rollback")
        assert code == 0 and data["result"]["status"] == "rolled-back", err
        assert_same(conn_state(lab), before)
