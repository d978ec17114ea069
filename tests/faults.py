"""Run the meshpath CLI with faults injected: for the crash and failure tests only.

    python -m tests.faults [--kill-after-step N] [--kill-in-undo N] [--frr-reload SCRIPT]
                           -- <meshpath arguments>

Production code reads no test switch from the environment; this wrapper installs the
faults through the seams the code has, then runs the CLI in the same process:

- ``--kill-after-step N`` / ``--kill-in-undo N``: every Applier gets a checkpoint that
  SIGKILLs the process at step N's "step-done" / "undo-acted" point
  (:data:`meshpath.apply.executor.STEP_DONE`, ``UNDO_ACTED``);
- ``--frr-reload SCRIPT``: the Runner runs SCRIPT wherever meshpath runs frr-reload.py.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from meshpath.apply import executor
from meshpath.apply.frr import FRR_RELOAD
from meshpath.runner import SubprocessRunner

REPO = Path(__file__).resolve().parent.parent


def kill_at(point: str, step: int) -> Callable[[str, int], None]:
    """A checkpoint that SIGKILLs this process at ``point`` of ``step`` (1-based)."""

    def checkpoint(at: str, n: int) -> None:
        if (at, n) == (point, step):
            os.kill(os.getpid(), signal.SIGKILL)

    return checkpoint


def install_checkpoint(checkpoint: Callable[[str, int], None]) -> None:
    """Every Applier made from now on in this process calls ``checkpoint``."""
    made = executor.Applier.__init__

    def init(self: executor.Applier, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("checkpoint", checkpoint)
        made(self, *args, **kwargs)

    executor.Applier.__init__ = init  # type: ignore[method-assign]


def install_rewrite(program: str, replacement: str) -> None:
    """Every SubprocessRunner runs ``replacement`` where argv[0] is ``program``."""
    run = SubprocessRunner.run

    def rewritten(self: SubprocessRunner, argv: Sequence[str], **kwargs: Any) -> Any:
        if argv and argv[0] == program:
            argv = [replacement, *argv[1:]]
        return run(self, argv, **kwargs)

    SubprocessRunner.run = rewritten  # type: ignore[method-assign]


def parse(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog="python -m tests.faults")
    parser.add_argument("--kill-after-step", type=int)
    parser.add_argument("--kill-in-undo", type=int)
    parser.add_argument("--frr-reload")
    args = list(argv)
    cut = args.index("--") if "--" in args else len(args)
    return parser.parse_args(args[:cut]), args[cut + 1 :]


def main(argv: Sequence[str]) -> int:
    faults, rest = parse(argv)
    if faults.kill_after_step is not None:
        install_checkpoint(kill_at(executor.STEP_DONE, faults.kill_after_step))
    if faults.kill_in_undo is not None:
        install_checkpoint(kill_at(executor.UNDO_ACTED, faults.kill_in_undo))
    if faults.frr_reload is not None:
        install_rewrite(FRR_RELOAD, faults.frr_reload)
    from meshpath.cli import main as cli_main

    return cli_main(rest)


def run_faulty(
    argv: Sequence[str],
    faults: Sequence[str],
    env: Mapping[str, str],
    timeout: float = 90.0,
) -> subprocess.CompletedProcess[str]:
    """``argv`` is a ``python -m meshpath ...`` argv (lab.fixes.meshpath_argv); run it
    through this wrapper with ``faults`` (e.g. ``["--kill-after-step", "1"]``)."""
    python, flag, module, *rest = argv
    assert (flag, module) == ("-m", "meshpath"), argv  # noqa: S101 - a test helper
    return subprocess.run(  # noqa: S603 - argv list
        [python, "-m", "tests.faults", *faults, "--", *rest],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(env),
        cwd=REPO,  # where `-m tests.faults` is found
        check=False,
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
