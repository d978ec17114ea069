"""The :class:`Lab`: builds, observes and tears down one lab instance (I/O edge)."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from meshpath.errors import BadInputError, LabConfigError, MissingToolError, PrivilegeError
from meshpath.fsafe import clear_inside, remove_inside
from meshpath.lab import frr, topology
from meshpath.lab.apps import Apps
from meshpath.lab.frr_nodes import FrrNodes
from meshpath.lab.procs import (
    delete_namespaces,
    kill_in_namespaces,
    lab_namespaces,
    netns_pids,
)
from meshpath.lab.scenarios import Scenario, get_scenario
from meshpath.lab.state import (
    RUN_ROOT,
    LabRootError,
    LabState,
    check_run_root,
    is_stale,
    known_instances,
    new_state,
    pid_alive,
    read_state,
    run_dir,
    write_state,
)
from meshpath.lab.tcpdump import CaptureResult, Captures
from meshpath.lab.topology import check_instance
from meshpath.lab.warp_nodes import WarpNodes
from meshpath.lab.worker.runtime import find_workerd
from meshpath.runner import Runner

# Importable from here as before the Lab was split by concern.
__all__ = [
    "CaptureResult",
    "Lab",
    "LabConfigError",
    "clean_leftovers",
    "elapsed",
    "preflight",
    "remove_lab",
    "remove_run_dir",
    "terminate_as_interrupt",
]

REQUIRED_TOOLS = ("ip", "nft", "tcpdump", "sysctl", "vtysh")
FRR_BINARIES = tuple(f"/usr/lib/frr/{d}" for d in frr.DAEMONS)


def preflight() -> None:
    """Root and every tool the lab runs; one clear error (exit 3) otherwise."""
    if os.geteuid() != 0:
        raise PrivilegeError("the lab needs root (CAP_NET_ADMIN) to create network namespaces")
    for tool in REQUIRED_TOOLS:
        if shutil.which(tool) is None:
            raise MissingToolError(tool, "install iproute2, nftables, tcpdump, procps and frr")
    for binary in FRR_BINARIES:
        if not os.access(binary, os.X_OK):
            raise MissingToolError(binary, "install FRR (apt-get install frr)")
    if not os.path.exists("/dev/net/tun"):
        raise MissingToolError("/dev/net/tun", "the kernel's tun driver is needed")
    find_workerd()


def remove_lab(instance: str, run_root: Path = RUN_ROOT) -> None:
    """Kill every process in lab ``instance``'s namespaces, delete them, drop its run dir.

    ``instance`` must be a valid id (BadInputError otherwise, before anything happens);
    only ``run_root/instance`` is removed, never through a symlink (LabRootError).
    """
    check_instance(instance)
    namespaces = lab_namespaces(instance)
    kill_in_namespaces(namespaces)
    delete_namespaces(namespaces)
    remove_run_dir(run_root, instance)


def remove_run_dir(run_root: Path, instance: str, keep: tuple[str, ...] | None = None) -> None:
    """Remove lab ``instance``'s run dir (or, with ``keep``, every entry but those)."""
    try:
        if not check_run_root(run_root):
            return
        if keep is None:
            remove_inside(run_root, check_instance(instance))
        else:
            clear_inside(run_root, check_instance(instance), keep=keep)
    except OSError as exc:
        raise LabRootError(f"lab: not removing {exc.filename}: {exc.strerror}") from exc


def clean_leftovers(run_root: Path = RUN_ROOT, everything: bool = False) -> list[str]:
    """Remove labs whose owner died (or that have no state); ``everything``: also detached ones.

    Labs owned by a live process (another test run, ``lab run``) are never touched.
    """
    check_run_root(run_root)  # a linked or foreign run root is an error, not "no labs"
    instances = {i for ns in lab_namespaces() if (i := topology.instance_of(ns)) is not None}
    instances |= known_instances(run_root)
    removed = []
    for instance in sorted(instances):
        state = read_state(run_root, instance)
        detached = state is not None and state.owner_pid is None
        if is_stale(state) or (everything and detached):
            remove_lab(instance, run_root)
            removed.append(instance)
    return removed


class Lab(Apps, FrrNodes, WarpNodes, Captures):
    """One lab instance. Use :meth:`create` (new, owned) or :meth:`attach` (existing).

    Its parts by concern: :class:`~meshpath.lab.base.LabBase` (names, commands,
    processes), :class:`~meshpath.lab.wiring.Wiring` (links, tunnel),
    :class:`~meshpath.lab.warp_nodes.WarpNodes`, :class:`~meshpath.lab.apps.Apps`,
    :class:`~meshpath.lab.frr_nodes.FrrNodes`, :class:`~meshpath.lab.tcpdump.Captures`;
    here the life cycle (create, attach, setup, down) and status.
    """

    # -- life cycle -------------------------------------------------------------------
    @classmethod
    def create(
        cls, instance: str | None = None, *, run_root: Path = RUN_ROOT, runner: Runner | None = None
    ) -> Lab:
        """A new lab owned by this process (nothing built yet: call :meth:`setup`).

        Checks root and tools first and removes leftovers of killed runs. ``runner`` runs
        the lab's commands and processes (default: a SubprocessRunner).
        """
        if instance is not None:
            check_instance(instance)  # bad input first, before any environment check
        preflight()
        clean_leftovers(run_root)
        name = instance if instance is not None else _free_instance(run_root)
        owner = (read_state(run_root, name) or new_state(run_root, name, None)).owner_pid
        if owner is not None and owner != os.getpid() and pid_alive(owner):
            raise BadInputError(f"lab instance {name!r} is in use by pid {owner}")
        if lab_namespaces(name) or os.path.lexists(run_root / name):
            remove_lab(name, run_root)
        lab = cls(name, run_root, runner)
        lab._save(new_state(run_root, name, os.getpid()))
        return lab

    @classmethod
    def attach(
        cls, instance: str | None = None, *, run_root: Path = RUN_ROOT, runner: Runner | None = None
    ) -> Lab:
        """An existing lab: ``instance``, or the only one there is."""
        if instance is None:
            found = sorted(known_instances(run_root))
            if len(found) != 1:
                what = "no lab is running" if not found else f"several labs: {', '.join(found)}"
                raise BadInputError(f"{what}; pass --instance (start one with 'meshpath lab up')")
            instance = found[0]
        if read_state(run_root, check_instance(instance)) is None:
            raise BadInputError(f"no lab instance {instance!r} (see 'meshpath lab status')")
        lab = cls(instance, run_root, runner)
        name = lab._state.scenario
        lab.scenario = get_scenario(name) if name else None
        return lab

    def __enter__(self) -> Lab:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.down()

    def detach(self) -> None:
        """Leave the lab running after this process ends (what ``lab up`` does)."""
        self._save(self._replace(owner_pid=None))
        for child in self._children:
            # The process now belongs to the lab, not to us: teardown finds it through
            # `ip netns pids`.
            child.disown()
        self._children.clear()
        self._named.clear()

    def down(self) -> None:
        """Stop every process, delete every namespace and the run dir. Idempotent."""
        self._clear()
        remove_run_dir(self.run_root, self.instance)

    def _clear(self) -> None:
        """Stop processes, delete namespaces and every run file except the state file
        (which keeps the lab marked as owned while it is rebuilt)."""
        # The state file lists namespaces; only this lab's own names count (a state file
        # is data: a name in it must never become a path outside the lab).
        recorded = {n for n in self._state.namespaces if topology.instance_of(n) == self.instance}
        namespaces = sorted(recorded | set(lab_namespaces(self.instance)))
        kill_in_namespaces(namespaces, self._children)
        delete_namespaces(namespaces)
        self._children.clear()
        self._named.clear()
        remove_run_dir(self.run_root, self.instance, keep=("state.json",))

    def state(self) -> LabState:
        return self._state

    def _replace(self, **changes: Any) -> LabState:
        data = {f: getattr(self._state, f) for f in self._state.__struct_fields__}
        data.update(changes)
        return LabState(**data)

    def _save(self, state: LabState) -> None:
        self._state = state
        write_state(self.run_root, state)

    # -- building ---------------------------------------------------------------------
    def setup(self, scenario: str | Scenario) -> None:
        """Build the lab for ``scenario`` from scratch (an existing build is torn down)."""
        scn = get_scenario(scenario) if isinstance(scenario, str) else scenario
        self.phases = {}
        start = time.monotonic()
        self._clear()
        self.phases["teardown"] = time.monotonic() - start
        run_dir(self.run_root, self.instance)
        nodes = topology.nodes_for(scn.tailnet, scn.ha)
        names = tuple(self.ns(n) for n in nodes)
        self._save(self._replace(namespaces=names, scenario=scn.name, fixed=None, pids={}))
        self.scenario = scn
        self.reconnects = []
        clock = PhaseClock(self.phases)
        for name in names:
            self.runner.run(["ip", "netns", "add", name])
        for node in nodes:
            self._sysctls(node)
        clock.lap("netns")
        self._start_tunnel()
        self._wire(scn, nodes)
        clock.lap("tunnel+links")
        self._start_warp()  # started first, waited for last: the start-ups overlap
        self._start_apps(scn)
        clock.lap("apps+workerd")
        self._wait_warp()
        clock.lap("warp")
        self._start_frr_base(scn)
        clock.lap("frr")
        self._save(self._replace(pids={k: c.pid for k, c in self._named.items()}))

    def status(self) -> dict[str, Any]:
        """What exists of this lab right now: namespaces, processes, scenario."""
        live = lab_namespaces(self.instance)
        return {
            "instance": self.instance,
            "scenario": self._state.scenario,
            "fixed": self._state.fixed,
            "owner_pid": self._state.owner_pid,
            "run_dir": str(self.run_dir),
            "namespaces": {ns: sorted(netns_pids([ns])) for ns in live},
        }

    def mark_fixed(self, fix: str) -> None:
        self._save(self._replace(fixed=fix))


def _free_instance(run_root: Path) -> str:
    """A random 4-hex-digit instance id no lab uses (short: it is in every ns name)."""
    taken = known_instances(run_root) | {
        i for ns in lab_namespaces() if (i := topology.instance_of(ns)) is not None
    }
    while (name := secrets.token_hex(2)) in taken:
        pass
    return name


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block SIGTERM and SIGINT raise KeyboardInterrupt, so teardown in
    ``finally`` runs (SIGINT too when the parent shell started us with it ignored)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class PhaseClock:
    """Seconds per phase of a set-up, into ``into`` (each lap: since the previous one)."""

    def __init__(self, into: dict[str, float]) -> None:
        self.into = into
        self.last = time.monotonic()

    def lap(self, phase: str) -> None:
        now = time.monotonic()
        self.into[phase] = now - self.last
        self.last = now


def elapsed(start: float) -> float:
    return round(time.monotonic() - start, 2)
