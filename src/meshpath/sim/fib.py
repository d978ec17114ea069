"""The FIB: ip rules and routing tables of one Snapshot, compiled once for fast lookups.

The kernel's steps, each a function or method named for it:

* :func:`match_rule` — ``fib_rule_match`` + ``fib4_rule_match`` (net/core/fib_rules.c,
  net/ipv4/fib_rules.c): does one ``ip rule`` select this flow?
* :meth:`Fib.fib_lookup` — ``fib_rules_lookup``: rules in priority order; goto/nop; rule
  actions; a table without a match (or a ``throw`` route) continues with the next rule;
  ``suppress_prefixlength``/``suppress_ifgroup`` (``fib4_rule_suppress``) reject a result.
  Without custom rules the kernel skips the rules and looks up main (merged with local)
  then default, exactly as ``fib_lookup`` in include/net/ip_fib.h does.
* :meth:`Fib.lookup_table` — ``fib_table_lookup`` (net/ipv4/fib_trie.c): longest prefix
  first; among the routes of one prefix the TOS-specific ones, then the lowest metric;
  ``throw``/``unreachable``/``prohibit``/``blackhole`` end the table lookup with their error;
  dead nexthops, and linkdown ones where ``ignore_routes_with_linkdown`` is set, are skipped
  (then the next route, then shorter prefixes).

A table is a dict per prefix length plus, per /16, the prefix lengths present under it, so a
lookup probes only lengths that exist there. Routes are kept as the Snapshot's own objects.
"""

from __future__ import annotations

import gc
from typing import Final, NamedTuple

from meshpath.errors import SnapshotError
from meshpath.sim.addr import MASKS, OCTETS, ip_to_int, parse_prefix
from meshpath.sim.values import KernelStep
from meshpath.state import TABLE_DEFAULT, TABLE_LOCAL, TABLE_MAIN, Ipv4Conf, Route, Rule, Snapshot
from meshpath.state.validate import check_rule_goto

LOOPBACK_IFINDEX: Final = 1
# fib_dscp_masked_match: rules and routes compare the packet's TOS under the legacy mask.
LEGACY_TOS_MASK: Final = 0x1C
UID_ROOT: Final = 0
ANY_UID: Final = (0, 0xFFFFFFFF)

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
# Bound on Fib.memo: a few MiB at most, then it starts over.
MEMO_MAX: Final = 1 << 16
DEFAULT_RULES: Final = frozenset({(0, TABLE_LOCAL), (32766, TABLE_MAIN), (32767, TABLE_DEFAULT)})
_DEFAULT_CONF: Final = Ipv4Conf(forwarding=0, rp_filter=0)


class Flow:
    """``struct flowi4``: the lookup key (addresses and devices as integers)."""

    __slots__ = (
        "daddr", "dport", "iif", "mark", "oif", "proto", "saddr", "scope", "sport", "tos", "uid",
    )  # fmt: skip

    def __init__(
        self,
        daddr: int,
        saddr: int,
        *,
        iif: int,
        oif: int = 0,
        mark: int = 0,
        tos: int = 0,
        proto: int = 0,
        sport: int = 0,
        dport: int = 0,
        uid: int = UID_ROOT,
        scope: int = 0,
    ) -> None:
        self.scope = scope  # routes with a narrower scope are skipped (fib_table_lookup)
        self.daddr = daddr
        self.saddr = saddr
        self.iif = iif
        self.oif = oif
        self.mark = mark
        self.tos = tos
        self.proto = proto
        self.sport = sport
        self.dport = dport
        self.uid = uid


class Hit(NamedTuple):
    """A successful table lookup: the route, its prefix length and the chosen nexthop."""

    route: Route
    plen: int
    table: int
    dev: str | None
    gateway: str | None
    multipath: bool


class LookupResult(NamedTuple):
    """What ``fib_lookup`` returns: an errno name or a hit, and the deciding rule."""

    error: str | None
    hit: Hit | None
    rule: int | None


class CompiledRule:
    """One ``ip rule`` with its selectors as integers (``struct fib4_rule``)."""

    __slots__ = (
        "action", "dport", "dst", "dstmask", "goto_index", "hit_steps", "iif", "invert", "l3mdev",
        "mark", "mask", "miss_step", "oif", "priority", "proto", "rule", "sport", "src", "srcmask",
        "suppress_ifgroup", "suppress_plen", "table", "table_ref", "text", "tos", "trivial", "uid",
    )  # fmt: skip

    def __init__(self, rule: Rule, ifindex: dict[str, int]) -> None:
        self.rule = rule
        self.priority = rule.priority
        self.action = rule.action
        self.table = rule.table
        self.invert = rule.invert
        self.src, self.srcmask = _prefix_and_mask(rule.src)
        self.dst, self.dstmask = _prefix_and_mask(rule.dst)
        # A rule naming an absent device is "detached": its ifindex matches nothing.
        self.iif = ifindex.get(rule.iif, -1) if rule.iif else 0
        self.oif = ifindex.get(rule.oif, -1) if rule.oif else 0
        self.mark = rule.fwmark or 0
        self.mask = (0xFFFFFFFF if rule.fwmask is None else rule.fwmask) if rule.fwmark else 0
        if rule.fwmark is None and rule.fwmask:
            self.mask = rule.fwmask
        self.tos = rule.tos
        self.proto = rule.ipproto or 0
        self.sport = (rule.sport.start, rule.sport.end) if rule.sport else None
        self.dport = (rule.dport.start, rule.dport.end) if rule.dport else None
        self.uid = (rule.uidrange.start, rule.uidrange.end) if rule.uidrange else ANY_UID
        self.l3mdev = rule.l3mdev
        self.suppress_plen = (
            -1 if rule.suppress_prefixlength is None else rule.suppress_prefixlength
        )
        self.suppress_ifgroup = -1 if rule.suppress_ifgroup is None else rule.suppress_ifgroup
        self.goto_index: int | None = None
        self.table_ref: RouteTable | None = None  # set by Fib: the table this rule looks up
        self.text = describe_rule(rule)
        # The commonest step, shared (Steps are frozen): a lookup rule's table had no route.
        self.miss_step = KernelStep("rule", self.text, "matched; no route in the table: continue")
        self.hit_steps: dict[int, KernelStep] = {}  # id(route) -> step; the Fib keeps the routes
        # No selector at all (the default rules, WARP's suppress rule): matches everything.
        self.trivial = not (
            self.iif or self.oif or self.mask or self.uid != ANY_UID or self.l3mdev
            or self.srcmask or self.dstmask or self.tos or self.proto or self.sport or self.dport
        )  # fmt: skip


def _prefix_and_mask(cidr: str | None) -> tuple[int, int]:
    if not cidr:
        return 0, 0
    net, plen = parse_prefix(cidr)
    return net, MASKS[plen]


def match_rule(r: CompiledRule, fl: Flow) -> bool:
    """``fib_rule_match`` then ``fib4_rule_match``; ``not`` inverts the whole answer.

    iif/oif compare ifindexes (``iif lo`` is LOOPBACK_IFINDEX: locally generated), fwmark
    is ``(mark ^ fwmark) & mask``, the uid range defaults to all uids, an ``l3mdev`` rule
    matches only VRF slaves (none here), then from/to prefixes, tos, ipproto and ports.
    """
    ok = (
        (not r.iif or r.iif == fl.iif)
        and (not r.oif or r.oif == fl.oif)
        and not ((r.mark ^ fl.mark) & r.mask)
        and r.uid[0] <= fl.uid <= r.uid[1]
        and not r.l3mdev
        and not ((fl.saddr ^ r.src) & r.srcmask)
        and not ((fl.daddr ^ r.dst) & r.dstmask)
        and (not r.tos or r.tos == fl.tos & LEGACY_TOS_MASK)
        and (not r.proto or r.proto == fl.proto)
        and (r.sport is None or r.sport[0] <= fl.sport <= r.sport[1])
        and (r.dport is None or r.dport[0] <= fl.dport <= r.dport[1])
    )
    return ok != r.invert


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


Entry = Route | tuple[Route, ...]


class RouteTable:
    """One routing table: a dict per prefix length and the lengths present per /16."""

    __slots__ = ("aliases", "buckets", "by_len", "short", "table")

    def __init__(self, table: int) -> None:
        self.table = table
        self.by_len: list[dict[int, Entry]] = [{} for _ in range(33)]
        self.buckets: dict[int, tuple[int, ...]] = {}
        self.short: tuple[int, ...] = ()
        # (plen, net) -> every route of that prefix in insertion order, while building;
        # freeze() sorts each once (sorting on every insert made n aliases cost n² log n).
        self.aliases: dict[tuple[int, int], list[Route]] = {}

    def add(self, net: int, plen: int, route: Route) -> None:
        """Index one route (call :meth:`freeze` after the last)."""
        level = self.by_len[plen]
        old = level.setdefault(net, route)
        if old is not route:
            self.alias(plen, net, old, route)

    def alias(self, plen: int, net: int, old: Entry, route: Route) -> None:
        """Another route for a prefix that has one: kept in order until :meth:`freeze`."""
        found = self.aliases.get((plen, net))
        if found is None:
            self.aliases[(plen, net)] = [*_routes_of(old), route]
            # A tuple marks the prefix as aliased: from now on every route is appended,
            # even the very object stored first (as when each insert built the tuple).
            self.by_len[plen][net] = (route,)
        else:
            found.append(route)

    def freeze(self) -> RouteTable:
        """Sort each prefix's aliases once, then record per /16 which prefix lengths >= 16
        exist under it (longest first)."""
        for (plen, net), routes in self.aliases.items():
            self.by_len[plen][net] = _ordered(routes)
        self.aliases = {}
        buckets: dict[int, list[int]] = {}
        for plen in range(32, 15, -1):
            level = self.by_len[plen]
            if not level:
                continue
            for top in {net >> 16 for net in level}:
                got = buckets.get(top)
                if got is None:
                    buckets[top] = [plen]
                else:
                    got.append(plen)
        # Each bucket lists every length to probe there (its long ones, then the short ones),
        # so a lookup makes no new tuple; a /16 without long prefixes probes ``short``.
        self.short = tuple(p for p in range(15, -1, -1) if self.by_len[p])
        self.buckets = {top: (*plens, *self.short) for top, plens in buckets.items()}
        return self

    @classmethod
    def build(cls, table: int, routes: list[tuple[int, int, Route]]) -> RouteTable:
        """A table from (network, prefix length, route) triples."""
        self = cls(table)
        for net, plen, route in routes:
            self.add(net, plen, route)
        return self.freeze()

    def __len__(self) -> int:
        return sum(
            len(e) if isinstance(e, tuple) else 1 for level in self.by_len for e in level.values()
        )


class Fib:
    """The routing state of one Snapshot, compiled for lookups. Build with :meth:`from_snapshot`."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.ifindex = {link.name: link.index for link in snapshot.links}
        self.ifname = {link.index: link.name for link in snapshot.links}
        self.ifgroup = {link.name: link.group for link in snapshot.links}
        self.loopback = self.ifindex.get("lo", LOOPBACK_IFINDEX)
        self.conf = snapshot.sysctls.ipv4
        self.all_conf = self.conf.get("all", _DEFAULT_CONF)
        self.local_addrs: dict[int, str] = {}
        self.dev_addrs: dict[str, list[int]] = {}
        for addr in snapshot.addresses:
            if addr.family == 4:
                value = ip_to_int(addr.local)
                self.local_addrs.setdefault(value, addr.dev)
                self.dev_addrs.setdefault(addr.dev, []).append(value)
        self.tables = _build_tables(snapshot.routes)
        self.rules = _compile_rules(snapshot.rules, self.ifindex)
        for r in self.rules:  # resolved once: the tables never change
            r.table_ref = self.tables.get(r.table or 0)
        self.custom_rules = {(r.priority, r.table) for r in snapshot.rules if r.family == 4} != (
            DEFAULT_RULES
        ) or any(r.rule.action != "lookup" or _has_selectors(r.rule) for r in self.rules)
        # Local routes the kernel added itself have proto kernel; others were added by hand
        # (fib_has_custom_local_routes).
        self.custom_local_routes = any(
            r.type == "local" and r.protocol != 2 for r in snapshot.routes if r.family == 4
        )
        # fib_rule_requires_fldissect: ipproto/port selectors, except on `iif lo` rules.
        self.fldissect = any(
            (r.proto or r.sport or r.dport) and r.iif != self.loopback for r in self.rules
        )
        self._merged: RouteTable | None = None
        self._texts: dict[int, str] = {}  # id(route) -> hit_text; routes live as long as self
        self._orconf: dict[tuple[str, str], int] = {}
        # (table, dev, gateway) -> the gateway resolves to a local route (route.py _on_link)
        self.gateway_on_link: dict[tuple[int, str | None, str], bool] = {}
        # Rules with a `from` selector: the only place a lookup reads saddr (quiet_lookup).
        self._src_rules = tuple((r.src, r.srcmask) for r in self.rules if r.srcmask)
        # Results that are a pure function of their key (a Fib never changes): see
        # route.py check_rp_filter. Bounded by remember().
        self.memo: dict[tuple[object, ...], object] = {}

    @classmethod
    def from_snapshot(cls, snapshot: Snapshot) -> Fib:
        """The Fib of ``snapshot``, built once and cached for the last few snapshots."""
        for snap, fib in _CACHE:
            if snap is snapshot:
                return fib
        try:
            fib = cls(snapshot)
        except (ValueError, KeyError, IndexError) as exc:
            # The codec checks types, not meaning: a route or rule whose address is not
            # an IPv4 address/prefix (a hand-edited snapshot) surfaces here, while compiling.
            raise SnapshotError(
                f"snapshot: an address or prefix the model cannot read ({exc!r})"
            ) from exc
        _CACHE.insert(0, (snapshot, fib))
        del _CACHE[4:]
        return fib

    # -- sysctls (include/linux/inetdevice.h IN_DEV_* accessors) --------------------------

    def dev_conf(self, dev: str) -> Ipv4Conf:
        return self.conf.get(dev) or self.conf.get("default") or _DEFAULT_CONF

    def orconf(self, dev: str, key: str) -> int:
        """IN_DEV_ORCONF: set if set for ``all`` or for the device."""
        found = self._orconf.get((dev, key))
        if found is None:
            found = int(bool(getattr(self.all_conf, key) or getattr(self.dev_conf(dev), key)))
            self._orconf[(dev, key)] = found
        return found

    def maxconf(self, dev: str, key: str) -> int:
        """IN_DEV_MAXCONF: the larger of ``all`` and the device (rp_filter)."""
        found = self._orconf.get((dev, "max:" + key))
        if found is None:
            found = max(int(getattr(self.all_conf, key)), int(getattr(self.dev_conf(dev), key)))
            self._orconf[(dev, "max:" + key)] = found
        return found

    # -- lookups --------------------------------------------------------------------------

    def lookup_table(
        self, table: RouteTable, fl: Flow, steps: list[KernelStep] | None, linkstate: bool = True
    ) -> tuple[str | None, Hit | None]:
        """``fib_table_lookup``: the first usable route of the longest covering prefix.

        Returns ("EAGAIN", None) when nothing matches (or a ``throw`` route does) so the rule
        walk continues; another errno when an unreachable/prohibit/blackhole route matches.
        """
        daddr = fl.daddr
        by_len = table.by_len
        masks = MASKS
        for plen in table.buckets.get(daddr >> 16, table.short):
            entry = by_len[plen].get(daddr & masks[plen])
            if entry is None:
                continue
            if entry.__class__ is Route and not (
                entry.tos or entry.flags or entry.nexthops or fl.oif or fl.scope
            ):
                # The common case: one plain route for this prefix.
                route = entry
                error = ROUTE_TYPE_ERRORS.get(route.type)
                if error is None:
                    return None, Hit(route, plen, table.table, route.dev, route.gateway, False)
            found = self._scan(table, entry, plen, fl, steps, linkstate)
            if found is not None:
                return found
        return "EAGAIN", None

    def _scan(
        self,
        table: RouteTable,
        entry: Entry,
        plen: int,
        fl: Flow,
        steps: list[KernelStep] | None,
        linkstate: bool,
    ) -> tuple[str | None, Hit | None] | None:
        """The routes of one prefix in the kernel's order; None to try shorter prefixes."""
        for route in entry if isinstance(entry, tuple) else (entry,):
            if (route.tos and route.tos != fl.tos & LEGACY_TOS_MASK) or route.scope < fl.scope:
                continue
            error = ROUTE_TYPE_ERRORS.get(route.type)
            if error is not None:
                if steps is not None:
                    steps.append(_route_step(table.table, route, f"{route.type}: {error}"))
                return error, None
            hit = self._nexthop(route, plen, table.table, fl, linkstate)
            if hit is not None:
                return None, hit
            if steps is not None:
                steps.append(_route_step(table.table, route, "no usable nexthop: skipped"))
        return None

    def _nexthop(
        self, route: Route, plen: int, table: int, fl: Flow, linkstate: bool
    ) -> Hit | None:
        """The first nexthop that is not dead, not an ignored linkdown one, and on ``oif``."""
        if route.nexthops:
            for nh in route.nexthops:
                if self._nh_usable(nh.dev, nh.flags, fl, linkstate):
                    return Hit(route, plen, table, nh.dev, nh.gateway, True)
            return None
        flags = route.flags
        if flags and ("dead" in flags or not self._nh_usable(route.dev, flags, fl, linkstate)):
            return None
        if fl.oif and route.dev is not None and self.ifindex.get(route.dev, -1) != fl.oif:
            return None
        return Hit(route, plen, table, route.dev, route.gateway, False)

    def _nh_usable(
        self, dev: str | None, flags: tuple[str, ...], fl: Flow, linkstate: bool
    ) -> bool:
        if "dead" in flags:
            return False
        if (
            linkstate
            and "linkdown" in flags
            and dev
            and self.orconf(dev, "ignore_routes_with_linkdown")
        ):
            return False
        return not (fl.oif and dev is not None and self.ifindex.get(dev, -1) != fl.oif)

    def fib_lookup(
        self, fl: Flow, steps: list[KernelStep] | None = None, *, linkstate: bool = True
    ) -> LookupResult:
        """``fib_lookup``: the rules in priority order, or main+default without custom rules."""
        if not self.custom_rules:
            return self._lookup_without_rules(fl, steps, linkstate)
        rules = self.rules
        i, n = 0, len(rules)
        while i < n:
            r = rules[i]
            i += 1
            if r.invert if r.trivial else not match_rule(r, fl):
                continue
            if r.action == "lookup":
                found = self._rule_lookup(r, fl, steps, linkstate, r.text)
                if found is not None:
                    return found
                continue
            outcome = self._apply_rule(r, fl, steps, linkstate)
            if isinstance(outcome, int):
                i = outcome
                continue
            if outcome is not None:
                return outcome
        if steps is not None:
            steps.append(KernelStep("rule", "end of rules", "no rule gave a route: ENETUNREACH"))
        return LookupResult("ENETUNREACH", None, None)

    def src_class(self, saddr: int) -> tuple[bool, ...]:
        """All a rule walk reads of saddr: which rules' ``from`` prefixes hold it (tables
        match daddr only). Part of a memo key (route.py check_rp_filter)."""
        if not self._src_rules:
            return ()
        return tuple(((saddr ^ net) & mask) == 0 for net, mask in self._src_rules)

    def remember(self, key: tuple[object, ...], value: object) -> None:
        """Store in :attr:`memo`, starting over past MEMO_MAX entries (bounded memory)."""
        if len(self.memo) >= MEMO_MAX:
            self.memo.clear()
        self.memo[key] = value

    def _apply_rule(
        self, r: CompiledRule, fl: Flow, steps: list[KernelStep] | None, linkstate: bool
    ) -> LookupResult | int | None:
        """One matching rule: a result, the index to jump to (goto), or None to go on."""
        text = r.text
        if r.action == "goto":
            if r.goto_index is None:
                note(steps, "rule", text, "goto target missing: rule ignored")
                return None
            note(steps, "rule", text, f"matched: goto {r.rule.goto}")
            return r.goto_index
        if r.action == "nop":
            note(steps, "rule", text, "matched: nop, continue")
            return None
        if r.action in RULE_ACTION_ERRORS:
            error = RULE_ACTION_ERRORS[r.action]
            note(steps, "rule", text, f"matched: {r.action} ({error})")
            return LookupResult(error, None, r.priority)
        return self._rule_lookup(r, fl, steps, linkstate, text)

    def _rule_lookup(
        self, r: CompiledRule, fl: Flow, steps: list[KernelStep] | None, linkstate: bool, text: str
    ) -> LookupResult | None:
        """``fib4_rule_action`` + ``fib4_rule_suppress`` for a ``lookup TABLE`` rule."""
        table = r.table_ref
        if table is None:
            note(steps, "rule", text, "matched; table does not exist: continue")
            return None
        error, hit = self.lookup_table(table, fl, steps, linkstate)  # positional: hot path
        if hit is not None and (
            hit.plen <= r.suppress_plen or (r.suppress_ifgroup != -1 and self._suppressed(r, hit))
        ):
            if steps is not None:
                steps.append(self._hit_step(r, hit, suppressed=True))
            return None
        if error == "EAGAIN":
            if steps is not None:
                steps.append(r.miss_step)
            return None
        if steps is not None:
            steps.append(
                self._hit_step(r, hit) if hit else KernelStep("rule", text, f"matched; {error}")
            )
        return LookupResult(error, hit, r.priority)

    def _hit_step(self, r: CompiledRule, hit: Hit, *, suppressed: bool = False) -> KernelStep:
        """``rule matched; route ...`` (or ``... suppressed: continue``): one shared KernelStep
        per rule, route and verdict, under the same conditions as :meth:`hit_text`."""
        route = hit.route
        reason = " suppressed: continue" if suppressed else ""
        if hit.multipath or hit.table != route.table:
            return KernelStep("rule", r.text, f"matched; {_hit_text(hit)}{reason}")
        key = ~id(route) if suppressed else id(route)  # ids are >= 0: ~id never collides
        step = r.hit_steps.get(key)
        if step is None:
            step = r.hit_steps[key] = KernelStep(
                "rule", r.text, f"matched; {_hit_text(hit)}{reason}"
            )
        return step

    def hit_text(self, hit: Hit) -> str:
        """A hit for a step. Cached per route (lookups hit the same routes a lot) when the
        hit is the route's own dev/gateway/table: not a multipath leg, nor a local route
        found through merged main (reported as table main)."""
        route = hit.route
        if hit.multipath or hit.table != route.table:
            return _hit_text(hit)
        text = self._texts.get(id(route))
        if text is None:
            text = self._texts[id(route)] = _hit_text(hit)
        return text

    def _suppressed(self, r: CompiledRule, hit: Hit) -> bool:
        """``fib4_rule_suppress``: prefix length <= suppress_prefixlength (checked inline by
        the caller), or the first nexthop's device in the suppressed interface group."""
        if hit.plen <= r.suppress_plen:
            return True
        first = hit.route.nexthops[0].dev if hit.route.nexthops else hit.route.dev
        return (
            r.suppress_ifgroup != -1
            and first is not None
            and (self.ifgroup.get(first) == r.suppress_ifgroup)
        )

    def _lookup_without_rules(
        self, fl: Flow, steps: list[KernelStep] | None, linkstate: bool
    ) -> LookupResult:
        """No custom rules: main (whose trie holds the local table too) then default; an
        error in main also falls through to default, and "nothing" becomes ENETUNREACH."""
        note(steps, "rule", "default rules only", "lookup main (merged with local), then default")
        error, hit = self.lookup_table(self.merged_main(), fl, steps, linkstate=linkstate)
        if error is None and hit is not None:
            note(steps, "lookup", "table main", self.hit_text(hit))
            return LookupResult(None, hit, None)
        default = self.tables.get(TABLE_DEFAULT)
        if default is not None:
            error, hit = self.lookup_table(default, fl, steps, linkstate=linkstate)
        if error == "EAGAIN":
            error = "ENETUNREACH"
        note(steps, "lookup", "table default", self.hit_text(hit) if hit else str(error))
        return LookupResult(error, hit, None)

    def merged_main(self) -> RouteTable:
        """Main and local in one table, as the kernel keeps them before any custom rule;
        for one prefix local's routes come first; a hit reports table main."""
        if self._merged is None:
            triples = [
                (*parse_prefix(r.dst), r)
                for tid in (TABLE_LOCAL, TABLE_MAIN)
                for r in self.snapshot.routes
                if r.family == 4 and r.table == tid
            ]
            self._merged = _merge_keep_order(triples)
        return self._merged


_CACHE: list[tuple[Snapshot, Fib]] = []


def _merge_keep_order(triples: list[tuple[int, int, Route]]) -> RouteTable:
    # Local before main for one prefix: build from local-first order and keep it stable
    # (sorted() is stable; the per-table order key then applies within each table).
    table = RouteTable(TABLE_MAIN)
    groups: dict[tuple[int, int], list[Route]] = {}
    for net, plen, route in triples:
        groups.setdefault((plen, net), []).append(route)
    built = RouteTable.build(TABLE_MAIN, [(net, plen, rs[0]) for (plen, net), rs in groups.items()])
    for (plen, net), rs in groups.items():
        local = sorted((r for r in rs if r.table == TABLE_LOCAL), key=lambda r: (-r.tos, r.metric))
        main = sorted((r for r in rs if r.table != TABLE_LOCAL), key=lambda r: (-r.tos, r.metric))
        both = (*local, *main)
        built.by_len[plen][net] = both if len(both) > 1 else both[0]
    table.by_len, table.buckets, table.short = built.by_len, built.buckets, built.short
    return table


def _build_tables(routes: tuple[Route, ...]) -> dict[int, RouteTable]:
    """Index every IPv4 route. The cyclic GC is paused meanwhile: a million new dict
    entries would trigger collections that only walk the snapshot (a third of the time)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _index_routes(routes)
    finally:
        if was_enabled:
            gc.enable()


def _index_routes(routes: tuple[Route, ...]) -> dict[int, RouteTable]:
    """One pass; the dotted quad parsed inline (the hot loop of a 1M-route build)."""
    tables: dict[int, RouteTable] = {}
    masks, octets = MASKS, OCTETS
    table = RouteTable(-1)
    last_id, levels = -1, table.by_len  # routes come grouped by table: skip lookups
    for route in routes:
        if route.family != 4:
            continue
        if route.table != last_id:
            got = tables.get(route.table)
            if got is None:
                got = tables[route.table] = RouteTable(route.table)
            table, last_id, levels = got, route.table, got.by_len
        addr, _, plen_text = route.dst.partition("/")
        a, b, c, d = addr.split(".")
        plen = octets[plen_text] if plen_text else 32
        net = ((octets[a] << 24) | (octets[b] << 16) | (octets[c] << 8) | octets[d]) & masks[plen]
        level = levels[plen]
        old = level.setdefault(net, route)
        if old is not route:
            table.alias(plen, net, old, route)
    for table in tables.values():
        table.freeze()
    return tables


def _ordered(routes: list[Route]) -> tuple[Route, ...]:
    """Same prefix: the kernel keeps a leaf's aliases TOS-specific first, then by metric
    (a stable sort: equal keys stay in insertion order, as the kernel appends them)."""
    return tuple(sorted(routes, key=lambda r: (-r.tos, r.metric)))


def _routes_of(entry: Entry) -> tuple[Route, ...]:
    return entry if isinstance(entry, tuple) else (entry,)


def _compile_rules(rules: tuple[Rule, ...], ifindex: dict[str, int]) -> tuple[CompiledRule, ...]:
    # The kernel keeps rules sorted by priority, same priority in insertion order (stable).
    ordered = sorted((r for r in rules if r.family == 4), key=lambda r: r.priority)
    for rule in ordered:
        # A loaded snapshot was checked already (state.validate); one built in code was
        # not, and a backward goto would make fib_lookup's walk loop forever.
        problem = check_rule_goto(rule)
        if problem is not None:
            raise SnapshotError(f"snapshot: rule {describe_rule(rule)!r}: {problem}")
    compiled = tuple(CompiledRule(r, ifindex) for r in ordered)
    for c in compiled:
        if c.action == "goto" and c.rule.goto is not None:
            # ctarget: the first rule whose priority equals the goto target.
            c.goto_index = next(
                (i for i, t in enumerate(compiled) if t.priority == c.rule.goto), None
            )
    return compiled


def _has_selectors(rule: Rule) -> bool:
    return bool(
        rule.invert or rule.src or rule.dst or rule.iif or rule.oif or rule.fwmark
        or rule.tos or rule.ipproto or rule.sport or rule.dport or rule.uidrange
        or rule.suppress_prefixlength is not None or rule.suppress_ifgroup is not None
    )  # fmt: skip


def note(steps: list[KernelStep] | None, kind: str, detail: str, reason: str) -> None:
    if steps is not None:
        steps.append(KernelStep(kind, detail, reason))


def _hit_text(hit: Hit) -> str:
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


def _route_step(table: int, route: Route, reason: str) -> KernelStep:
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
