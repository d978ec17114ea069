"""Run a Plan: validate everything first, then each step journaled, roll back on failure.

    apply(plan)   preflight (nft -c, FRR -C/--test) -> for each step: journal "running",
                  probe before, act, probe after, journal "done" -> post-check
                  any failure -> inverse actions of the started steps in reverse order
    rollback()    the newest applied (or interrupted) journal's inverses, in reverse
    resume()      an interrupted journal's remaining steps (steps are idempotent)

Results are :class:`ApplyResult` values (nornir-like: changed, failed, error), the same
shape for a dry run, an apply, a rollback and "nothing to do".
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from meshpath.apply import journal as jr
from meshpath.apply.frr import Frr, StepFailed, vtysh
from meshpath.apply.profile import ApiFactory, sdk_api
from meshpath.errors import CommandError, EnvironmentProblem, MeshpathError
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
    WriteFile,
)
from meshpath.runner import Runner

# Fault injection for tests: SIGKILL this process right after step N (1-based) is done.
KILL_AFTER_ENV: Final = "MESHPATH_TEST_KILL_AFTER_STEP"

CheckFn = Callable[[], tuple[bool, str]]
# What `ip route del` says when the route (or its device) is already gone.
ABSENT: Final = ("No such process", "Cannot find device")


@dataclass(frozen=True, slots=True)
class ApplyResult:
    status: str  # applied, nothing-to-do, rolled-back, failed, rollback-failed
    journal: Path | None
    changed: tuple[str, ...] = ()
    failed_step: str | None = None
    error: str | None = None
    undone: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status in ("applied", "nothing-to-do", "rolled-back") and self.error is None

    def to_dict(self) -> dict[str, object]:
        return {
            "status": self.status,
            "journal": str(self.journal) if self.journal else None,
            "changed": list(self.changed),
            "failed_step": self.failed_step,
            "error": self.error,
            "undone": list(self.undone),
        }


class InterruptedRun(EnvironmentProblem):
    """An earlier run was killed mid-apply; the user must resume or roll back."""


@dataclass
class Applier:
    runner: Runner
    state_dir: Path
    root: Path = Path("/")
    netns: str | None = None
    checks: Mapping[str, CheckFn] = field(default_factory=dict)
    post_check: CheckFn | None = None
    on_event: Callable[[str], None] = lambda _msg: None
    # Cloudflare's API for ProfileUpdate steps: (api_base, netns) -> ProfileApi
    profile_api: ApiFactory = sdk_api

    # -- entry points ---------------------------------------------------------------
    def apply(self, plan: Plan) -> ApplyResult:
        with jr.locked(self.state_dir):
            self._refuse_interrupted()
            if plan.empty:
                return ApplyResult("nothing-to-do", None)
            journal = jr.new_journal(self.state_dir, plan, self.netns, self.root)
            path = jr.write(self.state_dir, journal)
            return self._run(journal, path, start=0)

    def resume(self) -> ApplyResult:
        with jr.locked(self.state_dir):
            journal = jr.interrupted(self.state_dir)
            if journal is None:
                raise EnvironmentProblem("no interrupted meshpath fix to resume")
            if journal.status == "rolling-back":
                return self._rollback(journal)
            path = jr.path_of(self.state_dir, journal)
            start = next((i for i, s in enumerate(journal.steps) if s.state != "done"), 0)
            self.on_event(f"resuming journal {path} at step {start + 1}")
            return self._run(journal, path, start=start)

    def rollback(self) -> ApplyResult:
        with jr.locked(self.state_dir):
            journal = jr.last_applied(self.state_dir, self.netns)
            if journal is None:
                return ApplyResult("nothing-to-do", None, error=None)
            return self._rollback(journal)

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
        try:
            for step in journal.plan.steps[start:]:
                self._preflight(step.action, journal.seq)
        except MeshpathError as exc:
            journal = journal.with_status("failed", f"check before apply: {exc}")
            jr.write(self.state_dir, journal)
            return ApplyResult("failed", path, failed_step=None, error=str(exc))
        index = start
        try:
            for index in range(start, len(journal.steps)):
                journal = self._begin(journal, index)
                journal = self._finish(journal, index)
                self._maybe_die(index)
            index = len(journal.steps)
            self._post_check()
        # Any failure once the first change is made must roll back: a bug or an OSError in a
        # step or check is no reason to leave the host half-changed (Ctrl-C, a
        # BaseException, leaves the journal in-progress for --resume/--rollback instead).
        except Exception as exc:  # noqa: BLE001
            self.on_event(f"failed: {exc}; rolling back")
            if index < len(journal.steps) and journal.steps[index].state == "running":
                journal = journal.with_step(index, state="failed", error=str(exc))
            jr.write(self.state_dir, journal.with_status("in-progress", str(exc)))
            undone = self._rollback(journal.with_status("in-progress", str(exc)))
            failed = journal.steps[index].key if index < len(journal.steps) else "post-check"
            status = "failed" if undone.ok else "rollback-failed"
            return ApplyResult(
                status, path, failed_step=failed, error=str(exc), undone=undone.undone
            )
        journal = journal.with_status("applied")
        jr.write(self.state_dir, journal)
        changed = tuple(s.description for s in journal.plan.steps)
        return ApplyResult("applied", path, changed=changed)

    def _begin(self, journal: jr.Journal, index: int) -> jr.Journal:
        """Journal the step as running (with its probe's "before") before acting."""
        step = journal.plan.steps[index]
        self.on_event(f"step {index + 1}/{len(journal.steps)}: {step.description}")
        journal = journal.with_step(index, state="running", before=self._probe(step.probe))
        jr.write(self.state_dir, journal)
        return journal

    def _finish(self, journal: jr.Journal, index: int) -> jr.Journal:
        step = journal.plan.steps[index]
        note = self._act(step.action, journal.seq, index)
        journal = journal.with_step(index, state="done", after=self._probe(step.probe) or note)
        jr.write(self.state_dir, journal)
        return journal

    def _maybe_die(self, index: int) -> None:
        if os.environ.get(KILL_AFTER_ENV) == str(index + 1):
            os.kill(os.getpid(), signal.SIGKILL)

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
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.write_text(text)
        return path

    def _preflight(self, action: Action, seq: int) -> None:
        """Validate with the real tools before anything changes."""
        if isinstance(action, NftFile):
            self.runner.run(self._nft_argv(action, seq, "check", check=True))
        elif isinstance(action, FrrReload):
            frr = Frr(self.runner, self.netns)
            conf = self._scratch(seq, "frr-check.conf", frr.desired(action.intent, action.remove))
            frr.check(conf)
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
            return self._run_argv(action)
        if isinstance(action, NftFile):
            self.runner.run(self._nft_argv(action, seq, f"step{index}"))
        elif isinstance(action, WriteFile | RemoveFile):
            self._file(action)
        elif isinstance(action, FrrReload):
            self._frr(action, seq, index)
        elif isinstance(action, WaitBgp):
            return Frr(self.runner, self.netns).wait(action.peer, action.prefixes, action.timeout)
        elif isinstance(action, PostCheck):
            return self._named_check(action.name)
        elif isinstance(action, ProfileUpdate):
            return self._profile(action)
        return None

    def _run_argv(self, action: Run) -> str | None:
        if not action.absent_ok:
            self.runner.run(action.argv)
            return None
        done = self.runner.run(action.argv, check=False)
        if done.ok:
            return None
        if any(text in done.stderr for text in ABSENT):
            return f"already absent ({done.stderr.strip()})"
        raise CommandError(done.argv, done.returncode, done.stderr)

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

    def _frr(self, action: FrrReload, seq: int, index: int) -> None:
        frr = Frr(self.runner, self.netns)
        conf = self._scratch(
            seq, f"frr-step{index}.conf", frr.desired(action.intent, action.remove)
        )
        frr.check(conf)
        frr.reload(conf)
        frr.confirm(action.intent, action.remove)

    def _file(self, action: WriteFile | RemoveFile) -> None:
        target = self.root / action.path
        if isinstance(action, RemoveFile):
            target.unlink(missing_ok=True)
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.meshpath-tmp")
        tmp.unlink(missing_ok=True)
        if action.link is not None:
            tmp.symlink_to(action.link)
        else:
            tmp.write_text(action.content)
            tmp.chmod(action.mode)
        os.replace(tmp, target)

    # -- rolling back ---------------------------------------------------------------
    def _rollback(self, journal: jr.Journal) -> ApplyResult:
        path = jr.path_of(self.state_dir, journal)
        journal = journal.with_status("rolling-back", journal.error)
        jr.write(self.state_dir, journal)
        undone: list[str] = []
        for index in reversed(range(len(journal.steps))):
            record = journal.steps[index]
            step = journal.plan.steps[index]
            if record.state not in ("done", "running", "failed") or step.inverse is None:
                continue
            self.on_event(f"undo step {index + 1}: {step.description}")
            try:
                self._act(step.inverse, journal.seq, 1000 + index)
            except MeshpathError as exc:
                if record.state == "done":
                    journal = journal.with_status("rolling-back", f"undo {step.key}: {exc}")
                    jr.write(self.state_dir, journal)
                    return ApplyResult(
                        "rollback-failed", path, failed_step=step.key, error=str(exc)
                    )
                # A step that never finished may have changed nothing: nothing to undo.
            journal = journal.with_step(index, state="undone")
            jr.write(self.state_dir, journal)
            undone.append(step.description)
        jr.write(self.state_dir, journal.with_status("rolled-back", journal.error))
        return ApplyResult("rolled-back", path, undone=tuple(undone))


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
