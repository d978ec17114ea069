"""Entering a named network namespace for the duration of a block (ctypes setns).

Python 3.11 has no ``os.setns``; libc's ``setns(fd, CLONE_NEWNET)`` switches the calling
thread only, which is what we want: a netlink socket opened inside stays bound to that
namespace after we return, and ``/proc/sys/net`` resolves the namespace at open time.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from meshpath.errors import EnvironmentProblem, NetnsError, PrivilegeError
from meshpath.fsafe import component_problem

CLONE_NEWNET: Final = 0x40000000
NETNS_DIR: Final = Path("/run/netns")


def check_netns_name(name: str) -> str:
    """``name`` if ``ip netns`` could name a namespace so; NetnsError (exit 2) otherwise.

    ``ip netns`` keeps NAME as the file /run/netns/NAME, and iproute2 refuses a name that
    is not one path component (empty, '.', '..', a '/', over NAME_MAX = 255 bytes); a NUL
    cannot be passed to the kernel at all.
    """
    problem = component_problem(name)
    if problem is not None:
        shown = repr(name[:40]) + ("..." if len(name) > 40 else "")
        raise NetnsError(f"invalid network namespace name {shown}: it {problem}")
    return name


def netns_path(name: str) -> Path:
    """Where ``ip netns`` keeps the named namespace; NetnsError when it does not exist."""
    path = NETNS_DIR / check_netns_name(name)
    try:
        path.stat()
    except FileNotFoundError as exc:
        raise NetnsError(
            f"network namespace {name!r} not found (no {path}); see 'ip netns list'"
        ) from exc
    except OSError as exc:
        raise EnvironmentProblem(f"cannot look at {path} ({exc.strerror})") from exc
    return path


def _setns(fd: int, what: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        if err == 1:  # EPERM
            raise PrivilegeError(f"entering {what} needs root (CAP_SYS_ADMIN); run with sudo")
        raise EnvironmentProblem(f"cannot enter {what}: {os.strerror(err)}")


@contextmanager
def inside_netns(name: str | None) -> Iterator[None]:
    """Run the block inside network namespace ``name`` (no-op for None), then come back."""
    if name is None:
        yield
        return
    path = netns_path(name)
    if os.geteuid() != 0:
        raise PrivilegeError(
            f"collecting inside network namespace {name!r} needs root; run with sudo"
        )
    # thread-self: setns switches only the calling thread, so come back to *its* namespace.
    original = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            _setns(target, f"network namespace {name!r}")
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(original, "the original network namespace")
    finally:
        os.close(original)
