"""The snapshot a plan would leave behind (pure), for the simulator's prediction.

Applying a plan to a Snapshot is a value change: the routes it adds or removes (with the
protocol that will carry them) and meshpath's nft table, written the way
``nft -j list ruleset`` shows it, so the simulator reads it like a collected one.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import msgspec

from meshpath.fix.model import Expect, Plan
from meshpath.state import TABLE_MAIN, NftState, Route, Snapshot
from meshpath.state.nft import Masquerade, parse_ruleset, replace_own_table, rule_expr


def predict(snapshot: Snapshot, plan: Plan, lan_if: str) -> Snapshot:
    """``snapshot`` as it will be once ``plan`` is applied (its expectations met)."""
    expect = plan.expect
    routes = tuple(r for r in snapshot.routes if not _replaced(r, expect)) + tuple(
        _route(expect, rng) for rng in expect.ranges
    )
    nft = snapshot.nft
    if expect.nat is True:
        sources = expect.nat_sources or expect.ranges[:1]
        nft = _with_nat(nft, [Masquerade(lan_if, r) for r in sources])
    elif expect.nat is False:
        nft = _with_nat(nft, [])
    return msgspec.structs.replace(snapshot, routes=routes, nft=nft)


def _replaced(route: Route, expect: Expect) -> bool:
    return route.table == TABLE_MAIN and route.dst in expect.ranges and route.dev == expect.tunnel


def _route(expect: Expect, rng: str) -> Route:
    family = ipaddress.ip_network(rng).version
    return Route(
        table=TABLE_MAIN, family=family, dst=rng, dev=expect.tunnel, protocol=expect.route_proto
    )


def _with_nat(nft: NftState, rules: list[Masquerade]) -> NftState:
    """meshpath's table replaced by ``rules`` (none: the table removed)."""
    ruleset = replace_own_table(nft.ruleset, _nat_items(rules) if rules else [])
    chains = parse_ruleset(ruleset).base_chains
    return msgspec.structs.replace(nft, ruleset=ruleset, base_chains=chains)


def _nat_items(rules: list[Masquerade]) -> list[dict[str, Any]]:
    where = {"family": "inet", "table": "meshpath"}
    chain = {**where, "name": "postrouting", "type": "nat", "hook": "postrouting",
             "prio": 100, "policy": "accept"}  # fmt: skip
    items: list[dict[str, Any]] = [
        {"table": {"family": "inet", "name": "meshpath"}},
        {"chain": chain},
    ]
    for rule in rules:
        expr = rule_expr(rule)
        items.append({"rule": {**where, "chain": "postrouting", "expr": expr}})
    return items
