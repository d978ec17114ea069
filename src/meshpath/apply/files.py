"""Persistence files under ``--root`` (I/O edge): what is there, write, restore, remove.

Before a plan is made, :func:`host_files` records what the paths meshpath may write hold
now (a regular file's bytes, mode and owner, or a symlink's target), which parent
directories do not exist yet, and which ``.network`` file systemd-networkd applies to
the tunnel. The plan's undo is built from that record, so a rollback puts back exactly
what was there (byte for byte, mode, owner, symlink-ness) and removes only the
directories meshpath created.

Every path is relative to the root and must stay inside it once resolved; meshpath
never replaces something that is neither a regular file nor a symlink.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Final

from meshpath.errors import FileRefused as FileRefused  # re-exported: its old home
from meshpath.fix import networkd
from meshpath.fix.model import FileState, RemoveFile, WriteFile
from meshpath.render import systemd

# Unit files, drop-ins and .network files are a few hundred bytes.
MAX_FILE_BYTES: Final = 1024 * 1024
# systemd-networkd's directories, highest priority first (systemd.network(5)).
NETWORK_DIRS: Final = (
    "etc/systemd/network",
    "run/systemd/network",
    "usr/local/lib/systemd/network",
    "usr/lib/systemd/network",
    "lib/systemd/network",
)


@dataclass(frozen=True, slots=True)
class HostFiles:
    """What the plan needs to know about the persistence files (see FixOptions)."""

    networkd_file: str | None = None
    existing: dict[str, FileState] = field(default_factory=dict)
    absent_dirs: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def host_files(root: Path, tunnel: str, links: Sequence[str]) -> HostFiles:
    """The persistence files' state for a route plan through ``tunnel``."""
    texts, notes = network_files(root)
    chosen, why = networkd.choose(texts, tunnel, links)
    unit, link = systemd.unit_path(tunnel)
    paths = [unit, link] + ([systemd.dropin_path(chosen)] if chosen else [])
    existing = {rel: state for rel in paths if (state := file_state(root, rel)) is not None}
    return HostFiles(chosen, existing, absent_dirs(root, paths), (*notes, *why))


# -- paths -------------------------------------------------------------------------------
def inside(root: Path, rel: str) -> Path:
    """``root/rel``, refused unless it stays inside ``root`` once resolved."""
    pure = PurePosixPath(rel)
    if pure.is_absolute() or ".." in pure.parts or not pure.parts:
        raise FileRefused(f"refusing path {rel!r}: not a path inside {root}")
    target = root / pure
    base = root.resolve()
    parent = target.parent.resolve()
    if parent != base and base not in parent.parents:
        raise FileRefused(f"refusing {target}: it resolves to {parent}, outside {base}")
    return target


def absent_dirs(root: Path, paths: Sequence[str]) -> tuple[str, ...]:
    """The parent directories of ``paths`` (relative to ``root``) that do not exist."""
    out: set[str] = set()
    for rel in paths:
        for parent in PurePosixPath(rel).parents:
            if str(parent) != "." and not os.path.lexists(root / parent):
                out.add(str(parent))
    return tuple(sorted(out))


def file_state(root: Path, rel: str) -> FileState | None:
    """What ``root/rel`` is now: None when absent; FileRefused for a directory, device..."""
    path = inside(root, rel)
    try:
        info = path.lstat()
    except FileNotFoundError:
        return None
    mode, uid, gid = stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid
    if stat.S_ISLNK(info.st_mode):
        return FileState(link=os.readlink(path), mode=mode, uid=uid, gid=gid)
    if not stat.S_ISREG(info.st_mode):
        raise FileRefused(f"{path} is not a regular file or a symlink: move it away first")
    return FileState(data=read_bounded(path), mode=mode, uid=uid, gid=gid)


def read_bounded(path: Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """A regular file's bytes (not following a final symlink, never blocking on a FIFO)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            raise FileRefused(f"{path}: not a regular file of at most {limit} bytes")
        return os.read(fd, limit + 1)
    finally:
        os.close(fd)


# -- .network files ----------------------------------------------------------------------
def network_files(root: Path) -> tuple[list[tuple[str, str]], list[str]]:
    """systemd-networkd's ``.network`` files in its order, as (name, text), and a note for
    each one skipped (a directory, a dangling symlink, not UTF-8...). A name in a
    higher-priority directory hides the same name below; masked files are dropped."""
    found: dict[str, Path] = {}
    for rel in NETWORK_DIRS:
        for name in _listing(root / rel):
            if name.endswith(".network"):
                found.setdefault(name, root / rel / name)
    files: list[tuple[str, str]] = []
    notes: list[str] = []
    for name in sorted(found):
        text, note = _network_text(found[name])
        if text is not None:
            files.append((name, text))
        elif note is not None:
            notes.append(note)
    return files, notes


def _listing(directory: Path) -> list[str]:
    try:
        return os.listdir(directory)
    except OSError:
        return []  # absent (or unreadable): systemd-networkd finds nothing there either


def _network_text(path: Path) -> tuple[str | None, str | None]:
    """(text, None), (None, note) for a file skipped, (None, None) for a masked one."""
    if os.path.islink(path) and os.readlink(path) == "/dev/null":
        return None, None
    try:
        info = path.stat()
    except OSError as exc:
        return None, f"skipped {path}: {exc.strerror or exc} (a dangling symlink?)"
    if not stat.S_ISREG(info.st_mode):
        return None, f"skipped {path}: not a regular file"
    if info.st_size == 0:
        return None, None
    try:
        data = read_bounded(path.resolve())
        return data.decode("utf-8"), None
    except (OSError, FileRefused) as exc:
        return None, f"skipped {path}: {exc}"
    except UnicodeDecodeError:
        return None, f"skipped {path}: not UTF-8 text"


# -- acting --------------------------------------------------------------------------------
def write(root: Path, action: WriteFile) -> None:
    """Put ``action``'s file or symlink in place atomically (a temp file, then rename)."""
    target = inside(root, action.path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.meshpath-tmp")
    tmp.unlink(missing_ok=True)
    if action.link is not None:
        tmp.symlink_to(action.link)
    else:
        data = action.data if action.data is not None else action.content.encode()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, action.mode)  # explicit: the umask must not decide the mode
    if action.owner is not None:
        os.chown(tmp, *action.owner, follow_symlinks=False)
    os.replace(tmp, target)


def remove(root: Path, action: RemoveFile) -> str | None:
    """Remove the file (already gone counts as done), then the directories meshpath
    created for it while they are empty; a note when one is kept."""
    target = inside(root, action.path)
    parents = {str(p) for p in PurePosixPath(action.path).parents}
    strays = [rel for rel in action.dirs if rel not in parents]
    if strays:
        raise FileRefused(f"refusing to remove {strays[0]!r}: not a parent of {action.path!r}")
    if target.is_dir() and not target.is_symlink():
        raise FileRefused(f"{target} is a directory, not the file meshpath wrote")
    target.unlink(missing_ok=True)
    for rel in action.dirs:
        try:
            inside(root, rel).rmdir()
        except FileNotFoundError:
            continue
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                return f"kept {root / rel}: something else was put there"
            raise
    return None
