"""The :class:`Host` value: everything a use case needs to act on one host."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from meshpath.collect import collect_snapshot
from meshpath.runner import Runner, SubprocessRunner
from meshpath.state import Snapshot

# Where the journal and the lock live, relative to --root.
STATE_SUBDIR: Final = "var/lib/meshpath"

Collector = Callable[[Runner, "str | None"], Snapshot]


def _collect(runner: Runner, netns: str | None) -> Snapshot:
    return collect_snapshot(netns=netns, runner=runner)


def state_dir_of(root: Path, state_dir: Path | None) -> Path:
    """The journal and lock directory: ``state_dir``, else ``ROOT/var/lib/meshpath``."""
    return state_dir if state_dir is not None else root / STATE_SUBDIR


@dataclass(frozen=True, slots=True)
class Host:
    """One host (or network namespace) to diagnose, fix or verify.

    ``runner`` runs every command (inside ``netns``); ``root`` is where persistence files
    go (a temp dir in tests and labs); ``state_dir`` holds the journal and the lock;
    ``collector`` turns the live host into a Snapshot (tests swap it for a fake kernel's).
    """

    runner: Runner
    netns: str | None = None
    root: Path = Path("/")
    state_dir: Path = Path("/") / STATE_SUBDIR
    collector: Collector = field(default=_collect, compare=False)

    @classmethod
    def local(
        cls, netns: str | None = None, root: Path = Path("/"), state_dir: Path | None = None
    ) -> Host:
        """The real host (or ``netns``), commands run as subprocesses."""
        return cls(
            runner=SubprocessRunner(netns=netns),
            netns=netns,
            root=root,
            state_dir=state_dir_of(root, state_dir),
        )

    def snapshot(self) -> Snapshot:
        """A fresh snapshot of the live host."""
        return self.collector(self.runner, self.netns)
