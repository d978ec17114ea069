"""Starting the edge's processes of a lab: the Mesh edge and workerd with the Worker (I/O edge).

Both run inside the edge namespace, whose only way out is the tunnel: the Mesh edge
connects from the Worker source address, and workerd listens on ``WORKER_LISTEN`` there.
workerd's output is the Worker's log (``worker.log`` in the lab's run dir), what
``wrangler tail`` shows for a deployed Worker.
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
    from meshpath.lab.core import Lab

LAB_COMPATIBILITY_DATE: Final = "2026-01-01"
WORKER_LOG: Final = "worker.log"


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


def edge_address() -> str:
    host, port = topology.MESH_EDGE_LISTEN
    return f"{host}:{port}"


def worker_address() -> str:
    host, port = topology.WORKER_LISTEN
    return f"{host}:{port}"


def start_edge(lab: Lab, edge_name: str, worker_name: str) -> Path:
    """Spawn the Mesh edge and workerd in edge; returns the edge's ready file to wait for.

    workerd is ready when it accepts connections (the caller polls); it needs the edge only
    once a request arrives.
    """
    ready = lab.run_dir / f"{edge_name}.ready"
    argv = [sys.executable, "-m", "meshpath.lab.meshedge", "--listen", edge_address()]
    argv += ["--source", topology.WORKER_SOURCE, "--ready", str(ready)]
    argv += ["--connect-timeout", str(lab.connect_timeout)]
    argv += ["--read-timeout", str(lab.response_timeout)]
    lab._spawn(edge_name, "edge", argv)
    app = lab.worker_app
    config = stage(
        lab.run_dir / "workerd",
        app.spec,
        app.sources,
        (worker_address(), edge_address()),
        round(lab.connect_timeout * 1000),
    )
    lab._spawn(worker_name, "edge", serve_argv(find_workerd(), config))
    return ready


def worker_log_lines(run_dir: Path) -> list[str]:
    """workerd's output so far, line by line (empty before it started)."""
    path = run_dir / WORKER_LOG
    return path.read_text(errors="replace").splitlines() if path.exists() else []
