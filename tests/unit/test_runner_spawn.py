"""Runner.spawn: long-running processes as Process handles, real and recorded; the lab
starts its processes through its Runner (no subprocess of its own)."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

from meshpath.errors import LabTimeout, MissingToolError
from meshpath.lab.base import LabBase
from meshpath.runner import FakeProcess, RecordedRunner, SubprocessRunner


def test_a_spawned_process_writes_its_log_and_reports_its_exit(tmp_path: Path) -> None:
    log = tmp_path / "out.log"
    code = "import sys; print('hello'); sys.stderr.write('oops\\n')"
    proc = SubprocessRunner().spawn([sys.executable, "-c", code], stdout=log)
    assert proc.wait(timeout=20) == 0 and proc.returncode == 0
    assert log.read_text().splitlines() == ["hello", "oops"]  # stderr joins stdout's file


def test_wait_times_out_with_none_and_terminate_ends_it(tmp_path: Path) -> None:
    code = "import time; time.sleep(60)"
    proc = SubprocessRunner().spawn([sys.executable, "-c", code], stderr=tmp_path / "err")
    try:
        assert proc.poll() is None and proc.wait(timeout=0.05) is None
        proc.terminate()
        assert proc.wait(timeout=20) == -signal.SIGTERM
    finally:
        proc.kill()
        proc.wait(timeout=5)


def test_a_missing_program_is_a_missing_tool() -> None:
    with pytest.raises(MissingToolError, match="no-such-program-here"):
        SubprocessRunner().spawn(["no-such-program-here"])


def test_the_recorded_runner_hands_out_fake_processes() -> None:
    runner = RecordedRunner()
    proc = runner.spawn(["tcpdump", "-i", "any"], stdout=Path("/nonexistent"))
    assert isinstance(proc, FakeProcess) and runner.spawned == [proc]
    assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    assert proc.wait() == -signal.SIGINT and proc.signals == [signal.SIGINT]


def test_the_lab_spawns_inside_its_namespace_through_its_runner(tmp_path: Path) -> None:
    runner = RecordedRunner()
    lab = LabBase("ab12", run_root=tmp_path, runner=runner)
    lab.run_dir.mkdir()
    child = lab._spawn("tunnel", "edge", ["python3", "-m", "meshpath.lab.tunnel"])
    assert [p.argv for p in runner.spawned] == [
        ("ip", "netns", "exec", "mplab-ab12-edge", "python3", "-m", "meshpath.lab.tunnel")
    ]
    assert not lab._any_died()
    (lab.run_dir / "tunnel.log").write_text("starting\nTraceback: no tun device\n")
    assert isinstance(child, FakeProcess)
    child.exit(1)
    assert lab._any_died()
    with pytest.raises(LabTimeout, match=r"tunnel exited \(1\): Traceback: no tun device"):
        lab._raise_if_died()
