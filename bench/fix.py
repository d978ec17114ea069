"""Benchmark `meshpath fix --mode nat`: plan + apply + rollback vs the bare commands.

The floor is what a person types (the field report's way, scoped): `nft -f FILE` and
`ip route replace ...`, then `nft delete table` and `ip route del`, each through
`ip netns exec` like meshpath's Runner. meshpath adds a snapshot, a plan, validation
(`nft -c`), probes before/after each step, a journal written twice per step and a lock.
One namespace `mpb-fix-<pid>` with a veth `eth0` and a tun `CloudflareWARP`, removed at the
end (also on Ctrl-C). Needs root. Usage: python bench/fix.py [--reps N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from meshpath.apply import Applier
from meshpath.collect import collect_snapshot
from meshpath.config import Settings
from meshpath.fix import FixOptions, plan_fix
from meshpath.lab.core import terminate_as_interrupt
from meshpath.render.nft import Masquerade, render_replace
from meshpath.runner import SubprocessRunner

NS = f"mpb-fix-{os.getpid()}"
ROUTE = ["ip", "-4", "route", "replace", "100.64.0.0/12", "dev", "CloudflareWARP"]
ROUTE += ["proto", "232", "metric", "64", "table", "main"]


def sh(*argv: str) -> None:
    subprocess.run(["ip", "netns", "exec", NS, *argv], check=True, capture_output=True)


def build() -> None:
    subprocess.run(["ip", "netns", "add", NS], check=True)
    sh("ip", "link", "add", "eth0", "type", "veth", "peer", "name", "peer0")
    sh("ip", "tuntap", "add", "CloudflareWARP", "mode", "tun")
    sh("ip", "addr", "add", "10.0.1.2/24", "dev", "eth0")
    for dev in ("lo", "eth0", "peer0", "CloudflareWARP"):
        sh("ip", "link", "set", dev, "up")
    sh("ip", "route", "add", "default", "via", "10.0.1.1", "dev", "eth0")


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bare_round(tmp: Path) -> dict[str, float]:
    ruleset = tmp / "nat.nft"
    ruleset.write_text(render_replace([Masquerade("eth0", "100.64.0.0/12")]))
    apply = timed(lambda: (sh("nft", "-f", str(ruleset)), sh(*ROUTE)))
    undo = ROUTE.copy()
    undo[3] = "del"
    rollback = timed(lambda: (sh("nft", "delete", "table", "inet", "meshpath"), sh(*undo)))
    return {"bare_apply": apply, "bare_rollback": rollback}


def meshpath_round(tmp: Path) -> dict[str, float]:
    applier = Applier(SubprocessRunner(netns=NS), tmp / "state", root=tmp, netns=NS)

    def plan() -> object:
        return plan_fix(collect_snapshot(netns=NS), Settings(), "nat", FixOptions())

    out = {"plan": timed(plan)}
    p = plan()
    out["apply"] = timed(lambda: applier.apply(p))  # type: ignore[arg-type]
    out["noop"] = timed(lambda: applier.apply(plan()))  # type: ignore[arg-type]
    out["rollback"] = timed(applier.rollback)
    return out


def _measure(reps: int, rounds: list[dict[str, float]]) -> None:
    try:
        build()
        for _ in range(reps):
            with tempfile.TemporaryDirectory(prefix="mpb-fix-") as tmp:
                rounds.append({**bare_round(Path(tmp)), **meshpath_round(Path(tmp))})
    finally:
        subprocess.run(["ip", "netns", "del", NS], capture_output=True, check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    rounds: list[dict[str, float]] = []
    # SIGTERM and SIGINT (ignored in a background job otherwise) must reach the finally.
    with terminate_as_interrupt():
        _measure(args.reps, rounds)
    med = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    print(f"fix bench (nat mode), {args.reps} repetitions, medians")
    print(f"  bare nft -f + ip route replace:         {med['bare_apply'] * 1000:7.1f} ms")
    print(f"  meshpath plan (snapshot + plan_fix):     {med['plan'] * 1000:7.1f} ms")
    ratio = (med["plan"] + med["apply"]) / med["bare_apply"]
    print(f"  meshpath apply (validate, journal):      {med['apply'] * 1000:7.1f} ms")
    print(f"  meshpath plan + apply vs bare:           {ratio:7.1f}x")
    print(f"  meshpath second run (nothing to do):     {med['noop'] * 1000:7.1f} ms")
    print(f"  bare nft delete + ip route del:          {med['bare_rollback'] * 1000:7.1f} ms")
    r = med["rollback"] / med["bare_rollback"]
    print(f"  meshpath rollback:                       {med['rollback'] * 1000:7.1f} ms ({r:.1f}x)")


if __name__ == "__main__":
    main()
