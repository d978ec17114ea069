"""Waiting for masqueraded connections to end before meshpath's NAT table goes (I/O edge).

Reads ``/proc/net/nf_conntrack`` through the Runner (so inside ``--netns``); the parsing is
:func:`meshpath.state.conntrack.open_translated`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from meshpath.fix.model import WaitNatDrain
from meshpath.runner import Runner
from meshpath.state.conntrack import open_translated

CONNTRACK_PROC = "/proc/net/nf_conntrack"
POLL = 0.05  # a Worker's request lasts milliseconds: poll often, the wait is usually 0


def wait_drained(
    runner: Runner,
    action: WaitNatDrain,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Until no open TCP connection from ``action.sources`` is masqueraded, at most
    ``action.timeout`` seconds; says what it waited for, or what is cut when time ran out
    (the step goes on: a long-lived connection must not hold the migration forever)."""
    start = clock()
    while True:
        done = runner.run(["cat", CONNTRACK_PROC], check=False)
        if not done.ok:
            return f"{CONNTRACK_PROC} not readable ({done.stderr.strip()[:80]}): not waited"
        still = open_translated(done.stdout, action.sources)
        waited = clock() - start
        if not still:
            return f"no masqueraded connection open (waited {waited:.2f}s)"
        if waited >= action.timeout:
            cut = "; ".join(still[:3]) + (" ..." if len(still) > 3 else "")
            return f"{len(still)} masqueraded connection(s) open after {waited:.0f}s, cut: {cut}"
        sleep(POLL)
