"""``meshpath watch``: the path's real health, continuously, and a keeper for what meshpath owns.

    sources   netlink change sockets (rtnetlink groups, NFNLGRP_NFTABLES), in the namespace
    debounce  a burst of changes -> one evaluation (pure)
    evaluate  fresh snapshot -> the doctor's core (diagnose + kernel cross-check) -> Evaluation
    metrics   Evaluation + tallies -> Prometheus families (prometheus_client only here)
    events    one logfmt line per state change (pure)
    keeper    the newest applied journal -> what meshpath owns -> heal plan -> Applier
    unit      the hardened systemd unit (render pure; install confined to --root)
    loop      the Watcher: select on the sockets, timers for the FRR poll and the refresh

Public API::

    from meshpath.watch import Evaluator, Watcher, LoopOptions, Keeper, new_registry

    evaluator = Evaluator(settings, SubprocessRunner(netns=ns), ns, targets)
    snapshot, evaluation = evaluator()              # or evaluator.offline(snapshot)
    keeper = Keeper(runner, state_dir, root, ns)     # keeper.consider(snapshot, now)
    watcher = Watcher(LoopOptions(), evaluator, open_sources(ns), keeper=keeper)
    registry = new_registry(lambda: watcher.view)    # serve(listener, registry)
    watcher.run()                                    # until SIGTERM/SIGINT; 0
"""

from __future__ import annotations

from meshpath.watch.debounce import Debouncer
from meshpath.watch.evaluate import Evaluation, Evaluator, summarise
from meshpath.watch.keeper import Backoff, Keeper, KeeperOutcome, find_drift, heal_plan, owned_by
from meshpath.watch.loop import LoopOptions, Watcher
from meshpath.watch.metrics import WatchView, new_registry, parse_listen, serve, write_textfile
from meshpath.watch.sources import open_sources
from meshpath.watch.unit import UnitOptions, install_unit, render_unit

__all__ = [
    "Backoff",
    "Debouncer",
    "Evaluation",
    "Evaluator",
    "Keeper",
    "KeeperOutcome",
    "LoopOptions",
    "UnitOptions",
    "WatchView",
    "Watcher",
    "find_drift",
    "heal_plan",
    "install_unit",
    "new_registry",
    "open_sources",
    "owned_by",
    "parse_listen",
    "render_unit",
    "serve",
    "summarise",
    "write_textfile",
]
