"""The ``drift`` drill: the route fix is in place, then the route disappears.

WARP drops routes through ``CloudflareWARP`` whenever it re-creates the interface; here the
route is deleted by hand, which is what that looks like to the kernel. Two watchers, one
after the other, in conn:

1. ``meshpath watch`` (no keeper): ``meshpath_path_ok`` drops to 0 within 1 s; the path
   stays broken (the Worker gets 500 ``handshake timeout``), the log says ``path_broken``
   with MP101 and nothing heals it; restoring the route by hand is seen within 1 s.
2. ``meshpath watch --heal``: the metric drops within 1 s, the keeper re-adds the route
   (one ``heal`` log line, ``meshpath_heals_total{kind="route"}`` 1) and the Worker gets
   200 again within 2 s of the deletion.

The scenario's usual expectation (200, the Worker's own source, the reply via the tunnel)
is then checked on the healed connector.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Final

from meshpath.collect.iproute import ip_json
from meshpath.fix.model import METRIC_MESHPATH, PROTO_MESHPATH
from meshpath.lab.scenarios import Check
from meshpath.lab.topology import SOURCE_RANGE, TUN_CONN
from meshpath.lab.watch import Watch
from meshpath.render.systemd import RouteSpec

if TYPE_CHECKING:
    from meshpath.lab.core import Lab

Drill = Callable[["Lab"], tuple[Check, ...]]
REACTION: Final = 1.0  # seconds: a drift is in the metrics within this
HEAL: Final = 2.0  # seconds: the Worker gets 200 again within this of the drift
HOLD: Final = 2.0  # seconds: without --heal, still broken this long after
ROUTE: Final = RouteSpec(SOURCE_RANGE, TUN_CONN, PROTO_MESHPATH, METRIC_MESHPATH)
PATH_OK: Final = "meshpath_path_ok"


def route_present(lab: Lab) -> bool:
    argv = ["ip", "-j", "route", "show", SOURCE_RANGE, "table", "main", "proto", "232"]
    done = lab.exec("conn", argv)
    return done.ok and bool(ip_json(done.stdout))


def _timed(name: str, took: float | None, limit: float, what: str) -> Check:
    shown = "never" if took is None else f"after {took:.2f}s"
    return Check(name, took is not None and took <= limit, f"{what} {shown} (limit {limit:g}s)")


def _drift(lab: Lab) -> float:
    """Delete meshpath's route; the monotonic time just before."""
    start = time.monotonic()
    lab.exec("conn", list(ROUTE.argv("del")), check=True)
    return start


def watch_only(lab: Lab) -> list[Check]:
    watch = Watch.start(lab, heal=False, name="watch-drift")
    try:
        start = time.monotonic()
        healthy = watch.wait_value(PATH_OK, 1.0, start, 5.0)
        checks = [_timed("watch: healthy at start", healthy, 5.0, "path_ok 1")]
        start = _drift(lab)
        took = watch.wait_value(PATH_OK, 0.0, start, 3.0)
        checks.append(_timed("watch: drift seen", took, REACTION, "path_ok 0"))
        worker = lab.worker_call()  # the connect timeout (2.5 s) outlasts HOLD
        broken = watch.value(PATH_OK) == 0.0 and not route_present(lab)
        said = [e for e in watch.events("path_broken") if e.get("finding") == "MP101"]
        detail = (
            f"worker {worker.status} {worker.body[:20]!r}, route absent: {not route_present(lab)}"
        )
        checks.append(Check("watch only: stays broken", broken and worker.status == 500, detail))
        quiet_keeper = not watch.events("heal")
        line = said[-1].get("verdict", "") if said else "no path_broken line with MP101"
        checks.append(Check("watch only: says so", bool(said) and quiet_keeper, line))
        start = time.monotonic()
        lab.exec("conn", list(ROUTE.argv("replace")), check=True)
        took = watch.wait_value(PATH_OK, 1.0, start, 3.0)
        checks.append(_timed("watch: restore seen", took, REACTION, "path_ok 1"))
    finally:
        watch.stop()
    return checks


def with_keeper(lab: Lab) -> list[Check]:
    watch = Watch.start(lab, heal=True, name="watch-heal")
    try:
        start = _drift(lab)
        took = watch.wait_value(PATH_OK, 0.0, start, 3.0)
        checks = [_timed("keeper: drift seen", took, REACTION, "path_ok 0")]
        while not route_present(lab) and time.monotonic() - start < 5.0:
            time.sleep(0.005)
        worker = lab.worker_call()
        took = time.monotonic() - start if worker.status == 200 else None
        checks.append(_timed("keeper: worker 200 again", took, HEAL, f"worker {worker.status}"))
        # The route is back before the keeper's journal is written (fsynced) and its line
        # logged: wait for the line rather than assume it is there once the Worker answers.
        deadline = time.monotonic() + 2.0
        while not watch.events("heal") and time.monotonic() < deadline:
            time.sleep(0.01)
        watch.wait_value("meshpath_heals_total", 1.0, time.monotonic(), 1.0, kind="route")
        heals = watch.events("heal")
        routes = watch.value("meshpath_heals_total", kind="route")
        detail = heals[-1].get("what", "") if heals else "no heal line"
        once = len(heals) == 1 and routes == 1.0
        detail += f"; heals_total{{route}}={routes}"
        checks.append(Check("keeper: one heal, logged and counted", once, detail))
    finally:
        watch.stop()
    return checks


def drill_drift(lab: Lab) -> tuple[Check, ...]:
    return (*watch_only(lab), *with_keeper(lab))


def drill_ha(lab: Lab) -> tuple[Check, ...]:
    """The ha scenario's failover drill (lab/ha.py)."""
    from meshpath.lab import ha

    return ha.drill(lab)


DRILLS: Final[Mapping[str, Drill]] = {"drift": drill_drift, "ha": drill_ha}
