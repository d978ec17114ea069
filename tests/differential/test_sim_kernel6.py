"""The IPv6 simulator against the kernel's own `ip -6 route get`, on random states.

As test_sim_kernel.py, for IPv6: each state is built in a fresh namespace, collected with
the real collector, asked a few hundred random questions through one `ip -6 -j -force
-batch` file, and answered by the simulator from the snapshot. Error, kind, egress device,
gateway and table must agree on every query.

`ip -6 route get … iif DEV` is the lookup alone (inet6_rtm_getroute): the martian drops of
ip6_rcv_core and the gates of ip6_forward come later on a real packet. The simulator's
Decision keeps the lookup's answer (error/dev/gateway/table) and says the packet's fate in
its outcome, so the comparison below holds it to the kernel on the lookup and the unit
tests (tests/unit/test_sim_route6.py) on the gates. Replay with
``MESHPATH_DIFF6_SEED=<seed>``; ``MESHPATH_DIFF6_STATES``/``MESHPATH_DIFF6_QUERIES`` size it.
"""

from __future__ import annotations

import os
import random
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

import msgspec
import pytest

from meshpath.collect import collect_snapshot
from meshpath.sim import Fib, FlowKey
from meshpath.sim.route import route_packet
from meshpath.sim.values import LEG_BY_UNKNOWN
from meshpath.state import Snapshot
from tests.conftest import needs_root, sh
from tests.differential.gen import Answer, State, parse_batch
from tests.differential.gen6 import build_state6, pre_sysctls
from tests.differential.test_sim_kernel import packet_of

pytestmark = [pytest.mark.differential, pytest.mark.root, needs_root]

STATES = int(os.environ.get("MESHPATH_DIFF6_STATES", "10"))
QUERIES = int(os.environ.get("MESHPATH_DIFF6_QUERIES", "520"))
SEEN6: Counter[str] = Counter()  # multipath answers by how the leg was found


def packet_of6(line: str) -> FlowKey:
    """As packet_of, but without ``ipproto`` the flow's protocol is 0: inet6_rtm_getroute
    sets no default (inet_rtm_getroute assumes UDP)."""
    packet = packet_of(line)
    return packet if " ipproto " in line else msgspec.structs.replace(packet, proto=0)


def sim_answers6(fib: Fib, line: str) -> list[Answer]:
    """The answer, or (a multipath route whose leg cannot be known) one per leg."""
    packet = packet_of6(line)
    decision = route_packet(fib, packet, trace=False)
    traced = route_packet(fib, packet)
    assert msgspec.structs.replace(traced, steps=()) == decision, line  # tracing changes nothing
    if decision.error is not None:
        return [Answer(decision.error)]
    table = 254 if decision.table is None else decision.table
    if decision.leg_by == LEG_BY_UNKNOWN:
        SEEN6["multipath (unknown)"] += 1
        return [Answer(None, decision.route_type, leg.dev, leg.gateway, table)
                for leg in decision.legs]  # fmt: skip
    if decision.leg_by:
        SEEN6[f"multipath ({decision.leg_by})"] += 1
    return [Answer(None, decision.route_type, decision.dev, decision.gateway, table)]


def _missing_local_routes(snap: Snapshot) -> set[str]:
    up = {link.name for link in snap.links if link.admin_up}
    want = {a.local for a in snap.addresses if a.family == 6 and a.dev in up}
    have = {r.dst.partition("/")[0] for r in snap.routes if r.family == 6 and r.type == "local"}
    return want - have


def settled_snapshot(netns: str, timeout: float = 5.0) -> Snapshot:
    """The namespace once addrconf's work queue has installed the local route of every
    address (it does so asynchronously, even with ``nodad``): collecting earlier would
    compare the simulator with a state the queries never see."""
    deadline = time.monotonic() + timeout
    while True:
        snap = collect_snapshot(netns=netns)
        missing = _missing_local_routes(snap)
        if not missing:
            return snap
        if time.monotonic() > deadline:
            raise AssertionError(f"{netns}: no local route for {sorted(missing)} after {timeout} s")
        time.sleep(0.02)


def _batch(netns: str, lines: list[str], json_out: bool) -> subprocess.CompletedProcess[str]:
    with tempfile.NamedTemporaryFile("w", suffix=".batch", delete=False) as fh:
        fh.write("\n".join(lines) + "\n")
        path = fh.name
    try:
        argv = ["ip", "-6", "-n", netns, *(["-j"] if json_out else []), "-force", "-batch", path]
        return subprocess.run(argv, capture_output=True, text=True, check=False)
    finally:
        Path(path).unlink()


def run_state6(state: State, netns: str) -> list[str]:
    """Build the state in ``netns``, ask both; the mismatches as readable lines."""
    sh(["sysctl", "-q", "-w", *pre_sysctls()], netns=netns)
    _batch(netns, state.setup, json_out=False)  # routes the kernel refuses fail alone (-force)
    sh(["sysctl", "-q", "-w", *state.sysctls], netns=netns)
    fib = Fib(settled_snapshot(netns))
    proc = _batch(netns, state.queries, json_out=True)
    kernel = parse_batch(proc.stdout, proc.stderr, len(state.queries))
    out = []
    for line, want in zip(state.queries, kernel, strict=True):
        answers = sim_answers6(fib, line)
        got = answers[0]
        if want not in answers:
            steps = "; ".join(f"{s.kind}: {s.detail} -> {s.reason}" for s in
                              route_packet(fib, packet_of6(line)).steps)  # fmt: skip
            out.append(f"seed {state.seed}: {line}\n  kernel {want}\n  sim    {got}\n  {steps}")
    return out


def test_simulator6_agrees_with_kernel(capsys: pytest.CaptureFixture[str]) -> None:
    base = int(os.environ.get("MESHPATH_DIFF6_SEED", str(random.randrange(1 << 31))))
    mismatches: list[str] = []
    total = 0
    started = time.monotonic()
    for n in range(STATES):
        state = build_state6(base + n, QUERIES)
        netns = f"mpd6-{os.getpid()}-{n}"
        subprocess.run(["ip", "netns", "del", netns], capture_output=True, check=False)
        sh(["ip", "netns", "add", netns])
        try:
            sh(["ip", "link", "set", "lo", "up"], netns=netns)
            mismatches += run_state6(state, netns)
            total += len(state.queries)
        finally:
            subprocess.run(["ip", "netns", "del", netns], capture_output=True, check=False)
    rate = 100.0 * (total - len(mismatches)) / max(total, 1)
    with capsys.disabled():
        print(
            f"\n[differential v6] {total - len(mismatches)}/{total} queries agree ({rate:.3f}%) "
            f"over {STATES} states in {time.monotonic() - started:.1f} s; "
            f"MESHPATH_DIFF6_SEED={base}; exercised: "
            + ", ".join(f"{k} {n}" for k, n in sorted(SEEN6.items()))
        )
    assert not mismatches, (
        f"{len(mismatches)} of {total} disagree (agreement {rate:.3f}%); replay with "
        f"MESHPATH_DIFF6_SEED={base}\n" + "\n".join(mismatches[:15])
    )
