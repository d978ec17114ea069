"""``meshpath verify``'s I/O: a fresh snapshot, the peer's advertisement, a round trip."""

from __future__ import annotations

from collections.abc import Callable

from meshpath.apply.frr import Frr
from meshpath.collect import collect_snapshot
from meshpath.fix.model import Expect
from meshpath.fix.verify import VerifyCheck, judge
from meshpath.runner import Runner

RoundTrip = Callable[[Expect], tuple[bool, str]]


def verify(
    runner: Runner,
    netns: str | None,
    expect: Expect,
    round_trip: RoundTrip | None = None,
) -> tuple[VerifyCheck, ...]:
    snap = collect_snapshot(netns=netns, runner=runner)
    advertised = None
    if expect.peer is not None and snap.frr.running:
        advertised = Frr(runner, netns).advertised(expect.peer)
    trip = round_trip(expect) if round_trip is not None else None
    return judge(snap, expect, advertised, trip)
