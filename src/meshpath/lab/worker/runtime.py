"""Finding the pinned workerd and laying out a Worker for it (I/O edge).

Where workerd comes from: ``make setup`` (and ``make venv``) copies this directory's
``package.json`` and ``package-lock.json`` into ``<venv>/workerd/`` and runs ``npm ci``
there, so the binary is ``<sys.prefix>/workerd/node_modules/@cloudflare/workerd-linux-64/
bin/workerd`` for the Python that runs meshpath. ``MESHPATH_WORKERD`` (a path to the
binary) wins over that; a ``workerd`` on ``PATH`` is the last resort.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from meshpath.errors import MissingToolError
from meshpath.lab.worker.capnp import MESH_MODULE_FILE, WORKER_DIR, WorkerSpec, render_config

PACKAGE_DIR: Final = Path(__file__).resolve().parent
ENV_VAR: Final = "MESHPATH_WORKERD"
LAB_WORKER: Final = PACKAGE_DIR / "worker.js"
MESH_BINDING: Final = PACKAGE_DIR / "mesh-binding.js"
_ARCH: Final = {"x86_64": "64", "amd64": "64", "aarch64": "arm64", "arm64": "arm64"}


def pinned_version() -> str:
    """The workerd version the lab's lockfile pins (package.json's exact dependency)."""
    data = json.loads((PACKAGE_DIR / "package.json").read_text())
    return str(data["dependencies"]["workerd"])


def install_dir(prefix: str = sys.prefix) -> Path:
    """Where ``make setup`` runs ``npm ci`` for the Python environment at ``prefix``."""
    return Path(prefix) / "workerd"


def bundled_binary(prefix: str = sys.prefix, machine: str | None = None) -> Path:
    arch = _ARCH.get((machine or platform.machine()).lower(), "64")
    pkg = f"workerd-linux-{arch}"
    return install_dir(prefix) / "node_modules" / "@cloudflare" / pkg / "bin" / "workerd"


def find_workerd(environ: Mapping[str, str] = os.environ) -> Path:
    """The workerd binary to run; MissingToolError (exit 3) saying how to install it."""
    explicit = environ.get(ENV_VAR)
    candidates = [Path(explicit)] if explicit else [bundled_binary()]
    if not explicit and (on_path := shutil.which("workerd")) is not None:
        candidates.append(Path(on_path))
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    where = explicit or str(bundled_binary())
    raise MissingToolError(
        "workerd",
        f"not at {where}; run 'make setup' (npm ci of meshpath/lab/worker/package-lock.json "
        f"into {install_dir()}) or set {ENV_VAR} to the binary",
    )


def stage(
    directory: Path,
    spec: WorkerSpec,
    sources: Mapping[str, Path],
    addresses: tuple[str, str],
    handshake_timeout_ms: int,
) -> Path:
    """Write ``config.capnp``, the Mesh binding and the Worker's modules into ``directory``.

    ``sources`` maps each module path of ``spec`` to the file to copy; ``addresses`` is
    (where the Worker listens, where the Mesh edge listens). Returns the config's path.
    """
    directory.mkdir(parents=True, exist_ok=True)
    binding = directory / MESH_MODULE_FILE
    binding.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(MESH_BINDING, binding)
    own = (directory / WORKER_DIR).resolve()
    for module in spec.modules:
        dest = directory / WORKER_DIR / module
        if not dest.resolve().is_relative_to(own):  # module names come from a user's dir
            raise ValueError(f"module {module!r} would be written outside {own}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sources[module], dest)
    config = directory / "config.capnp"
    listen, edge = addresses
    config.write_text(render_config(spec, listen, edge, handshake_timeout_ms))
    return config


def serve_argv(binary: Path, config: Path) -> list[str]:
    """``workerd serve CONFIG`` (the const is named ``config``)."""
    return [str(binary), "serve", str(config), "config"]
