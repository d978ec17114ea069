"""The journal and the lock of ``meshpath fix`` (I/O edge, files only).

Every apply writes a JSON journal under the state directory (``/var/lib/meshpath`` by
default) *before and after each step*: the plan, each step's state (pending, running,
done, undone) and what its probe showed before and after. A journal left ``in-progress``
means a process died mid-apply; the next run finds it and offers ``--resume`` or
``--rollback``. Journals are numbered; the newest applied one is what ``--rollback`` undoes.

Two runs never interleave: :func:`locked` takes an exclusive ``flock`` on ``STATE/lock``
and fails at once (exit 3) when another run holds it.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Literal

import msgspec

from meshpath.errors import EnvironmentProblem
from meshpath.fix.model import Plan

DEFAULT_STATE_DIR: Final = Path("/var/lib/meshpath")
StepState = Literal["pending", "running", "done", "undone", "failed"]
Status = Literal["in-progress", "applied", "failed", "rolling-back", "rolled-back"]
OPEN_STATUSES: Final = ("in-progress", "rolling-back")
# Steps of a keeper's re-assertion (``meshpath watch --heal``) carry this key prefix.
HEAL_KEY_PREFIX: Final = "heal:"


class LockHeld(EnvironmentProblem):
    """Another meshpath fix holds the lock."""


class StepRecord(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    description: str
    state: StepState = "pending"
    before: str | None = None
    after: str | None = None
    error: str | None = None


class Journal(msgspec.Struct, frozen=True, kw_only=True):
    seq: int
    mode: str
    status: Status
    started: str
    updated: str
    netns: str | None
    root: str
    plan: Plan
    steps: tuple[StepRecord, ...]
    error: str | None = None

    def with_step(self, index: int, **changes: object) -> Journal:
        steps = list(self.steps)
        steps[index] = msgspec.structs.replace(steps[index], **changes)
        return msgspec.structs.replace(self, steps=tuple(steps), updated=now())

    def with_status(self, status: Status, error: str | None = None) -> Journal:
        return msgspec.structs.replace(self, status=status, error=error, updated=now())


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def journal_dir(state_dir: Path) -> Path:
    return state_dir / "journals"


def new_journal(state_dir: Path, plan: Plan, netns: str | None, root: Path) -> Journal:
    seq = max((_seq(p) for p in journal_dir(state_dir).glob("*.json")), default=0) + 1
    records = tuple(StepRecord(key=s.key, description=s.description) for s in plan.steps)
    stamp = now()
    return Journal(
        seq=seq,
        mode=plan.mode,
        status="in-progress",
        started=stamp,
        updated=stamp,
        netns=netns,
        root=str(root),
        plan=plan,
        steps=records,
    )


def path_of(state_dir: Path, journal: Journal) -> Path:
    return journal_dir(state_dir) / f"{journal.seq:06d}-{journal.mode}.json"


def write(state_dir: Path, journal: Journal) -> Path:
    """Write atomically (temp file, fsync, rename): a kill never leaves half a journal."""
    path = path_of(state_dir, journal)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as fh:
        fh.write(msgspec.json.format(msgspec.json.encode(journal), indent=2))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def load_all(state_dir: Path) -> list[Journal]:
    """Every journal, oldest first."""
    paths = sorted(journal_dir(state_dir).glob("*.json"), key=_seq)
    return [msgspec.json.decode(p.read_bytes(), type=Journal) for p in paths]


def latest(state_dir: Path) -> Journal | None:
    found = load_all(state_dir)
    return found[-1] if found else None


def interrupted(state_dir: Path) -> Journal | None:
    """The newest journal a killed run left open, if any."""
    last = latest(state_dir)
    return last if last is not None and last.status in OPEN_STATUSES else None


def is_heal(journal: Journal) -> bool:
    """A keeper's re-assertion of what an earlier journal applied (``meshpath watch --heal``)."""
    return bool(journal.steps) and all(s.key.startswith(HEAL_KEY_PREFIX) for s in journal.steps)


def last_applied(state_dir: Path, netns: str | None) -> Journal | None:
    """The newest applied (or open) journal for ``netns``: what ``--rollback`` undoes.

    A finished heal is skipped: it only put back what the journal it heals applied, and
    that journal's inverses undo it, so ``--rollback`` undoes the fix itself.
    """
    for journal in reversed(load_all(state_dir)):
        if journal.netns != netns or journal.status not in ("applied", *OPEN_STATUSES):
            continue
        if journal.status == "applied" and is_heal(journal):
            continue
        return journal
    return None


def _seq(path: Path) -> int:
    head = path.name.split("-", 1)[0]
    return int(head) if head.isdigit() else 0


@contextmanager
def locked(state_dir: Path) -> Iterator[Path]:
    """Hold ``STATE/lock`` exclusively for the block; LockHeld (exit 3) if taken."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = state_dir / "lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise LockHeld(
                f"another meshpath fix is running (lock {path} held by pid {holder}); "
                "wait for it to finish"
            ) from exc
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)
