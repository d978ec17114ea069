"""The lab's state file, and finding labs (live or left over) on this host.

Each lab instance keeps ``<run_root>/<instance>/state.json``. It is written *before* any
namespace is created, so a run killed at any point leaves a state file (or at worst bare
``mplab-`` namespaces) that the next ``lab up``/``lab down`` recognises as a leftover.

A lab is *owned* while ``owner_pid`` names a live process (a test, ``lab run``, a
half-finished ``lab up``); ``lab up`` detaches its lab (owner None) once it is ready.
Leftovers are labs whose owner died, and namespaces with no state file at all.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Final

import msgspec

RUN_ROOT: Final = Path("/run/meshpath-lab")


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


def write_state(run_root: Path, state: LabState) -> None:
    path = state_path(run_root, state.instance)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(msgspec.json.encode(state))
    os.replace(tmp, path)


def read_state(run_root: Path, instance: str) -> LabState | None:
    try:
        return msgspec.json.decode(state_path(run_root, instance).read_bytes(), type=LabState)
    except (FileNotFoundError, msgspec.DecodeError, msgspec.ValidationError):
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
    if not run_root.is_dir():
        return set()
    return {p.parent.name for p in run_root.glob("*/state.json")}
