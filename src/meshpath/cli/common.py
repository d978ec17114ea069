"""Options and checks that fix, verify and watch share."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from meshpath.errors import PrivilegeError
from meshpath.usecase import Host, postchecks
from meshpath.usecase.verify import RoundTrip


def lab_worker_option(value: str | None) -> str | None:
    """--lab-worker is checked as it is parsed, by the post-check plug-in that runs it
    (the lab refuses a bad instance id: exit 2 before anything runs)."""
    if value is not None:
        postchecks.load(postchecks.LAB_WORKER, value)
    return value


NetnsOpt = Annotated[str | None, typer.Option("--netns", help="Act inside this network namespace.")]
RootOpt = Annotated[
    Path, typer.Option("--root", help="Root for persistent files (tests: a temp dir).")
]
StateOpt = Annotated[
    Path | None,
    typer.Option("--state-dir", help="Journal and lock dir (default ROOT/var/lib/meshpath)."),
]
LabOpt = Annotated[
    str | None,
    typer.Option(
        "--lab-worker",
        callback=lab_worker_option,
        help="Lab instance: also check a Worker round trip.",
    ),
]


def round_trip(lab_worker: str | None) -> RoundTrip | None:
    return postchecks.load(postchecks.LAB_WORKER, lab_worker) if lab_worker else None


def host_for(netns: str | None, root: Path, state_dir: Path | None) -> Host:
    return Host.local(netns, root, state_dir)


def require_root(what: str) -> None:
    if os.geteuid() != 0:
        raise PrivilegeError(f"{what} needs root (CAP_NET_ADMIN); run it with sudo")
