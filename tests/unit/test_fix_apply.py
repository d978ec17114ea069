"""The applier's journal, lock, rollback and resume, driven by a RecordedRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meshpath.apply import Applier, InterruptedRun, LockHeld, locked
from meshpath.apply import journal as jr
from meshpath.fix.model import Expect, Plan, PostCheck, RemoveFile, Run, Step, WriteFile
from meshpath.runner import Completed, RecordedRunner

EXPECT = Expect(tunnel="CloudflareWARP", ranges=("100.64.0.0/12",), route_proto=232, nat=None)


def run_step(name: str) -> Step:
    return Step(
        key=name,
        description=f"do {name}",
        action=Run(argv=("do", name)),
        inverse=Run(argv=("undo", name)),
        check=f"{name} missing",
        probe=("show", name),
    )


def make_plan(*steps: Step) -> Plan:
    return Plan(mode="route", steps=steps, expect=EXPECT)


def runner_for(*names: str, fail: str | None = None) -> RecordedRunner:
    r = RecordedRunner()
    for n in names:
        r.answer(["do", n], returncode=1 if n == fail else 0)
        r.answer(["undo", n])
        r.answer(["show", n], stdout=f"state of {n}\n")
    return r


def test_apply_journals_every_step_before_and_after(tmp_path: Path) -> None:
    runner = runner_for("a", "b")
    result = Applier(runner, tmp_path).apply(make_plan(run_step("a"), run_step("b")))
    assert result.status == "applied" and result.ok
    assert runner.calls == [("show", "a"), ("do", "a"), ("show", "a")] + [
        ("show", "b"),
        ("do", "b"),
        ("show", "b"),
    ]
    assert result.journal is not None
    data = json.loads(result.journal.read_text())
    assert data["status"] == "applied"
    assert [s["state"] for s in data["steps"]] == ["done", "done"]
    assert data["steps"][0]["before"] == "state of a\n"


def test_a_failing_step_rolls_back_the_earlier_ones_in_reverse(tmp_path: Path) -> None:
    runner = runner_for("a", "b", "c", fail="c")
    plan = make_plan(run_step("a"), run_step("b"), run_step("c"))
    result = Applier(runner, tmp_path).apply(plan)
    assert result.status == "failed" and result.failed_step == "c"
    undo = [c for c in runner.calls if c[0] == "undo"]
    assert undo == [("undo", "c"), ("undo", "b"), ("undo", "a")]
    last = jr.latest(tmp_path)
    assert last is not None and last.status == "rolled-back"
    assert [s.state for s in last.steps] == ["undone", "undone", "undone"]


def test_a_failed_post_check_rolls_everything_back(tmp_path: Path) -> None:
    runner = runner_for("a")
    applier = Applier(runner, tmp_path, post_check=lambda: (False, "no reply"))
    result = applier.apply(make_plan(run_step("a")))
    assert result.status == "failed" and result.failed_step == "post-check"
    assert "no reply" in (result.error or "")
    assert ("undo", "a") in runner.calls


def test_a_missing_named_check_fails_before_anything_changes(tmp_path: Path) -> None:
    runner = runner_for("a")
    check = Step(key="c", description="c", action=PostCheck(name="rt"), inverse=None, check="")
    result = Applier(runner, tmp_path).apply(make_plan(run_step("a"), check))
    assert result.status == "failed" and runner.calls == []


def test_empty_plan_is_nothing_to_do_and_writes_no_journal(tmp_path: Path) -> None:
    result = Applier(RecordedRunner(), tmp_path).apply(make_plan())
    assert result.status == "nothing-to-do" and jr.latest(tmp_path) is None


def test_second_run_fails_fast_while_the_lock_is_held(tmp_path: Path) -> None:
    with locked(tmp_path), pytest.raises(LockHeld, match="another meshpath fix is running"):
        Applier(runner_for("a"), tmp_path).apply(make_plan(run_step("a")))


def _interrupted(tmp_path: Path) -> Plan:
    """A journal as a killed run leaves it: step a done, b not started."""
    plan = make_plan(run_step("a"), run_step("b"))
    journal = jr.new_journal(tmp_path, plan, None, Path("/")).with_step(0, state="done")
    jr.write(tmp_path, journal)
    return plan


def test_an_interrupted_journal_blocks_new_applies_and_names_the_way_out(tmp_path: Path) -> None:
    plan = _interrupted(tmp_path)
    with pytest.raises(InterruptedRun, match=r"after step 1/2.*--resume.*--rollback"):
        Applier(runner_for("a", "b"), tmp_path).apply(plan)


def test_resume_finishes_the_remaining_steps(tmp_path: Path) -> None:
    _interrupted(tmp_path)
    runner = runner_for("a", "b")
    result = Applier(runner, tmp_path).resume()
    assert result.status == "applied"
    assert ("do", "a") not in runner.calls and ("do", "b") in runner.calls


def test_rollback_of_an_interrupted_run_undoes_only_what_was_done(tmp_path: Path) -> None:
    _interrupted(tmp_path)
    runner = runner_for("a", "b")
    result = Applier(runner, tmp_path).rollback()
    assert result.status == "rolled-back"
    assert [c for c in runner.calls if c[0] == "undo"] == [("undo", "a")]
    assert Applier(runner, tmp_path).rollback().status == "nothing-to-do"


def test_rollback_undoes_the_newest_applied_plan_first(tmp_path: Path) -> None:
    runner = runner_for("a", "b")
    Applier(runner, tmp_path).apply(make_plan(run_step("a")))
    Applier(runner, tmp_path).apply(make_plan(run_step("b")))
    Applier(runner, tmp_path).rollback()
    Applier(runner, tmp_path).rollback()
    assert [c for c in runner.calls if c[0] == "undo"] == [("undo", "b"), ("undo", "a")]


def test_file_steps_write_under_root_and_their_inverse_removes(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write = Step(
        key="f",
        description="unit",
        action=WriteFile(path="etc/x/unit", content="hello\n"),
        inverse=RemoveFile(path="etc/x/unit"),
        check="",
    )
    link = Step(
        key="l",
        description="link",
        action=WriteFile(path="etc/x/wants/unit", link="/etc/x/unit"),
        inverse=RemoveFile(path="etc/x/wants/unit"),
        check="",
    )
    applier = Applier(RecordedRunner(), tmp_path / "state", root=root)
    assert applier.apply(make_plan(write, link)).ok
    assert (root / "etc/x/unit").read_text() == "hello\n"
    assert (root / "etc/x/wants/unit").readlink() == Path("/etc/x/unit")
    assert applier.rollback().status == "rolled-back"
    assert not (root / "etc/x/unit").exists() and not (root / "etc/x/wants/unit").is_symlink()


def test_rollback_of_a_route_warp_already_took_away(tmp_path: Path) -> None:
    """A WARP reconnect deletes CloudflareWARP and every route on it: undoing meshpath's
    route then finds it gone, which is what undoing wanted (the lab's reconnect scenario
    found `--rollback` failing there)."""
    gone = "RTNETLINK answers: No such process\n"
    step = Step(
        key="route:100.64.0.0/12",
        description="route",
        action=Run(argv=("ip", "route", "replace", "x")),
        inverse=Run(argv=("ip", "route", "del", "x"), absent_ok=True),
        check="no route",
    )
    runner = RecordedRunner()
    runner.answer(["ip", "route", "replace", "x"])
    runner.answers["ip route del x"] = Completed(("ip", "route", "del", "x"), 2, "", gone)
    applier = Applier(runner, tmp_path)
    assert applier.apply(make_plan(step)).status == "applied"
    result = applier.rollback()
    assert result.status == "rolled-back" and result.ok
    strict = Step(key="s", description="s", action=Run(argv=("ip", "route", "replace", "x")),
                  inverse=Run(argv=("ip", "route", "del", "x")), check="c")  # fmt: skip
    assert applier.apply(make_plan(strict)).status == "applied"
    assert applier.rollback().status == "rollback-failed"  # without absent_ok: still strict
