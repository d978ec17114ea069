"""Benchmark: `meshpath doctor --netns` vs `ip -j route show table all` on the same namespace.

Builds one namespace (``mpb-doc-<pid>``) shaped like a connector — a ``CloudflareWARP``
tun, a LAN veth with a default route, WARP's ``not fwmark 0x100cf lookup 65743`` rule — and
grows table 65743 to each size in ``--sizes`` (routes via the tun). At each size it runs,
in fresh subprocesses and in the same run:

  doctor        ``meshpath --json doctor --netns NS --target 10.255.0.50:3000`` (collect,
                simulate both directions, ask the kernel, every check)
  ip -j         ``ip -n NS -j route show table all`` to /dev/null (the dump alone)
  ip -j + json  the same dump parsed by ``json.loads`` in Python

and prints wall times and ratios. Targets: doctor <= 2x the dump at 1M routes, and
under 1 s on a normal connector (a few thousand routes). The namespace is removed on
exit, also on Ctrl-C.

    python bench/doctor.py --sizes 3000,1000000 --repeat 3
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

# bench/collect.py owns the namespace plumbing (signals, cleanup); reuse it as a module.
sys.path.insert(0, str(Path(__file__).parent))
import collect as bench_collect  # noqa: E402

CHUNK = 200_000
CONNECTOR = (
    "tuntap add dev CloudflareWARP mode tun\n"
    "addr add 100.96.0.5/32 dev CloudflareWARP\n"
    "link set CloudflareWARP mtu 1280 up\n"
    "route add default via 10.255.0.2 dev v0\n"
    "rule add not fwmark 0x100cf lookup 65743 pref 32765\n"
)


def warp_routes(start: int, stop: int) -> Iterator[str]:
    """Distinct /24s from 16.0.0.0 up in table 65743 via the tunnel."""
    for i in range(start, stop):
        net = (16 << 24) + (i << 8)
        dst = f"{net >> 24}.{(net >> 16) & 255}.{(net >> 8) & 255}.0/24"
        yield f"route add {dst} dev CloudflareWARP table 65743\n"


def grow(ns: str, have: int, want: int) -> None:
    for chunk in range(have, want, CHUNK):
        text = "".join(warp_routes(chunk, min(chunk + CHUNK, want)))
        bench_collect.sh(["ip", "-n", ns, "-batch", "-"], text)


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 1):  # doctor exits 1 when the path is broken
        raise SystemExit(f"{argv[:4]} failed: {done.stderr.strip()[-300:]}")
    return seconds


def probes(ns: str) -> dict[str, Callable[[], float]]:
    parse = (
        "import json,subprocess,sys; json.loads(subprocess.run(sys.argv[1:], "
        "capture_output=True, check=True).stdout)"
    )
    dump = ["ip", "-n", ns, "-j", "route", "show", "table", "all"]
    doctor = [
        sys.executable,
        "-m",
        "meshpath",
        "--json",
        "doctor",
        "--netns",
        ns,
        "--target",
        "10.255.0.50:3000",
    ]
    return {
        "doctor": lambda: timed(doctor),
        "ip -j": lambda: timed(dump),
        "ip -j + json": lambda: timed([sys.executable, "-c", parse, *dump]),
    }


def run(sizes: list[int], repeat: int) -> None:
    with bench_collect.namespace(f"mpb-doc-{os.getpid()}") as ns:
        bench_collect.sh(["ip", "-n", ns, "-batch", "-"], CONNECTOR)
        have = 0
        print(f"{'routes':>9} {'probe':>13} {'best s':>8} {'vs ip -j':>9}")
        for size in sizes:
            grow(ns, have, size)
            have = size
            best = {name: min(fn() for _ in range(repeat)) for name, fn in probes(ns).items()}
            for name, seconds in best.items():
                ratio = seconds / best["ip -j"]
                print(f"{size:>9} {name:>13} {seconds:>8.2f} {ratio:>8.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="3000,1000000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    run([int(s) for s in args.sizes.split(",")], args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
