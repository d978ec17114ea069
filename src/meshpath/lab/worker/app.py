"""Starting the edge's processes of a lab: the Mesh edge and workerd (I/O edge).

All run inside the edge namespace, whose only way out is the tunnel: the Mesh edge
connects from the Worker source address; one workerd runs the lab's own Worker on
``WORKER_LISTEN`` (the lab, ``meshpath fix --lab-worker`` and ``verify`` call it), and,
with ``lab up --worker DIR``, a second workerd runs the user's Worker on
``USER_WORKER_LISTEN``. Each workerd's output is that Worker's log, what ``wrangler tail``
shows for a deployed Worker: ``worker.log`` and ``user-worker.log`` in the lab's run dir.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

from meshpath.lab import topology
from meshpath.lab.worker.capnp import WorkerSpec
from meshpath.lab.worker.runtime import LAB_WORKER, find_workerd, serve_argv, stage

if TYPE_CHECKING:
    from meshpath.lab.base import LabBase as Lab

LAB_COMPATIBILITY_DATE: Final = "2026-01-01"
EDGE_PROCESS: Final = "mesh-edge"
WORKER_LOG: Final = "worker.log"  # = f"{process name}.log", see Lab._spawn
USER_WORKER_LOG: Final = "user-worker.log"


@dataclass(frozen=True, slots=True)
class WorkerApp:
    """A Worker to run: its spec, and the file each module is copied from."""

    spec: WorkerSpec
    sources: dict[str, Path] = field(default_factory=dict)
    label: str = "the lab's Worker"


LAB_APP: Final = WorkerApp(
    WorkerSpec(modules=("worker.js",), compatibility_date=LAB_COMPATIBILITY_DATE),
    {"worker.js": LAB_WORKER},
)


def _address(hostport: tuple[str, int]) -> str:
    return f"{hostport[0]}:{hostport[1]}"


def edge_address() -> str:
    return _address(topology.MESH_EDGE_LISTEN)


def worker_address(user: bool = False) -> str:
    return _address(topology.USER_WORKER_LISTEN if user else topology.WORKER_LISTEN)


def worker_listens(lab: Lab) -> tuple[tuple[str, int], ...]:
    """Where this lab's workerd processes accept connections (inside edge)."""
    if lab.user_worker is None:
        return (topology.WORKER_LISTEN,)
    return (topology.WORKER_LISTEN, topology.USER_WORKER_LISTEN)


def start_edge(lab: Lab) -> Path:
    """Spawn the Mesh edge and workerd(s) in edge; returns the edge's ready file.

    workerd is ready when it accepts connections (the caller polls ``worker_listens``);
    it needs the edge only once a request arrives.
    """
    ready = lab.run_dir / f"{EDGE_PROCESS}.ready"
    argv = [sys.executable, "-m", "meshpath.lab.meshedge", "--listen", edge_address()]
    argv += ["--source", topology.WORKER_SOURCE, "--source6", topology.WORKER_SOURCE6]
    argv += ["--ready", str(ready)]
    argv += ["--connect-timeout", str(lab.connect_timeout)]
    argv += ["--read-timeout", str(lab.response_timeout)]
    lab._spawn(EDGE_PROCESS, "edge", argv)
    _start_workerd(lab, LAB_APP, user=False)
    if lab.user_worker is not None:
        _start_workerd(lab, lab.user_worker, user=True)
    return ready


def _start_workerd(lab: Lab, app: WorkerApp, user: bool) -> None:
    name = Path(USER_WORKER_LOG if user else WORKER_LOG).stem
    config = stage(
        lab.run_dir / "workerd" / name,
        app.spec,
        app.sources,
        (worker_address(user), edge_address()),
        round(lab.connect_timeout * 1000),
    )
    lab._spawn(name, "edge", serve_argv(find_workerd(), config))


def has_user_worker(run_dir: Path) -> bool:
    """Whether the lab in ``run_dir`` was started with a user's Worker."""
    return (run_dir / USER_WORKER_LOG).exists()


def worker_log_lines(run_dir: Path, user: bool = False) -> list[str]:
    """A workerd's output so far, line by line (empty before it started)."""
    path = run_dir / (USER_WORKER_LOG if user else WORKER_LOG)
    return path.read_text(errors="replace").splitlines() if path.exists() else []
