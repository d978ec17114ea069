"""Benchmark: meshpath's collector vs ``ip -j route show table all`` + ``json.loads``.

Builds one namespace (``mpb-<pid>``) and grows it to each size in ``--sizes`` (routes spread
over tables main, 65743, 100 and 200, via a veth inside the namespace), then at each size
runs, each in a fresh subprocess and in the same run:

  collector   ``collect_snapshot(netns=NS)`` (the whole snapshot: links, addresses, routes
              of every table v4+v6, rules, sysctls, nft, FRR/WARP probes)
  ip -j       ``ip -n NS -j route show table all`` read by Python and ``json.loads``-ed
  pyroute2    ``IPRoute().get_routes(table=0)`` inside NS, only when pyroute2 is importable

Wall time is measured around each subprocess; peak memory is the subprocess's own peak RSS
(getrusage) plus the largest peak RSS of the programs it ran (``ip``, ``nft``; VmHWM sampled
from /proc while they run), so the baseline counts the ``ip`` process too. The namespace
is removed on exit, also on Ctrl-C.

    python bench/collect.py --sizes 10000,100000,1000000
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

TABLES = ("main", "65743", "100", "200")
BATCH_CHUNK = 200_000  # lines per `ip -batch` call, to keep the generated input modest

# Each probe runs in a fresh interpreter and prints one JSON line: count and its own peak RSS.
_REPORT = (
    "import json, resource\n"
    "me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
    "print(json.dumps({'count': n, 'self_kib': me}))\n"
)
PROBES = {
    "collector": (
        "import sys\n"
        "from meshpath.collect import collect_snapshot\n"
        "n = len(collect_snapshot(netns=sys.argv[1]).routes)\n"
    ),
    "ip -j + json.loads": (
        "import json, subprocess, sys\n"
        "argv = ['ip', '-n', sys.argv[1], '-j', 'route', 'show', 'table', 'all']\n"
        "out = subprocess.run(argv, capture_output=True, check=True).stdout\n"
        "n = len(json.loads(out))\n"
    ),
    "pyroute2": (
        "import sys\n"
        "from pyroute2 import NetNS\n"
        "with NetNS(sys.argv[1]) as ipr:\n"
        "    n = sum(1 for _ in ipr.get_routes(table=0, family=0))\n"
    ),
}


@dataclass(frozen=True)
class Measure:
    probe: str
    seconds: float
    peak_mib: float
    count: int


def sh(argv: list[str], stdin: str | None = None) -> None:
    subprocess.run(argv, input=stdin, text=True, check=True, capture_output=True)


@contextmanager
def namespace(name: str) -> Iterator[str]:
    """A namespace with a veth pair (v0 10.255.0.1/24 <-> v1) inside it, always removed."""

    def interrupted(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupted)
    # A shell starts background jobs with SIGINT ignored; take it back so that an
    # interrupt always reaches the finally below.
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    sh(["ip", "netns", "add", name])
    try:
        setup = (
            "link set lo up\nlink add v0 type veth peer name v1\nlink set v0 up\n"
            "link set v1 up\naddr add 10.255.0.1/24 dev v0\n"
            "addr add 2001:db8:ff::1/64 dev v0 nodad\n"
        )
        sh(["ip", "-n", name, "-batch", "-"], setup)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)


def route_lines(start: int, stop: int) -> Iterator[str]:
    """Distinct /24s from 16.0.0.0 up (1M of them fit in 16.0.0.0/4), spread over TABLES."""
    base = 16 << 24
    for i in range(start, stop):
        net = base + (i << 8)
        dst = f"{net >> 24}.{(net >> 16) & 255}.{(net >> 8) & 255}.0/24"
        yield f"route add {dst} via 10.255.0.2 dev v0 table {TABLES[i % len(TABLES)]}\n"


def grow(ns: str, have: int, want: int) -> None:
    for chunk in range(have, want, BATCH_CHUNK):
        text = "".join(route_lines(chunk, min(chunk + BATCH_CHUNK, want)))
        sh(["ip", "-n", ns, "-batch", "-"], text)


def has_pyroute2() -> bool:
    probe = [sys.executable, "-c", "import pyroute2"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


def _descendants(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids = [int(k) for k in f.read().split()]
    except OSError:
        return []
    return [k for c in kids for k in (c, *_descendants(c))]


def _exec_hwm_kib(pid: int) -> int:
    """VmHWM of ``pid`` once it has exec'd a program; 0 while it is still a Python fork
    (between fork and exec it shows the parent's memory, which is not the program's)."""
    try:
        if os.readlink(f"/proc/{pid}/exe") == os.path.realpath(sys.executable):
            return 0
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def measure(probe: str, ns: str) -> Measure:
    """Run one probe; peak = its own peak RSS (getrusage in the probe) + the largest peak of
    the programs it ran (``ip``, ``nft``), sampled from /proc by this process so that the
    sampling costs the probe nothing. getrusage(RUSAGE_CHILDREN) cannot be used: a child
    forked from a big Python process keeps that process's high-water mark through exec."""
    code = PROBES[probe] + _REPORT
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", code, ns],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    children: dict[int, int] = {}
    while proc.poll() is None:
        for pid in _descendants(proc.pid):
            children[pid] = max(children.get(pid, 0), _exec_hwm_kib(pid))
        time.sleep(0.002)
    seconds = time.perf_counter() - start
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"{probe} failed: {err.strip().splitlines()[-1:]}")
    report = json.loads(out.strip().splitlines()[-1])
    peak = (report["self_kib"] + max(children.values(), default=0)) / 1024
    return Measure(probe, seconds, peak, report["count"])


def table_rows(size: int, results: list[Measure]) -> list[str]:
    base = next(m for m in results if m.probe == "ip -j + json.loads")
    rows = []
    for m in results:
        rows.append(
            f"| {size:>9,} | {m.probe:<20} | {m.count:>9,} | {m.seconds:7.2f} | "
            f"{m.peak_mib:8.1f} | {m.seconds / base.seconds:5.2f}x | "
            f"{m.peak_mib / base.peak_mib:5.2f}x |"
        )
    return rows


HEADER = (
    "|    routes | probe                |     found |  time s | peak MiB |  time |   mem |\n"
    "|----------:|:---------------------|----------:|--------:|---------:|------:|------:|"
)


def run(sizes: list[int], repeat: int) -> None:
    probes = ["collector", "ip -j + json.loads"] + (["pyroute2"] if has_pyroute2() else [])
    print(f"probes: {', '.join(probes)}; kernel {os.uname().release}; best of {repeat}")
    print(HEADER, flush=True)
    have = 0
    with namespace(f"mpb-{os.getpid()}") as ns:
        for size in sorted(sizes):
            t0 = time.perf_counter()
            grow(ns, have, size)
            have = size
            print(f"<!-- {size:,} routes installed in {time.perf_counter() - t0:.1f} s -->")
            best = [min((measure(p, ns) for _ in range(repeat)), key=lambda m: m.seconds)
                    for p in probes]  # fmt: skip
            print("\n".join(table_rows(size, best)), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000",
                        help="comma-separated route counts (default: %(default)s)")  # fmt: skip
    parser.add_argument("--repeat", type=int, default=1, help="best of N runs per probe")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/collect.py needs root (it creates a network namespace)", file=sys.stderr)
        return 3
    try:
        run([int(s) for s in args.sizes.split(",") if s], max(1, args.repeat))
    except KeyboardInterrupt:
        print("interrupted; namespace removed", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
