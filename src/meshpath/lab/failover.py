"""Failover drills on the ``ha`` lab: the primary fails while a Worker calls steadily.

Three ways the primary replica (``conn``) fails, each undone afterwards:

* ``tunnel``: its WARP session ends (the tunnel emulator stops). The edge routes through
  connb's session at once (the lab's reading of "Cloudflare promotes a standby"); conn's
  statics via ``CloudflareWARP`` go inactive and its bgpd withdraws the ranges.
* ``bgpd``: its bgpd is killed (SIGKILL, a crash); the kernel closes the TCP session, the
  router drops conn's paths at once. The WARP session stays up, so Cloudflare keeps conn
  active, and the replies now go to connb: no failover, the calls fail until bgpd is back
  (restarted with the config it ran, as watchfrr would).
* ``link``: conn's LAN link goes down (``ip link set eth0 down``). On a one-NIC connector
  the WARP session runs over that link and ends with it; the lab's tunnel emulator does
  not use eth0, so the drill ends the session too. The router notices only when its BGP
  hold timer (3 s, the router's ``timers bgp 1 3``) expires, or within BFD's detection
  time (3 x 300 ms) with ``fix --bfd``: until then it sends replies to the dead link.

The figures (pure, :func:`phase_figures`): calls that failed, and the time from the event
until calls succeed again for good.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

from meshpath.collect.frr import decode_show_list
from meshpath.fsafe import atomic_write
from meshpath.lab import frr, ha
from meshpath.lab.procs import LabTimeout, frr_pathspace, wait_for
from meshpath.lab.topology import LAN_ADDR, LAN_IF, WORKER_SOURCE
from meshpath.state import frr as frr_state

if TYPE_CHECKING:
    from meshpath.lab.core import Lab

EVENTS: Final[tuple[str, ...]] = ("tunnel", "bgpd", "link")
INTERVAL: Final = 0.1  # a Worker call every 100 ms
DRILL_CONF: Final = "bgpd-drill.conf"
# A call that needed a retransmitted SYN (Linux's initial RTO is 1 s) was delayed.
DELAYED: Final = 1.0


@dataclass(frozen=True, slots=True)
class Call:
    """One Worker call: when it started and ended (monotonic seconds), and its outcome."""

    started: float
    ended: float
    ok: bool


@dataclass(frozen=True, slots=True)
class PhaseFigures:
    """What the Worker saw from the event until the next one."""

    calls: int
    failed: int  # the Worker got an error (handshake timeout)
    delayed: int  # succeeded, but only after a retransmitted SYN (>= 1 s)
    recovery: float | None  # seconds until the path carried calls again; None: it did not


def phase_figures(calls: Sequence[Call], start: float, end: float) -> PhaseFigures:
    """The calls started in [start, end): how many failed or were delayed, and when the path
    came back.

    The path is back when the first call of the final run of successes *completes*: a call
    whose SYN was lost succeeds when a retransmission gets through, that is when the path
    works again, not when the call started. Only calls that ended before ``end`` judge the
    phase (one in flight at the next event says nothing about this one). Nothing failed or
    was delayed: 0.0. A phase that ends in a failure did not recover: None.
    """
    mine = sorted((c for c in calls if start <= c.started < end), key=lambda c: c.started)
    failed = sum(1 for c in mine if not c.ok)
    delayed = sum(1 for c in mine if c.ok and c.ended - c.started >= DELAYED)
    if failed == 0 and delayed == 0:
        return PhaseFigures(len(mine), 0, 0, 0.0)
    streak: list[Call] = []
    for call in mine:
        if not call.ok:
            streak = []
        elif call.ended < end:
            streak.append(call)
    back = min((c.ended for c in streak), default=None)
    return PhaseFigures(len(mine), failed, delayed, None if back is None else back - start)


@dataclass(frozen=True, slots=True)
class DrillFigures:
    event: str
    bfd: bool
    failover: PhaseFigures  # from the event until the primary is restored
    failback: PhaseFigures  # from the restore on
    router_switch: float | None  # seconds until the router routed the ranges via connb
    via_standby: bool  # connb's session carried calls during the failure
    calls: str = field(default="", repr=False, compare=False)  # timeline(): for messages


class Prober:
    """A Worker call every ``interval`` seconds, each in its own thread (a failing call
    waits for the handshake timeout; the rate must not slow down)."""

    def __init__(self, lab: Lab, interval: float = INTERVAL) -> None:
        self.lab = lab
        self.interval = interval
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pending: dict[int, float] = {}  # thread -> when its call started
        self._ticker = threading.Thread(target=self._tick, name="prober", daemon=True)

    def __enter__(self) -> Prober:
        self._ticker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._ticker.join()
        for thread in self._threads:
            thread.join()

    def idle_since(self, moment: float) -> bool:
        """No call started before ``moment`` is still waiting for its answer."""
        with self._lock:
            return all(started >= moment for started in self._pending.values())

    def snapshot(self) -> list[Call]:
        with self._lock:
            return list(self.calls)

    def _tick(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            thread = threading.Thread(target=self._call, daemon=True)
            thread.start()
            self._threads.append(thread)
            next_at += self.interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _call(self) -> None:
        started = time.monotonic()
        key = threading.get_ident()
        with self._lock:
            self._pending[key] = started
        result = self.lab.worker_call(timeout=self.lab.connect_timeout + 5.0)
        ok = result.status == 200 and result.seen_source == WORKER_SOURCE
        with self._lock:
            del self._pending[key]
            self.calls.append(Call(started, time.monotonic(), ok))


# -- the events and their undoing ---------------------------------------------------------
def kill_tunnel(lab: Lab) -> None:
    ha.stop_session(lab, "conn")


def restore_tunnel(lab: Lab) -> None:
    ha.start_session(lab, "conn")


def kill_bgpd(lab: Lab) -> None:
    """Save the config bgpd runs (what meshpath applied), then SIGKILL it."""
    d = frr_pathspace(lab.ns("conn"))
    running = lab.vtysh("conn", "show running-config bgpd")
    atomic_write(d / DRILL_CONF, running.encode(), mode=0o644)
    os.kill(_pid(d / "bgpd.pid"), signal.SIGKILL)
    wait_for("conn's bgpd gone", lambda: not _alive(d / "bgpd.pid"), 5.0)


def restore_bgpd(lab: Lab) -> None:
    d = frr_pathspace(lab.ns("conn"))
    (d / "bgpd.pid").unlink(missing_ok=True)
    lab.exec("conn", frr.daemon_argv("bgpd", str(d / DRILL_CONF), str(d)), check=True)


def link_down(lab: Lab) -> None:
    lab.exec("conn", ["ip", "link", "set", LAN_IF, "down"], check=True)
    ha.stop_session(lab, "conn")  # the WARP session ran over that link


def link_up(lab: Lab) -> None:
    lab.exec("conn", ["ip", "link", "set", LAN_IF, "up"], check=True)
    # The kernel dropped the default route with the link; the connected route comes back.
    lab.ip_batch("conn", f"route replace default via {LAN_ADDR['router']} dev {LAN_IF}\n")
    ha.start_session(lab, "conn")


ACTIONS: Final[dict[str, tuple[Callable[[Lab], None], Callable[[Lab], None]]]] = {
    "tunnel": (kill_tunnel, restore_tunnel),
    "bgpd": (kill_bgpd, restore_bgpd),
    "link": (link_down, link_up),
}


def _pid(path: Path) -> int:
    return int(path.read_text().split()[0])


def _alive(path: Path) -> bool:
    try:
        os.kill(_pid(path), 0)
    except (OSError, ValueError):
        return False
    return True


# -- the drill ----------------------------------------------------------------------------
def drill(
    lab: Lab, event: str, bfd: bool, window: float = 6.0, patience: float = 0.0
) -> DrillFigures:
    """Calls every 100 ms; ``event`` on the primary; ``window`` seconds later undone (or,
    when the path has not carried calls again by then, up to ``patience`` seconds later, as
    soon as it has); the calls go on ``window`` seconds more. The router must route via
    conn again at the end."""
    fail, restore = ACTIONS[event]
    before = ha.carried(lab, "connb")
    with Prober(lab) as prober:
        time.sleep(0.5)  # calls succeed before the event
        t_fail = time.monotonic()
        fail(lab)
        switch = _router_switch(lab, t_fail, window)
        time.sleep(max(0.0, t_fail + window - time.monotonic()))
        _await_recovery(prober, t_fail, t_fail + window + patience)
        via_standby = ha.carried(lab, "connb") > before
        t_back = time.monotonic()
        restore(lab)
        time.sleep(max(0.0, t_back + window - time.monotonic()))
    ha.wait_router(lab, LAN_ADDR["conn"])
    return DrillFigures(
        event,
        bfd,
        phase_figures(prober.calls, t_fail, t_back),
        phase_figures(prober.calls, t_back, t_back + window),
        switch,
        via_standby,
        timeline(prober.calls, t_fail, t_back),
    )


def _await_recovery(prober: Prober, start: float, deadline: float) -> None:
    """Until calls succeed again for good or ``deadline``. On a loaded machine the path
    can come back later than the window allows for (the tunnel emulators are user-space
    processes); a drill that stopped then would report a recovery as none. "For good":
    the calls that ended show a recovery and every call started more than a retransmission
    ago has answered (one of them may still fail and reset it)."""
    while (now := time.monotonic()) < deadline:
        recovered = phase_figures(prober.snapshot(), start, now).recovery is not None
        if recovered and prober.idle_since(now - DELAYED):
            return
        time.sleep(0.2)


def timeline(calls: Sequence[Call], start: float, back: float) -> str:
    """The calls around a drill's event as text, for a failing test's message:
    ``t:ok`` or ``t:X``, then the call's duration (seconds from the event)."""
    marks = [
        f"{c.started - start:.1f}:{'ok' if c.ok else 'X'}{c.ended - c.started:.1f}"
        for c in sorted(calls, key=lambda c: c.started)
        if c.started - start >= -0.3
    ]
    return f"restored at {back - start:.1f} s; " + " ".join(marks)


def _router_switch(lab: Lab, start: float, timeout: float) -> float | None:
    try:
        wait_for("router via connb", lambda: ha.router_via(lab) == LAN_ADDR["connb"], timeout)
    except LabTimeout:
        return None
    return time.monotonic() - start


# -- BFD ----------------------------------------------------------------------------------
def fix_all(lab: Lab, bfd: bool) -> None:
    """Both replicas fixed with their roles (``bfd``: ``fix --bfd``); with BFD, until the
    router's sessions with both are up; then until the router routes via the primary."""
    for node, role in ha.ROLES.items():
        ha.fix_replica(lab, node, role, bfd=bfd)
    if bfd:
        want = {LAN_ADDR[n]: "up" for n in ha.ROLES}
        wait_for("BFD up at the router", lambda: bfd_status(lab, "router") == want, 20.0)
    ha.wait_router(lab, LAN_ADDR["conn"])


def bfd_status(lab: Lab, node: str) -> dict[str, str]:
    """``show bfd peers json`` in ``node``: peer address -> status ("up", "down", ...);
    {} when bfdd does not answer."""
    command = "show bfd peers json"
    peers, _problem = decode_show_list(command, lab.vtysh(node, command) or "[]")
    return frr_state.bfd_status(peers)
