"""The snapshot a fix would leave behind (pure), for the simulator's prediction.

The prediction is the desired state (:mod:`meshpath.fix.desired`) written into the snapshot,
the same value the plan was diffed from: the routes (with the protocol that will carry
them) and meshpath's nft table, written the way ``nft -j list ruleset`` shows it, so the
simulator reads it like a collected one.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import msgspec

from meshpath.fix.desired import Desired
from meshpath.state import TABLE_MAIN, NftState, Route, Snapshot
from meshpath.state.nft import Masquerade, parse_ruleset, replace_own_table, rule_expr


def predict(snapshot: Snapshot, desired: Desired) -> Snapshot:
    """``snapshot`` as it will be once ``desired`` holds."""
    routes = tuple(r for r in snapshot.routes if not _replaced(r, desired)) + tuple(
        _route(desired, rng) for rng in desired.ranges
    )
    nft = snapshot.nft
    if desired.nat is not None:
        nft = _with_nat(nft, list(desired.nat))
    return msgspec.structs.replace(snapshot, routes=routes, nft=nft)


def _replaced(route: Route, desired: Desired) -> bool:
    return route.table == TABLE_MAIN and route.dst in desired.ranges and route.dev == desired.tunnel


def _route(desired: Desired, rng: str) -> Route:
    family = ipaddress.ip_network(rng).version
    return Route(
        table=TABLE_MAIN, family=family, dst=rng, dev=desired.tunnel, protocol=desired.route_proto
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
