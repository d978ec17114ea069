"""`verify.run`: prove a fix on a live host: FRR's, the kernel's and nft's view, a round trip.

What must hold (an :class:`Expect`) comes from the newest applied journal, or from the mode
the user names (:func:`expectation`); the judging itself is pure (:mod:`meshpath.fix.verify`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import msgspec

from meshpath.apply import journal as jr
from meshpath.apply.frr import Frr
from meshpath.config import Settings
from meshpath.errors import BadInputError
from meshpath.fix import MODES, Expect
from meshpath.fix.plan import expect_for
from meshpath.fix.verify import VerifyCheck, judge
from meshpath.usecase.host import Host
from meshpath.values import parse_peer

# A Worker round trip (the lab's, see meshpath.usecase.postchecks): ok and what it saw.
RoundTrip = Callable[[Expect], tuple[bool, str]]
CheckFn = Callable[[], tuple[bool, str]]


def run(host: Host, expect: Expect, round_trip: RoundTrip | None = None) -> tuple[VerifyCheck, ...]:
    """A fresh snapshot, the peer's advertisement (when FRR runs), the round trip: judged."""
    snap = host.snapshot()
    advertised = None
    if expect.peer is not None and snap.frr.running:
        advertised = Frr(host.runner, host.netns).advertised(expect.peer)
    trip = round_trip(expect) if round_trip is not None else None
    return judge(snap, expect, advertised, trip)


def as_check(host: Host, expect: Expect, round_trip: RoundTrip | None = None) -> CheckFn:
    """:func:`run` as an Applier post-check: ok, or the failed checks in one line."""

    def check() -> tuple[bool, str]:
        bad = [f"{c.name}: {c.detail}" for c in run(host, expect, round_trip) if not c.ok]
        return (not bad, "; ".join(bad) or "all checks hold")

    return check


def expectation(
    settings: Settings, states: Path, netns: str | None, mode: str | None, peer: str | None
) -> Expect:
    """What must hold: the last applied journal's expectation, or ``mode``'s; ``peer``
    (parsed first: it reaches vtysh) adds the peer's advertisement."""
    address = parse_peer(peer, "--peer") if peer is not None else None
    if mode is None:
        journal = jr.last_applied(states, netns) if states.exists() else None
        if journal is None:
            raise BadInputError("no applied meshpath fix found for this host; pass --mode")
        expect = journal.plan.expect
    elif mode == "profile":
        ranges = (str(settings.ranges.source_v4), str(settings.ranges.device_v4))
        expect = Expect(
            tunnel=settings.tunnel_interface, ranges=(), route_proto=0, nat=None, warp_covers=ranges
        )
    elif mode in MODES:
        expect = expect_for(mode, settings, address)  # type: ignore[arg-type]
    else:
        raise BadInputError(f"--mode {mode!r}: expected one of {', '.join(MODES)}, profile")
    if address is not None:
        expect = msgspec.structs.replace(expect, peer=address, advertised=expect.ranges)
    return expect
