"""Read-only views of the raw `nft -j list ruleset` JSON that checks search for patterns.

The simulator evaluates rules against packets; checks instead ask structural questions
("is there a masquerade, and for which source prefix?"), so they get a tiny flat view.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from meshpath.state import Snapshot


@dataclass(frozen=True, slots=True)
class NftRule:
    family: str
    table: str
    chain: str
    handle: int | None
    expr: tuple[Mapping[str, Any], ...]

    @property
    def where(self) -> str:
        return f"{self.family} {self.table} {self.chain} handle {self.handle}"

    def verdict(self) -> str | None:
        """The rule's final statement keyword (accept, drop, masquerade, snat, ...)."""
        for stmt in reversed(self.expr):
            for key in ("accept", "drop", "reject", "masquerade", "snat", "dnat", "jump", "goto"):
                if key in stmt:
                    return key
        return None

    def matches(self) -> Iterator[tuple[str, str, Any]]:
        """(left-key, op, right) for each `match` expression, left flattened to text."""
        for stmt in self.expr:
            match = stmt.get("match")
            if isinstance(match, Mapping):
                yield _left_key(match.get("left")), str(match.get("op", "==")), match.get("right")

    def prefix_of(self, field: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
        """The network an `ip saddr`/`ip daddr` (== only) match covers, if any."""
        for left, op, right in self.matches():
            if left.endswith(f" {field}") and op in ("==", "in"):
                net = _network(right)
                if net is not None:
                    return net
        return None

    def text(self) -> str:
        """A readable approximation of the rule, for evidence lines."""
        parts = [_stmt_text(stmt) for stmt in self.expr]
        return " ".join(p for p in parts if p)


def rules(snapshot: Snapshot) -> Iterator[NftRule]:
    ruleset = snapshot.nft.ruleset or {}
    for item in ruleset.get("nftables", []):
        rule = item.get("rule") if isinstance(item, Mapping) else None
        if isinstance(rule, Mapping):
            yield NftRule(
                family=str(rule.get("family", "")),
                table=str(rule.get("table", "")),
                chain=str(rule.get("chain", "")),
                handle=rule.get("handle"),
                expr=tuple(e for e in rule.get("expr", []) if isinstance(e, Mapping)),
            )


def _left_key(left: Any) -> str:
    if isinstance(left, Mapping):
        for kind in ("meta", "payload", "ct"):
            inner = left.get(kind)
            if isinstance(inner, Mapping):
                proto = inner.get("protocol")
                key = inner.get("key") or inner.get("field")
                return f"{kind} {proto} {key}" if proto else f"{kind} {key}"
    return str(left)


def _network(right: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        if isinstance(right, Mapping) and isinstance(right.get("prefix"), Mapping):
            pre = right["prefix"]
            return ipaddress.ip_network(f"{pre['addr']}/{pre['len']}", strict=False)
        if isinstance(right, str):
            return ipaddress.ip_network(right, strict=False)
    except (KeyError, ValueError):
        return None
    return None


def _stmt_text(stmt: Mapping[str, Any]) -> str:
    match = stmt.get("match")
    if isinstance(match, Mapping):
        right = match.get("right")
        net = _network(right)
        value = str(net) if net is not None else str(right)
        op = match.get("op", "==")
        op_text = "" if op in ("==", "in") else f"{op} "
        return f"{_left_key(match.get('left')).split(' ', 1)[-1]} {op_text}{value}"
    if "counter" in stmt:
        return ""
    return next(iter(stmt), "")
