"""The lab's state file, and finding labs (live or left over) on this host.

Each lab instance keeps ``<run_root>/<instance>/state.json``. It is written *before* any
namespace is created, so a run killed at any point leaves a state file (or at worst bare
``mplab-`` namespaces) that the next ``lab up``/``lab down`` recognises as a leftover.

A lab is *owned* while ``owner_pid`` names a live process (a test, ``lab run``, a
half-finished ``lab up``); ``lab up`` detaches its lab (owner None) once it is ready.
Leftovers are labs whose owner died, and namespaces with no state file at all.

The run root is removed from by root: it must be a real directory (not a symlink) that
only its owner (this user) can write, and an instance is only ever a valid instance id
(:func:`meshpath.lab.topology.check_instance`), so a run dir is always one level inside it.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from pathlib import Path
from typing import Final

import msgspec

from meshpath.errors import LabRootError as LabRootError  # re-exported: its old home
from meshpath.fsafe import atomic_write, ensure_dir, read_bounded
from meshpath.lab.topology import check_instance, valid_instance

RUN_ROOT: Final = Path("/run/meshpath-lab")
STATE_LIMIT: Final = 1 << 20  # a state file is a few hundred bytes


class LabState(msgspec.Struct, frozen=True, kw_only=True):
    instance: str
    run_dir: str
    namespaces: tuple[str, ...] = ()
    owner_pid: int | None = None
    scenario: str | None = None
    fixed: str | None = None
    pids: dict[str, int] = {}
    created: float = 0.0


def state_path(run_root: Path, instance: str) -> Path:
    return run_root / instance / "state.json"


def check_run_root(run_root: Path, *, create: bool = False) -> bool:
    """Whether ``run_root`` exists (made when ``create``); LabRootError when it is a
    symlink, not a directory, someone else's, or writable by others: a lab removes
    directories in it as root, so it must be the lab's own."""
    if create:
        run_root.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            os.mkdir(run_root, 0o755)
    try:
        st = os.lstat(run_root)
    except FileNotFoundError:
        return False
    problem = _root_problem(st)
    if problem is not None:
        raise LabRootError(f"lab run root {run_root} {problem}; remove it or fix it")
    return True


def _root_problem(st: os.stat_result) -> str | None:
    if stat.S_ISLNK(st.st_mode):
        return "is a symbolic link"
    if not stat.S_ISDIR(st.st_mode):
        return "is not a directory"
    if st.st_uid != os.geteuid():
        return f"belongs to uid {st.st_uid}, not to this user"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return "is writable by other users"
    return None


def run_dir(run_root: Path, instance: str) -> Path:
    """Lab ``instance``'s run directory, made (mode 0755) if needed; LabRootError when it
    or the run root cannot be trusted (a symlink, a file)."""
    check_run_root(run_root, create=True)
    path = run_root / check_instance(instance)
    try:
        ensure_dir(path, 0o755)
    except OSError as exc:
        raise LabRootError(f"lab run dir {path}: {exc.strerror}") from exc
    return path


def write_state(run_root: Path, state: LabState) -> None:
    path = run_dir(run_root, state.instance) / "state.json"
    try:
        atomic_write(path, msgspec.json.encode(state), mode=0o644)
    except OSError as exc:
        raise LabRootError(f"lab state {path}: {exc.strerror}") from exc


def read_state(run_root: Path, instance: str) -> LabState | None:
    """The state of lab ``instance``; None when there is none that can be read (absent,
    malformed, not a regular file, a symlink): such a lab counts as a leftover."""
    path = state_path(run_root, check_instance(instance))
    try:
        data = read_bounded(path, STATE_LIMIT, follow=False)
        return msgspec.json.decode(data, type=LabState)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        return None


def new_state(run_root: Path, instance: str, owner: int | None) -> LabState:
    return LabState(
        instance=instance,
        run_dir=str(run_root / instance),
        owner_pid=owner,
        created=time.time(),
    )


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_stale(state: LabState | None) -> bool:
    """A leftover: no state at all, or an owner that no longer runs."""
    if state is None:
        return True
    return state.owner_pid is not None and not pid_alive(state.owner_pid)


def known_instances(run_root: Path) -> set[str]:
    """Instances with a state file: only valid ids of real directories in the run root.

    Only reads, so it does not insist on the run root's owner (``lab status`` works for
    any user); whatever removes checks the run root first (:func:`check_run_root`).
    """
    if run_root.is_symlink() or not run_root.is_dir():
        return set()
    return {
        p.name
        for p in run_root.iterdir()
        if valid_instance(p.name) and not p.is_symlink() and (p / "state.json").is_file()
    }
