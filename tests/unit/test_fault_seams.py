"""Test hooks are injected, never read from the environment by meshpath itself: the
Applier's checkpoint (where a run can be killed) and the Runner (what frr-reload is)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

import meshpath
from meshpath.apply import Applier
from meshpath.apply import journal as jr
from meshpath.apply.executor import STEP_DONE, UNDO_ACTED
from meshpath.apply.frr import FRR_RELOAD, reload_argv
from tests.faults import install_rewrite, kill_at, parse
from tests.unit.test_fix_apply import make_plan, run_step, runner_for

PACKAGE = Path(meshpath.__file__).parent


class Killed(BaseException):
    """Stands for SIGKILL: not an Exception, so the applier's rollback does not run."""


def stop_at(point: str, step: int, seen: list[tuple[str, int]]):  # type: ignore[no-untyped-def]
    def checkpoint(at: str, n: int) -> None:
        seen.append((at, n))
        if (at, n) == (point, step):
            raise Killed

    return checkpoint


def test_the_checkpoint_is_called_after_each_journaled_step(tmp_path: Path) -> None:
    seen: list[tuple[str, int]] = []
    applier = Applier(runner_for("a", "b"), tmp_path, checkpoint=stop_at(STEP_DONE, 1, seen))
    with pytest.raises(Killed):
        applier.apply(make_plan(run_step("a"), run_step("b")))
    assert seen == [(STEP_DONE, 1)]
    left = jr.interrupted(tmp_path)
    assert left is not None and [s.state for s in left.steps] == ["done", "pending"]


def test_the_checkpoint_in_undo_comes_before_the_journal_records_it(tmp_path: Path) -> None:
    runner = runner_for("a", "b")
    Applier(runner, tmp_path).apply(make_plan(run_step("a"), run_step("b")))
    seen: list[tuple[str, int]] = []
    with pytest.raises(Killed):
        Applier(runner, tmp_path, checkpoint=stop_at(UNDO_ACTED, 2, seen)).rollback()
    assert seen == [(UNDO_ACTED, 2)]
    stuck = jr.latest(tmp_path)
    assert stuck is not None and stuck.status == "rolling-back"
    assert [s.state for s in stuck.steps] == ["done", "done"]  # undo of b not journaled


def test_without_a_checkpoint_nothing_stops(tmp_path: Path) -> None:
    result = Applier(runner_for("a"), tmp_path).apply(make_plan(run_step("a")))
    assert result.status == "applied"
    assert json.loads((result.journal or Path()).read_text())["status"] == "applied"


def test_frr_reload_is_the_real_tool_whatever_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MESHPATH_FRR_RELOAD", "/bin/false")
    assert reload_argv("ns1", "--reload", Path("/x.conf"))[0] == FRR_RELOAD


def test_no_meshpath_test_switch_is_read_from_the_environment() -> None:
    """Only MESHPATH_WORKERD (where the lab's workerd is: configuration, not a test hook)."""
    found = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            text = node.value if isinstance(node, ast.Constant) else None
            if isinstance(text, str) and text.startswith("MESHPATH_") and " " not in text:
                found.add(text)
    assert found == {"MESHPATH_WORKERD"}


def test_the_fault_wrapper_rewrites_only_the_named_program(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from meshpath.runner import SubprocessRunner

    calls: list[list[str]] = []
    monkeypatch.setattr(SubprocessRunner, "run", lambda self, argv, **kw: calls.append(argv))
    install_rewrite(FRR_RELOAD, "/tmp/fails.sh")
    runner = SubprocessRunner()
    runner.run([FRR_RELOAD, "--reload", "x"])
    runner.run(["vtysh", "-c", "show"])
    assert calls == [["/tmp/fails.sh", "--reload", "x"], ["vtysh", "-c", "show"]]


def test_the_fault_wrapper_parses_its_options_before_the_separator() -> None:
    faults, rest = parse(["--kill-after-step", "1", "--", "--json", "fix", "--kill-in-undo"])
    assert faults.kill_after_step == 1 and faults.kill_in_undo is None
    assert rest == ["--json", "fix", "--kill-in-undo"]
    assert kill_at(STEP_DONE, 2)(STEP_DONE, 1) is None  # not its step: nothing happens
