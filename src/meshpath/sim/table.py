"""Routing tables compiled for lookups: a dict per prefix length and, per /16, the prefix
lengths present under it, so a lookup probes only lengths that exist there. Routes are kept
as the Snapshot's own objects (an entry is one Route, or a prefix's aliases in the kernel's
order). Built once per Fib (:mod:`meshpath.sim.fib`); never changed afterwards.
"""

from __future__ import annotations

from collections.abc import Mapping

from meshpath.sim.addr import MASKS, OCTETS
from meshpath.state import TABLE_LOCAL, TABLE_MAIN, Route

Entry = Route | tuple[Route, ...]


class RouteTable:
    """One routing table: a dict per prefix length and the lengths present per /16."""

    __slots__ = ("aliases", "buckets", "by_len", "covers", "has_tos", "plens", "short", "table")

    def __init__(self, table: int) -> None:
        self.table = table
        self.by_len: list[dict[int, Entry]] = [{} for _ in range(33)]
        self.buckets: dict[int, tuple[int, ...]] = {}
        self.short: tuple[int, ...] = ()
        # Per /16: 1 where some prefix of the table covers part of it (a lookup elsewhere
        # is a miss without probing: most lookups in `local` are).
        self.covers = bytearray(1 << 16)
        # Per /16: the prefix lengths that may hold an address there, longest first: its
        # long ones (>= 16) and the short ones covering it. Empty: a lookup misses.
        self.plens: list[tuple[int, ...]] = [()] * (1 << 16)
        self.has_tos = False  # a TOS-specific route (a lookup reads the flow's TOS)
        # (plen, net) -> every route of that prefix in insertion order, while building;
        # freeze() sorts each once (sorting on every insert made n aliases cost n² log n).
        self.aliases: dict[tuple[int, int], list[Route]] = {}

    def add(self, net: int, plen: int, route: Route) -> None:
        """Index one route (call :meth:`freeze` after the last)."""
        level = self.by_len[plen]
        old = level.setdefault(net, route)
        if old is not route:
            self.alias(plen, net, old, route)
        if route.tos:
            self.has_tos = True

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
        self.covers = _covers(self.by_len, buckets)
        self.plens = _short_lengths(self.by_len)
        shared: dict[tuple[int, ...], tuple[int, ...]] = {}
        for top, plens in buckets.items():
            joined = (*plens, *self.plens[top])
            self.plens[top] = shared.setdefault(joined, joined)
        return self

    def longest(self, daddr: int, top: int) -> tuple[Entry, int] | None:
        """The entry of the longest prefix holding ``daddr`` (``top``: its /16), and its
        length; None when no prefix does."""
        by_len, masks = self.by_len, MASKS
        for plen in self.plens[top]:
            entry = by_len[plen].get(daddr & masks[plen])
            if entry is not None:
                return entry, plen
        return None

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


def _short_lengths(by_len: list[dict[int, Entry]]) -> list[tuple[int, ...]]:
    """Per /16, the lengths below 16 of the prefixes covering it, longest first (tuples
    shared: a default route alone makes one for all 65,536)."""
    at: list[tuple[int, ...]] = [()] * (1 << 16)
    shared: dict[tuple[int, ...], tuple[int, ...]] = {}
    for plen in range(16):  # shortest first: each longer one goes in front
        span = 1 << (16 - plen)
        for net in by_len[plen]:
            top = net >> 16
            for t in range(top, top + span):
                joined = (plen, *at[t])
                at[t] = shared.setdefault(joined, joined)
    return at


def _covers(by_len: list[dict[int, Entry]], long: dict[int, list[int]]) -> bytearray:
    covers = bytearray(1 << 16)
    for plen in range(16):
        span = 1 << (16 - plen)
        for net in by_len[plen]:
            top = net >> 16
            covers[top : top + span] = b"\x01" * span
    for top in long:
        covers[top] = 1
    return covers


def merge_keep_order(triples: list[tuple[int, int, Route]]) -> RouteTable:
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
    table.covers, table.plens = built.covers, built.plens
    return table


def index_routes(routes: tuple[Route, ...]) -> dict[int, RouteTable]:
    """Every IPv4 route indexed in one pass, the dotted quad parsed inline (the hot loop of a
    1M-route build). The garbage collector is left alone: Routes are untracked structs and
    the loop's temporaries die at once, so collections cost little (1M routes: 1.26-1.37 s
    with it on, 1.24-1.27 s off, measured)."""
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
        if route.tos:
            table.has_tos = True
    for table in tables.values():
        table.freeze()
    return tables


def fine_blocks(tables: dict[int, RouteTable], prefixes: list[tuple[int, int]]) -> frozenset[int]:
    """The /24 blocks holding a prefix longer than /24 (in any table, or among ``prefixes``,
    the rules' ``to`` selectors). Everywhere else a lookup cannot tell the addresses of one
    /24 apart: each probe masks the address to /24 or less."""
    blocks = {net >> 8 for table in tables.values() for plen in range(25, 33)
              for net in table.by_len[plen]}  # fmt: skip
    blocks.update(net >> 8 for net, plen in prefixes if plen > 24)
    return frozenset(blocks)


def _ordered(routes: list[Route]) -> tuple[Route, ...]:
    """Same prefix: the kernel keeps a leaf's aliases TOS-specific first, then by metric
    (a stable sort: equal keys stay in insertion order, as the kernel appends them)."""
    return tuple(sorted(routes, key=lambda r: (-r.tos, r.metric)))


def _routes_of(entry: Entry) -> tuple[Route, ...]:
    return entry if isinstance(entry, tuple) else (entry,)


class PrefixSet:
    """Every prefix of several tables (and rule selectors), without routes: which is the
    longest holding an address. Two addresses with the same longest prefix are inside
    exactly the same prefixes (the ones holding an address form a chain), so no lookup in
    those tables can tell them apart: the reverse-path memo's second class."""

    __slots__ = ("buckets", "by_len", "short")

    def __init__(self, tables: list[RouteTable], prefixes: list[tuple[int, int]]) -> None:
        # Per length, the tables' own dicts that have it (no copy of a million keys), and
        # the rule selectors' prefixes as one more.
        extra: list[dict[int, object]] = [{} for _ in range(33)]
        for net, plen in prefixes:
            extra[plen][net] = None
        self.by_len: list[tuple[Mapping[int, object], ...]] = []
        for plen in range(33):
            levels: list[Mapping[int, object]] = [t.by_len[plen] for t in tables]
            self.by_len.append(tuple(level for level in (*levels, extra[plen]) if level))
        buckets: dict[int, set[int]] = {}
        for table in tables:
            for top, plens in table.buckets.items():
                buckets.setdefault(top, set()).update(p for p in plens if p >= 16)
        for net, plen in prefixes:
            if plen >= 16:
                buckets.setdefault(net >> 16, set()).add(plen)
        self.short = tuple(p for p in range(15, -1, -1) if self.by_len[p])
        self.buckets = {top: (*sorted(plens, reverse=True), *self.short)
                        for top, plens in buckets.items()}  # fmt: skip

    def longest(self, addr: int) -> tuple[int, int]:
        """(network, length) of the longest prefix holding ``addr``; (0, -1) for none."""
        by_len, masks = self.by_len, MASKS
        for plen in self.buckets.get(addr >> 16, self.short):
            net = addr & masks[plen]
            for level in by_len[plen]:
                if net in level:
                    return net, plen
        return 0, -1
