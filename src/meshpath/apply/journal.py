"""The journal and the lock of ``meshpath fix`` (I/O edge, files only).

Every apply writes a JSON journal under the state directory (``/var/lib/meshpath`` by
default) *before and after each step*: the plan, each step's state (pending, running,
done, undone) and what its probe showed before and after. A journal left ``in-progress``
means a process died mid-apply; the next run finds it and offers ``--resume`` or
``--rollback``. Journals are numbered; the newest applied one is what ``--rollback`` undoes.

Two runs never interleave: :func:`locked` takes an exclusive ``flock`` on ``STATE/lock``
and fails at once (exit 3) when another run holds it.

A journal that cannot be read (bad JSON, wrong types, truncated, empty, a directory, not
UTF-8) or a state directory that cannot be written is a :class:`JournalError`: one line
naming the file and what to do, exit 3, never a traceback.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Literal

import msgspec

from meshpath.errors import JournalError as JournalError  # re-exported: its old home
from meshpath.errors import LockHeld as LockHeld  # re-exported: its old home
from meshpath.fix.model import Plan
from meshpath.fsafe import atomic_write, ensure_dir, open_regular

DEFAULT_STATE_DIR: Final = Path("/var/lib/meshpath")
StepState = Literal["pending", "running", "done", "undone", "failed"]
Status = Literal["in-progress", "applied", "failed", "rolling-back", "rolled-back"]
OPEN_STATUSES: Final = ("in-progress", "rolling-back")
# Steps of a keeper's re-assertion (``meshpath watch --heal``) carry this key prefix.
HEAL_KEY_PREFIX: Final = "heal:"


# A journal holds a plan and a few probe outputs (each <= 8000 characters): far below this.
MAX_JOURNAL_BYTES: Final = 64 * 1024 * 1024


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
    ensure_dir(path.parent, 0o700)
    atomic_write(path, msgspec.json.format(msgspec.json.encode(journal), indent=2), mode=0o600)
    return path


def load_all(state_dir: Path) -> list[Journal]:
    """Every journal, oldest first; JournalError (exit 3) for one that cannot be read."""
    try:
        paths = sorted(journal_dir(state_dir).glob("*.json"), key=_seq)
    except OSError as exc:
        raise JournalError(f"cannot list the journals in {journal_dir(state_dir)}: {exc}") from exc
    return [load(state_dir, p) for p in paths]


def load(state_dir: Path, path: Path) -> Journal:
    """One journal file, checked: its content must be the journal its name says."""
    try:
        journal = msgspec.json.decode(_read_regular(path), type=Journal)
    except (OSError, msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise _unreadable(path, str(exc)) from exc
    if path_of(state_dir, journal).name != path.name:
        raise _unreadable(path, f"it holds journal #{journal.seq} of mode {journal.mode}")
    return journal


def _read_regular(path: Path) -> bytes:
    """The bytes of a regular file, without following a symlink or blocking on a FIFO."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        if info.st_size > MAX_JOURNAL_BYTES:
            raise OSError(errno.EFBIG, f"larger than {MAX_JOURNAL_BYTES} bytes")
        return os.read(fd, MAX_JOURNAL_BYTES + 1)
    finally:
        os.close(fd)


def _unreadable(path: Path, reason: str) -> JournalError:
    return JournalError(
        f"journal {path} is unreadable ({reason.splitlines()[0] if reason else 'empty'}); "
        "meshpath cannot tell what that run changed: inspect it, undo its changes by hand "
        f"if needed, then move it out of {path.parent} (fix --rollback cannot use it)"
    )


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
    """Hold ``STATE/lock`` exclusively for the block; LockHeld (exit 3) if taken.

    A state directory meshpath cannot create or write (read-only, full, not a directory)
    is a JournalError before anything changes: without a journal there is no apply.
    """
    path = state_dir / "lock"
    try:  # never through a symlink, never a device or FIFO: the lock is truncated below
        ensure_dir(state_dir, 0o700)
        fd = open_regular(path, os.O_RDWR | os.O_CREAT, create_mode=0o600, follow=False)
    except OSError as exc:
        raise JournalError(
            f"cannot use the state directory {state_dir} (lock {path}): "
            f"{exc.strerror or exc}; nothing was changed"
        ) from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise LockHeld(
                f"another meshpath fix is running (lock {path} held by pid {holder}); "
                "wait for it to finish"
            ) from exc
        _note_holder(fd)
        yield path
    finally:
        os.close(fd)


def _note_holder(fd: int) -> None:
    """Write our pid into the lock for the message a second run prints; the flock is the
    lock, so a full disk must not stop the run here (the journal write will say so)."""
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except OSError:
        pass
