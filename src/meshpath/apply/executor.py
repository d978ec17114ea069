"""Run a Plan: validate everything first, then each step journaled, roll back on failure.

    apply(plan)   preflight (nft -c, FRR -C/--test) -> for each step: journal "running",
                  probe before, act, probe after, journal "done" -> post-check
                  any failure -> inverse actions of the started steps in reverse order
    rollback()    the newest applied (or interrupted) journal's inverses, in reverse
    resume()      an interrupted journal's remaining steps (steps are idempotent)

Undo is idempotent and resumable: each inverse step is journaled "undone" once done,
and an inverse whose effect is already there counts as done, checked against the state
(a route meshpath would delete is looked up first: WARP recreating the tunnel flushes
it), so a rollback killed at any point, or one that finds the host changed, finishes
when run again. A rollback never depends on the journal: on a full or read-only disk
it still runs (nft undo files go through stdin) and the result says the journal could
not be updated (exit 3).

Results are :class:`ApplyResult` values (nornir-like: per-step changed, diff, failed,
error; :mod:`meshpath.apply.result`), the same shape for a dry run, an apply, a rollback
and "nothing to do".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from meshpath.apply import files
from meshpath.apply import journal as jr
from meshpath.apply.drain import wait_drained
from meshpath.apply.frr import Frr, StepFailed, vtysh
from meshpath.apply.profile import ApiFactory, sdk_api
from meshpath.apply.result import ALREADY, ApplyResult, ApplyStatus, step_results
from meshpath.collect.iproute import route_listed
from meshpath.errors import CommandError, EnvironmentProblem, MeshpathError
from meshpath.errors import InterruptedRun as InterruptedRun  # re-exported: its old home
from meshpath.fix.model import (
    Action,
    FrrReload,
    NftFile,
    Plan,
    PostCheck,
    ProfileUpdate,
    RemoveFile,
    Run,
    WaitBgp,
    WaitNatDrain,
    WriteFile,
)
from meshpath.fsafe import atomic_write, ensure_dir
from meshpath.render.systemd import RouteSpec
from meshpath.runner import Runner

# The points where a run may stop dead (a crash, a SIGKILL): "step-done" N once step N
# (1-based) is journaled done; "undo-acted" N once the undo of step N acted, before the
# journal records it. A run calls its checkpoint there; the crash tests inject one that
# kills the process (tests/faults.py), production passes none.
STEP_DONE: Final = "step-done"
UNDO_ACTED: Final = "undo-acted"
Checkpoint = Callable[[str, int], None]
# Journal states whose step may have changed the host (and so get undone).
UNDOABLE: Final = ("done", "running", "failed")

CheckFn = Callable[[], tuple[bool, str]]
# What `ip route del` says when the route (or its device) is already gone.


@dataclass
class Applier:
    runner: Runner
    state_dir: Path
    root: Path = Path("/")
    netns: str | None = None
    checks: Mapping[str, CheckFn] = field(default_factory=dict)
    post_check: CheckFn | None = None
    on_event: Callable[[str], None] = lambda _msg: None
    # The first journal write that failed in this run (the result reports it).
    _journal_trouble: str | None = field(default=None, init=False, repr=False)
    # What each step's action said in this run (by index), for the per-step results.
    _notes: dict[int, str | None] = field(default_factory=dict, init=False, repr=False)
    # FRR configs that vtysh -C and frr-reload.py --test passed in this run's preflight: a
    # step whose desired config is the same text does not pay for both again (~0.5-3 s,
    # most of it frr-reload.py starting Python, before the session can come up).
    _frr_checked: set[str] = field(default_factory=set, init=False, repr=False)
    # Cloudflare's API for ProfileUpdate steps: (api_base, netns) -> ProfileApi
    profile_api: ApiFactory = sdk_api
    # Called at each point a run may be killed (STEP_DONE, UNDO_ACTED); see above.
    checkpoint: Checkpoint = lambda _point, _step: None

    # -- entry points ---------------------------------------------------------------
    def apply(self, plan: Plan) -> ApplyResult:
        with jr.locked(self.state_dir):
            return self.apply_locked(plan)

    def apply_locked(self, plan: Plan) -> ApplyResult:
        """:meth:`apply` for a caller that already holds ``jr.locked(state_dir)``: the CLI
        takes the lock before it collects and plans, so two runs never plan the same
        change from the same host state."""
        self._journal_trouble = None
        self._notes = {}
        self._refuse_interrupted()
        if plan.empty:
            return ApplyResult("nothing-to-do", None)
        journal = jr.new_journal(self.state_dir, plan, self.netns, self.root)
        path = self._save(journal)  # no journal, no change: this one must succeed
        return self._run(journal, path, start=0)

    def resume(self) -> ApplyResult:
        with jr.locked(self.state_dir):
            self._journal_trouble = None
            self._notes = {}
            journal = jr.interrupted(self.state_dir)
            if journal is None:
                raise EnvironmentProblem("no interrupted meshpath fix to resume")
            if journal.status == "rolling-back":
                return self._rollback(journal)
            path = jr.path_of(self.state_dir, journal)
            steps = journal.steps
            start = next((i for i, s in enumerate(steps) if s.state != "done"), len(steps))
            self.on_event(f"resuming journal {path} at step {start + 1}")
            return self._run(journal, path, start=start)

    def rollback(self) -> ApplyResult:
        with jr.locked(self.state_dir):
            self._journal_trouble = None
            self._notes = {}
            journal = jr.last_applied(self.state_dir, self.netns)
            if journal is None:
                return ApplyResult("nothing-to-do", None, error=None)
            return self._rollback(journal)

    # -- the journal ------------------------------------------------------------------
    def _save(self, journal: jr.Journal) -> Path:
        """Write the journal; a JournalError (exit 3) when the disk refuses."""
        try:
            return jr.write(self.state_dir, journal)
        except OSError as exc:
            where = jr.path_of(self.state_dir, journal)
            raise jr.JournalError(f"cannot write journal {where}: {exc}") from exc

    def _save_if_possible(self, journal: jr.Journal) -> None:
        """Journal what a rollback did without depending on it: a full disk is often why
        the rollback runs. The first failure is kept for the result."""
        try:
            self._save(journal)
        except jr.JournalError as exc:
            self._journal_trouble = self._journal_trouble or str(exc)

    # -- applying -------------------------------------------------------------------
    def _refuse_interrupted(self) -> None:
        open_ = jr.interrupted(self.state_dir)
        if open_ is not None:
            done = sum(1 for s in open_.steps if s.state == "done")
            raise InterruptedRun(
                f"an earlier meshpath fix --mode {open_.mode} was interrupted after step "
                f"{done}/{len(open_.steps)} (journal {jr.path_of(self.state_dir, open_)}); "
                "run 'meshpath fix --resume' to finish it or 'meshpath fix --rollback' to undo it"
            )

    def _run(self, journal: jr.Journal, path: Path, start: int) -> ApplyResult:
        self._frr_checked.clear()
        try:
            for step in journal.plan.steps[start:]:
                self._preflight(step.action, journal.seq)
        except (MeshpathError, OSError) as exc:
            self._save_if_possible(journal.with_status("failed", f"check before apply: {exc}"))
            return self._result("failed", journal, path, error=str(exc))
        index = start
        try:
            for index in range(start, len(journal.steps)):
                running = self._begin(journal, index)
                self._save(running)  # journaled before acting: failing here changed nothing
                journal = running
                journal = self._finish(journal, index)
                self._save(journal)
                self.checkpoint(STEP_DONE, index + 1)
            index = len(journal.steps)
            self._post_check()
        # Any failure once the first change is made must roll back: a bug or an OSError in a
        # step or check is no reason to leave the host half-changed (Ctrl-C, a
        # BaseException, leaves the journal in-progress for --resume/--rollback instead).
        except Exception as exc:  # noqa: BLE001
            return self._abort(journal, path, index, exc)
        self._save_if_possible(journal.with_status("applied"))
        changed = tuple(s.description for s in journal.plan.steps)
        return self._result("applied", journal, path, changed=changed)

    def _abort(self, journal: jr.Journal, path: Path, index: int, exc: Exception) -> ApplyResult:
        """Roll back after a failure at step ``index`` (len(steps): the post-check)."""
        self.on_event(f"failed: {exc}; rolling back")
        if index < len(journal.steps) and journal.steps[index].state == "running":
            journal = journal.with_step(index, state="failed", error=str(exc))
        journal = journal.with_status("in-progress", str(exc))
        self._save_if_possible(journal)  # best effort: the rollback runs either way
        undone = self._rollback(journal)
        failed = journal.steps[index].key if index < len(journal.steps) else "post-check"
        if undone.status == "rolled-back":
            return replace(
                undone, status="failed", failed_step=failed, error=str(exc), journal=path
            )
        error = f"{exc}; then undoing {undone.failed_step} failed: {undone.error}"
        return replace(undone, status="rollback-failed", failed_step=failed, error=error)

    def _result(
        self, status: ApplyStatus, journal: jr.Journal, path: Path | None, **rest: Any
    ) -> ApplyResult:
        steps = step_results(journal, self._notes)
        return ApplyResult(status, path, journal_error=self._journal_trouble, steps=steps, **rest)

    def _begin(self, journal: jr.Journal, index: int) -> jr.Journal:
        """The step as running (with its probe's "before"), to journal before acting."""
        step = journal.plan.steps[index]
        self.on_event(f"step {index + 1}/{len(journal.steps)}: {step.description}")
        return journal.with_step(index, state="running", before=self._probe(step.probe))

    def _finish(self, journal: jr.Journal, index: int) -> jr.Journal:
        step = journal.plan.steps[index]
        note = self._act(step.action, journal.seq, index)
        self._notes[index] = note
        return journal.with_step(index, state="done", after=self._probe(step.probe) or note)

    def _post_check(self) -> None:
        if self.post_check is None:
            return
        ok, detail = self.post_check()
        if not ok:
            raise StepFailed(f"post-check failed: {detail}")

    def _probe(self, argv: tuple[str, ...] | None) -> str | None:
        if argv is None:
            return None
        if argv[0] == "vtysh":
            argv = tuple(vtysh(self.netns, *argv[1:]))
        done = self.runner.run(argv, check=False)
        return (done.stdout if done.ok else f"(exit {done.returncode}) {done.stderr}")[:8000]

    # -- actions --------------------------------------------------------------------
    def _scratch(self, seq: int, name: str, text: str) -> Path:
        path = self.state_dir / "work" / f"{seq:06d}-{name}"
        try:  # never through a planted symlink, never into a linked work dir
            ensure_dir(path.parent, 0o700)
            atomic_write(path, text.encode(), mode=0o600)
        except OSError as exc:
            raise EnvironmentProblem(f"cannot write {path}: {exc.strerror}") from exc
        return path

    def _preflight(self, action: Action, seq: int) -> None:
        """Validate with the real tools before anything changes."""
        if isinstance(action, NftFile):
            self.runner.run(self._nft_argv(action, seq, "check", check=True))
        elif isinstance(action, FrrReload):
            frr = Frr(self.runner, self.netns)
            text = frr.desired(action.intent, action.remove)
            frr.check(self._scratch(seq, "frr-check.conf", text))
            self._frr_checked.add(text)
        elif isinstance(action, PostCheck) and action.name not in self.checks:
            raise EnvironmentProblem(f"check {action.name!r} is not available in this run")
        elif isinstance(action, ProfileUpdate) and action.before is not None:
            self._profile_unchanged(action)

    def _nft_argv(self, action: NftFile, seq: int, name: str, check: bool = False) -> list[str]:
        suffix = "json" if action.json else "nft"
        path = self._scratch(seq, f"{name}.{suffix}", action.text)
        return [
            "nft",
            *(["-j"] if action.json else []),
            *(["-c"] if check else []),
            "-f",
            str(path),
        ]

    def _act(self, action: Action, seq: int, index: int) -> str | None:
        if isinstance(action, Run):
            return self._run_argv(action.argv)
        if isinstance(action, NftFile):
            self.runner.run(self._nft_argv(action, seq, f"step{index}"))
        elif isinstance(action, WriteFile):
            files.write(self.root, action)
        elif isinstance(action, RemoveFile):
            return files.remove(self.root, action)
        elif isinstance(action, FrrReload):
            return self._frr(action, seq, index)
        elif isinstance(action, WaitBgp | WaitNatDrain):
            return self._wait(action)
        elif isinstance(action, PostCheck):
            return self._named_check(action.name)
        elif isinstance(action, ProfileUpdate):
            return self._profile(action)
        return None

    def _wait(self, action: WaitBgp | WaitNatDrain) -> str:
        if isinstance(action, WaitNatDrain):
            return wait_drained(self.runner, action)
        return Frr(self.runner, self.netns).wait(action.peer, action.prefixes, action.timeout)

    def _profile_unchanged(self, action: ProfileUpdate) -> None:
        """Refuse to overwrite a list that changed since the plan was read."""
        api = self.profile_api(action.api_base, self.netns)
        now = api.read(action.account_id, action.policy_id)
        if (now.mode, now.entries) != (action.mode, action.before):
            raise StepFailed(
                "the profile's Split Tunnels changed since the plan was made; plan again"
            )

    def _profile(self, action: ProfileUpdate) -> str:
        api = self.profile_api(action.api_base, self.netns)
        got = api.write(action.account_id, action.policy_id, action.mode, action.entries)
        if got != action.entries:
            raise StepFailed(f"the API holds {len(got)} entries after the update, not the plan's")
        return f"{action.mode} list: {len(got)} entries ({', '.join(e.value for e in got)})"

    def _named_check(self, name: str) -> str:
        check = self.checks.get(name)
        if check is None:
            raise StepFailed(f"check {name!r} is not available in this run")
        ok, detail = check()
        if not ok:
            raise StepFailed(f"{name}: {detail}")
        return detail

    def _run_argv(self, argv: tuple[str, ...]) -> str | None:
        """Run ``argv``. Deleting one of meshpath's routes that is already gone is done,
        checked with ``ip route show`` (before, and again if the delete fails), not
        guessed from an error message."""
        parsed = RouteSpec.from_argv(argv)
        spec = parsed[1] if parsed is not None and parsed[0] == "del" else None
        if spec is not None and not self._route_present(spec):
            return ALREADY
        try:
            self.runner.run(argv)
        except CommandError:
            if spec is not None and not self._route_present(spec):
                return ALREADY
            raise
        return None

    def _route_present(self, spec: RouteSpec) -> bool:
        """Whether the kernel has ``spec``'s route; True when it cannot tell (the delete
        then runs and reports its own error)."""
        done = self.runner.run(spec.show_argv(), check=False)
        if not done.ok:
            return True
        try:
            return route_listed(done.stdout, spec)
        except ValueError:
            return True

    def _frr(self, action: FrrReload, seq: int, index: int) -> str | None:
        frr = Frr(self.runner, self.netns)
        if action.remove and not frr.has_owned(action.intent):
            return ALREADY  # nothing of meshpath's left in FRR's running config
        text = frr.desired(action.intent, action.remove)
        conf = self._scratch(seq, f"frr-step{index}.conf", text)
        if text not in self._frr_checked:  # the running config moved since the preflight
            frr.check(conf)
        frr.reload(conf)
        frr.confirm(action.intent, action.remove)
        return None

    def _undo(self, action: Action, seq: int, index: int) -> None:
        """An inverse action; nft's goes through stdin so that a full disk (no room for
        a scratch file) cannot stop the rollback."""
        if isinstance(action, NftFile):
            argv = ["nft", *(["-j"] if action.json else []), "-f", "-"]
            self.runner.run(argv, input_text=action.text)
        else:
            self._act(action, seq, 1000 + index)

    # -- rolling back ---------------------------------------------------------------
    def _rollback(self, journal: jr.Journal) -> ApplyResult:
        """Undo the journal's changed steps in reverse, journaling each one once done;
        resumable: steps already "undone" are skipped when it runs again."""
        path = jr.path_of(self.state_dir, journal)
        journal = journal.with_status("rolling-back", journal.error)
        self._save_if_possible(journal)
        undone: list[str] = []
        for index in reversed(range(len(journal.steps))):
            record = journal.steps[index]
            step = journal.plan.steps[index]
            if record.state not in UNDOABLE or step.inverse is None:
                continue
            self.on_event(f"undo step {index + 1}: {step.description}")
            try:
                self._undo(step.inverse, journal.seq, index)
            except (MeshpathError, OSError) as exc:
                if record.state == "done":
                    journal = journal.with_status("rolling-back", f"undo {step.key}: {exc}")
                    self._save_if_possible(journal)
                    return self._result(
                        "rollback-failed", journal, path, failed_step=step.key, error=str(exc)
                    )
                # A step that never finished may have changed nothing: nothing to undo.
            self.checkpoint(UNDO_ACTED, index + 1)
            journal = journal.with_step(index, state="undone")
            self._save_if_possible(journal)
            undone.append(step.description)
        self._save_if_possible(journal.with_status("rolled-back", journal.error))
        return self._result("rolled-back", journal, path, undone=tuple(undone))


def describe_journal(journal: jr.Journal) -> dict[str, object]:
    """A JSON-ready summary of a journal (for --json and the interrupted-run report)."""
    return {
        "seq": journal.seq,
        "mode": journal.mode,
        "status": journal.status,
        "started": journal.started,
        "updated": journal.updated,
        "netns": journal.netns,
        "steps": [{"key": s.key, "state": s.state} for s in journal.steps],
        "error": journal.error,
    }
