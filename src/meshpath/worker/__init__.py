"""The Worker's side of the path: its wrangler config and source (``meshpath worker``).

Pure core: :mod:`~meshpath.worker.jsonc` (JSONC), :mod:`~meshpath.worker.config` (the
wrangler config model), :mod:`~meshpath.worker.source` (what the code does with the
network), :mod:`~meshpath.worker.checks` (findings MP3xx) and
:mod:`~meshpath.worker.explain` (what an error seen by a Worker means). The one I/O edge
is :mod:`~meshpath.worker.project`, which reads a project directory.

    from meshpath.worker import check_worker, load_project
    report = check_worker(load_project(Path("my-worker")))
    report.ok, report.findings
"""

from __future__ import annotations

from meshpath.worker.checks import WorkerProject, WorkerReport, check_worker
from meshpath.worker.config import VpcBinding, WranglerConfig, parse_config
from meshpath.worker.project import find_config, load_project

__all__ = [
    "VpcBinding",
    "WorkerProject",
    "WorkerReport",
    "WranglerConfig",
    "check_worker",
    "find_config",
    "load_project",
    "parse_config",
]
