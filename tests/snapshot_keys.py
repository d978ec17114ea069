"""The same keys as tests/iproute_json.py, taken from meshpath's model objects."""

from __future__ import annotations

from typing import Any

from meshpath.state import Route, Rule


def route_key(r: Route) -> tuple[Any, ...]:
    return (r.table, r.dst, r.type, r.dev, r.gateway, r.metric)


def route_detail(r: Route) -> tuple[Any, ...]:
    legs = tuple((h.gateway, h.dev, h.weight, h.flags) for h in r.nexthops)
    return (*route_key(r), r.protocol, r.scope, r.prefsrc, r.flags, legs, r.mtu)


def rule_key(r: Rule) -> tuple[Any, ...]:
    def span(p: Any) -> tuple[int, int] | None:
        return (p.start, p.end) if p else None

    return (
        r.priority,
        r.action,
        r.table,
        r.goto,
        r.invert,
        r.src,
        r.dst,
        r.iif,
        r.oif,
        r.fwmark,
        r.fwmask,
        r.tos,
        r.ipproto,
        span(r.sport),
        span(r.dport),
        span(r.uidrange),
        r.suppress_prefixlength,
        r.suppress_ifgroup,
        r.l3mdev,
    )
