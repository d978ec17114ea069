"""Many routes for one prefix (aliases): built in O(n log n), ordered as the kernel keeps
them (TOS-specific first, then metric, ties in insertion order)."""

from __future__ import annotations

import random
import time

import msgspec

from meshpath.sim import FlowKey, route_get
from meshpath.sim.fib import Fib
from meshpath.state import TABLE_MAIN, Route
from tests.builders import broken_connector, with_routes


def _route(metric: int, tos: int = 0, gateway: str = "10.0.1.1") -> Route:
    return Route(
        table=TABLE_MAIN, family=4, dst="10.9.0.0/16", dev="eth0", gateway=gateway,
        metric=metric, tos=tos,
    )  # fmt: skip


def test_ten_thousand_routes_to_one_prefix_build_and_look_up_fast() -> None:
    # Worst order for the old build: each insert re-sorted every alias so far (10.7 s).
    routes = [_route(10_000 - i, gateway=f"10.0.1.{1 + i % 200}") for i in range(10_000)]
    snap = with_routes(broken_connector(), *routes)
    start = time.perf_counter()
    decision = route_get(snap, FlowKey(dst="10.9.1.1"))
    elapsed = time.perf_counter() - start
    assert decision.route == "10.9.0.0/16" and decision.gateway == routes[-1].gateway
    assert elapsed < 1.0, f"build + lookup took {elapsed:.2f} s"


def test_alias_order_is_one_stable_sort_of_insertion_order() -> None:
    rng = random.Random(7)
    routes = [
        _route(rng.choice([0, 5, 10, 20]), tos=rng.choice([0, 0, 0x10]), gateway=f"10.0.1.{i + 1}")
        for i in range(60)
    ]
    snap = with_routes(broken_connector(), *routes)
    table = Fib(snap).tables[TABLE_MAIN]
    net = (10 << 24) | (9 << 16)
    want = tuple(sorted(routes, key=lambda r: (-r.tos, r.metric)))  # stable: insertion order
    assert table.by_len[16][net] == want
    assert not table.aliases  # freeze() emptied the build-time lists


def test_same_route_object_twice_is_kept_as_before() -> None:
    # The build skips a route identical (the same object) to the prefix's only route, and
    # appends it once the prefix has aliases (what re-sorting on every insert did).
    a, b = _route(5), _route(1, gateway="10.0.1.9")
    snap = msgspec.structs.replace(broken_connector(), routes=(a, a, b, a))
    entry = Fib(snap).tables[TABLE_MAIN].by_len[16][(10 << 24) | (9 << 16)]
    assert entry == (b, a, a)
