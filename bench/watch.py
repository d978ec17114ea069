"""Benchmark meshpath watch in the lab: reaction to a drift, heal time, idle CPU.

A drift is meshpath's route (100.64.0.0/12 via CloudflareWARP, proto 232) deleted by hand on
the connector, as a WARP reconnect does. Measured from just before the `ip route del`:

* reaction: until the watcher's textfile says ``meshpath_path_ok 0`` (polled every 5 ms;
  the file is replaced after each evaluation), and back to 1 once the route is restored by
  hand (watch only, no keeper);
* heal (``--heal``): until the route is back in the kernel, and until a Worker call through
  the tunnel returns 200 (the call itself, a process in the edge namespace, included);
* idle CPU: the watcher's own CPU time (utime+stime from /proc) over 60 s with nothing
  changing, on the route scenario (no FRR on the connector) and on the bgp scenario (FRR
  polled every 10 s with vtysh).

Needs root. Usage: python bench/watch.py [--drifts 20] [--idle 60]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

from meshpath.lab import FIXES, Lab
from meshpath.lab.core import terminate_as_interrupt
from meshpath.lab.drift import ROUTE, route_present
from meshpath.lab.watch import Watch

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        head, _, tail = fh.read().rpartition(")")
    # `ip netns exec` execs the watcher in place: this pid must be Python, not `ip`.
    assert "python" in head or "meshpath" in head, head
    fields = tail.split()
    # utime, stime, and cutime, cstime: the commands it ran (nft, ip, vtysh) count too.
    return sum(int(f) for f in fields[11:15]) / TICKS


def until(probe: Callable[[], bool], start: float, timeout: float = 10.0) -> float:
    while not probe():
        if time.monotonic() - start > timeout:
            raise TimeoutError("no change within the timeout")
        time.sleep(0.005)
    return time.monotonic() - start


def heal_count(watch: Watch) -> float | None:
    return watch.value("meshpath_heals_total", kind="route")


def drift(lab: Lab) -> float:
    start = time.monotonic()
    lab.exec("conn", list(ROUTE.argv("del")), check=True)
    return start


def reactions(lab: Lab, n: int) -> dict[str, list[float]]:
    watch = Watch.start(lab, heal=False, name="bench-watch")
    out: dict[str, list[float]] = {"broken seen": [], "restore seen": [], "evaluation": []}
    try:
        for _ in range(n):
            start = drift(lab)
            out["broken seen"].append(until(lambda: watch.value("meshpath_path_ok") == 0.0, start))
            out["evaluation"].append(watch.value("meshpath_last_evaluation_duration_seconds") or 0)
            start = time.monotonic()
            lab.exec("conn", list(ROUTE.argv("replace")), check=True)
            out["restore seen"].append(until(lambda: watch.value("meshpath_path_ok") == 1.0, start))
            time.sleep(0.3)
    finally:
        watch.stop()
    return out


def worker_calls(lab: Lab, n: int) -> list[float]:
    """The floor of "worker 200": one Worker call on the healthy path, end to end."""
    out = []
    for _ in range(n):
        start = time.monotonic()
        assert lab.worker_call().status == 200
        out.append(time.monotonic() - start)
    return out


def heal_spans(watch: Watch) -> list[float]:
    """Inside the watcher: from its path_broken line to its heal line (ms timestamps)."""
    spans, broken = [], None
    for event in watch.events():
        if event["event"] == "path_broken":
            broken = stamp(event["ts"])
        elif event["event"] == "heal" and broken is not None:
            spans.append(stamp(event["ts"]) - broken)
            broken = None
    return spans


def stamp(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


def heals(lab: Lab, n: int) -> dict[str, list[float]]:
    # --heal-calm 1: drifts 1.5 s apart are each healed at once (no back-off).
    watch = Watch.start(lab, True, "bench-heal", "--heal-calm", "1")
    out: dict[str, list[float]] = {"broken seen": [], "route back": [], "worker 200": []}
    try:
        for i in range(n):
            start = drift(lab)
            out["broken seen"].append(until(lambda: watch.value("meshpath_path_ok") == 0.0, start))
            out["route back"].append(until(lambda: route_present(lab), start))
            status = lab.worker_call().status
            assert status == 200, f"worker {status} after the heal"
            out["worker 200"].append(time.monotonic() - start)
            until(lambda n=i + 1.0: heal_count(watch) == n, start)
            time.sleep(1.5)
        out["heal (in watch)"] = heal_spans(watch)
    finally:
        watch.stop()
    return out


def idle(lab: Lab, seconds: float, name: str) -> tuple[float, float]:
    """CPU % of one core over ``seconds`` of nothing happening (clock ticks of 1/CLK_TCK s
    from /proc: 0 means under one tick); evaluations meanwhile."""
    watch = Watch.start(lab, heal=True, name=name)
    try:
        time.sleep(3.0)  # past start-up
        pid = watch.child.pid
        before, evaluations = cpu_seconds(pid), watch.value("meshpath_evaluations_total") or 0
        time.sleep(seconds)
        used = cpu_seconds(pid) - before
        more = (watch.value("meshpath_evaluations_total") or 0) - evaluations
    finally:
        watch.stop()
    return 100.0 * used / seconds, more


def show(title: str, series: dict[str, list[float]]) -> None:
    print(title)
    for key, values in series.items():
        med, worst = statistics.median(values), max(values)
        ms = f"median {med * 1000:7.1f} ms   worst {worst * 1000:7.1f} ms"
        print(f"  {key:14} {ms}   (n={len(values)})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--drifts", type=int, default=20)
    p.add_argument("--idle", type=float, default=60.0)
    args = p.parse_args()
    with Lab.create() as lab:
        lab.setup("route")
        FIXES["route"](lab)
        show("healthy path", {"worker call": worker_calls(lab, args.drifts)})
        show(f"watch only, {args.drifts} drifts", reactions(lab, args.drifts))
        show(f"watch --heal, {args.drifts} drifts", heals(lab, args.drifts))
        cpu, evaluations = idle(lab, args.idle, "bench-idle")
        print(
            f"idle {args.idle:g} s, route scenario (no FRR on conn): {cpu:.3f}% of a core "
            f"(one {1000 / TICKS:g} ms tick is {100 / TICKS / args.idle:.3f}%), "
            f"{evaluations:g} evaluations"
        )
        lab.setup("bgp")
        FIXES["bgp"](lab)
        cpu, evaluations = idle(lab, args.idle, "bench-idle-bgp")
        print(
            f"idle {args.idle:g} s, bgp scenario (FRR polled every 10 s): {cpu:.3f}% of a "
            f"core, {evaluations:g} evaluations"
        )


if __name__ == "__main__":
    with terminate_as_interrupt():
        main()
