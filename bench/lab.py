"""Benchmark the lab: bring-up, BGP convergence and teardown, timed separately.

Each phase is compared with the bare kernel floor measured in the same run: creating (or
deleting) the same number of empty namespaces with `ip netns add/del`. BGP convergence is
the bgp fix step (FRR start on the connector -> both /12s in the router's kernel).
Also times `lab run all` once with ``--jobs 1`` and once with the default jobs, per
scenario (its own set-up, fix, drill and call) and in total (wall clock), with the load
average. Needs root. Usage: python bench/lab.py [--reps N] [--all-only] [--jobs 1,2,3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import time
from collections.abc import Callable

from meshpath.lab import FIXES, Lab, ScenarioResult, run_many
from meshpath.lab.core import terminate_as_interrupt
from meshpath.lab.parallel import default_jobs
from meshpath.lab.scenarios import ALL_NAMES
from meshpath.lab.topology import nodes_for


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bare_namespaces(n: int, verb: str) -> float:
    """Time `ip netns VERB` on ``n`` empty namespaces (prefix mpb-, always removed)."""
    names = [f"mpb-lab-{os.getpid()}-{i}" for i in range(n)]
    try:
        if verb == "del":
            for name in names:
                subprocess.run(["ip", "netns", "add", name], check=True)
        return timed(lambda: [subprocess.run(["ip", "netns", verb, x], check=True) for x in names])
    finally:
        for name in names:
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


def one_round() -> dict[str, float]:
    n = len(nodes_for(False))
    out = {"floor_add": bare_namespaces(n, "add"), "floor_del": bare_namespaces(n, "del")}
    lab = Lab.create()
    try:
        out["bring_up"] = timed(lambda: lab.setup("bgp"))
        out["bgp_convergence"] = timed(lambda: FIXES["bgp"](lab))
    finally:
        out["teardown"] = timed(lab.down)
    return out


def run_all(jobs: int) -> None:
    """`lab run all` with ``jobs`` workers: wall clock, and each scenario's own seconds."""
    load = os.getloadavg()[0]
    results: list[ScenarioResult] = []
    total = timed(lambda: results.extend(run_many(list(ALL_NAMES), jobs=jobs)))
    each = ", ".join(f"{r.name} {sum(r.timings.values()):.1f}" for r in results)
    passed = sum(r.passed for r in results)
    print(
        f"  lab run all --jobs {jobs}: {total:.1f} s wall ({passed}/{len(results)} passed; "
        f"load {load:.2f} -> {os.getloadavg()[0]:.2f})"
    )
    print(f"    per scenario (s): {each}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--all-only", action="store_true", help="only the lab run all timings")
    p.add_argument("--jobs", default=None, help="worker counts to time, e.g. 1,2,3")
    args = p.parse_args()
    if not args.all_only:
        phases(args.reps)
    print(f"lab run all ({len(ALL_NAMES)} scenarios), one run each (budget 30 s)")
    counts = (1, default_jobs(len(ALL_NAMES)))
    for jobs in [int(j) for j in args.jobs.split(",")] if args.jobs else counts:
        run_all(jobs)


def phases(reps: int) -> None:
    rounds = [one_round() for _ in range(reps)]
    med = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    print(f"lab bench, {reps} repetitions, medians (min-max)")
    for key in ("bring_up", "bgp_convergence", "teardown", "floor_add", "floor_del"):
        vals = [r[key] for r in rounds]
        print(f"  {key:16} {med[key]:6.2f} s  ({min(vals):.2f}-{max(vals):.2f})")
    up_ratio = med["bring_up"] / med["floor_add"]
    down_ratio = med["teardown"] / med["floor_del"]
    print(f"  bring-up / bare `ip netns add` of the same namespaces: {up_ratio:.1f}x")
    print(f"  teardown / bare `ip netns del` of the same namespaces: {down_ratio:.1f}x")


if __name__ == "__main__":
    # Labs tear down in their context managers; SIGTERM/SIGINT must become an exception.
    with terminate_as_interrupt():
        main()
