"""What the IPv4 and IPv6 FIBs share: a lookup's result, the errnos of route types and rule
actions, and the texts of rules, routes and hits that steps show.

Kept apart from :mod:`meshpath.sim.fib` and :mod:`meshpath.sim.fib6` so both import it and
neither imports the other's lookup code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final, NamedTuple

import msgspec

from meshpath.errors import BadInputError
from meshpath.sim.values import KernelStep
from meshpath.state import TABLE_DEFAULT, TABLE_LOCAL, TABLE_MAIN, Route, Rule, Snapshot

LOOPBACK_IFINDEX: Final = 1

# fib_props[type].error: the errno a route of that type ends a table lookup with.
ROUTE_TYPE_ERRORS: Final = {
    "throw": "EAGAIN",
    "unreachable": "EHOSTUNREACH",
    "prohibit": "EACCES",
    "blackhole": "EINVAL",
}
# fib4_rule_action: what a rule's own action returns.
RULE_ACTION_ERRORS: Final = {
    "blackhole": "EINVAL",
    "unreachable": "ENETUNREACH",
    "prohibit": "EACCES",
}


def rule_selectors(
    rule: Rule,
) -> tuple[int, int, int, tuple[int, int] | None, tuple[int, int] | None]:
    """The selectors both families compare alike, as integers: (mark, mask, ipproto, sport,
    dport). ``fwmark M`` alone masks all 32 bits; a mask given without a mark still masks
    (``fwmark 0/K``, which ``ip rule`` shows as a bare mask)."""
    mark = rule.fwmark or 0
    mask = (0xFFFFFFFF if rule.fwmask is None else rule.fwmask) if rule.fwmark else 0
    if rule.fwmark is None and rule.fwmask:
        mask = rule.fwmask
    sport = (rule.sport.start, rule.sport.end) if rule.sport else None
    dport = (rule.dport.start, rule.dport.end) if rule.dport else None
    return mark, mask, rule.ipproto or 0, sport, dport


class Hit(msgspec.Struct, frozen=True, gc=False):
    """A successful table lookup: the route, its prefix length and the chosen nexthop.

    A Struct without garbage-collector tracking (a NamedTuple is tracked for life): a Fib
    keeps many of these in its memos, and a query makes one or two."""

    route: Route
    plen: int
    table: int
    dev: str | None
    gateway: str | None
    multipath: bool

    def _replace(self, **changes: Any) -> Hit:
        return msgspec.structs.replace(self, **changes)


class LookupResult(msgspec.Struct, frozen=True, gc=False):
    """What ``fib_lookup`` returns: an errno name or a hit, and the deciding rule."""

    error: str | None
    hit: Hit | None
    rule: int | None

    def _replace(self, **changes: Any) -> LookupResult:
        return msgspec.structs.replace(self, **changes)


def describe_rule(rule: Rule) -> str:
    """The rule as ``ip rule`` prints it (enough to recognise it)."""
    parts = [f"{rule.priority}:"]
    if rule.invert:
        parts.append("not")
    parts.append(f"from {rule.src or 'all'}")
    parts.extend(_selector_texts(rule))
    parts.append(_rule_action_text(rule))
    if rule.suppress_prefixlength is not None:
        parts.append(f"suppress_prefixlength {rule.suppress_prefixlength}")
    if rule.suppress_ifgroup is not None:
        parts.append(f"suppress_ifgroup {rule.suppress_ifgroup}")
    return " ".join(parts)


def _selector_texts(rule: Rule) -> list[str]:
    parts = [
        f"{key} {value}"
        for key, value in (("to", rule.dst), ("iif", rule.iif), ("oif", rule.oif))
        if value
    ]
    if rule.fwmark is not None:
        mask = f"/{rule.fwmask:#x}" if rule.fwmask not in (None, 0xFFFFFFFF) else ""
        parts.append(f"fwmark {rule.fwmark:#x}{mask}")
    if rule.tos:
        parts.append(f"tos {rule.tos:#x}")
    if rule.ipproto:
        parts.append(f"ipproto {rule.ipproto}")
    for key, rng in (("sport", rule.sport), ("dport", rule.dport), ("uidrange", rule.uidrange)):
        if rng:
            parts.append(f"{key} {rng.start}-{rng.end}")
    if rule.l3mdev:
        parts.append("l3mdev")
    return parts


def _rule_action_text(rule: Rule) -> str:
    if rule.action == "lookup":
        return f"lookup {table_name(rule.table or 0)}"
    if rule.action == "goto":
        return f"goto {rule.goto}"
    return rule.action


_TABLE_NAMES: Final = {TABLE_LOCAL: "local", TABLE_MAIN: "main", TABLE_DEFAULT: "default"}


def table_name(table: int) -> str:
    return _TABLE_NAMES.get(table) or str(table)


def note(steps: list[KernelStep] | None, kind: str, detail: str, reason: str) -> None:
    if steps is not None:
        steps.append(KernelStep(kind, detail, reason))


def route_step(table: int, route: Route, reason: str) -> KernelStep:
    return KernelStep("route", f"table {table_name(table)}: {route_text(route)}", reason)


def route_text(route: Route) -> str:
    """The route roughly as ``ip route`` prints it."""
    parts = [] if route.type == "unicast" else [route.type]
    parts.append("default" if route.dst == "0.0.0.0/0" else route.dst)
    if route.gateway:
        parts.append(f"via {route.gateway}")
    if route.dev:
        parts.append(f"dev {route.dev}")
    if route.metric:
        parts.append(f"metric {route.metric}")
    for nh in route.nexthops:
        parts.append(f"nexthop via {nh.gateway or '-'} dev {nh.dev}")
    parts.extend(f for f in route.flags if f in ("linkdown", "dead"))
    return " ".join(parts)


def hit_text(hit: Hit) -> str:
    """A table hit as a step shows it: the route, its table, the nexthop taken."""
    route = hit.route
    if (
        route.gateway and route.dev and route.type == "unicast" and route.dst != "0.0.0.0/0"
        and not (route.metric or route.nexthops or route.flags)
    ):  # fmt: skip
        # The commonest route (a first hit texts it): one f-string, the same text as below
        # (no nexthops, so the hit's dev and gateway are the route's).
        return (
            f"route {route.dst} via {route.gateway} dev {route.dev} "
            f"(table {table_name(hit.table)}) -> dev {route.dev} via {route.gateway}"
        )
    via = f" via {hit.gateway}" if hit.gateway else ""
    return f"route {route_text(hit.route)} (table {table_name(hit.table)}) -> dev {hit.dev}{via}"


class Devices(NamedTuple):
    """A snapshot's devices and one family's addresses, as a FIB looks them up."""

    ifindex: dict[str, int]
    ifname: dict[int, str]
    loopback: int
    local_addrs: dict[int, str]  # address -> the first device holding it
    dev_addrs: dict[str, list[int]]  # device -> its addresses, in order


def devices(snapshot: Snapshot, family: int, parse: Callable[[str], int]) -> Devices:
    ifindex = {link.name: link.index for link in snapshot.links}
    local_addrs: dict[int, str] = {}
    dev_addrs: dict[str, list[int]] = {}
    for addr in snapshot.addresses:
        if addr.family == family:
            value = parse(addr.local)
            local_addrs.setdefault(value, addr.dev)
            dev_addrs.setdefault(addr.dev, []).append(value)
    ifname = {link.index: link.name for link in snapshot.links}
    return Devices(ifindex, ifname, ifindex.get("lo", LOOPBACK_IFINDEX), local_addrs, dev_addrs)


LOOKUP: Final = -1  # rule_action: the rule looks a table up (the family's own step)


def rule_action(rule: Rule, goto_index: int | None, text: str,
                steps: list[KernelStep] | None) -> LookupResult | int | None:  # fmt: skip
    """``fib_rules_lookup``'s handling of a matching rule that does not look a table up:
    goto (the index to jump to; a missing target is ignored), nop, and the actions that
    end the walk with an errno; LOOKUP for a ``lookup TABLE`` rule, None to go on."""
    action = rule.action
    if action == "goto":
        if goto_index is None:
            note(steps, "rule", text, "goto target missing: rule ignored")
            return None
        note(steps, "rule", text, f"matched: goto {rule.goto}")
        return goto_index
    if action == "nop":
        note(steps, "rule", text, "matched: nop, continue")
        return None
    if action in RULE_ACTION_ERRORS:
        error = RULE_ACTION_ERRORS[action]
        note(steps, "rule", text, f"matched: {action} ({error})")
        return LookupResult(error, None, rule.priority)
    return LOOKUP


def goto_targets(rules: Sequence[Rule]) -> list[int | None]:
    """Per rule (sorted by priority), the index a ``goto`` jumps to: ``ctarget``, the first
    rule whose priority is the target; None for any other rule or a missing target."""
    first: dict[int, int] = {}
    for i, rule in enumerate(rules):
        first.setdefault(rule.priority, i)
    return [
        first.get(rule.goto) if rule.action == "goto" and rule.goto is not None else None
        for rule in rules
    ]


def ifindex_of(ifindex: dict[str, int], dev: str, what: str) -> int:
    """The device's index; a BadInputError naming it (and the known ones) when absent."""
    index = ifindex.get(dev)
    if index is None:
        known = ", ".join(sorted(ifindex)) or "none"
        raise BadInputError(f"{what} {dev!r}: no such interface in the snapshot (known: {known})")
    return index
