"""What the Fib compiles and remembers for speed never changes an answer.

* a flow class's rule chain (``Fib._chain_of``) and each rule's answer per route
  (``CompiledRule.answers``), learnt untraced and asked again traced;
* the second class of rp_filter's verdict: the source's longest prefix in any table or
  rule ``to`` selector (``table.PrefixSet``);
* per /16, only the prefix lengths that can hold an address there (``RouteTable.plens``).

Each answer is compared with a fresh Fib's (no memo) -- steps included.
"""

from __future__ import annotations

from meshpath.sim import Fib, FlowKey
from meshpath.sim import values as v
from meshpath.sim.route import route_many, route_packet
from meshpath.sim.table import PrefixSet, RouteTable
from meshpath.state import Route, Rule, Snapshot
from tests.builders import broken_connector, with_conf, with_routes, with_rules

TABLE = 100


def _strict() -> Snapshot:
    return with_conf(broken_connector(), "eth0", rp_filter=1)


def test_rule_to_prefix_splits_the_source_prefix_class() -> None:
    # Replies (reverse lookups) to 10.7.2.0/24 meet rule 100 (table 100: via the tunnel,
    # strict rp_filter drops); to 10.7.3.0/24 they do not (main's default via eth0). No
    # route separates the two /24s (both under the throw 10.0.0.0/8): only the rule's `to`
    # prefix does, so it must be one of the PrefixSet's prefixes.
    snap = with_rules(_strict(), Rule(family=4, priority=100, dst="10.7.2.0/24", table=TABLE))
    snap = with_routes(snap, Route(table=TABLE, family=4, dst="10.0.0.0/8", dev="CloudflareWARP"))
    queries = [FlowKey(dst="8.8.8.8", src=src, iif="eth0") for src in ("10.7.3.5", "10.7.2.5")]
    shared = Fib(snap)
    got = [route_packet(shared, q) for q in queries]
    assert [d.outcome for d in got] == [v.FORWARD, v.RP_FILTER]
    assert got == [route_packet(Fib(snap), q) for q in queries]


def test_sources_under_one_prefix_share_one_reverse_walk() -> None:
    # Twenty /24s under WARP's throw 100.64.0.0/10 and nothing longer: twenty first
    # classes (each its own steps), one reverse walk.
    fib = Fib(_strict())
    warp = "CloudflareWARP"
    queries = [FlowKey(dst="10.0.1.50", src=f"100.80.{i}.9", iif=warp) for i in range(20)]
    got = route_many(fib, queries)
    assert fib.memo_sizes()["verdicts"] == 20
    assert fib.memo_sizes()["wide"] == 1
    assert got == route_many(Fib(_strict()), queries)
    assert (
        got[3]
        .steps[-1]
        .detail.startswith("rp_filter=0 on CloudflareWARP: reverse lookup 100.80.3.9 iif eth0")
    )


def _odd_tables() -> Snapshot:
    # A rule of a table that does not exist, a TOS-specific alias (not remembered per
    # route), a multipath route and a blackhole, beside WARP's suppress/throw walk.
    snap = with_rules(broken_connector(), Rule(family=4, priority=50, table=999))
    return with_routes(
        snap,
        Route(table=254, family=4, dst="192.0.2.0/24", dev="CloudflareWARP", tos=0x10),
        Route(table=254, family=4, dst="192.0.2.0/24", gateway="10.0.1.9", dev="eth0"),
        Route(table=254, family=4, dst="198.51.100.0/24", type="blackhole"),
        Route(table=TABLE, family=4, dst="203.0.113.0/24", dev="eth0"),
    )


ODD = [
    FlowKey(dst=dst, src=src, iif=iif, tos=tos)
    for dst in ("192.0.2.7", "198.51.100.1", "8.8.8.8", "10.0.1.50", "100.64.0.1")
    for src in ("100.64.1.2", "10.0.1.50")
    for iif in ("eth0", "CloudflareWARP")
    for tos in (0, 0x10)
]


def test_answers_learnt_untraced_are_traced_alike() -> None:
    # One Fib answers every question untraced first (rule answers remembered without
    # steps), then traced: each traced answer equals a fresh Fib's.
    snap = _odd_tables()
    shared = Fib(snap)
    quiet = route_many(shared, ODD, trace=False)
    traced = route_many(shared, ODD)
    fresh = [route_packet(Fib(snap), q) for q in ODD]
    assert traced == fresh
    assert [d.outcome for d in quiet] == [d.outcome for d in fresh]
    assert any(s.reason == "matched; table does not exist: continue" for s in fresh[0].steps)
    assert {d.dev for d in fresh if d.packet.dst == "192.0.2.7"} == {"eth0", "CloudflareWARP"}


def test_table_probes_only_lengths_that_hold_the_16() -> None:
    table = RouteTable.build(
        65743,
        [(0, 1, _r("0.0.0.0/1")), (0x80000000, 1, _r("128.0.0.0/1")),
         (0x0A000000, 8, _r("10.0.0.0/8")), (0x64400000, 10, _r("100.64.0.0/10")),
         (0x0A010200, 24, _r("10.1.2.0/24"))],
    )  # fmt: skip
    assert table.plens[0x0A01] == (24, 8, 1)  # 10.1/16: its /24, then 10/8, then 0/1
    assert table.plens[0x0A02] == (8, 1)
    assert table.plens[0x6450] == (10, 1)  # 100.80/16
    assert table.plens[0xC0A8] == (1,)  # 192.168/16: only 128/1 can hold it
    assert RouteTable.build(1, [(0x0A000000, 8, _r("10.0.0.0/8"))]).plens[0x0B00] == ()


def test_prefix_set_longest_over_tables_and_rules() -> None:
    main = RouteTable.build(254, [(0, 0, _r("0.0.0.0/0")), (0x0A000000, 8, _r("10.0.0.0/8"))])
    warp = RouteTable.build(65743, [(0x0A010000, 16, _r("10.1.0.0/16"))])
    prefixes = PrefixSet([main, warp], [(0x0A010200, 24)])
    assert prefixes.longest(0x0A010203) == (0x0A010200, 24)  # the rule's
    assert prefixes.longest(0x0A010303) == (0x0A010000, 16)  # warp's
    assert prefixes.longest(0x0A020303) == (0x0A000000, 8)  # main's
    assert prefixes.longest(0x08080808) == (0, 0)
    assert PrefixSet([warp], []).longest(0x08080808) == (0, -1)


def _r(dst: str) -> Route:
    return Route(table=254, family=4, dst=dst, dev="eth0")


def test_tos_route_keeps_reverse_verdicts_apart() -> None:
    # The verdict key drops the flow's TOS when nothing reads it; a TOS route does: replies
    # to 10.9.9.0/24 with TOS 0x10 are routed via the tunnel (strict: dropped), without
    # TOS via main's default on eth0 (accepted).
    snap = with_routes(
        _strict(), Route(table=254, family=4, dst="10.9.9.0/24", dev="CloudflareWARP", tos=0x10)
    )
    queries = [FlowKey(dst="8.8.8.8", src="10.9.9.50", iif="eth0", tos=t) for t in (0, 0x10)]
    shared = Fib(snap)
    got = [route_packet(shared, q) for q in queries]
    assert [d.outcome for d in got] == [v.FORWARD, v.RP_FILTER]
    assert got == [route_packet(Fib(snap), q) for q in queries]
