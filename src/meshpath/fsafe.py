"""Safe file operations: bounded reads, atomic writes, confined removal (I/O edge).

meshpath runs as root and is handed paths by users (``snapshot -o``, ``--snapshot``,
``--config``, a capture) and keeps files in directories it owns (the state dir, the lab's
run root). Every file operation on such paths goes through here, so that:

* a read never takes unbounded memory and never blocks on a FIFO or a device
  (:func:`read_bounded`, :func:`read_stream`, :func:`open_regular`);
* a write never follows a symlink, never replaces a device, FIFO or directory, and never
  leaves half a file (:func:`atomic_write`, :func:`ensure_dir`);
* a removal never leaves the directory it was aimed at (:func:`remove_inside`,
  :func:`clear_inside`): names are single path components resolved through directory
  file descriptors opened with ``O_NOFOLLOW``, so neither ``..`` nor a symlink (planted
  before or during the call) can point it elsewhere.

Refusals are :class:`OSError` with an errno and a ``strerror`` that says what is wrong in
words, like every other file error; callers already turn ``OSError`` into their own
one-line error (``SnapshotError``, ``ConfigError``, ...), naming the input.
"""

from __future__ import annotations

import contextlib
import errno
import grp
import os
import pwd
import secrets
import shutil
import stat
import time
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import BinaryIO, Final

NAME_MAX: Final = 255  # bytes in one path component (Linux, every common filesystem)
_DIR_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_KINDS: Final = (
    (stat.S_ISREG, "a regular file"),
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISLNK, "a symbolic link"),
)


# -- names ----------------------------------------------------------------------------
def component_problem(name: str) -> str | None:
    """Why ``name`` is not one usable path component (None when it is one).

    One component: not empty, not ``.`` or ``..``, no ``/``, no NUL, at most NAME_MAX
    bytes once encoded the way the kernel sees it (os.fsencode).
    """
    if name in ("", ".", ".."):
        return "is empty" if not name else f"is {name!r}"
    if "/" in name:
        return "contains '/'"
    if "\0" in name:
        return "contains a NUL byte"
    if len(os.fsencode(name)) > NAME_MAX:
        return f"is longer than {NAME_MAX} bytes"
    return None


def _check_component(name: str) -> None:
    problem = component_problem(name)
    if problem is not None:
        raise OSError(errno.EINVAL, f"not a single file name: it {problem}", name)


def _kind(mode: int) -> str:
    return next((what for test, what in _KINDS if test(mode)), "of an unknown type")


def _refuse_kind(path: str | Path, mode: int, wanted: str = "a regular file") -> OSError:
    if stat.S_ISLNK(mode):
        return OSError(
            errno.ELOOP,
            "is a symbolic link; meshpath does not follow it (give its target)",
            str(path),
        )
    code = errno.EISDIR if stat.S_ISDIR(mode) else errno.EINVAL
    if wanted == "a directory":
        code = errno.ENOTDIR
    return OSError(code, f"is {_kind(mode)}, not {wanted}", str(path))


# -- reading --------------------------------------------------------------------------
def open_regular(
    path: Path, flags: int = os.O_RDONLY, *, create_mode: int = 0o600, follow: bool = True
) -> int:
    """Open a regular file and return its descriptor; refuse anything else.

    The type is checked with stat *before* opening (opening a FIFO for reading blocks
    until a writer comes; opening some devices has side effects) and again with fstat on
    the descriptor (the name may have changed in between). ``follow=False`` also refuses
    a symlink at ``path`` (O_NOFOLLOW). ``O_CREAT`` in ``flags`` creates a missing file.
    """
    try:
        before = os.stat(path, follow_symlinks=follow)
    except FileNotFoundError:
        if not flags & os.O_CREAT:
            raise
    except ValueError as exc:  # an embedded NUL byte
        raise OSError(errno.EINVAL, "the name contains a NUL byte", str(path)) from exc
    else:
        if not stat.S_ISREG(before.st_mode):
            raise _refuse_kind(path, before.st_mode)
    extra = os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK | (0 if follow else os.O_NOFOLLOW)
    fd = os.open(path, flags | extra, create_mode)
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise _refuse_kind(path, mode)
    return fd


def too_big(what: str | Path, limit: int) -> OSError:
    return OSError(errno.EFBIG, f"larger than the limit of {_size_text(limit)}", str(what))


def read_bounded(path: Path, limit: int, *, follow: bool = True) -> bytes:
    """The contents of the regular file ``path``; OSError (EFBIG) above ``limit`` bytes."""
    with os.fdopen(open_regular(path, follow=follow), "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > limit:
            raise too_big(path, limit)
        return _read_at_most(fh, limit, str(path), expect=size)  # it may grow after fstat


def read_stream(stream: BinaryIO, limit: int, name: str = "<stdin>") -> bytes:
    """Read a stream (standard input) to its end, but never more than ``limit`` bytes."""
    return _read_at_most(stream, limit, name)


_CHUNK: Final = 1 << 20


def _read_at_most(stream: BinaryIO, limit: int, name: str, expect: int = 0) -> bytes:
    """The stream to its end, EFBIG past ``limit``. ``read(limit + 1)`` would allocate the
    whole limit (a GiB) for every small file, which fails under ``ulimit -v`` or strict
    overcommit: read the size the file said it had, then chunks."""
    parts = [stream.read(expect + 1)] if expect else []
    total = len(parts[0]) if parts else 0
    while total <= limit:
        chunk = stream.read(min(_CHUNK, limit + 1 - total))
        if not chunk:
            break
        parts.append(chunk)
        total += len(chunk)
    if total > limit:
        raise too_big(name, limit)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _size_text(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} bytes"


# -- writing --------------------------------------------------------------------------
def atomic_write(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Replace (or create) the regular file ``path`` with ``data``, all or nothing.

    A temporary file with a random name is created next to it with O_EXCL|O_NOFOLLOW
    (a planted file or symlink of that name cannot be written through), written, fsynced,
    renamed over ``path``, and the directory is fsynced. ``path`` itself must be absent or
    a regular file: a symlink, a directory, a device or a FIFO is refused, not replaced.
    ``mode``: the new file's exact mode; None keeps an existing file's mode and owner
    (else the process umask decides, as for any new file).
    """
    _check_target_name(path)
    dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        existing = _existing_target(dfd, path)
        tmp = _write_temp(dfd, data, mode, existing)
        try:
            os.replace(tmp, path.name, src_dir_fd=dfd, dst_dir_fd=dfd)
        except BaseException:
            _unlink_quietly(dfd, tmp)
            raise
        _fsync_dir(dfd)
    finally:
        os.close(dfd)


def _fsync_dir(dfd: int) -> None:
    """Make the rename durable; a filesystem that cannot fsync a directory says EINVAL,
    and the file itself is already written and renamed by then."""
    try:
        os.fsync(dfd)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise


def _check_target_name(path: Path) -> None:
    name = path.name
    if name in ("", ".", ".."):
        raise OSError(errno.EISDIR, "names a directory, not a file", str(path))
    _check_component(name)


def _existing_target(dfd: int, path: Path) -> os.stat_result | None:
    try:
        st = os.stat(path.name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(st.st_mode):
        raise _refuse_kind(path, st.st_mode)
    return st


def _write_temp(dfd: int, data: bytes, mode: int | None, like: os.stat_result | None) -> str:
    tmp = f".meshpath-{secrets.token_hex(8)}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(tmp, flags, 0o600 if mode is not None else 0o666, dir_fd=dfd)
    try:
        with os.fdopen(fd, "wb") as fh:
            _set_attributes(fh.fileno(), mode, like)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        _unlink_quietly(dfd, tmp)
        raise
    return tmp


def _set_attributes(fd: int, mode: int | None, like: os.stat_result | None) -> None:
    if mode is not None:
        os.fchmod(fd, mode)
        return
    if like is None:
        return
    os.fchmod(fd, stat.S_IMODE(like.st_mode))
    if (like.st_uid, like.st_gid) != (os.geteuid(), os.getegid()):
        # Only root may give a file away; anyone else writes a file of their own.
        with contextlib.suppress(PermissionError):
            os.fchown(fd, like.st_uid, like.st_gid)
            os.fchmod(fd, stat.S_IMODE(like.st_mode))  # chown clears set-id bits


def _unlink_quietly(dfd: int, name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(name, dir_fd=dfd)


def ensure_dir(path: Path, mode: int, *, owner: tuple[str, str] | None = None) -> None:
    """Make ``path`` a real directory with exactly ``mode`` (and ``owner``: user, group).

    Missing parents are created; an existing ``path`` that is a symlink or not a
    directory is refused (OSError). Mode and owner are set through a descriptor opened
    with O_NOFOLLOW, so a symlink swapped in meanwhile cannot redirect them.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, mode)
    fd = _open_dir(path)
    try:
        os.fchmod(fd, mode)
        if owner is not None:
            os.fchown(fd, pwd.getpwnam(owner[0]).pw_uid, grp.getgrnam(owner[1]).gr_gid)
    finally:
        os.close(fd)


def _open_dir(path: str | Path, dir_fd: int | None = None) -> int:
    """A descriptor of the directory ``path``; OSError if it is a symlink or no directory."""
    st = os.stat(path, dir_fd=dir_fd, follow_symlinks=False)
    if not stat.S_ISDIR(st.st_mode):
        raise _refuse_kind(path, st.st_mode, "a directory")
    return os.open(path, _DIR_FLAGS, dir_fd=dir_fd)


# -- removing -------------------------------------------------------------------------
@contextlib.contextmanager
def _walk_to(root: Path, parts: tuple[str, ...]) -> Iterator[int | None]:
    """A descriptor of ``root/parts...`` reached without following a symlink at any of
    ``root``'s own name or ``parts``; None when something on the way does not exist."""
    for part in parts:
        _check_component(part)
    opened: list[int] = []
    try:
        try:
            opened.append(_open_dir(root))
            for part in parts:
                opened.append(_open_dir(part, dir_fd=opened[-1]))
        except FileNotFoundError:
            yield None
            return
        yield opened[-1]
    finally:
        for fd in opened:
            os.close(fd)


def remove_inside(root: Path, *parts: str) -> bool:
    """Remove ``root/parts...`` (a directory tree or a file) and never anything else.

    Every part is one path component (no ``/``, not ``..``); ``root`` and every
    directory on the way must be real directories, and the entry removed must not be a
    symlink (OSError otherwise: a link there was planted, and its target is not ours).
    The tree is removed through descriptors (``shutil.rmtree(dir_fd=...)``), which never
    follows a link inside it. Returns False when there was nothing to remove.
    """
    if not parts:
        raise ValueError("remove_inside needs the name of an entry inside root")
    with _walk_to(root, parts[:-1]) as dfd:
        return dfd is not None and _remove_entry(dfd, parts[-1], root.joinpath(*parts))


def clear_inside(root: Path, *parts: str, keep: Collection[str] = ()) -> None:
    """Remove every entry of the directory ``root/parts...`` except the names in ``keep``."""
    with _walk_to(root, parts) as dfd:
        if dfd is None:
            return
        for name in os.listdir(dfd):
            if name not in keep:
                _remove_entry(dfd, name, root.joinpath(*parts, name))


def _rmtree_settled(dfd: int, name: str, tries: int = 3) -> None:
    """``rmtree`` that tolerates a writer finishing its last file: a lab daemon killed a
    moment ago can still have renamed one more file into a directory that rmtree had
    already emptied (ENOTEMPTY once seen in a teardown). Every try goes through the same
    descriptor, so a retry never reaches anything ``rmtree`` would not."""
    for attempt in range(tries):
        try:
            shutil.rmtree(name, dir_fd=dfd)
            return
        except OSError as exc:
            if exc.errno != errno.ENOTEMPTY or attempt == tries - 1:
                raise
            time.sleep(0.05)


def _remove_entry(dfd: int, name: str, shown: Path) -> bool:
    _check_component(name)
    try:
        st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(st.st_mode):
        raise OSError(errno.ELOOP, "is a symbolic link; refusing to remove it", str(shown))
    if stat.S_ISDIR(st.st_mode):
        _rmtree_settled(dfd, name)
    else:
        os.unlink(name, dir_fd=dfd)
    return True
