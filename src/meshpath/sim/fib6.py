"""The IPv6 FIB: ``ip -6 rule`` and the v6 routing tables of one Snapshot, compiled once.

IPv6 routing is not IPv4's with longer addresses; the differences this module models, each
checked against the kernel by tests/differential/test_sim_kernel6.py:

* Rules (``fib6_rule_match``, net/ipv6/fib6_rules.c): a ``from`` selector never matches a
  flow without a source address (``RT6_LOOKUP_F_HAS_SADDR`` unset), so ``not from X``
  always does; the default rules are ``0 lookup local`` and ``32766 lookup main`` only:
  table default (253) is never consulted without a rule naming it.
* Rule actions (``__fib6_rule_action``): a table without a match (the null entry) or with a
  ``throw`` route continues with the next rule; ``unreachable``/``blackhole``/``prohibit``
  routes end the walk with EHOSTUNREACH/EINVAL/EACCES; ``suppress_prefixlength`` rejects a
  found route of that length or shorter.
* Table lookup (``fib6_table_lookup``): longest prefix first, backtracking to shorter ones
  when no route of a prefix is usable. Among one prefix's routes (``rt6_select`` /
  ``find_match``) the lowest metric group is scored first, the rest only when none of it
  matched: a dead nexthop never matches, a linkdown one not where
  ``ignore_routes_with_linkdown`` is set; a route via the flow's device scores 2, via
  another 0, and under ``RT6_LOOKUP_F_IFACE`` (an ``oif`` without a source, or a
  link-local/multicast/loopback destination) a route via another device never matches.
  Reject routes hang off ``lo``, so an ``oif`` lookup backtracks past them.
* On input the lookup scores routes against the *ingress* device (``ip6_pol_route_input``
  passes ``flowi6_iif`` as the oif); rules see no oif and uid INVALID_UID.

A table is a dict per prefix length plus the lengths present, longest first.
"""

from __future__ import annotations

from typing import Final

from meshpath.errors import SnapshotError
from meshpath.sim.addr6 import MASKS6, ip6_to_int, parse_prefix6
from meshpath.sim.lookup import (
    LOOKUP,
    ROUTE_TYPE_ERRORS,
    Hit,
    LookupResult,
    describe_rule,
    devices,
    goto_targets,
    hit_text,
    note,
    route_text,
    rule_action,
    rule_selectors,
    table_name,
)
from meshpath.sim.values import KernelStep
from meshpath.state import TABLE_LOCAL, TABLE_MAIN, Ipv6Conf, Route, Rule, Snapshot

INVALID_UID: Final = 0xFFFFFFFF  # the uid of a forwarded packet's flow (inet6_rtm_getroute)
DSCP_MASK: Final = 0xFC
# ip -6 rule on a fresh namespace: no rule for table default.
DEFAULT_RULES6: Final = (
    Rule(family=6, priority=0, table=TABLE_LOCAL),
    Rule(family=6, priority=32766, table=TABLE_MAIN),
)
_DEFAULT_CONF: Final = Ipv6Conf(forwarding=0)
_NO_MATCH: Final = -1


class Flow6:
    """``struct flowi6`` plus the lookup flags that matter (HAS_SADDR, IFACE)."""

    __slots__ = ("daddr", "dport", "has_saddr", "iif", "mark", "nh_oif", "oif", "proto",
                 "saddr", "sport", "strict", "tos", "uid")  # fmt: skip

    def __init__(
        self,
        daddr: int,
        saddr: int,
        *,
        iif: int,
        oif: int = 0,
        nh_oif: int = 0,
        strict: bool = False,
        mark: int = 0,
        tos: int = 0,
        proto: int = 0,
        sport: int = 0,
        dport: int = 0,
        uid: int = 0,
    ) -> None:
        self.daddr = daddr
        self.saddr = saddr
        self.has_saddr = saddr != 0  # `from ::` is no source at all (ipv6_addr_any)
        self.iif = iif
        self.oif = oif  # what rules' `oif` compares (flowi6_oif)
        self.nh_oif = nh_oif  # what route scoring compares (the oif argument of ip6_pol_route)
        self.strict = strict  # RT6_LOOKUP_F_IFACE
        self.mark = mark
        self.tos = tos
        self.proto = proto
        self.sport = sport
        self.dport = dport
        self.uid = uid


class CompiledRule6:
    """One ``ip -6 rule`` with its selectors as integers (``struct fib6_rule``)."""

    __slots__ = ("dport", "dst", "dstmask", "goto_index", "iif", "mark", "mask", "proto",
                 "rule", "sport", "src", "srcmask", "suppress_plen", "text", "uid")  # fmt: skip

    def __init__(self, rule: Rule, ifindex: dict[str, int]) -> None:
        self.rule = rule
        self.src, self.srcmask = _prefix_and_mask(rule.src)
        self.dst, self.dstmask = _prefix_and_mask(rule.dst)
        # A rule naming an absent device is "detached": its ifindex matches nothing.
        iif = ifindex.get(rule.iif, _NO_MATCH) if rule.iif else 0
        oif = ifindex.get(rule.oif, _NO_MATCH) if rule.oif else 0
        self.iif = (iif, oif)
        self.mark, self.mask, self.proto, self.sport, self.dport = rule_selectors(rule)
        self.uid = (rule.uidrange.start, rule.uidrange.end) if rule.uidrange else (0, INVALID_UID)
        sp = rule.suppress_prefixlength
        self.suppress_plen = _NO_MATCH if sp is None else sp
        self.goto_index: int | None = None
        self.text = describe_rule(rule)


def _prefix_and_mask(cidr: str | None) -> tuple[int, int]:
    if not cidr:
        return 0, 0
    net, plen = parse_prefix6(cidr)
    return net, MASKS6[plen]


def match_rule6(r: CompiledRule6, fl: Flow6) -> bool:
    """``fib_rule_match`` then ``fib6_rule_match``; ``not`` inverts the whole answer."""
    rule = r.rule
    iif, oif = r.iif
    ok = (
        (not iif or iif == fl.iif)
        and (not oif or oif == fl.oif)
        and not ((r.mark ^ fl.mark) & r.mask)
        and r.uid[0] <= fl.uid <= r.uid[1]
        and not rule.l3mdev
        and not ((fl.daddr ^ r.dst) & r.dstmask)
        and (not r.srcmask or (fl.has_saddr and not ((fl.saddr ^ r.src) & r.srcmask)))
        and (not rule.tos or rule.tos == fl.tos & DSCP_MASK)
        and (not r.proto or r.proto == fl.proto)
        and (r.sport is None or r.sport[0] <= fl.sport <= r.sport[1])
        and (r.dport is None or r.dport[0] <= fl.dport <= r.dport[1])
    )
    return ok != rule.invert


class RouteTable6:
    """One v6 table: per prefix length, network -> the prefix's routes by metric."""

    __slots__ = ("levels", "plens", "table")

    def __init__(self, table: int, routes: list[tuple[int, int, Route]]) -> None:
        self.table = table
        grouped: dict[int, dict[int, list[Route]]] = {}
        for net, plen, route in routes:  # snapshot order = the kernel's leaf order
            grouped.setdefault(plen, {}).setdefault(net, []).append(route)
        self.levels = {
            plen: {net: tuple(sorted(rs, key=lambda r: r.metric)) for net, rs in nets.items()}
            for plen, nets in grouped.items()
        }
        self.plens = tuple(sorted(self.levels, reverse=True))

    def __len__(self) -> int:
        return sum(len(rs) for nets in self.levels.values() for rs in nets.values())


class Fib6:
    """The IPv6 routing state of one Snapshot. Build with :meth:`from_snapshot`."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.ifindex, self.ifname, self.loopback, self.local_addrs, self.dev_addrs = devices(
            snapshot, 6, ip6_to_int
        )
        self.conf = snapshot.sysctls.ipv6
        self.all_conf = self.conf.get("all", _DEFAULT_CONF)
        triples: dict[int, list[tuple[int, int, Route]]] = {}
        for route in snapshot.routes:
            if route.family == 6:
                triples.setdefault(route.table, []).append((*parse_prefix6(route.dst), route))
        self.tables = {tid: RouteTable6(tid, ts) for tid, ts in triples.items()}
        self.rules = _compile_rules6(snapshot.rules, self.ifindex)

    @classmethod
    def from_snapshot(cls, snapshot: Snapshot) -> Fib6:
        """The Fib6 of ``snapshot``; a SnapshotError when the model cannot read it (the v4
        :class:`~meshpath.sim.fib.Fib` builds it on its first IPv6 question, and owns it)."""
        try:
            return cls(snapshot)
        except (ValueError, KeyError, IndexError) as exc:
            raise SnapshotError(
                f"snapshot: an IPv6 address or prefix the model cannot read ({exc!r})"
            ) from exc

    # -- sysctls ---------------------------------------------------------------------------

    def dev_conf(self, dev: str) -> Ipv6Conf:
        return self.conf.get(dev) or self.conf.get("default") or _DEFAULT_CONF

    @property
    def forwarding(self) -> bool:
        """``ip6_forward`` reads ``net.ipv6.conf.all.forwarding`` only: a device's own
        ``forwarding`` makes it a router for NDP/RA, it does not gate forwarding (measured:
        all=1 with the ingress or egress device at 0 forwards; all=0 with both at 1 drops)."""
        return bool(self.all_conf.forwarding)

    def ignore_linkdown(self, dev: str) -> bool:
        """``ip6_ignore_linkdown``: the device's own ``ignore_routes_with_linkdown`` (unlike
        IPv4, ``all`` is not consulted: writing it copies the value to every device)."""
        return bool(self.dev_conf(dev).ignore_routes_with_linkdown)

    # -- lookups ---------------------------------------------------------------------------

    def lookup_table(
        self, table: RouteTable6, fl: Flow6, steps: list[KernelStep] | None
    ) -> tuple[str | None, Hit | None]:
        """``fib6_table_lookup``: the longest prefix with a usable route, backtracking.

        ("EAGAIN", None) for the null entry and for a ``throw`` route (the walk goes on);
        another errno for an unreachable/prohibit/blackhole route."""
        daddr = fl.daddr
        for plen in table.plens:
            routes = table.levels[plen].get(daddr & MASKS6[plen])
            if routes is None:
                continue
            hit = self._select(routes, plen, table.table, fl)
            if hit is None:
                note(steps, "route", f"table {table_name(table.table)}: {routes[0].dst}",
                     "no usable route of this prefix: backtrack")  # fmt: skip
                continue
            error = ROUTE_TYPE_ERRORS.get(hit.route.type)
            if error is not None:
                note(steps, "route", f"table {table_name(table.table)}: {route_text(hit.route)}",
                     f"{hit.route.type}: {error}")  # fmt: skip
                return error, None
            return None, hit
        return "EAGAIN", None

    def _select(self, routes: tuple[Route, ...], plen: int, table: int, fl: Flow6) -> Hit | None:
        """``rt6_select``/``find_rr_leaf``: best score in the lowest-metric group; the
        other routes only when that group has no match. Ties go to the first in the leaf."""
        first = routes[0].metric
        group = [r for r in routes if r.metric == first]
        best = self._best(group, plen, table, fl)
        if best is None and len(group) < len(routes):
            best = self._best(routes[len(group) :], plen, table, fl)
        return best

    def _best(self, routes: tuple[Route, ...] | list[Route], plen: int, table: int,
              fl: Flow6) -> Hit | None:  # fmt: skip
        best: Hit | None = None
        best_score = _NO_MATCH
        for route in routes:
            scored = self._score(route, plen, table, fl)
            if scored is not None and scored[0] > best_score:
                best_score, best = scored
        return best

    def _score(self, route: Route, plen: int, table: int, fl: Flow6) -> tuple[int, Hit] | None:
        """``find_match`` + ``rt6_score_route`` for one route. A multipath route's legs are
        siblings in the kernel's leaf, scored like routes: its best leg (the first of equal
        scores) is the sibling ``rt6_select`` takes, which ``fib6_select_path`` then hashes
        from (route6.py pick_leg6)."""
        legs = [(nh.dev, nh.gateway, nh.flags) for nh in route.nexthops] or [
            (route.dev, route.gateway, route.flags)
        ]
        best: tuple[int, Hit] | None = None
        for dev, gateway, flags in legs:
            if not self.leg_alive(dev, flags):
                continue
            index = self.ifindex.get(dev or "", _NO_MATCH)
            if not fl.nh_oif or index == fl.nh_oif:
                score = 2
            elif fl.strict:
                continue
            else:
                score = 0
            if best is None or score > best[0]:
                best = score, Hit(route, plen, table, dev, gateway, bool(route.nexthops))
        return best

    def leg_alive(self, dev: str | None, flags: tuple[str, ...]) -> bool:
        """Not ``rt6_is_dead``: not dead, nor linkdown where the device ignores such routes."""
        return "dead" not in flags and not (
            "linkdown" in flags and dev and self.ignore_linkdown(dev)
        )

    def fib_lookup(self, fl: Flow6, steps: list[KernelStep] | None = None) -> LookupResult:
        """``fib6_rule_lookup`` through ``fib_rules_lookup``: the rules in priority order."""
        rules = self.rules
        i, n = 0, len(rules)
        while i < n:
            r = rules[i]
            i += 1
            if not match_rule6(r, fl):
                continue
            outcome = self._apply_rule(r, fl, steps)
            if isinstance(outcome, int):
                i = outcome
            elif outcome is not None:
                return outcome
        note(steps, "rule", "end of rules", "no rule gave a route: ENETUNREACH")
        return LookupResult("ENETUNREACH", None, None)

    def _apply_rule(
        self, r: CompiledRule6, fl: Flow6, steps: list[KernelStep] | None
    ) -> LookupResult | int | None:
        """One matching rule: a result, the index to jump to (goto), or None to go on."""
        outcome = rule_action(r.rule, r.goto_index, r.text, steps)
        if outcome == LOOKUP:
            return self._rule_lookup(r, fl, steps)
        return outcome

    def _rule_lookup(
        self, r: CompiledRule6, fl: Flow6, steps: list[KernelStep] | None
    ) -> LookupResult | None:
        """``__fib6_rule_action`` for ``lookup TABLE`` and ``fib6_rule_suppress``."""
        table = self.tables.get(r.rule.table or 0)
        if table is None:
            note(steps, "rule", r.text, "matched; table does not exist: continue")
            return None
        error, hit = self.lookup_table(table, fl, steps)
        if error == "EAGAIN":
            note(steps, "rule", r.text, "matched; no route (or throw) in the table: continue")
            return None
        if hit is not None and hit.plen <= r.suppress_plen:
            note(steps, "rule", r.text, f"matched; {hit_text(hit)} suppressed: continue")
            return None
        note(steps, "rule", r.text, f"matched; {hit_text(hit)}" if hit else f"matched; {error}")
        return LookupResult(error, hit, r.rule.priority)


def _compile_rules6(rules: tuple[Rule, ...], ifindex: dict[str, int]) -> tuple[CompiledRule6, ...]:
    # Sorted by priority, same priority in insertion order (stable). A snapshot without any
    # v6 rule (IPv6 off, or an old fixture) behaves as a fresh namespace.
    v6 = [r for r in rules if r.family == 6] or list(DEFAULT_RULES6)
    ordered = sorted(v6, key=lambda r: r.priority)
    compiled = tuple(CompiledRule6(r, ifindex) for r in ordered)
    for c, target in zip(compiled, goto_targets(ordered), strict=True):
        c.goto_index = target
    return compiled
