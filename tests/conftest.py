"""Shared fixtures: privilege checks and throw-away network namespaces.

Namespaces made here are named ``mpt-<pid>-<n>`` and always deleted at teardown, so a
test run never leaves one behind and never touches the root namespace.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator

import pytest


def have_root_netns() -> tuple[bool, str]:
    if os.geteuid() != 0:
        return False, "needs root to create network namespaces"
    if shutil.which("ip") is None:
        return False, "needs iproute2 ('ip')"
    return True, ""


ROOT_OK, ROOT_REASON = have_root_netns()
needs_root = pytest.mark.skipif(not ROOT_OK, reason=ROOT_REASON)


def sh(argv: list[str], netns: str | None = None, check: bool = True) -> str:
    """Run argv (inside ``netns`` when given) and return stdout; raise with stderr on failure."""
    full = ["ip", "netns", "exec", netns, *argv] if netns else argv
    proc = subprocess.run(full, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{full} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


@pytest.fixture
def make_netns() -> Iterator[Callable[[], str]]:
    """Factory of fresh namespaces (loopback up); all removed when the test ends."""
    made: list[str] = []

    def factory() -> str:
        name = f"mpt-{os.getpid()}-{len(made)}"
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
        sh(["ip", "netns", "add", name])
        made.append(name)
        sh(["ip", "link", "set", "lo", "up"], netns=name)
        return name

    yield factory
    for name in made:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


# -- shards: `make test` runs the namespace tests as concurrent shards (issue 18) ----------
def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--shard",
        default=None,
        metavar="K/N",
        help="run only the test modules in shard K of N (round robin over the sorted module "
        "paths; a module stays whole, so its module-scoped lab is built once)",
    )


def shard_of(value: str) -> tuple[int, int]:
    """``K/N`` -> (K, N) with 1 <= K <= N; UsageError otherwise."""
    k, sep, n = value.partition("/")
    if not (sep and k.isdigit() and n.isdigit() and 1 <= int(k) <= int(n)):
        raise pytest.UsageError(f"--shard {value!r}: expected K/N with 1 <= K <= N")
    return int(k), int(n)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    value = config.getoption("--shard")
    if value is None:
        return
    k, n = shard_of(value)
    modules = sorted({str(item.path) for item in items})
    mine = {m for i, m in enumerate(modules) if i % n == k - 1}
    keep = [item for item in items if str(item.path) in mine]
    config.hook.pytest_deselected(items=[item for item in items if str(item.path) not in mine])
    items[:] = keep
