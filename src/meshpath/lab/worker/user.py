"""A user's Worker project as the lab runs it (``meshpath lab up SCENARIO --worker DIR``).

The wrangler config in DIR (``wrangler.json``, ``.jsonc`` or ``.toml``, read by
:mod:`meshpath.worker`) says what to run: ``main`` (JavaScript; workerd runs modules as
they are, there is no bundler here), ``compatibility_date`` and ``compatibility_flags``,
and the bindings. Each ``vpc_networks`` binding, whatever its name, becomes the lab's Mesh;
``vars`` become plain values. Anything the lab cannot provide locally is refused with a
message naming it, before anything is built:

* ``vpc_services``: a VPC Service reaches one host registered in the Cloudflare account;
  the lab cannot know which;
* KV, R2, D1, Durable Objects, service bindings, queues...: workerd has no local backend
  for them in the lab;
* TypeScript or bare-package imports: they need wrangler's build step (point ``main`` at
  the built JavaScript).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Final

from meshpath.errors import WorkerConfigError
from meshpath.lab.worker.app import LAB_COMPATIBILITY_DATE, WorkerApp
from meshpath.lab.worker.capnp import WorkerSpec, module_kind, safe_path
from meshpath.lab.worker.runtime import pinned_version
from meshpath.worker.checks import JS_IDENTIFIER
from meshpath.worker.config import WranglerConfig
from meshpath.worker.project import SKIP_DIRS, find_config, read_config

MODULE_SUFFIXES: Final = (".js", ".mjs", ".cjs")
MAX_MODULES: Final = 200
_DATE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def user_app(path: Path) -> WorkerApp:
    """The Worker at ``path`` (a directory or its wrangler config), ready for the lab."""
    file = find_config(path)
    config = read_config(file)
    root = file.resolve().parent
    _refuse_unsupported(config)
    main = _main_module(config, root)
    sources = {main: root / main, **_other_modules(root, main)}
    spec = WorkerSpec(
        modules=tuple(sources),
        compatibility_date=compatibility_date(config),
        compatibility_flags=config.compatibility_flags,
        mesh_bindings=_mesh_bindings(config),
        json_bindings=config.vars,
    )
    return WorkerApp(spec, sources, f"{config.name or root.name} ({file})")


def _refuse_unsupported(config: WranglerConfig) -> None:
    for b in config.bindings(None):
        if b.kind == "vpc_services":
            raise WorkerConfigError(
                f"{config.file}: {b.where} ({b.binding}): the lab cannot emulate a VPC "
                "Service (it reaches one host registered in your account); bind "
                "vpc_networks instead to reach the lab's service through Mesh"
            )
    for o in config.other:
        if o.env is None and o.kind != "vars":
            raise WorkerConfigError(
                f"{config.file}: {o.where} ({o.name}): the lab cannot provide {o.kind} "
                "bindings (only vpc_networks, through the lab's Mesh, and vars)"
            )


def _main_module(config: WranglerConfig, root: Path) -> str:
    if not config.main:
        raise WorkerConfigError(f"{config.file}: no main module to run")
    main = Path(os.path.normpath(config.main)).as_posix()
    if not main.endswith(MODULE_SUFFIXES):
        raise WorkerConfigError(
            f"{config.file}: main {config.main!r} is not JavaScript; the lab runs modules "
            "as they are, with no build step: point main at the built .js file"
        )
    if not safe_path(main) or not (root / main).is_file():
        raise WorkerConfigError(f"{config.file}: main {config.main!r} not found under {root}")
    return main


def _other_modules(root: Path, main: str) -> dict[str, Path]:
    """Every other JavaScript module under ``root``, named by its path (workerd resolves
    ``./lib.js`` imported from ``src/index.js`` to the module ``src/lib.js``)."""
    found: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            rel = (Path(dirpath) / name).relative_to(root).as_posix()
            if rel == main or not name.endswith(MODULE_SUFFIXES):
                continue
            if not safe_path(rel) or module_kind(rel) is None:
                raise WorkerConfigError(f"{root}: cannot load {rel!r} as a module in the lab")
            found[rel] = root / rel
    if len(found) >= MAX_MODULES:
        raise WorkerConfigError(f"{root}: more than {MAX_MODULES} modules; point at the Worker")
    return found


def _mesh_bindings(config: WranglerConfig) -> tuple[str, ...]:
    names: list[str] = []
    for b in config.bindings(None):
        if b.binding is None or not JS_IDENTIFIER.match(b.binding) or b.binding in names:
            raise WorkerConfigError(
                f"{config.file}: {b.where}: binding {b.binding!r} is missing, not a JavaScript "
                "identifier, or used twice (see 'meshpath worker check')"
            )
        names.append(b.binding)
    return tuple(names)


def compatibility_date(config: WranglerConfig) -> str:
    """The config's date, or the lab's; never later than the pinned workerd supports."""
    date = config.compatibility_date or LAB_COMPATIBILITY_DATE
    if not _DATE.match(date):
        raise WorkerConfigError(f"{config.file}: compatibility_date {date!r} is not YYYY-MM-DD")
    newest = supported_date()
    return min(date, newest)


def supported_date(version: str | None = None) -> str:
    """The newest compatibility date a workerd release accepts: its version's date part
    (``1.20261117.1`` -> ``2026-11-17``)."""
    stamp = (version or pinned_version()).split(".")[1]
    return f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}"
