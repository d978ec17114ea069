"""Benchmark: the simulator's IPv6 FIB against the kernel answering `ip -6 route get` in bulk.

    python bench/sim6.py [--kernel-routes 100000] [--sim-routes 1000000] [--queries 100000]

The IPv6 counterpart of bench/sim.py, in the same shape:

1. Kernel side (root): a namespace ``mpb-sim6-<pid>`` shaped like a dual-stack WARP
   connector on IPv6 (the ``ip -6`` rules 32764/32765, table 65743 as the lab's WARP
   installs it for the default profile, a ULA LAN on eth0, the default route via the LAN
   router) plus ``--kernel-routes`` random IPv6 routes in main (one ``ip -6 -batch``), then
   ``--queries`` `route get DST from SRC iif CloudflareWARP` lines (sources in Cloudflare's
   IPv6 source range) answered by one ``ip -6 -batch`` file per round. The simulator
   answers the same queries from the snapshot collected from that namespace (full
   semantics, steps recorded or not); a sample is compared like the v6 differential test.
2. Simulator at ``--sim-routes`` (1M): Fib6 build time, peak memory (tracemalloc), lookups/s.
"""

from __future__ import annotations

import ipaddress
import os
import random
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.sim import batch  # noqa: E402
from bench.sim import main as bench_main  # noqa: E402
from tests.builders import broken_connector  # noqa: E402
from tests.differential.gen import parse_batch  # noqa: E402
from tests.differential.test_sim_kernel6 import (  # noqa: E402
    packet_of6,
    settled_snapshot,
    sim_answers6,
)

from meshpath.lab import warp  # noqa: E402
from meshpath.sim import Fib, FlowKey  # noqa: E402
from meshpath.sim.fib6 import Fib6  # noqa: E402
from meshpath.sim.route import route_packet  # noqa: E402
from meshpath.state import Route, Snapshot  # noqa: E402

ROUNDS = 3  # kernel/simulator alternations per workload


def compiled(snap: Snapshot) -> Fib:
    """A Fib with its IPv6 part built (the Fib builds it on the first IPv6 question and
    owns it; no module cache keeps one between Fibs)."""
    fib = Fib(snap)
    assert fib.v6 is not None
    return fib


SOURCE6 = 0x2606_4700_0CF1_5000 << 64  # 2606:4700:cf1:5000::/64, the IPv6 source range

SETUP = [
    "link add eth0 type veth peer name lan0",
    "tuntap add dev CloudflareWARP mode tun",
    "addr add fd00:1::2/64 dev eth0 nodad",
    "addr add 2606:4700:cf1:1000::5/128 dev CloudflareWARP nodad",
    "link set eth0 up",
    "link set lan0 up",
    "link set CloudflareWARP up",
    "route add ::/0 via fd00:1::1 dev eth0",
    *(f"route add {n} dev CloudflareWARP table 65743" for n in warp.tunnel_prefixes6()),
    *warp.rule_lines(6),
]


def _v6(value: int) -> str:
    return str(ipaddress.IPv6Address(value))


def random_prefixes(n: int, rng: random.Random) -> list[str]:
    """n distinct prefixes shaped like an IPv6 Internet table (mostly /48, some /32-/44,
    a few /64) inside 2000::/3."""
    lengths = [48] * 50 + [32] * 10 + [36] * 5 + [40] * 10 + [44] * 15 + [64] * 10
    seen: set[tuple[int, int]] = set()
    out = []
    while len(out) < n:
        plen = rng.choice(lengths)
        value = (rng.getrandbits(125) | (1 << 125)) & ((1 << 128) - (1 << (128 - plen)))
        if (value, plen) in seen:
            continue
        seen.add((value, plen))
        out.append(f"{_v6(value)}/{plen}")
    return out


def route_lines(prefixes: list[str]) -> list[str]:
    return [f"route add {p} via fd00:1::{3 + i % 200:x} dev eth0" for i, p in enumerate(prefixes)]


def query_lines(prefixes: list[str], n: int, rng: random.Random, spread: bool) -> list[str]:
    """``route get`` lines: 70% into a random prefix of the table, 30% anywhere in
    2000::/3; sources in the IPv6 source range (``spread``: all distinct, else 4,096)."""
    out = []
    for _ in range(n):
        if rng.random() < 0.7:
            net, _, plen = prefixes[rng.randrange(len(prefixes))].partition("/")
            base = int(ipaddress.IPv6Address(net))
            dst = base | rng.getrandbits(128 - int(plen))
        else:
            dst = rng.getrandbits(125) | (1 << 125)
        host = rng.getrandbits(64) if spread else rng.randrange(1, 4097)
        out.append(f"route get {_v6(dst)} from {_v6(SOURCE6 | host)} iif CloudflareWARP")
    return out


def sim_rate(fib: Fib, packets: list[FlowKey], trace: bool = True) -> float:
    start = time.perf_counter()
    for packet in packets:
        route_packet(fib, packet, trace=trace)
    return len(packets) / (time.perf_counter() - start)


def kernel_side(n_routes: int, n_queries: int, rng: random.Random) -> None:
    netns = f"mpb-sim6-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        sysctl = ["ip", "netns", "exec", netns, "sysctl", "-qw"]
        subprocess.run([*sysctl, "net.ipv6.conf.all.forwarding=1"], check=True)
        batch(netns, ["link set lo up", *SETUP], family=6)
        prefixes = random_prefixes(n_routes, rng)
        took = batch(netns, route_lines(prefixes), family=6)[0]
        print(
            f"kernel: installed {n_routes} IPv6 routes in {took:.1f} s ({n_routes / took:,.0f}/s)"
        )
        snap = settled_snapshot(netns)
        start = time.perf_counter()
        Fib6.from_snapshot(snap)
        print(f"sim: Fib6 build {time.perf_counter() - start:.2f} s (collected snapshot)")
        fib = compiled(snap)
        for spread in (False, True):
            lines = query_lines(prefixes, n_queries, rng, spread)
            _compare(netns, snap, lines)
        lines = query_lines(prefixes, 2000, rng, False)
        print(f"sample agreement: {_agreement(netns, fib, lines)}")
    finally:
        subprocess.run(["ip", "netns", "del", netns], check=False)


def _compare(netns: str, snap: Snapshot, lines: list[str]) -> None:
    """Kernel, then the simulator with steps and without, alternated ``ROUNDS`` times (the
    shared machine's speed drifts); the median ratio is kept. Each round gets a fresh Fib
    (bench/sim.py's fresh memos) whose Fib6 is compiled before the clock starts."""
    packets = [packet_of6(line) for line in lines]
    rates: list[tuple[float, float, float]] = []
    for _ in range(ROUNDS):
        k_rate = len(lines) / batch(netns, lines, family=6)[0]
        s_rate = sim_rate(compiled(snap), packets)
        q_rate = sim_rate(compiled(snap), packets, trace=False)
        rates.append((k_rate, s_rate, q_rate))
    k_rate, s_rate, q_rate = (statistics.median(r[i] for r in rates) for i in range(3))
    steps = statistics.median(s / k for k, s, _ in rates)
    quiet = statistics.median(q / k for k, _, q in rates)
    print(f"{len({p.src for p in packets}):,} distinct sources, median of {ROUNDS}: "
          f"kernel `ip -6 -batch` {k_rate:,.0f} lookups/s; sim {s_rate:,.0f}/s with steps -> "
          f"{steps:.2f}x, {q_rate:,.0f}/s trace=False -> {quiet:.2f}x; per-round ratios "
          + ", ".join(f"{s / k:.2f}/{q / k:.2f}" for k, s, q in rates))  # fmt: skip


def _agreement(netns: str, fib: Fib, lines: list[str]) -> str:
    """Kernel vs simulator on a sample, compared like the v6 differential test does."""
    _, out, err = batch(netns, lines, json_out=True, family=6)
    kernel = parse_batch(out, err, len(lines))
    same = sum(
        1 for line, want in zip(lines, kernel, strict=True) if want in sim_answers6(fib, line)
    )
    return f"{same}/{len(lines)}"


def sim_side(n_routes: int, n_queries: int, rng: random.Random) -> None:
    """A synthetic connector snapshot (the unit tests' broken connector) with ``n_routes``
    IPv6 routes via the LAN in main."""
    base = broken_connector()
    prefixes = random_prefixes(n_routes, rng)
    routes = tuple(
        Route(table=254, family=6, dst=p, gateway=f"fd00:1::{3 + i % 200:x}", dev="eth0")
        for i, p in enumerate(prefixes)
    )
    snap: Snapshot = msgspec.structs.replace(base, routes=base.routes + routes)
    start, cpu = time.perf_counter(), time.process_time()
    Fib6(snap)
    build, build_cpu = time.perf_counter() - start, time.process_time() - cpu
    tracemalloc.start()
    Fib6.from_snapshot(snap)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    fib = compiled(snap)
    packets = [packet_of6(line) for line in query_lines(prefixes, n_queries, rng, False)]
    rate, quiet = sim_rate(fib, packets), sim_rate(compiled(snap), packets, trace=False)
    print(f"sim {n_routes:,} IPv6 routes: build {build:.2f} s ({build_cpu:.2f} s CPU), "
          f"peak {peak / 2**20:.0f} MiB; {rate:,.0f} lookups/s with steps, "
          f"{quiet:,.0f} without")  # fmt: skip


if __name__ == "__main__":
    bench_main(kernel_side, sim_side, __doc__)
