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

The tables themselves are :mod:`meshpath.sim.table`'s. A Fib never changes once built, so
what it computes is a pure function of its arguments, and it remembers the answers it will
be asked again, in memos it alone owns (each a :class:`Memo`, bounded by MEMO_MAX):

* rp_filter's verdict (:meth:`Fib.validate_source`) by *source class*: the flow with its
  source reduced to its /24, except in the few /24s holding a longer prefix
  (``table.fine_blocks``), where each address is its own class; a /24 seen for the first
  time is looked up again by the source's longest prefix in any table or rule ``to``
  selector (``table.PrefixSet``: addresses with the same longest prefix are inside the
  same prefixes, so no lookup tells them apart) before any reverse walk;
* per flow class (what the rules read but the addresses: the mark alone when no rule has
  iif/oif/tos/ipproto/ports/uid), the chain of rules it meets when each is a plain
  ``lookup`` (:meth:`Fib._chain_of`); and per rule and route, the rule's answer when that
  route is its table's longest match (``CompiledRule.answers``, steps included), where
  that answer is the route's alone;
* the nexthop gateway check (:meth:`Fib.gateway_is_local`), the sysctls as the kernel's
  accessors combine them, and the Steps every query shares (Steps are frozen).

Hits, results and flows are Structs without garbage-collector tracking (``gc=False``),
built in C: a NamedTuple is built by a Python-level ``__new__`` and, kept in a memo, is
tracked for life (the collector's passes grow with the memos).
"""

from __future__ import annotations

from typing import Final, TypeVar

import msgspec

from meshpath.errors import SnapshotError
from meshpath.sim import values as v
from meshpath.sim.addr import MASKS, int_to_ip, ip_to_int, parse_prefix
from meshpath.sim.fib6 import Fib6
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
    route_step,
    rule_action,
    rule_selectors,
    table_name,
)
from meshpath.sim.table import (
    Entry,
    PrefixSet,
    RouteTable,
    fine_blocks,
    index_routes,
    merge_keep_order,
)
from meshpath.sim.values import KernelStep
from meshpath.state import TABLE_DEFAULT, TABLE_LOCAL, TABLE_MAIN, Ipv4Conf, Route, Rule, Snapshot
from meshpath.state.model import SCOPE_LINK
from meshpath.state.validate import check_rule_goto

# fib_dscp_masked_match: rules and routes compare the packet's TOS under the legacy mask.
LEGACY_TOS_MASK: Final = 0x1C
UID_ROOT: Final = 0
ANY_UID: Final = (0, 0xFFFFFFFF)

# Bound on each of a Fib's memos: some tens of MiB at most, then that memo starts over.
MEMO_MAX: Final = 1 << 17
DEFAULT_RULES: Final = frozenset({(0, TABLE_LOCAL), (32766, TABLE_MAIN), (32767, TABLE_DEFAULT)})
_DEFAULT_CONF: Final = Ipv4Conf(forwarding=0, rp_filter=0)
_HOST_BITS: Final = 0xFFFFFF00  # an address's class: its /24 (table.fine_blocks)
STEPS_PER_VERDICT: Final = 1024  # a /24's sources, through a few devices
Failure = tuple[str, str]  # (outcome, errno) of a packet the kernel drops
# A rule's lookup answer (None: go on to the next rule) and its steps (None until traced).
Answer = tuple[LookupResult | None, tuple[KernelStep, ...] | None]
# A flow class's rules (Fib._chain_of): each with its table and its step when that misses.
Chain = tuple[tuple["CompiledRule", RouteTable, KernelStep], ...]
_NO_TABLE: Final = RouteTable(-1).freeze()  # a rule's table that does not exist
K = TypeVar("K")
V = TypeVar("V")


class Memo(dict[K, V]):
    """A memo of one Fib: answers that are a pure function of their key (a Fib never
    changes). Bounded: past MEMO_MAX entries it starts over."""

    def put(self, key: K, value: V) -> V:
        if len(self) >= MEMO_MAX:
            self.clear()
        self[key] = value
        return value


class Flow(msgspec.Struct, gc=False):
    """``struct flowi4``: the lookup key (addresses and devices as integers). A Struct: built
    in C (a query builds one or two), never tracked by the garbage collector."""

    daddr: int
    saddr: int
    iif: int
    oif: int = 0
    mark: int = 0
    tos: int = 0
    proto: int = 0
    sport: int = 0
    dport: int = 0
    uid: int = UID_ROOT
    scope: int = 0  # routes with a narrower scope are skipped (fib_table_lookup)


class CompiledRule:
    """One ``ip rule`` with its selectors as integers (``struct fib4_rule``)."""

    __slots__ = (
        "absent_step", "action", "answers", "dport", "dst", "dstmask", "goto_index", "hit_steps",
        "iif", "invert", "l3mdev", "mark", "mask", "miss_step", "oif", "priority", "proto", "rule",
        "rule_dst_plen", "sport", "src", "srcmask", "suppress_ifgroup", "suppress_plen", "table",
        "table_ref", "text", "tos", "trivial", "uid",
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
        self.mark, self.mask, self.proto, self.sport, self.dport = rule_selectors(rule)
        self.tos = rule.tos
        self.uid = (rule.uidrange.start, rule.uidrange.end) if rule.uidrange else ANY_UID
        self.l3mdev = rule.l3mdev
        self.suppress_plen = (
            -1 if rule.suppress_prefixlength is None else rule.suppress_prefixlength
        )
        self.suppress_ifgroup = -1 if rule.suppress_ifgroup is None else rule.suppress_ifgroup
        self.rule_dst_plen = parse_prefix(rule.dst)[1] if rule.dst else 0
        self.goto_index: int | None = None
        self.table_ref: RouteTable | None = None  # set by Fib: the table this rule looks up
        self.text = describe_rule(rule)
        # The commonest step, shared (Steps are frozen): a lookup rule's table had no route.
        self.miss_step = KernelStep("rule", self.text, "matched; no route in the table: continue")
        self.absent_step = KernelStep("rule", self.text, "matched; table does not exist: continue")
        self.hit_steps: dict[int, KernelStep] = {}  # id(route) -> step; the Fib keeps the routes
        # id(route) -> this rule's answer when that route is its table's longest match, for
        # the lookups where that answer is the route's alone (Fib._rule_answer).
        self.answers: dict[int, Answer] = {}
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

    iif/oif compare ifindexes (``iif lo``: locally generated), fwmark
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


class Fib:
    """The routing state of one Snapshot, compiled for lookups, and the only owner of the
    memos of its answers. Build with :meth:`from_snapshot`; share one Fib between the
    questions asked of one snapshot (a new snapshot, a new Fib)."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.ifindex, self.ifname, self.loopback, self.local_addrs, self.dev_addrs = devices(
            snapshot, 4, ip_to_int
        )
        self.ifgroup = {link.name: link.group for link in snapshot.links}
        self.conf = snapshot.sysctls.ipv4
        self.all_conf = self.conf.get("all", _DEFAULT_CONF)
        self.tables = index_routes(snapshot.routes)
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
        self._v6: Fib6 | None = None
        # Rules with a `from` selector: the only place a lookup reads saddr; with an `iif`
        # one (a detached one matches no device): the only place it reads iif.
        self._iif_rules = any(r.iif > 0 for r in self.rules)
        # No rule reads a flow's iif, oif, tos, ipproto, ports or uid: its class is its mark.
        self._mark_only = not any(
            r.iif or r.oif or r.tos or r.proto or r.sport or r.dport or r.l3mdev
            or r.uid != ANY_UID for r in self.rules
        )  # fmt: skip
        self._src_rules = tuple((r.src, r.srcmask) for r in self.rules if r.srcmask)
        # The reverse walk reads the flow's TOS, ipproto and ports only through rules that
        # select them or TOS routes, and the forward destination through `from` rules.
        self._rev_plain = not (self._src_rules or any(
            r.tos or r.proto or r.sport or r.dport for r in self.rules
        ) or any(table.has_tos for table in self.tables.values()))  # fmt: skip
        rule_dsts = [(r.dst, plen) for r in self.rules if (plen := r.rule_dst_plen)]
        self._fine = fine_blocks(self.tables, rule_dsts)
        # The second class of a source (PrefixSet), for a /24 the verdict memo misses.
        self._prefixes = PrefixSet(list(self.tables.values()), rule_dsts)
        # The memos (module docstring); every key holds all that its answer reads.
        self._verdicts: Memo[tuple[object, ...], _Verdict] = Memo()
        self._wide: Memo[tuple[object, ...], _Verdict] = Memo()  # by the source's prefix
        self._on_link: Memo[tuple[int, str | None, str], bool] = Memo()
        self._texts: Memo[int, str] = Memo()  # id(route) -> hit text; routes live as self
        self._orconf: Memo[tuple[str, str], int] = Memo()
        self._steps: Memo[tuple[str, str], KernelStep] = Memo()  # shared Steps by (what, device)
        self._rp_conf: Memo[str, tuple[int, int, int, bool]] = Memo()
        self._chains: Memo[object, Chain] = Memo()  # by flow class (fib_lookup)
        self._gates: dict[str, KernelStep | None] = {}  # by device: one per link at most
        self._tails: dict[int, str] = {}  # rp_filter's step text per reverse iif (_tail)

    @classmethod
    def from_snapshot(cls, snapshot: Snapshot) -> Fib:
        """The Fib of ``snapshot``; a SnapshotError when the model cannot read it."""
        try:
            return cls(snapshot)
        except (ValueError, KeyError, IndexError) as exc:
            # The codec checks types, not meaning: a route or rule whose address is not
            # an IPv4 address/prefix (a hand-edited snapshot) surfaces here, while compiling.
            raise SnapshotError(
                f"snapshot: an address or prefix the model cannot read ({exc!r})"
            ) from exc

    @property
    def v6(self) -> Fib6:
        """The same snapshot's IPv6 FIB, compiled on the first IPv6 question."""
        if self._v6 is None:
            self._v6 = Fib6.from_snapshot(self.snapshot)
        return self._v6

    def memo_sizes(self) -> dict[str, int]:
        """Entries per memo (each bounded by MEMO_MAX)."""
        memos = (
            "_verdicts", "_wide", "_chains", "_on_link", "_texts", "_orconf", "_steps", "_rp_conf",
        )  # fmt: skip
        return {name.lstrip("_"): len(getattr(self, name)) for name in memos}

    # -- sysctls (include/linux/inetdevice.h IN_DEV_* accessors) --------------------------

    def dev_conf(self, dev: str) -> Ipv4Conf:
        return self.conf.get(dev) or self.conf.get("default") or _DEFAULT_CONF

    def forwarding(self, dev: str) -> int:
        """IN_DEV_FORWARD: the device's own ``forwarding`` (the ingress device's gates)."""
        found = self._orconf.get((dev, "dev:forwarding"))
        if found is None:
            found = self._orconf.put((dev, "dev:forwarding"), int(self.dev_conf(dev).forwarding))
        return found

    def orconf(self, dev: str, key: str) -> int:
        """IN_DEV_ORCONF: set if set for ``all`` or for the device."""
        found = self._orconf.get((dev, key))
        if found is None:
            found = int(bool(getattr(self.all_conf, key) or getattr(self.dev_conf(dev), key)))
            self._orconf.put((dev, key), found)
        return found

    def maxconf(self, dev: str, key: str) -> int:
        """IN_DEV_MAXCONF: the larger of ``all`` and the device (rp_filter)."""
        found = self._orconf.get((dev, "max:" + key))
        if found is None:
            found = max(int(getattr(self.all_conf, key)), int(getattr(self.dev_conf(dev), key)))
            self._orconf.put((dev, "max:" + key), found)
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
        for plen in table.plens[daddr >> 16]:
            entry = by_len[plen].get(daddr & masks[plen])
            if entry is None:
                continue
            if entry.__class__ is Route and not (
                entry.tos or entry.nexthops or fl.oif or fl.scope
                or (entry.flags and not self._usable_flags(entry, linkstate))
            ):  # fmt: skip
                # The common case: one plain usable route for this prefix.
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
                    steps.append(route_step(table.table, route, f"{route.type}: {error}"))
                return error, None
            hit = self._nexthop(route, plen, table.table, fl, linkstate)
            if hit is not None:
                return None, hit
            if steps is not None:
                steps.append(route_step(table.table, route, "no usable nexthop: skipped"))
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
        if flags and not self._nh_usable(route.dev, flags, fl, linkstate):
            return None
        if fl.oif and route.dev is not None and self.ifindex.get(route.dev, -1) != fl.oif:
            return None
        return Hit(route, plen, table, route.dev, route.gateway, False)

    def _usable_flags(self, route: Route, linkstate: bool) -> bool:
        """A single-nexthop route's flags leave it usable: not dead, and not linkdown
        where ``ignore_routes_with_linkdown`` is set (as :meth:`_nh_usable` without oif)."""
        flags = route.flags
        return "dead" not in flags and not (
            linkstate and "linkdown" in flags and route.dev
            and self.orconf(route.dev, "ignore_routes_with_linkdown")
        )  # fmt: skip

    def _nh_usable(
        self, dev: str | None, flags: tuple[str, ...], fl: Flow, linkstate: bool
    ) -> bool:
        if "dead" in flags and self._dead(dev, flags):
            return False
        if (
            linkstate
            and "linkdown" in flags
            and dev
            and self.orconf(dev, "ignore_routes_with_linkdown")
        ):
            return False
        return not (fl.oif and dev is not None and self.ifindex.get(dev, -1) != fl.oif)

    def _dead(self, dev: str | None, flags: tuple[str, ...]) -> bool:
        """A dumped ``dead`` flag is ``RTNH_F_DEAD`` in the kernel. Not always: the dump adds
        ``dead`` to a ``linkdown`` nexthop where ``ignore_routes_with_linkdown`` is set
        (``fib_nexthop_info``); that one is really dead only when its device is also down
        (``NETDEV_DOWN`` sets both). Only a lookup that ignores the link state (the
        gateway check of ``fib_check_nh_v4_gw``) can tell the two apart."""
        if (
            "linkdown" not in flags
            or not dev
            or not self.orconf(dev, "ignore_routes_with_linkdown")
        ):
            return True
        link = self.snapshot.link_by_index(self.ifindex.get(dev, -1))
        return link is None or not link.admin_up

    def fib_lookup(
        self, fl: Flow, steps: list[KernelStep] | None = None, *, linkstate: bool = True
    ) -> LookupResult:
        """``fib_lookup``: the rules in priority order, or main+default without custom rules."""
        if not self.custom_rules:
            return self._lookup_without_rules(fl, steps, linkstate)
        if linkstate and not fl.oif and not fl.scope:  # a plain route's answer is its own
            key = fl.mark if self._mark_only else (
                fl.iif, fl.mark, fl.tos, fl.proto, fl.sport, fl.dport, fl.uid
            )  # fmt: skip
            chain = self._chains.get(key)
            if chain is None:
                chain = self._chains.put(key, self._chain_of(fl))
            if chain:
                return self._walk_chain(chain, fl, steps)
        return self._walk_rules(fl, steps, linkstate)

    def _chain_of(self, fl: Flow) -> Chain:
        """The rules a flow of ``fl``'s class (all but its addresses) meets, when each is a
        ``lookup`` of an existing table without ``from``/``to``: which match is then known
        for the class. Empty otherwise (the whole walk: goto, nop, actions, prefixes)."""
        chain: list[tuple[CompiledRule, RouteTable, KernelStep]] = []
        for r in self.rules:
            if r.srcmask or r.dstmask:
                return ()
            if not match_rule(r, fl):  # reads the class only: no from/to
                continue
            if r.action != "lookup":
                return ()
            if r.table_ref is None:  # looks up nothing, as an empty table, but says so
                chain.append((r, _NO_TABLE, r.absent_step))
            else:
                chain.append((r, r.table_ref, r.miss_step))
        return tuple(chain)

    def _walk_chain(self, chain: Chain, fl: Flow, steps: list[KernelStep] | None) -> LookupResult:
        """``fib_rules_lookup`` over a class's chain: each rule's table probed in place, the
        answer remembered per rule and route (``_rule_answer`` without its rule tests)."""
        daddr = fl.daddr
        top = daddr >> 16
        masks = MASKS
        for r, table, miss_step in chain:
            entry = None
            by_len = table.by_len
            for plen in table.plens[top]:  # RouteTable.longest, inline (every rule, query)
                entry = by_len[plen].get(daddr & masks[plen])
                if entry is not None:
                    break
            if entry is None:
                if steps is not None:
                    steps.append(miss_step)
                continue
            known = r.answers.get(id(entry))
            if known is None or (steps is not None and known[1] is None):
                known = self._learn(r, table, entry, plen, fl, steps is not None) or (
                    self._rule_lookup(r, fl, steps, True, r.text),
                    (),  # steps noted already
                )
            if steps is not None:
                steps += known[1]  # type: ignore[arg-type]  # set when traced (_learn)
            if known[0] is not None:
                return known[0]
        return _end_of_rules(steps)

    def _walk_rules(
        self, fl: Flow, steps: list[KernelStep] | None, linkstate: bool
    ) -> LookupResult:
        """``fib_rules_lookup``, every rule tested in turn (goto, nop, actions, prefixes)."""
        plain = linkstate and not fl.oif and not fl.scope
        rules = self.rules
        i, n = 0, len(rules)
        while i < n:
            r = rules[i]
            i += 1
            if r.invert if r.trivial else not match_rule(r, fl):
                continue
            if r.action == "lookup":
                found = (
                    self._rule_answer(r, fl, steps)
                    if plain and r.table_ref is not None
                    else self._rule_lookup(r, fl, steps, linkstate, r.text)
                )
                if found is not None:
                    return found
                continue
            outcome = self._apply_rule(r, fl, steps, linkstate)
            if isinstance(outcome, int):
                i = outcome
                continue
            if outcome is not None:
                return outcome
        return _end_of_rules(steps)

    def src_class(self, saddr: int) -> tuple[bool, ...]:
        """All a rule walk reads of saddr: which rules' ``from`` prefixes hold it (tables
        match daddr only). Part of the memo keys."""
        if not self._src_rules:
            return ()
        return tuple(((saddr ^ net) & mask) == 0 for net, mask in self._src_rules)

    def _apply_rule(
        self, r: CompiledRule, fl: Flow, steps: list[KernelStep] | None, linkstate: bool
    ) -> LookupResult | int | None:
        """One matching rule: a result, the index to jump to (goto), or None to go on."""
        outcome = rule_action(r.rule, r.goto_index, r.text, steps)
        if outcome == LOOKUP:
            return self._rule_lookup(r, fl, steps, linkstate, r.text)
        return outcome

    def _rule_lookup(
        self, r: CompiledRule, fl: Flow, steps: list[KernelStep] | None, linkstate: bool, text: str
    ) -> LookupResult | None:
        """``fib4_rule_action`` + ``fib4_rule_suppress`` for a ``lookup TABLE`` rule."""
        table = r.table_ref
        if table is None:
            if steps is not None:
                steps.append(r.absent_step)
            return None
        if not table.covers[fl.daddr >> 16]:  # nothing there: the lookup misses
            if steps is not None:
                steps.append(r.miss_step)
            return None
        error, hit = self.lookup_table(table, fl, steps, linkstate)  # positional: hot path
        return self._rule_result(r, error, hit, steps)

    def _rule_result(
        self, r: CompiledRule, error: str | None, hit: Hit | None, steps: list[KernelStep] | None
    ) -> LookupResult | None:
        """What rule ``r`` makes of its table's answer: suppressed or missing -> None (go on)."""
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
                self._hit_step(r, hit) if hit else KernelStep("rule", r.text, f"matched; {error}")
            )
        return LookupResult(error, hit, r.priority)

    def _rule_answer(
        self, r: CompiledRule, fl: Flow, steps: list[KernelStep] | None
    ) -> LookupResult | None:
        """:meth:`_rule_lookup` (with the link state, no oif, no scope) where the longest
        match is a route whose answer is its own: remembered per rule and route
        (``r.answers``), steps included, so a lookup is its probes and one dict get."""
        table = r.table_ref
        assert table is not None
        daddr = fl.daddr
        top = daddr >> 16
        if table.covers[top]:
            by_len, masks = table.by_len, MASKS
            for plen in table.plens[top]:
                entry = by_len[plen].get(daddr & masks[plen])
                if entry is None:
                    continue
                known = r.answers.get(id(entry))
                if known is None or (steps is not None and known[1] is None):
                    known = self._learn(r, table, entry, plen, fl, steps is not None)
                    if known is None:  # not the route's alone: the kernel's whole walk
                        return self._rule_lookup(r, fl, steps, True, r.text)
                if steps is not None:
                    steps += known[1]  # type: ignore[arg-type]  # set when traced (_learn)
                return known[0]
        if steps is not None:
            steps.append(r.miss_step)
        return None

    def _learn(
        self, r: CompiledRule, table: RouteTable, entry: Entry, plen: int, fl: Flow, trace: bool
    ) -> Answer | None:
        """Rule ``r``'s answer when ``entry`` is its table's longest match, if that is a pure
        function of the route: one route (not aliases) without TOS that gives an answer
        (an unusable one makes the kernel try shorter prefixes). None otherwise."""
        if not isinstance(entry, Route) or entry.tos:
            return None
        route = entry
        if not (route.nexthops or route.flags or route.type != "unicast") and (
            r.suppress_ifgroup == -1
        ):
            # The commonest (most routes are hit once): the hit and its step made directly.
            hit = Hit(route, plen, table.table, route.dev, route.gateway, False)
            suppressed = plen <= r.suppress_plen
            res = None if suppressed else LookupResult(None, hit, r.priority)
            step = None
            if trace:
                reason = " suppressed: continue" if suppressed else ""
                step = (KernelStep("rule", r.text, f"matched; {hit_text(hit)}{reason}"),)
            answer: Answer = res, step
        else:
            steps: list[KernelStep] | None = [] if trace else None
            found = self._scan(table, route, plen, fl, steps, True)
            if found is None:
                return None
            answer = self._rule_result(r, *found, steps), None if steps is None else tuple(steps)
        r.answers[id(entry)] = answer
        return answer

    def _hit_step(self, r: CompiledRule, hit: Hit, *, suppressed: bool = False) -> KernelStep:
        """``rule matched; route ...`` (or ``... suppressed: continue``): one shared KernelStep
        per rule, route and verdict, under the same conditions as :meth:`_hit_text_of`."""
        route = hit.route
        reason = " suppressed: continue" if suppressed else ""
        if hit.multipath or hit.table != route.table:
            return KernelStep("rule", r.text, f"matched; {hit_text(hit)}{reason}")
        key = ~id(route) if suppressed else id(route)  # ids are >= 0: ~id never collides
        step = r.hit_steps.get(key)
        if step is None:
            step = r.hit_steps[key] = KernelStep(
                "rule", r.text, f"matched; {hit_text(hit)}{reason}"
            )
        return step

    def _hit_text_of(self, hit: Hit) -> str:
        """A hit for a step. Cached per route (lookups hit the same routes a lot) when the
        hit is the route's own dev/gateway/table: not a multipath leg, nor a local route
        found through merged main (reported as table main)."""
        route = hit.route
        if hit.multipath or hit.table != route.table:
            return hit_text(hit)
        text = self._texts.get(id(route))
        if text is None:
            text = self._texts.put(id(route), hit_text(hit))
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
            note(steps, "lookup", "table main", self._hit_text_of(hit))
            return LookupResult(None, hit, None)
        default = self.tables.get(TABLE_DEFAULT)
        if default is not None:
            error, hit = self.lookup_table(default, fl, steps, linkstate=linkstate)
        if error == "EAGAIN":
            error = "ENETUNREACH"
        note(steps, "lookup", "table default", self._hit_text_of(hit) if hit else str(error))
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
            self._merged = merge_keep_order(triples)
        return self._merged

    # -- shared steps and nexthops ------------------------------------------------------

    def forward_step(self, dev: str) -> KernelStep:
        """``may forward`` on ``dev``: one KernelStep per device, shared by every query."""
        step = self._steps.get(("may forward", dev))
        if step is None:
            text = f"net.ipv4.conf.{dev}.forwarding=1"
            step = self._steps.put(
                ("may forward", dev), KernelStep("forwarding", text, "may forward")
            )
        return step

    def forward_gate(self, dev: str) -> KernelStep | None:
        """IN_DEV_FORWARD of the ingress device as the input path asks it: its shared ``may
        forward`` step (:meth:`forward_step`), None when it does not forward."""
        if dev not in self._gates:
            self._gates[dev] = self.forward_step(dev) if self.forwarding(dev) else None
        return self._gates[dev]

    def gateway_is_local(self, hit: Hit, gateway: str) -> bool:
        """``fib_check_nh_v4_gw``: the gateway resolved when the route was added -- in the
        route's own table first (unless main), else by a full lookup; link or host scope
        routes only, on the route's device -- to a *local* route (then the kernel sends
        on-link). Modelled as if resolved against the current tables; memoised by all it
        reads: the route's table, the device and the gateway."""
        key = (hit.route.table, hit.dev, gateway)  # routes share gateways: not by route
        found = self._on_link.get(key)
        if found is None:
            found = self._on_link.put(key, self._resolves_local(hit, gateway))
        return found

    def _resolves_local(self, hit: Hit, gateway: str) -> bool:
        if ":" in gateway:
            return False  # an IPv6 nexthop of an IPv4 route (RFC 5549) is no local IPv4 address
        route = hit.route
        fl = Flow(ip_to_int(gateway), 0, iif=self.loopback,
                  oif=self.ifindex.get(hit.dev or "", 0), scope=SCOPE_LINK)  # fmt: skip
        table = self.tables.get(route.table) if route.table != TABLE_MAIN else None
        error, found = (self.lookup_table(table, fl, None, linkstate=False) if table is not None
                        else ("EAGAIN", None))  # fmt: skip
        if error is not None:
            found = self.fib_lookup(fl, None, linkstate=False).hit
        return found is not None and found.route.type == "local"

    # -- source validation (net/ipv4/fib_frontend.c) --------------------------------------

    def rp_conf(self, dev: str) -> tuple[int, int, int, bool]:
        """rp_filter (max of all and dev), send_redirects and src_valid_mark (or'ed), and
        whether rp_filter=0 may skip the reverse lookup (:meth:`_rp_shortcut`: accept_local,
        or no custom rules nor local routes)."""
        conf = self._rp_conf.get(dev)
        if conf is None:
            may_skip = bool(self.orconf(dev, "accept_local")) or not (
                self.custom_local_routes or self.custom_rules
            )
            conf = self._rp_conf.put(dev, (
                self.maxconf(dev, "rp_filter"), self.orconf(dev, "send_redirects"),
                self.orconf(dev, "src_valid_mark"), may_skip,
            ))  # fmt: skip
        return conf

    def validate_source(
        self,
        fl: Flow,
        dev: str,
        oif: int,
        steps: list[KernelStep] | None,
        *,
        dst: int | None = None,
        src: str | None = None,
    ) -> Failure | None:
        """``fib_validate_source``: is the source acceptable on ``dev``?

        ``src`` is the source as the query wrote it (``fl.saddr`` as text), for the step.

        rp_filter is max(conf.all, conf.<dev>). With it off (and no custom rules or local
        routes, and not forwarding back out of ``dev`` with send_redirects) only a source
        that is one of this host's addresses is refused. Otherwise the reverse lookup:
        daddr=source, saddr=destination, iif = the forward egress device (lo for local
        delivery), mark only with src_valid_mark. It must give a unicast route (a local one
        only with accept_local); strict (1) wants it via ``dev``; loose (2) any route; a
        failed lookup fails both.
        """
        rpf, send_redirects, src_valid_mark, may_skip = self._rp_conf.get(dev) or self.rp_conf(dev)
        if not rpf and not (oif == fl.iif and send_redirects) and may_skip:
            shortcut = self._rp_shortcut(fl, dev, steps)
            if shortcut != "full":
                return shortcut if isinstance(shortcut, tuple) else None
        # The verdict depends only on the reverse flow, rpf and dev; the reverse flow's
        # daddr (the forward source) only through its class (module docstring), its
        # saddr only through rules' `from` prefixes. Memoised so: reverse lookups are half
        # the work of a query, and sources share classes even when they are all distinct.
        saddr = fl.saddr
        iif = oif or self.loopback
        mark = fl.mark if src_valid_mark else 0
        rsaddr = fl.daddr if dst is None else dst
        # The reverse flow's iif (the forward egress) is read by rules' `iif` only.
        cls = saddr if saddr >> 8 in self._fine else saddr & _HOST_BITS
        key = (cls, iif if self._iif_rules else 0, mark, rpf, dev) if self._rev_plain else (
            cls, iif if self._iif_rules else 0, mark, rpf, dev, fl.tos, fl.proto, fl.dport,
            fl.sport, self.src_class(rsaddr) if self._src_rules else (),
        )  # fmt: skip
        verdict = self._verdicts.get(key)
        if verdict is None:
            rev = Flow(saddr, rsaddr, iif=iif, tos=fl.tos, mark=mark, proto=fl.proto,
                       sport=fl.dport, dport=fl.sport)  # fmt: skip
            verdict = self._verdicts.put(key, self._verdict(rev, rpf, dev, key))
        if steps is not None:
            at = saddr | iif << 32  # the step names both
            step = verdict.steps.get(at) or verdict.step(
                src or int_to_ip(saddr), self._tails.get(iif) or self._tail(iif), at
            )
            steps.append(step)
        return verdict.failure

    def _verdict(self, rev: Flow, rpf: int, dev: str, key: tuple[object, ...]) -> _Verdict:
        """The reverse walk's verdict (``rev`` is the reverse flow), memoised again by the
        source's longest prefix in any table (:class:`PrefixSet`) with the rest of the
        /24's ``key``: many /24s share one (a /10 throw route, the default route)."""
        wide = (*self._prefixes.longest(rev.daddr), *key[1:])
        verdict = self._wide.get(wide)
        if verdict is None:
            failure, why = self._judge_reverse(self.fib_lookup(rev, None), rpf, dev)
            head = f"rp_filter={rpf} on {dev}: reverse lookup "
            verdict = self._wide.put(wide, _Verdict(failure, why, head))
        # Each /24 its own (its steps name its sources: STEPS_PER_VERDICT is per /24).
        return _Verdict(verdict.failure, verdict.why, verdict.head)

    def _tail(self, iif: int) -> str:
        """`` iif DEV``: how rp_filter's step ends for reverse iif ``iif``."""
        tail = self._tails[iif] = f" iif {self.ifname.get(iif, str(iif))}"
        return tail

    def _rp_shortcut(
        self, fl: Flow, dev: str, steps: list[KernelStep] | None
    ) -> Failure | str | None:
        if self.orconf(dev, "accept_local"):
            note(steps, "rp_filter", f"rp_filter=0, accept_local on {dev}", "source accepted")
            return None
        if self.custom_local_routes or self.custom_rules:
            return "full"
        if fl.saddr in self.local_addrs:
            note(steps, "rp_filter", "rp_filter=0", "source is a local address: dropped")
            return v.LOCAL_SOURCE, "EINVAL"
        note(steps, "rp_filter", f"rp_filter=0 on {dev}", "no source validation")
        return None

    def _judge_reverse(self, res: LookupResult, rpf: int, dev: str) -> tuple[Failure | None, str]:
        """The second half of ``__fib_validate_source``: the failure (None: accepted), why."""
        hit = res.hit
        if res.error is not None or hit is None:
            return _last_resort(rpf, f"no reverse route ({res.error})")
        rtype = hit.route.type
        if rtype != "unicast":
            if rtype != "local":
                return (v.MARTIAN_SOURCE, "EINVAL"), f"source routed as {rtype}: invalid source"
            if not self.orconf(dev, "accept_local"):
                return (v.LOCAL_SOURCE, "EINVAL"), "source is local (no accept_local): dropped"
        legs = [nh.dev for nh in hit.route.nexthops] or [hit.route.dev]
        if dev in legs or (rtype == "local" and self.ifindex.get(dev) == self.loopback):
            return None, f"reverse route via {dev}: accepted"
        if not self.dev_addrs.get(dev):
            return _last_resort(rpf, f"{dev} has no IPv4 address")
        if rpf == 1:
            where = f"{hit.dev} (table {table_name(hit.table)})"
            return (v.RP_FILTER, "EINVAL"), f"strict: reverse route leaves via {where}: drop"
        return None, f"loose: reverse route via {hit.dev}: accepted"


class _Verdict:
    """A memoised reverse-path verdict, and its Steps: a KernelStep names the exact source and
    the reverse iif, so one per (source, iif) of the class, made on its first traced query
    (untraced ones never pay for the text), at most STEPS_PER_VERDICT kept."""

    __slots__ = ("failure", "head", "steps", "why")

    def __init__(self, failure: Failure | None, why: str, head: str) -> None:
        self.failure = failure
        self.why = why
        self.head = head  # the step's text up to the source (rpf and dev are the class's)
        self.steps: dict[int, KernelStep] = {}

    def step(self, src: str, tail: str, at: int) -> KernelStep:
        """The step for source ``src`` (as text) and `` iif DEV`` (``tail``), kept at ``at``."""
        if len(self.steps) >= STEPS_PER_VERDICT:
            self.steps.clear()
        step = self.steps[at] = KernelStep("rp_filter", self.head + src + tail, self.why)
        return step


def _end_of_rules(steps: list[KernelStep] | None) -> LookupResult:
    if steps is not None:
        steps.append(KernelStep("rule", "end of rules", "no rule gave a route: ENETUNREACH"))
    return LookupResult("ENETUNREACH", None, None)


def _last_resort(rpf: int, why: str) -> tuple[Failure | None, str]:
    if rpf:
        return (v.RP_FILTER, "EINVAL"), f"{why}: dropped"
    return None, f"{why}: accepted (rp_filter off)"


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
    for c, target in zip(compiled, goto_targets(ordered), strict=True):
        c.goto_index = target
    return compiled


def _has_selectors(rule: Rule) -> bool:
    return bool(
        rule.invert or rule.src or rule.dst or rule.iif or rule.oif or rule.fwmark
        or rule.tos or rule.ipproto or rule.sport or rule.dport or rule.uidrange
        or rule.suppress_prefixlength is not None or rule.suppress_ifgroup is not None
    )  # fmt: skip
