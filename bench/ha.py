"""Benchmark failover between two connectors (the ha lab): failed calls and recovery time.

One ``ha`` lab: conn fixed with ``meshpath fix --mode bgp --role primary``, connb with
``--role standby``. A Worker call every 100 ms (each in its own thread, the handshake
timeout 2.5 s) while the primary fails in one of three ways (``meshpath.lab.failover``):
its WARP session ends (``tunnel``), its bgpd is SIGKILLed (``bgpd``), its LAN link goes
down together with the session that runs over it (``link``). ``--window`` seconds later
the primary is restored and the calls go on for ``--window`` seconds more (failback).
All of it without BFD, then again after ``fix --bfd`` on both connectors (the router runs
bfdd with a peer for each).

Needs root. Usage: python bench/ha.py [--repeat 1] [--window 6] [--events tunnel,bgpd,link]
"""

from __future__ import annotations

import argparse
import os
import statistics
from collections.abc import Sequence
from datetime import UTC, datetime

from meshpath.lab import Lab, failover, get_scenario, ha
from meshpath.lab.core import terminate_as_interrupt
from meshpath.lab.failover import DrillFigures, PhaseFigures


def seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.2f} s"


def phase_cell(runs: Sequence[PhaseFigures]) -> tuple[str, str]:
    """'failed (delayed) of calls' and the median recovery (the worst in brackets)."""
    failed = "/".join(f"{r.failed} ({r.delayed}) of {r.calls}" for r in runs)
    known = [r.recovery for r in runs if r.recovery is not None]
    if len(known) < len(runs):
        return failed, "never"
    if len(known) == 1:
        return failed, seconds(known[0])
    return failed, f"{statistics.median(known):.2f} s (worst {max(known):.2f} s)"


def row(runs: Sequence[DrillFigures]) -> str:
    first = runs[0]
    fo, fo_rec = phase_cell([r.failover for r in runs])
    fb, fb_rec = phase_cell([r.failback for r in runs])
    switch = "/".join(seconds(r.router_switch) for r in runs)
    via = "yes" if all(r.via_standby for r in runs) else "no"
    bfd = "yes" if first.bfd else "no"
    return f"| {first.event} | {bfd} | {fo} | {fo_rec} | {switch} | {via} | {fb} | {fb_rec} |"


HEADER = (
    "| event | BFD | failover: failed (delayed) of calls | failover: path back after "
    "| router via connb after | calls via connb | failback: failed (delayed) of calls "
    "| failback: path back after |\n|---|---|---:|---:|---:|---|---:|---:|"
)


def run(events: Sequence[str], repeat: int, window: float) -> list[list[DrillFigures]]:
    rows: list[list[DrillFigures]] = []
    with Lab.create() as lab:
        lab.setup(get_scenario("ha"))
        ha.start_replica(lab)
        for bfd in (False, True):
            failover.fix_all(lab, bfd)
            for event in events:
                runs = [failover.drill(lab, event, bfd, window) for _ in range(repeat)]
                print(row(runs), flush=True)
                rows.append(runs)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--window", type=float, default=6.0)
    p.add_argument("--events", default=",".join(failover.EVENTS))
    args = p.parse_args()
    events = [e for e in args.events.split(",") if e]
    unknown = set(events) - set(failover.EVENTS)
    if unknown:
        p.error(f"unknown events {sorted(unknown)}; expected some of {failover.EVENTS}")
    load = os.getloadavg()
    print(f"# {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load average {load[0]:.2f}, "
          f"window {args.window:.0f} s, repeat {args.repeat}")  # fmt: skip
    print(HEADER)
    with terminate_as_interrupt():
        run(events, args.repeat, args.window)
    print(f"# load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
