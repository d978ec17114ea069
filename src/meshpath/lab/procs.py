"""Process and namespace plumbing for the lab (I/O edge): spawn, wait, kill, delete.

Every process the lab starts runs *inside* one of its namespaces (``ip netns exec``), so
teardown can always find them with ``ip netns pids`` — also those of a run that was killed
and left no record but its namespaces.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

from meshpath.collect.iproute import ip_json
from meshpath.errors import EnvironmentProblem
from meshpath.errors import LabTimeout as LabTimeout  # re-exported: its old home
from meshpath.fsafe import remove_inside
from meshpath.lab.topology import instance_of
from meshpath.runner import Process, SubprocessRunner

T = TypeVar("T")
_RUN = SubprocessRunner()
# FRR's pathspace for a namespace (`-N NS`, `vtysh -N NS`): the lab keeps each node's FRR
# sockets and configs there so meshpath's collector, doctor and fix find them like on a
# real host running FRR in a namespace.
FRR_RUN_DIR = Path("/var/run/frr")


def frr_pathspace(ns: str) -> Path:
    return FRR_RUN_DIR / ns


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, interval: float = 0.05) -> T:
    """Poll ``probe`` until it returns a value (not None/False); LabTimeout naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        got = probe()
        if got is not None and got is not False:
            return got
        if time.monotonic() >= deadline:
            raise LabTimeout(f"lab: {what} not ready after {timeout:.0f}s")
        time.sleep(interval)


def list_namespaces() -> list[str]:
    done = _RUN.run(["ip", "-j", "netns", "list"], check=False)
    if not done.ok or not done.stdout.strip():
        return []
    return [str(entry["name"]) for entry in ip_json(done.stdout)]


def lab_namespaces(instance: str | None = None) -> list[str]:
    """Namespaces of lab ``instance`` (or of every lab when None), by name prefix."""
    out = []
    for name in list_namespaces():
        owner = instance_of(name)
        if owner is not None and (instance is None or owner == instance):
            out.append(name)
    return out


def netns_pids(namespaces: Iterable[str]) -> set[int]:
    pids: set[int] = set()
    for ns in namespaces:
        done = _RUN.run(["ip", "netns", "pids", ns], check=False)
        pids.update(int(p) for p in done.stdout.split() if p.isdigit())
    return pids


def _signal_all(pids: Iterable[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _reap(children: Iterable[Process]) -> None:
    for child in children:
        child.poll()


def kill_in_namespaces(
    namespaces: Sequence[str],
    children: Sequence[Process] = (),
    grace: float = 2.0,
) -> None:
    """SIGTERM every process inside ``namespaces``, SIGKILL what is left after ``grace``."""
    pids = netns_pids(namespaces)
    if not pids:
        _reap(children)
        return
    _signal_all(pids, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while pids and time.monotonic() < deadline:
        time.sleep(0.02)
        _reap(children)
        pids = netns_pids(namespaces)
    if pids:
        _signal_all(pids, signal.SIGKILL)
        wait_for("processes to die", lambda: not netns_pids(namespaces) or None, 5.0)
    for child in children:
        if child.wait(timeout=2.0) is None:
            child.kill()


def delete_namespaces(namespaces: Iterable[str]) -> None:
    """Delete the lab namespaces and the FRR pathspace each one had.

    Only lab namespace names (``mplab-<valid id>-<node>``) are touched, and the pathspace
    is removed inside FRR_RUN_DIR only (a name is never a path: see fsafe.remove_inside).
    """
    for ns in namespaces:
        if instance_of(ns) is None:
            raise EnvironmentProblem(f"lab: {ns!r} is not a lab namespace name; not deleting it")
        _RUN.run(["ip", "netns", "del", ns], check=False)
        try:
            remove_inside(FRR_RUN_DIR, ns)
        except OSError as exc:
            raise EnvironmentProblem(f"lab: not removing {exc.filename}: {exc.strerror}") from exc
