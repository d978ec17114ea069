"""Use cases: what a command does, between the CLI (options, rendering) and the core.

    host.Host        where a use case acts: runner, netns, root, state dir, collector
    doctor.run       snapshot (live or saved) -> diagnose (+ the kernel's own answers) -> Report
    fix.session      plan (dry run) or plan + apply under the lock -> FixOutcome
    fix.rollback     / fix.resume: the journal's inverse or remaining steps
    verify.run       what must hold (journal, mode, peer) -> the checks of every view
    postchecks       named post-checks that plug-ins (the lab) register by entry point

Library code: raises :mod:`meshpath.errors`, never exits, prints nothing (progress goes
through an ``on_event`` callback the caller supplies).
"""

from __future__ import annotations

from meshpath.usecase.host import Host

__all__ = ["Host"]
