"""The Fib's memos (rp_filter's reverse-lookup verdict, shared Steps) never change an answer.

One Fib answers a sequence of queries that share a reverse-lookup key except for what the
memo reduces (the reverse saddr, i.e. the forward destination, enters only as which rule
``from`` prefixes hold it); each answer must equal a fresh Fib's, steps included.
"""

from __future__ import annotations

import pytest

from meshpath.sim import Fib, FlowKey
from meshpath.sim import values as v
from meshpath.sim.route import route_packet
from meshpath.state import Route, Rule, Snapshot
from tests.builders import broken_connector, with_conf, with_routes, with_rules

# Strict rp_filter on eth0; a rule sends lookups *from* 192.0.2.0/24 to table 100, where
# the LAN is reached through the tunnel: the reverse lookup of a reply to 192.0.2.x
# then leaves by CloudflareWARP (strict: dropped), a reply to anything else by eth0.
TABLE = 100


def _snapshot() -> Snapshot:
    snap = with_conf(broken_connector(), "eth0", rp_filter=1)
    snap = with_rules(snap, Rule(family=4, priority=100, src="192.0.2.0/24", table=TABLE))
    return with_routes(snap, Route(table=TABLE, family=4, dst="10.0.1.0/24", dev="CloudflareWARP"))


def _packet(dst: str, mark: int = 0) -> FlowKey:
    return FlowKey(dst=dst, src="10.0.1.50", iif="eth0", mark=mark)


QUERIES = [_packet("192.0.2.9"), _packet("8.8.8.8"), _packet("192.0.2.77"), _packet("9.9.9.9")]


@pytest.mark.parametrize("order", [QUERIES, QUERIES[::-1]])
@pytest.mark.parametrize("trace", [True, False])
def test_memoised_answers_equal_fresh_ones(order: list[FlowKey], trace: bool) -> None:
    snap = _snapshot()
    shared = Fib(snap)
    for packet in order * 2:
        assert route_packet(shared, packet, trace=trace) == route_packet(
            Fib(snap), packet, trace=trace
        )


def test_rule_from_prefix_splits_the_reverse_verdict() -> None:
    # The case the memo key must keep apart: same source, same reverse flow, only the
    # forward destination (the reverse saddr) differs, and a `from` rule sees it.
    fib = Fib(_snapshot())
    assert route_packet(fib, _packet("192.0.2.9")).outcome == v.RP_FILTER
    assert route_packet(fib, _packet("8.8.8.8")).outcome == v.FORWARD
    assert route_packet(fib, _packet("192.0.2.10")).outcome == v.RP_FILTER


def test_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("meshpath.sim.fib.MEMO_MAX", 4)
    fib = Fib(_snapshot())
    for i in range(1, 40):
        route_packet(fib, FlowKey(dst="8.8.8.8", src=f"10.0.1.{i}", iif="eth0"))
        assert max(fib.memo_sizes().values()) <= 4


def _fine_snapshot() -> Snapshot:
    # Strict rp_filter on eth0; one LAN host (a /32) and the upper half of the LAN (a /25)
    # are reached through the tunnel: replies from them fail the reverse-path check,
    # replies from their /24 neighbours do not.
    snap = with_conf(broken_connector(), "eth0", rp_filter=1)
    return with_routes(
        snap,
        Route(table=254, family=4, dst="10.0.1.77/32", dev="CloudflareWARP"),
        Route(table=254, family=4, dst="10.0.1.128/25", dev="CloudflareWARP"),
    )


def test_source_class_memo_keeps_a_fine_24_apart() -> None:
    # The rp_filter verdict is memoised per source /24, except in a /24 holding a longer
    # prefix: there each source is its own class (table.fine_blocks).
    fib = Fib(_fine_snapshot())
    got = [
        route_packet(fib, FlowKey(dst="8.8.8.8", src=f"10.0.1.{host}", iif="eth0")).outcome
        for host in (50, 77, 51, 200, 127, 77)
    ]
    assert got == [v.FORWARD, v.RP_FILTER, v.FORWARD, v.RP_FILTER, v.FORWARD, v.RP_FILTER]


def test_source_class_memo_shares_a_plain_24() -> None:
    # Two sources of one plain /24 (beyond the LAN, whose /24 holds the host's own /32s)
    # share one verdict, each with its own step text.
    fib = Fib(_snapshot())
    first = route_packet(fib, FlowKey(dst="8.8.8.8", src="10.9.9.50", iif="eth0"))
    second = route_packet(fib, FlowKey(dst="8.8.8.8", src="10.9.9.60", iif="eth0"))
    assert fib.memo_sizes()["verdicts"] == 1
    assert [s.detail for s in second.steps if s.kind == "rp_filter"] == [
        "rp_filter=1 on eth0: reverse lookup 10.9.9.60 iif CloudflareWARP"
    ]
    assert first.outcome == second.outcome == v.FORWARD


def test_reverse_iif_splits_the_verdict_only_under_an_iif_rule() -> None:
    # The reverse lookup's iif is the forward egress; only a rule's `iif` reads it. Here
    # replies to 10.9.9.50 that left by the tunnel are looked up in table 100 (the source
    # via the tunnel: strict rp_filter drops), those that left by eth0 in main (accepted).
    snap = with_conf(broken_connector(), "eth0", rp_filter=1)
    snap = with_rules(snap, Rule(family=4, priority=100, iif="CloudflareWARP", table=TABLE))
    snap = with_routes(snap, Route(table=TABLE, family=4, dst="10.9.9.0/24", dev="CloudflareWARP"))
    queries = [FlowKey(dst=dst, src="10.9.9.50", iif="eth0") for dst in ("8.8.8.8", "10.0.1.60")]
    shared = Fib(snap)
    got = [route_packet(shared, q) for q in queries * 2]
    assert [d.outcome for d in got] == [v.RP_FILTER, v.FORWARD] * 2
    assert got == [route_packet(Fib(snap), q) for q in queries * 2]
