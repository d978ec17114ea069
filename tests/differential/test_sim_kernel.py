"""The simulator against the kernel's own `ip route get`, on random states in a namespace.

Each state is built in a fresh namespace (``mpd-<pid>-<n>``), collected with the real
collector, and asked a few hundred random questions through one ``ip -j -force -batch``
file; the simulator answers the same questions from the snapshot. Outcome (errno), kind,
egress device, gateway and table must agree on every query. Replay a failure with
``MESHPATH_DIFF_SEED=<seed>`` (printed on failure); ``MESHPATH_DIFF_STATES`` and
``MESHPATH_DIFF_QUERIES`` size the run.
"""

from __future__ import annotations

import os
import random
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

import msgspec
import pytest

from meshpath.collect import collect_snapshot
from meshpath.sim import Fib, FlowKey
from meshpath.sim.route import route_packet
from meshpath.sim.values import LEG_BY_UNKNOWN
from tests.conftest import needs_root, sh
from tests.differential.gen import Answer, State, build_state, parse_batch

pytestmark = [pytest.mark.differential, pytest.mark.root, needs_root]

STATES = int(os.environ.get("MESHPATH_DIFF_STATES", "24"))
SEEN: Counter[str] = Counter()  # what the queries exercised (printed with the result)
QUERIES = int(os.environ.get("MESHPATH_DIFF_QUERIES", "450"))


def packet_of(line: str) -> FlowKey:
    """`route get DST [from SRC] [iif DEV] [mark M] [ipproto P sport S dport D]` -> FlowKey."""
    words = line.split()
    opts = dict(zip(words[3::2], words[4::2], strict=True))
    return FlowKey(
        dst=words[2],
        src=opts.get("from"),
        iif=opts.get("iif"),
        oif=opts.get("oif"),
        mark=int(opts.get("mark", "0"), 0),
        tos=int(opts.get("tos", "0"), 16),  # iproute2 reads a dsfield as hex
        proto={"tcp": 6, "udp": 17}[opts.get("ipproto", "udp")],
        sport=int(opts.get("sport", "0")),
        dport=int(opts.get("dport", "0")),
        uid=int(opts["uid"]) if "uid" in opts else None,
    )


def sim_answers(fib: Fib, line: str) -> list[Answer]:
    """The answer, or (a multipath route whose leg cannot be known) one per leg it may take."""
    decision = route_packet(fib, packet_of(line), trace=False)
    traced = route_packet(fib, packet_of(line))
    assert msgspec.structs.replace(traced, steps=()) == decision, line  # tracing changes nothing
    if decision.error is not None:
        return [Answer(decision.error)]
    kinds = {"local": "local", "broadcast": "broadcast", "multicast": "multicast"}
    kind = kinds.get(decision.outcome, "unicast")
    # `ip` prints no table for main nor for none (an oif route assumed on-link): both read main.
    table = 254 if decision.table is None else decision.table
    if decision.leg_by == LEG_BY_UNKNOWN:
        dropped = [Answer("EINVAL")] if decision.legs_dropped else []  # rp_filter on a leg
        return [Answer(None, kind, leg.dev, leg.gateway, table) for leg in decision.legs] + dropped
    return [Answer(None, kind, decision.dev, decision.gateway, table)]


def sim_answer(fib: Fib, line: str) -> Answer:
    return sim_answers(fib, line)[0]


def _batch(netns: str, lines: list[str], json_out: bool) -> subprocess.CompletedProcess[str]:
    with tempfile.NamedTemporaryFile("w", suffix=".batch", delete=False) as fh:
        fh.write("\n".join(lines) + "\n")
        path = fh.name
    try:
        argv = ["ip", "-n", netns, *(["-j"] if json_out else []), "-force", "-batch", path]
        return subprocess.run(argv, capture_output=True, text=True, check=False)
    finally:
        Path(path).unlink()


def run_state(state: State, netns: str) -> list[str]:
    """Build the state in ``netns``, ask both; the mismatches as readable lines."""
    _batch(netns, state.setup, json_out=False)  # duplicates fail with EEXIST: fine (-force)
    sh(["sysctl", "-q", "-w", *state.sysctls], netns=netns)
    fib = Fib(collect_snapshot(netns=netns))
    proc = _batch(netns, state.queries, json_out=True)
    kernel = parse_batch(proc.stdout, proc.stderr, len(state.queries))
    out = []
    for line, want in zip(state.queries, kernel, strict=True):
        _tally(fib, line)
        answers = sim_answers(fib, line)
        got = answers[0]
        if want not in answers:  # a leg the kernel may take, when no one leg is knowable
            steps = "; ".join(f"{s.kind}: {s.detail} -> {s.reason}" for s in
                              route_packet(fib, packet_of(line)).steps)  # fmt: skip
            out.append(f"seed {state.seed}: {line}\n  kernel {want}\n  sim    {got}\n  {steps}")
    return out


def _tally(fib: Fib, line: str) -> None:
    decision = route_packet(fib, packet_of(line), trace=False)
    if decision.leg_by:
        SEEN[f"multipath ({decision.leg_by})"] += 1
    if decision.outcome == "multicast":
        SEEN["multicast"] += 1
    for word in ("uid", "oif", "tos", "ipproto"):
        SEEN[word] += f" {word} " in line
    SEEN["0.0.0.0"] += line.startswith("route get 0.0.0.0")


def test_simulator_agrees_with_kernel(capsys: pytest.CaptureFixture[str]) -> None:
    base = int(os.environ.get("MESHPATH_DIFF_SEED", str(random.randrange(1 << 31))))
    mismatches: list[str] = []
    total = 0
    for n in range(STATES):
        state = build_state(base + n, QUERIES)
        netns = f"mpd-{os.getpid()}-{n}"
        subprocess.run(["ip", "netns", "del", netns], capture_output=True, check=False)
        sh(["ip", "netns", "add", netns])
        try:
            sh(["ip", "link", "set", "lo", "up"], netns=netns)
            mismatches += run_state(state, netns)
            total += len(state.queries)
        finally:
            subprocess.run(["ip", "netns", "del", netns], capture_output=True, check=False)
    rate = 100.0 * (total - len(mismatches)) / max(total, 1)
    with capsys.disabled():
        print(
            f"\n[differential] {total - len(mismatches)}/{total} queries agree ({rate:.3f}%) "
            f"over {STATES} states; MESHPATH_DIFF_SEED={base}\n[differential] exercised: "
            + ", ".join(f"{k} {v}" for k, v in sorted(SEEN.items()))
        )
    assert not mismatches, (
        f"{len(mismatches)} of {total} disagree (agreement {rate:.3f}%); replay with "
        f"MESHPATH_DIFF_SEED={base}\n" + "\n".join(mismatches[:15])
    )
