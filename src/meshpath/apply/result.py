"""What a run of a plan did, step by step (like nornir's ``Result``: changed, diff, failed,
error). A dry run, an apply, a rollback and "nothing to do" return the same
:class:`ApplyResult`; a dry run's steps are "planned" and change nothing."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from meshpath.apply import journal as jr
from meshpath.fix.model import Plan, Step

ApplyStatus = Literal[
    "planned", "applied", "nothing-to-do", "rolled-back", "failed", "rollback-failed"
]
# planned: a dry run's; done: acted; failed: acted and failed (or its check did);
# undone: done, then rolled back; not-run: never reached.
StepStatus = Literal["planned", "done", "failed", "undone", "not-run"]
OK_STATUSES: Final = ("planned", "applied", "nothing-to-do", "rolled-back")
# What an action returns when its effect was already there (nothing changed).
ALREADY: Final = "already absent"

_FROM_JOURNAL: Final[Mapping[jr.StepState, StepStatus]] = {
    "pending": "not-run",
    "running": "failed",  # started, never finished: the run failed there
    "done": "done",
    "undone": "undone",
    "failed": "failed",
}


@dataclass(frozen=True, slots=True)
class StepResult:
    """One step of a run: whether it changed the host, how (``diff``), and its error."""

    key: str
    description: str
    status: StepStatus
    changed: bool = False
    diff: str = ""  # the probe's before/after as a unified diff, else the rendered text
    note: str | None = None  # what the action said (e.g. "already absent")
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    def to_dict(self) -> dict[str, object]:
        return {
            "key": self.key,
            "description": self.description,
            "status": self.status,
            "changed": self.changed,
            "failed": self.failed,
            "diff": self.diff,
            "note": self.note,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class ApplyResult:
    status: ApplyStatus
    journal: Path | None
    changed: tuple[str, ...] = ()
    failed_step: str | None = None
    error: str | None = None
    undone: tuple[str, ...] = ()
    journal_error: str | None = None  # the journal could not be updated (disk full...)
    steps: tuple[StepResult, ...] = ()

    @classmethod
    def planned(cls, plan: Plan) -> ApplyResult:
        """A dry run's result: every step "planned", nothing changed."""
        steps = tuple(
            StepResult(s.key, s.description, "planned", diff=s.detail) for s in plan.steps
        )
        return cls("planned", None, steps=steps)

    @property
    def ok(self) -> bool:
        done = self.status in OK_STATUSES
        return done and self.error is None and self.journal_error is None

    @property
    def failed(self) -> bool:
        return not self.ok

    def to_dict(self) -> dict[str, object]:
        return {
            "status": self.status,
            "journal": str(self.journal) if self.journal else None,
            "changed": list(self.changed),
            "failed_step": self.failed_step,
            "error": self.error,
            "undone": list(self.undone),
            "journal_error": self.journal_error,
            "steps": [s.to_dict() for s in self.steps],
        }


def step_results(journal: jr.Journal, notes: Mapping[int, str | None]) -> tuple[StepResult, ...]:
    """Each step's result from its journal record and what its action said (``notes``)."""
    return tuple(
        _one(step, record, notes.get(index))
        for index, (step, record) in enumerate(zip(journal.plan.steps, journal.steps, strict=True))
    )


def _one(step: Step, record: jr.StepRecord, note: str | None) -> StepResult:
    # A step that failed keeps its error through the rollback that undid it.
    status = "failed" if record.error is not None else _FROM_JOURNAL[record.state]
    # A step changes the host when it acted, can be undone (waits and checks cannot), and
    # its effect was not already there.
    changed = status == "done" and step.inverse is not None and note != ALREADY
    return StepResult(
        step.key,
        step.description,
        status,
        changed=changed,
        diff=_diff(step, record) if status != "not-run" else "",
        note=note,
        error=record.error,
    )


def _diff(step: Step, record: jr.StepRecord) -> str:
    """The probe's output before and after, as a unified diff; else the step's rendered text."""
    if record.before is None or record.after is None or record.before == record.after:
        return step.detail
    lines = difflib.unified_diff(
        record.before.splitlines(keepends=True),
        record.after.splitlines(keepends=True),
        fromfile=f"{step.key} (before)",
        tofile=f"{step.key} (after)",
    )
    return "".join(lines)
