"""The watch loop (I/O edge): block on the change sockets, debounce, evaluate, heal, publish.

    changes (rtnetlink, nftables) ──> debounce (100 ms quiet, 500 ms at most) ──┐
    FRR poll (every --interval; a BGP view unlike the last poll's is a change) ─┤
    refresh (every --refresh, for what netlink does not announce) ──────────────┴─> evaluate
    evaluate: fresh snapshot -> doctor -> metrics + one log line per state change -> keeper

Between events the process sleeps in ``select`` with the nearest timer as its timeout: no
polling of the kernel. SIGTERM/SIGINT stop it: an evaluation in flight is abandoned (its
commands are killed); a heal in flight finishes first, so no journal is left half-written.
"""

from __future__ import annotations

import selectors
import signal
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from types import FrameType
from typing import Protocol

from meshpath.errors import MeshpathError
from meshpath.state import Snapshot
from meshpath.watch import events
from meshpath.watch.debounce import MAX_WAIT, QUIET, Debouncer
from meshpath.watch.evaluate import Evaluation, PeerState
from meshpath.watch.keeper import Keeper, KeeperOutcome
from meshpath.watch.metrics import WatchView

Evaluate = Callable[[], tuple[Snapshot, Evaluation]]
BgpProbe = Callable[[], tuple[PeerState, ...]]


class Source(Protocol):
    name: str

    def fileno(self) -> int: ...

    def drain(self) -> int: ...


@dataclass(frozen=True, slots=True)
class LoopOptions:
    interval: float = 10.0  # seconds between FRR polls
    refresh: float = 300.0  # a full evaluation at least this often
    quiet: float = QUIET
    max_wait: float = MAX_WAIT
    journal: bool = False  # prefix log lines with syslog priorities (under systemd)
    json_lines: bool = False  # --json: each event one JSON object per line


class _Stopped(Exception):
    """Raised by the signal handler to abandon an evaluation in flight."""


class Watcher:
    """One watch process: the state between events and the loop that updates it."""

    def __init__(
        self,
        options: LoopOptions,
        evaluate: Evaluate,
        sources: Sequence[Source],
        *,
        bgp_probe: BgpProbe | None = None,
        keeper: Keeper | None = None,
        publish: Callable[[WatchView], None] = lambda _v: None,
        emit: Callable[[str], None] = print,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.options = options
        self._evaluate_fn = evaluate
        self._sources = sources
        self._bgp_probe = bgp_probe
        self._keeper = keeper
        self._publish_fn = publish
        self._emit_fn = emit
        self._clock = clock
        self._debounce = Debouncer(options.quiet, options.max_wait)
        self._changes: Counter[str] = Counter()
        self._heals: Counter[str] = Counter()
        self._evaluations = self._errors = self._heal_failures = 0
        self._last: Evaluation | None = None
        self._peers: tuple[PeerState, ...] | None = None
        self._keeper_note: str | None = None
        self._stop = self._abortable = False
        now = clock()
        self._refresh_at = now + options.refresh
        self._poll_at = now + options.interval
        self._retry_at: float | None = None
        self.view = WatchView(keeper=keeper is not None)

    # -- the loop -------------------------------------------------------------------------
    def run(self, started: dict[str, object] | None = None) -> int:
        """Evaluate once, then react to changes until SIGTERM/SIGINT; 0 on a clean stop."""
        with self._signals() as wake, selectors.DefaultSelector() as sel:
            for source in self._sources:
                sel.register(source, selectors.EVENT_READ, source)
            sel.register(wake, selectors.EVENT_READ, None)
            self.log("started", started or {})
            self._run_evaluation()
            while not self._stop:
                for key, _mask in sel.select(self._timeout()):
                    self._ready(key.data, wake)
                if not self._stop:
                    self._tick()
        self.log("stopped", {"evaluations": self._evaluations})
        return 0

    def _timeout(self) -> float:
        timers = [self._refresh_at, self._poll_at, self._debounce.deadline(), self._retry_at]
        nearest = min(t for t in timers if t is not None)
        return max(0.0, nearest - self._clock())

    def _ready(self, source: Source | None, wake: socket.socket) -> None:
        if source is None:
            with suppress(BlockingIOError):
                wake.recv(64)
            return
        seen = source.drain()
        if seen:
            self._changes[source.name] += seen
            self._debounce.event(self._clock())

    def _tick(self) -> None:
        now = self._clock()
        if now >= self._poll_at:
            self._poll_at = now + self.options.interval
            self._poll_bgp(now)
        retry = self._retry_at is not None and now >= self._retry_at
        if self._debounce.due(now) or now >= self._refresh_at or retry:
            self._run_evaluation()

    def _poll_bgp(self, now: float) -> None:
        if self._bgp_probe is None:
            return
        try:
            peers = self._bgp_probe()
        except MeshpathError:
            return  # the evaluation reports FRR's problems; a poll only detects change
        if self._peers is not None and peers != self._peers:
            self._changes["frr"] += 1
            self._debounce.event(now)
        self._peers = peers

    # -- evaluating -------------------------------------------------------------------------
    def _run_evaluation(self) -> None:
        self._debounce.take()
        self._retry_at = None
        self._refresh_at = self._clock() + self.options.refresh
        try:
            self._abortable = True
            snapshot, evaluation = self._evaluate_fn()
        except _Stopped:
            return
        except MeshpathError as exc:
            self._errors += 1
            self._publish()
            self.log("evaluation_failed", {"error": str(exc)}, events.ERR)
            return
        finally:
            self._abortable = False
        self._evaluations += 1
        self._record(evaluation)
        if self._keeper is not None:
            self._keep(snapshot)

    def _record(self, evaluation: Evaluation) -> None:
        change = events.transition(self._last, evaluation)
        self._last = evaluation
        self._publish()
        if change is not None:
            event, priority, fields = change
            self.log(event, fields, priority)

    def _keep(self, snapshot: Snapshot) -> None:
        assert self._keeper is not None
        outcome = self._keeper.consider(snapshot, self._clock())
        self._retry_at = outcome.retry_at
        if outcome.action == "healed":
            self._heals.update(outcome.kinds)
            self._publish()
            self._log_heal(outcome, "applied", events.NOTICE)
        elif outcome.action == "failed":
            self._heal_failures += 1
            self._publish()
            self._log_heal(outcome, "failed", events.ERR)
        elif outcome.action in ("idle", "waiting") and outcome.detail != self._keeper_note:
            self.log("keeper", {"status": outcome.action, "reason": outcome.detail})
        self._keeper_note = outcome.detail if outcome.action in ("idle", "waiting") else None

    def _log_heal(self, outcome: KeeperOutcome, status: str, priority: int) -> None:
        fields = {"status": status, "what": outcome.detail, "source_journal": outcome.source}
        self.log("heal", {**fields, "journal": outcome.journal}, priority)

    # -- output -----------------------------------------------------------------------------
    def _publish(self) -> None:
        self.view = WatchView(
            evaluation=self._last,
            evaluations=self._evaluations,
            evaluation_errors=self._errors,
            changes=dict(self._changes),
            heals=dict(self._heals),
            heal_failures=self._heal_failures,
            keeper=self._keeper is not None,
        )
        self._publish_fn(self.view)

    def log(self, event: str, fields: dict[str, object], priority: int = events.INFO) -> None:
        opts = self.options
        self._emit_fn(
            events.line(event, time.time(), fields, priority, opts.journal, opts.json_lines)
        )

    # -- signals ----------------------------------------------------------------------------
    @contextmanager
    def _signals(self) -> Iterator[socket.socket]:
        """SIGTERM/SIGINT set the stop flag (and abandon an evaluation); a socketpair wakes
        the select so the loop sees the flag at once."""
        read, write = socket.socketpair()
        read.setblocking(False)
        write.setblocking(False)
        previous_fd = signal.set_wakeup_fd(write.fileno(), warn_on_full_buffer=False)
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield read
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            signal.set_wakeup_fd(previous_fd)
            read.close()
            write.close()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stop = True
        if self._abortable:
            raise _Stopped
