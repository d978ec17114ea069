"""Rollback is idempotent and resumable; the journal never decides whether it runs.

Issue 10 items 2 and 8, against a fake kernel (tests/fake_host.py): a route gone before
the rollback, a rollback killed between undoing a step and journaling it, and a disk
that stops taking journal writes in the middle of an apply.
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import pytest

from meshpath.apply import Applier
from meshpath.apply import journal as jr
from meshpath.config import Settings
from meshpath.fix import FixOptions, Plan, plan_fix
from meshpath.fix.model import Expect, FrrReload, NftFile, RemoveFile, Step
from meshpath.render import nft as nft_render
from meshpath.render.frr import FrrIntent
from meshpath.runner import RecordedRunner
from tests.builders import broken_connector
from tests.fake_host import FakeHost, Killed

ROUTE = ("100.64.0.0/12", "CloudflareWARP", 232, 64)
EXPECT_ROUTE = Expect(tunnel="CloudflareWARP", ranges=(ROUTE[0],), route_proto=232, nat=None)


def nat_plan() -> Plan:
    return plan_fix(broken_connector(), Settings(), "nat", FixOptions())


def applied_nat(tmp_path: Path) -> FakeHost:
    host = FakeHost()
    assert Applier(host, tmp_path).apply(nat_plan()).status == "applied"
    assert host.routes == {ROUTE} and host.nft_table
    return host


def test_rollback_after_the_route_vanished_succeeds_and_removes_the_rest(tmp_path: Path) -> None:
    host = applied_nat(tmp_path)
    host.routes.clear()  # WARP reconnected: the tunnel was recreated, its routes flushed
    result = Applier(host, tmp_path).rollback()
    assert result.status == "rolled-back", result.error
    assert not host.nft_table and host.routes == set()
    last = jr.latest(tmp_path)
    assert last is not None and last.status == "rolled-back"
    assert [s.state for s in last.steps] == ["undone", "undone"]
    # checked, not guessed: the delete was never attempted on a route that is not there
    assert not any(c[:4] == ("ip", "-4", "route", "del") for c in host.calls)


def test_a_rollback_killed_after_an_undo_finishes_when_run_again(tmp_path: Path) -> None:
    host = applied_nat(tmp_path)
    host.die_after = lambda argv: argv[3:4] == ("del",)
    with pytest.raises(Killed):
        Applier(host, tmp_path).rollback()
    stuck = jr.latest(tmp_path)
    assert stuck is not None and stuck.status == "rolling-back"
    assert [s.state for s in stuck.steps] == ["done", "done"]  # the undo was not journaled
    result = Applier(host, tmp_path).rollback()
    assert result.status == "rolled-back", result.error
    assert not host.nft_table and host.routes == set()
    assert Applier(host, tmp_path).rollback().status == "nothing-to-do"


def test_resume_of_a_killed_rollback_continues_it(tmp_path: Path) -> None:
    host = applied_nat(tmp_path)
    host.die_after = lambda argv: argv[3:4] == ("del",)
    with pytest.raises(Killed):
        Applier(host, tmp_path).rollback()
    assert Applier(host, tmp_path).resume().status == "rolled-back"
    assert Applier(host, tmp_path).apply(nat_plan()).status == "applied"  # not refused


def test_resume_redoes_a_route_deletion_already_done(tmp_path: Path) -> None:
    """A forward `route del` (bgp's handover) killed before it was journaled."""
    host = FakeHost(routes={ROUTE})
    plan = plan_fix(
        with_meshpath_route_and_frr(),
        Settings(),
        "route",
        FixOptions(),
    )
    assert [s.key for s in plan.steps][-1] == "route-handover:100.64.0.0/12"
    handover = plan.steps[-1]
    only = Plan(mode="route", steps=(handover,), expect=plan.expect)
    host.die_after = lambda argv: argv[3:4] == ("del",)
    with pytest.raises(Killed):
        Applier(host, tmp_path).apply(only)
    assert Applier(host, tmp_path).resume().status == "applied"


def with_meshpath_route_and_frr() -> Any:
    from tests.fix_builders import meshpath_route, with_frr, with_routes

    snap = with_frr(broken_connector(), "frr version 8.4.4\nhostname conn\n!\nend\n")
    return with_routes(snap, meshpath_route())


# -- every kind of inverse, its effect already absent ------------------------------------
def run_undo(tmp_path: Path, runner: Any, inverse: Any, root: Path | None = None) -> str:
    """Apply a one-step plan whose action does nothing, then roll it back."""
    step = Step(
        key="k", description="d", action=NftFile(text="# no-op\n"), inverse=inverse, check=""
    )
    plan = Plan(mode="route", steps=(step,), expect=EXPECT_ROUTE)
    applier = Applier(runner, tmp_path / "state", root=root or tmp_path / "root")
    assert applier.apply(plan).status == "applied"
    return applier.rollback().status


def test_undo_of_an_absent_nft_table_is_done(tmp_path: Path) -> None:
    host = FakeHost(nft_table=False)
    assert run_undo(tmp_path, host, NftFile(text=nft_render.render_delete())) == "rolled-back"
    assert ("nft", "-f", "-") in host.calls  # the undo needs no scratch file


def test_undo_of_an_absent_unit_file_is_done(tmp_path: Path) -> None:
    undo = RemoveFile(path="etc/systemd/system/meshpath-routes.service", dirs=("etc/systemd",))
    assert run_undo(tmp_path, FakeHost(), undo) == "rolled-back"


def test_undo_of_frr_lines_already_gone_skips_the_reload(tmp_path: Path) -> None:
    runner = RecordedRunner()
    runner.answer(["nft", "-f", str(tmp_path / "state/work/000001-step0.nft")])
    runner.answer(["nft", "-c", "-f", str(tmp_path / "state/work/000001-check.nft")])
    runner.answer(["vtysh", "-c", "show running-config"], stdout="hostname conn\n!\nend\n")
    intent = FrrIntent(tunnel="CloudflareWARP", statics=("100.64.0.0/12",))
    assert run_undo(tmp_path, runner, FrrReload(intent=intent, remove=True)) == "rolled-back"
    assert not any("frr-reload" in " ".join(c) for c in runner.calls)


def test_undo_of_a_route_already_deleted_is_done(tmp_path: Path) -> None:
    from meshpath.fix.model import Run
    from meshpath.render.systemd import RouteSpec

    spec = RouteSpec(*ROUTE)
    host = FakeHost()
    assert run_undo(tmp_path, host, Run(argv=spec.argv("del"))) == "rolled-back"


# -- the journal cannot be written (disk full) -------------------------------------------
def failing_writes(monkeypatch: pytest.MonkeyPatch, after: int) -> list[int]:
    """jr.write raises ENOSPC from its ``after``-th call on."""
    real = jr.write
    count = [0]

    def write(state_dir: Path, journal: jr.Journal) -> Path:
        count[0] += 1
        if count[0] >= after:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(state_dir, journal)

    monkeypatch.setattr(jr, "write", write)
    return count


def test_a_full_disk_mid_apply_still_rolls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = FakeHost()
    failing_writes(monkeypatch, after=4)  # new journal, step 1 running, step 1 done: then full
    result = Applier(host, tmp_path).apply(nat_plan())
    assert result.status == "failed" and result.failed_step == "route:100.64.0.0/12"
    assert "No space left on device" in (result.error or "")
    assert result.journal_error is not None and "cannot write journal" in result.journal_error
    assert not host.nft_table and host.routes == set()  # the nft table did not stay alone
    stale = jr.latest(tmp_path)
    assert stale is not None and stale.status == "in-progress"
    monkeypatch.undo()  # space again: the stale journal is rolled back with nothing to do
    assert Applier(host, tmp_path).rollback().status == "rolled-back"


def test_a_full_disk_before_the_first_step_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = FakeHost()
    failing_writes(monkeypatch, after=1)
    with pytest.raises(jr.JournalError, match="cannot write journal .*No space left"):
        Applier(host, tmp_path).apply(nat_plan())
    assert host.calls == [] or all(c[0] == "nft" and "-c" in c for c in host.calls)
    assert not host.nft_table and host.routes == set()


def test_an_explicit_rollback_runs_even_when_the_journal_cannot_be_updated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = applied_nat(tmp_path)
    failing_writes(monkeypatch, after=1)
    result = Applier(host, tmp_path).rollback()
    assert result.status == "rolled-back" and result.journal_error is not None
    assert not host.nft_table and host.routes == set()


def test_the_plan_data_of_an_undo_is_journaled_as_json(tmp_path: Path) -> None:
    """RemoveFile's dirs and WriteFile's bytes and owner survive the journal."""
    from meshpath.fix.model import WriteFile

    steps = tuple(
        Step(key=f"k{i}", description="d", action=a, inverse=a, check="")
        for i, a in enumerate(
            [
                RemoveFile(path="etc/a/b", dirs=("etc/a",)),
                WriteFile(path="etc/a/c", data=b"\xff\r\n", mode=0o600, owner=(7, 8)),
            ]
        )
    )
    plan = Plan(mode="route", steps=steps, expect=EXPECT_ROUTE)
    journal = jr.new_journal(tmp_path, plan, None, Path("/"))
    jr.write(tmp_path, journal)
    assert jr.latest(tmp_path) == journal
