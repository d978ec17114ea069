"""Shared fixtures: privilege checks and throw-away network namespaces.

Namespaces made here are named ``mpt-<pid>-<n>`` and always deleted at teardown, so a
test run never leaves one behind and never touches the root namespace.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

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


# -- claims: `make test` runs the namespace tests in concurrent pytest processes (issue 18)
def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--claim-dir",
        default=None,
        metavar="DIR",
        help="share the test modules with other pytest runs given the same DIR: each module "
        "runs in the run that claims it first (its other runs skip it); a module stays "
        "whole, so its module-scoped lab is built once",
    )


_CLAIMED: dict[str, bool] = {}  # module path -> claimed by this run


def claim(directory: Path, module: str) -> bool:
    """True when this run is the first to claim ``module`` in ``directory`` (O_EXCL)."""
    name = hashlib.sha256(module.encode()).hexdigest()[:32]
    try:
        os.close(os.open(directory / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        return False
    return True


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    value = item.config.getoption("--claim-dir")
    if value is None:
        return
    module = str(item.path)
    if module not in _CLAIMED:
        directory = Path(value)
        directory.mkdir(parents=True, exist_ok=True)
        _CLAIMED[module] = claim(directory, module)
    if not _CLAIMED[module]:
        pytest.skip("run by another pytest sharing --claim-dir")
