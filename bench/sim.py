"""Benchmark: the simulator's FIB against the kernel answering `ip route get` in bulk.

    python bench/sim.py [--kernel-routes 100000] [--sim-routes 1000000] [--queries 100000]

1. Kernel side (root): a namespace ``mpb-sim-<pid>`` with the same few rules and tables
   as a WARP connector plus ``--kernel-routes`` random routes in main (installed with one
   ``ip -batch``), then ``--queries`` `route get DST from SRC iif DEV` lines answered by one
   ``ip -batch`` file. The snapshot is collected from that namespace and the simulator
   answers the same queries (full semantics: rules, suppress, throw, forwarding, rp_filter,
   steps); a sample of answers is compared.
2. Simulator at ``--sim-routes`` (1M): Fib build time, peak memory of the build
   (tracemalloc), and lookups/s on the same kind of queries.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.builders import broken_connector  # noqa: E402
from tests.differential.gen import parse_batch  # noqa: E402
from tests.differential.test_sim_kernel import sim_answer  # noqa: E402

from meshpath.collect import collect_snapshot  # noqa: E402
from meshpath.sim import Fib, FlowKey  # noqa: E402
from meshpath.sim.route import route_many  # noqa: E402
from meshpath.state import Route, Snapshot  # noqa: E402

ROUNDS = 3  # kernel/simulator alternations per workload

SETUP = [
    "link add eth0 type veth peer name lan0",
    "tuntap add dev CloudflareWARP mode tun",
    "addr add 10.0.1.2/24 dev eth0",
    "addr add 100.96.0.5/32 dev CloudflareWARP",
    "link set eth0 up",
    "link set lan0 up",
    "link set CloudflareWARP up",
    "route add default via 10.0.1.1 dev eth0",
    "route add 100.96.0.0/12 dev CloudflareWARP",
    "route add 0.0.0.0/1 dev CloudflareWARP table 65743",
    "route add 128.0.0.0/1 dev CloudflareWARP table 65743",
    "route add throw 10.0.0.0/8 table 65743",
    "route add throw 100.64.0.0/10 table 65743",
    "rule add pref 32764 lookup main suppress_prefixlength 0",
    "rule add pref 32765 not fwmark 0x100cf lookup 65743",
]


def random_prefixes(n: int, rng: random.Random) -> list[str]:
    """n distinct prefixes shaped like an Internet table (mostly /24, some /16-/23, /32s)."""
    lengths = [24] * 60 + [22] * 8 + [23] * 8 + [20] * 6 + [16] * 4 + [32] * 10 + [28] * 4
    seen: set[tuple[int, int]] = set()
    out = []
    while len(out) < n:
        plen = rng.choice(lengths)
        value = rng.randrange(0x0B000000, 0xDF000000) & ((1 << 32) - (1 << (32 - plen)))
        if (value, plen) in seen:
            continue
        seen.add((value, plen))
        out.append(f"{value >> 24}.{(value >> 16) & 255}.{(value >> 8) & 255}.{value & 255}/{plen}")
    return out


def route_lines(prefixes: list[str]) -> list[str]:
    return [f"route add {p} via 10.0.1.{3 + i % 200} dev eth0" for i, p in enumerate(prefixes)]


def queries(prefixes: list[str], n: int, rng: random.Random) -> list[FlowKey]:
    out = []
    for _ in range(n):
        if rng.random() < 0.7:
            base = prefixes[rng.randrange(len(prefixes))].split("/")[0].split(".")
            dst = ".".join((*base[:3], str(rng.randrange(256))))
        else:
            dst = ".".join(str(rng.randrange(1, 224)) for _ in range(1)) + ".1.2.3"
        src = f"100.64.{rng.randrange(16)}.{rng.randrange(1, 255)}"
        out.append(FlowKey(dst=dst, src=src, iif="CloudflareWARP"))
    return out


def batch(
    netns: str, lines: list[str], json_out: bool = False, family: int = 4
) -> tuple[float, str, str]:
    """One `ip [-6] -force -batch` run in ``netns``: seconds, stdout, stderr."""
    with tempfile.NamedTemporaryFile("w", suffix=".batch", delete=False) as fh:
        fh.write("\n".join(lines) + "\n")
    argv = ["ip", *(["-6"] if family == 6 else []), "-n", netns, *(["-j"] if json_out else [])]
    start = time.perf_counter()
    proc = subprocess.run([*argv, "-force", "-batch", fh.name], capture_output=True, text=True,
                          check=False)  # fmt: skip
    elapsed = time.perf_counter() - start
    Path(fh.name).unlink()
    return elapsed, proc.stdout, proc.stderr


def children_cpu() -> float:
    """CPU seconds (user + system) of the finished child processes: the kernel side's
    `ip -batch` with its lookups (done in the kernel on behalf of that process)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def kernel_rates(netns: str, lines: list[str]) -> tuple[float, float]:
    """Lookups/s of one `ip -batch` round: by wall clock, and by the CPU time it took."""
    cpu = children_cpu()
    wall = batch(netns, lines)[0]
    return len(lines) / wall, len(lines) / (children_cpu() - cpu)


def sim_rate(fib: Fib, packets: list[FlowKey], trace: bool = True) -> float:
    return sim_rates(fib, packets, trace)[0]


def sim_rates(fib: Fib, packets: list[FlowKey], trace: bool = True) -> tuple[float, float]:
    """Lookups/s by wall clock and by this process's CPU time (the bulk API)."""
    start, cpu = time.perf_counter(), time.process_time()
    route_many(fib, packets, trace=trace)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return len(packets) / wall, len(packets) / cpu


def kernel_side(n_routes: int, n_queries: int, rng: random.Random) -> None:
    netns = f"mpb-sim-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        batch(netns, ["link set lo up", *SETUP])
        subprocess.run(["ip", "netns", "exec", netns, "sysctl", "-qw",
                        "net.ipv4.conf.all.forwarding=1"], check=True)  # fmt: skip
        prefixes = random_prefixes(n_routes, rng)
        took = batch(netns, route_lines(prefixes))[0]
        print(f"kernel: installed {n_routes} routes in {took:.1f} s ({n_routes / took:,.0f}/s)")
        packets = queries(prefixes, n_queries, rng)
        snap = collect_snapshot(netns=netns)
        start = time.perf_counter()
        fib = Fib(snap)
        build = time.perf_counter() - start
        print(f"sim: Fib build {build:.2f} s (collected snapshot)")
        _compare(netns, snap, packets, "sources from 100.64.0.0/20")
        # The same destinations from (nearly) all-distinct sources: rp_filter's reverse
        # lookup then misses its memo almost every time (the simulator's worst case).
        spread = [msgspec.structs.replace(p, src=f"100.{64 + rng.randrange(64)}."
                  f"{rng.randrange(256)}.{rng.randrange(1, 255)}") for p in packets]  # fmt: skip
        _compare(netns, snap, spread, "distinct sources from 100.64.0.0/10")
        lines = [f"route get {p.dst} from {p.src} iif {p.iif}" for p in packets]
        print(f"sample agreement: {_agreement(netns, fib, lines[:2000])}")
    finally:
        subprocess.run(["ip", "netns", "del", netns], check=False)


def _compare(netns: str, snap: Snapshot, packets: list[FlowKey], what: str) -> None:
    """The kernel, then the simulator with steps and without (each on a fresh Fib: its
        memos start empty, as the kernel's batch starts), alternated ``ROUNDS`` times because
        the shared machine's speed drifts by ±30% within a minute; the median ratio is kept. Each
    rate is given by wall clock (the issue's measure) and by CPU time (the `ip` child's user +
    system time, this process's for the simulator), which other jobs on the cores disturb less."""
    lines = [f"route get {p.dst} from {p.src} iif {p.iif}" for p in packets]
    wall: list[tuple[float, float, float]] = []
    cpu: list[tuple[float, float, float]] = []
    for _ in range(ROUNDS):
        k_wall, k_cpu = kernel_rates(netns, lines)
        s_wall, s_cpu = sim_rates(Fib(snap), packets)
        q_wall, q_cpu = sim_rates(Fib(snap), packets, trace=False)
        wall.append((k_wall, s_wall, q_wall))
        cpu.append((k_cpu, s_cpu, q_cpu))
    sources = len({p.src for p in packets})
    for clock, rates in (("wall", wall), ("cpu", cpu)):
        k_rate, s_rate, q_rate = (statistics.median(r[i] for r in rates) for i in range(3))
        steps = statistics.median(s / k for k, s, _ in rates)
        quiet = statistics.median(q / k for k, _, q in rates)
        print(f"{what} ({sources:,} distinct sources), {clock}, median of {ROUNDS}: "
              f"kernel `ip -batch` {k_rate:,.0f} lookups/s; sim {s_rate:,.0f}/s with steps -> "
              f"{steps:.2f}x, {q_rate:,.0f}/s trace=False -> {quiet:.2f}x; per-round ratios "
              + ", ".join(f"{s / k:.2f}/{q / k:.2f}" for k, s, q in rates))  # fmt: skip


def _agreement(netns: str, fib: Fib, lines: list[str]) -> str:
    """Kernel vs simulator on a sample, compared like the differential test does."""
    argv = ["ip", "-n", netns, "-j", "-force", "-batch", "-"]
    proc = subprocess.run(argv, input="\n".join(lines) + "\n", capture_output=True, text=True)
    kernel = parse_batch(proc.stdout, proc.stderr, len(lines))
    same = sum(1 for line, want in zip(lines, kernel, strict=True) if sim_answer(fib, line) == want)
    return f"{same}/{len(lines)}"


def sim_side(n_routes: int, n_queries: int, rng: random.Random) -> None:
    base = broken_connector()
    prefixes = random_prefixes(n_routes, rng)
    routes = tuple(
        Route(table=254, family=4, dst=p, gateway=f"10.0.1.{3 + i % 200}", dev="eth0")
        for i, p in enumerate(prefixes)
    )
    snap: Snapshot = msgspec.structs.replace(base, routes=base.routes + routes)
    start, cpu = time.perf_counter(), time.process_time()
    fib = Fib(snap)
    build, build_cpu = time.perf_counter() - start, time.process_time() - cpu
    del fib
    tracemalloc.start()
    fib = Fib(snap)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    packets = queries(prefixes, n_queries, rng)
    rate, quiet = sim_rate(fib, packets), sim_rate(Fib(snap), packets, trace=False)
    print(f"sim {n_routes:,} routes: build {build:.2f} s ({build_cpu:.2f} s CPU), "
          f"peak {peak / 2**20:.0f} MiB (targets 3 s / 300 MiB); {rate:,.0f} lookups/s with "
          f"steps, {quiet:,.0f} without")  # fmt: skip


def main(
    kernel: Callable[[int, int, random.Random], None] | None = None,
    sim: Callable[[int, int, random.Random], None] | None = None,
    doc: str | None = None,
) -> None:
    """The driver both bench/sim.py and bench/sim6.py run, with their own two sides."""
    parser = argparse.ArgumentParser(description=(doc or __doc__ or "").splitlines()[0])
    parser.add_argument("--kernel-routes", type=int, default=100_000)
    parser.add_argument("--sim-routes", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    if os.geteuid() == 0:
        (kernel or kernel_side)(args.kernel_routes, args.queries, rng)
    else:
        print("not root: kernel side skipped")
    (sim or sim_side)(args.sim_routes, args.queries, rng)


if __name__ == "__main__":
    main()
