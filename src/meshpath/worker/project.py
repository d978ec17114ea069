"""Reading a Worker project from disk (I/O edge): its wrangler config and its source.

``PATH`` is a directory (the config is looked up there in wrangler's order) or a config
file. Source files are the ``main`` module and every other JavaScript/TypeScript file
under the project directory, skipping dependencies and build output; files are only read,
never followed out through symlinked directories, and capped in number and size.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

from meshpath.errors import WorkerConfigError
from meshpath.worker.checks import WorkerProject
from meshpath.worker.config import CONFIG_NAMES, WranglerConfig, parse_config
from meshpath.worker.source import SourceFile

SOURCE_SUFFIXES: Final = (".js", ".mjs", ".cjs", ".ts", ".mts", ".cts", ".jsx", ".tsx")
SKIP_DIRS: Final = frozenset({"node_modules", "dist", "build", "coverage", ".wrangler", ".git"})
MAX_FILES: Final = 400
MAX_BYTES: Final = 2_000_000


def find_config(path: Path) -> Path:
    """The wrangler config at ``path`` (a file, or a directory searched in wrangler's order)."""
    if path.is_file():
        return path
    if not path.exists():
        raise WorkerConfigError(f"{path} does not exist")
    if not path.is_dir():
        raise WorkerConfigError(f"{path} is neither a file nor a directory")
    for name in CONFIG_NAMES:
        candidate = path / name
        if candidate.is_file():
            return candidate
    raise WorkerConfigError(f"no {', '.join(CONFIG_NAMES)} in {path}")


def read_config(file: Path) -> WranglerConfig:
    """Parse the config ``file``; one-line WorkerConfigError when it cannot be read."""
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise WorkerConfigError(f"{file} is not UTF-8 text") from exc
    except OSError as exc:
        raise WorkerConfigError(f"cannot read {file}: {exc.strerror or exc}") from exc
    return parse_config(text, str(file))


def load_project(path: Path) -> WorkerProject:
    """The config at ``path`` and the Worker's source files around it."""
    file = find_config(path)
    config = read_config(file)
    root = file.resolve().parent
    main = (root / config.main).resolve() if config.main else None
    main_found = main is not None and main.is_file()
    sources = _read_sources(root, main if main_found else None)
    return WorkerProject(config, sources, main_found)


def _read_sources(root: Path, main: Path | None) -> tuple[SourceFile, ...]:
    paths = [main] if main is not None else []
    paths += [p for p in _walk(root) if p != main]
    out = []
    for p in paths[:MAX_FILES]:
        text = _read_text(p)
        if text is not None:
            out.append(SourceFile(_display(p, root), text))
    return tuple(out)


def _walk(root: Path) -> list[Path]:
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        found += [Path(dirpath) / f for f in sorted(filenames) if f.endswith(SOURCE_SUFFIXES)]
        if len(found) > MAX_FILES:
            break
    return found


def _read_text(path: Path) -> str | None:
    """A source file's text; None for what is not a readable, reasonably sized text file."""
    try:
        if not path.is_file() or path.stat().st_size > MAX_BYTES:
            return None
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _display(path: Path, root: Path) -> str:
    """``src/index.js`` for a file under the project, the full path otherwise."""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
