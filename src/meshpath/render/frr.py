"""FRR configuration that meshpath owns, and its merge into a user's config (pure).

meshpath owns, and only ever adds or removes:

* ``ip route RANGE TUNNEL`` / ``ipv6 route RANGE TUNNEL`` static lines for the ranges it
  was asked to route (staticd),
* the prefix-lists ``MESHPATH-CF`` (IPv4) and ``MESHPATH-CF6`` (IPv6) and the route-maps
  ``MESHPATH-OUT`` / ``MESHPATH-IN`` (recognised by name),
* inside ``router bgp ASN``: the lines naming its peer and ``redistribute static
  route-map MESHPATH-OUT``, in the ipv4 unicast family and, when IPv6 ranges are
  advertised, the ipv6 unicast family (the whole block only when meshpath created it).

IPv6 rides on the same session (#16 item 4): ``MESHPATH-OUT`` gets a second entry matching
``MESHPATH-CF6`` (FRR's prefix-list match never matches a prefix of the other family, so
each entry passes exactly its own family's ranges), and the ipv6 unicast family activates
the peer, whose address may be IPv4 or IPv6.

A standby connector (``role="standby"``, one of several HA replicas of a Mesh node) sets
``set as-path prepend`` in ``MESHPATH-OUT``: the LAN then prefers the primary's routes and
uses the standby's only when the primary's are withdrawn. ``bfd`` adds ``neighbor PEER bfd``.

Everything else in the running config is the user's and is carried over verbatim: the
desired config handed to ``frr-reload.py --reload`` is *the running config's own text*,
with meshpath's missing lines inserted and its stale ones removed, so frr-reload's diff
touches nothing else, and the plan shows exactly that edit against the real text.

Composing with what the user already has (issue #12):

* the peer may already be the user's neighbour: its lines stay theirs; meshpath adds only
  its route-maps (and ``activate``), and takes only those away again;
* a user's ``redistribute static`` stays (FRR keeps one per address family): plain, it
  already brings meshpath's statics into BGP; with ``route-map X``, meshpath adds one
  entry to X matching ``MESHPATH-CF``; meshpath's peer is filtered by ``MESHPATH-OUT``
  either way, and rollback removes exactly what was added;
* ``no bgp default ipv4-unicast``: meshpath activates its peer in the ipv4 unicast family;
* ASNs in asdot (``router bgp 1.1``), ``vrf`` blocks ending in ``exit-vrf``, and
  hand-written layouts (tabs, a missing ``exit-address-family``, body lines at column 0)
  are read the way FRR reads them.
"""

from __future__ import annotations

import difflib
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from meshpath.errors import BadInputError
from meshpath.state.frrconf import IPV4_AF as _IPV4
from meshpath.state.frrconf import IPV6_AF as _IPV6
from meshpath.state.frrconf import SEPARATOR as _SEPARATOR
from meshpath.state.frrconf import Block as Block
from meshpath.state.frrconf import Span as Span
from meshpath.state.frrconf import af_of as _af_of
from meshpath.state.frrconf import bgp_asn_of as bgp_asn_of
from meshpath.state.frrconf import body_of as _body
from meshpath.state.frrconf import config_lines as config_lines
from meshpath.state.frrconf import header_key as _header_key
from meshpath.state.frrconf import line_keys as line_keys
from meshpath.state.frrconf import parse_asn as parse_asn
from meshpath.state.frrconf import parse_blocks as parse_blocks
from meshpath.state.frrconf import rmap_delay_set as rmap_delay_set
from meshpath.state.frrconf import spans as spans
from meshpath.state.frrconf import split_lines as _split_lines
from meshpath.values import parse_asn as checked_asn
from meshpath.values import parse_ifname, parse_peer, parse_peer_asn

PREFIX_LIST: Final = "MESHPATH-CF"
PREFIX_LIST6: Final = "MESHPATH-CF6"
RMAP_OUT: Final = "MESHPATH-OUT"
RMAP_IN: Final = "MESHPATH-IN"
# How often a standby prepends its own AS: longer than any primary's path the LAN may hear
# (one AS), with room for a primary that prepends once itself.
STANDBY_PREPEND: Final = 3
# bgpd's route-map delay timer, shortened from FRR's default 5 s when meshpath creates
# ``router bgp``. Why (FRR 8.4.4 source): a neighbour created inside a config transaction
# (``vtysh -f``, how frr-reload.py applies every pass) gets ``shut_during_cfg``
# (bgpd/bgpd.c peer_create: ``if (bgp_config_inprocess())``) and sits in Idle, refusing the
# peer's connections, until ``bgp_config_finish`` -> ``peer_unshut_after_cfg`` runs;
# bgp_vty.c ``bgp_config_end()`` schedules that after what is left of the route-map delay
# timer (``thread_timer_remain_second(bm->t_rmap_update)``), and creating MESHPATH-OUT
# starts that timer at ``bm->rmap_update_timer`` (bgp_routemap.c
# ``bgp_route_map_mark_update``): ~4 s in Idle after frr-reload.py's last pass. With 1 s the
# remainder rounds down to 0 and the session starts at once. Not 0: in 8.4 that turns off
# re-announcing when a route-map changes later ("0 disables the timer, no route updates
# happen when route-maps change"). The line leads meshpath's lines so the timer is 1 s
# before MESHPATH-OUT is created.
RMAP_DELAY: Final = "bgp route-map delay-timer 1"
# In the ``router bgp`` meshpath creates (one peer): announce 100 ms after Established, not
# after FRR's heuristic of 1000 ms + 50 ms a peer (bgpd.c peer_create:
# BGP_DEFAULT_SUBGROUP_COALESCE_TIME; a new update subgroup's first announcement waits
# v_coalesce, bgp_updgrp.c update_subgroup_create). The heuristic batches announcements to
# many peers; one peer with two routes has nothing to batch.
COALESCE_MS: Final = 100


@dataclass(frozen=True, slots=True)
class FrrIntent:
    """What meshpath wants in FRR: statics, and optionally one BGP peering."""

    tunnel: str
    statics: tuple[str, ...]  # prefixes routed via the tunnel by staticd
    advertise: tuple[str, ...] = ()  # prefix-list content (bgp mode)
    asn: int | None = None
    peer: str | None = None
    peer_asn: str = "external"  # a number, "external" or "internal"
    bgp_created: bool = False  # meshpath creates ``router bgp`` (removes it on rollback)
    role: str | None = None  # "standby": prepend the AS path; "primary"/None: nothing
    bfd: bool = False  # ``neighbor PEER bfd`` (bfdd must run)
    owned_statics: tuple[str, ...] = field(default=())  # statics meshpath added itself
    # How meshpath composes with the user's router bgp (set by compose()):
    user_neighbor: bool = False  # the peer is the user's neighbour: keep its own lines
    activate: bool = False  # add ``neighbor PEER activate`` (no bgp default ipv4-unicast)
    user_redistribute: str | None = None  # the user's ``redistribute static`` (route-map
    # name, "" without one) that stays; None: meshpath adds its own
    redist_seq: int = 0  # the entry meshpath adds to the user's redistribute route-map
    af_created: bool = False  # meshpath opens the ipv4 unicast family in the user's block
    af6_created: bool = False  # meshpath opens the ipv6 unicast family in the user's block
    activate6: bool = True  # add ``neighbor PEER activate`` in ipv6 unicast (FRR activates
    # only ipv4 unicast by default); False when the user's neighbour already has it
    # RMAP_DELAY is meshpath's (set when it creates router bgp and FRR's default is in effect)
    rmap_delay: bool = False

    @property
    def bgp(self) -> bool:
        return self.asn is not None and self.peer is not None

    @property
    def advertise_v4(self) -> tuple[str, ...]:
        return tuple(p for p in self.advertise if ":" not in p)

    @property
    def advertise_v6(self) -> tuple[str, ...]:
        return tuple(p for p in self.advertise if ":" in p)


def static_line(prefix: str, tunnel: str) -> str:
    """staticd's line routing ``prefix`` via ``tunnel``: ``ip route`` or ``ipv6 route``."""
    return f"{'ipv6' if ':' in prefix else 'ip'} route {prefix} {tunnel}"


# What FRR reads in the nexthop place of ``ip route PREFIX NEXTHOP`` instead of an
# interface, found with staticd 8.4 itself (tests/lab/test_hostile_names.py): its CLI
# completes keywords from any prefix, case-sensitively ("bl" is blackhole, "N" is Null0),
# and staticd takes every name starting with "null0" in any case as Null0 and refuses
# "blackhole" and "reject" in any case.
_FRR_NEXTHOP_WORDS: Final = ("blackhole", "reject", "Null0")


def frr_ifname_problem(name: str) -> str | None:
    """Why FRR would not take ``name`` as the interface of a static route, or None."""
    folded = name.lower()
    if any(word.startswith(name) for word in _FRR_NEXTHOP_WORDS) or folded.startswith("null0"):
        return "FRR reads it as a blackhole/reject/Null0 nexthop keyword"
    if folded in ("blackhole", "reject"):
        return "FRR refuses it as an interface name (a nexthop keyword)"
    if _is_ipv4(name):
        return "FRR reads it as a gateway address, not an interface"
    if "'" in name:
        # staticd puts the name into a YANG path quoted with ' and dies on the parse error.
        return "FRR 8.4's staticd crashes on a \"'\" in an interface name"
    if name.endswith("?"):
        return "vtysh reads a trailing '?' as a request for help"
    if any(c.isspace() for c in name):
        # frr-reload.py compresses blanks with Python's str.split(): "a\u2028b" becomes "a b".
        return "frr-reload.py reads a character in it as a blank"
    return None


def _is_ipv4(name: str) -> bool:
    """What FRR's A.B.C.D token takes (inet_pton: four decimal octets, no leading zeros;
    "1.2.3" and "01.2.3.4" stay interface names)."""
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        return False
    return True


def frr_ifname(name: str, what: str = "tunnel interface") -> str:
    """``name`` as FRR's static-route nexthop interface; BadInputError when the kernel
    or FRR cannot take it exactly (FRR splits words on blanks only, which no interface
    name holds, so every other name is one literal word)."""
    ifname = parse_ifname(name, what)
    problem = frr_ifname_problem(ifname)
    if problem is not None:
        raise BadInputError(f"{what} {name!r}: {problem}; rename the interface")
    return ifname


def _prefix(text: str) -> str:
    try:
        return str(ipaddress.ip_network(text))
    except ValueError:
        raise BadInputError(f"FRR static route {text!r} is not a CIDR prefix") from None


def render_intent(intent: FrrIntent) -> list[Block]:
    """meshpath's own blocks (statics, prefix-list, route-maps, router bgp).

    Every value is parsed before it is written (the intent may come from a journal)."""
    tunnel = frr_ifname(intent.tunnel)
    blocks: list[Block] = [(static_line(_prefix(p), tunnel),) for p in intent.statics]
    if not intent.bgp:
        return blocks
    if intent.rmap_delay:
        blocks.append((RMAP_DELAY,))
    blocks += [
        (f"ip prefix-list {PREFIX_LIST} seq {10 * i} permit {_prefix(p)}",)
        for i, p in enumerate(intent.advertise_v4, start=1)
    ]
    blocks += [
        (f"ipv6 prefix-list {PREFIX_LIST6} seq {10 * i} permit {_prefix(p)}",)
        for i, p in enumerate(intent.advertise_v6, start=1)
    ]
    blocks += _route_map_out(intent)
    # RFC 8212: an eBGP session needs an explicit inbound policy; the connector needs to
    # learn nothing, so it is an explicit deny.
    blocks.append((f"route-map {RMAP_IN} deny 10",))
    blocks.append((f"router bgp {checked_asn(intent.asn or 0, 'ASN')}", *_bgp_lines(intent)))
    return blocks


def _route_map_out(intent: FrrIntent) -> list[Block]:
    """``MESHPATH-OUT``: exactly the prefix-lists (entry 10 IPv4, entry 20 IPv6); a standby
    also lengthens its AS path."""
    prepend: list[str] = []
    if intent.role == "standby":
        asn = str(checked_asn(intent.asn or 0, "ASN"))
        prepend = [f" set as-path prepend {' '.join([asn] * STANDBY_PREPEND)}"]
    elif intent.role not in (None, "primary"):
        raise BadInputError(f"role {intent.role!r}: expected primary or standby")
    out: list[Block] = []
    if intent.advertise_v4 or not intent.advertise_v6:
        match = f" match ip address prefix-list {PREFIX_LIST}"
        out.append((f"route-map {RMAP_OUT} permit 10", match, *prepend))
    if intent.advertise_v6:
        match = f" match ipv6 address prefix-list {PREFIX_LIST6}"
        out.append((f"route-map {RMAP_OUT} permit 20", match, *prepend))
    return out


def _family_lines(peer: str, family: str, activate: bool) -> list[str]:
    return [
        f" {family}",
        f"  redistribute static route-map {RMAP_OUT}",
        *([f"  neighbor {peer} activate"] if activate else []),
        f"  neighbor {peer} route-map {RMAP_IN} in",
        f"  neighbor {peer} route-map {RMAP_OUT} out",
        " exit-address-family",
    ]


def _bgp_lines(intent: FrrIntent) -> list[str]:
    peer = parse_peer(intent.peer or "", "BGP peer")
    bfd = [f" neighbor {peer} bfd"] if intent.bfd else []
    v6 = _family_lines(peer, _IPV6, intent.activate6) if intent.advertise_v6 else []
    return [
        *([f" coalesce-time {COALESCE_MS}"] if intent.bgp_created else []),
        f" neighbor {peer} remote-as {parse_peer_asn(intent.peer_asn, 'peer AS')}",
        *bfd,
        *_family_lines(peer, _IPV4, False),
        *v6,
    ]


def is_my_bgp(header: str, intent: FrrIntent) -> bool:
    parts = header.split()
    return (
        intent.bgp
        and parts[:2] == ["router", "bgp"]
        and len(parts) == 3
        and parse_asn(parts[2]) == intent.asn
    )


def intent_blocks(intent: FrrIntent) -> list[Block]:
    """meshpath's blocks as they compose with the user's config (see the docstring)."""
    blocks = render_intent(intent)
    if not intent.bgp:
        return blocks
    out: list[Block] = []
    for block in blocks:
        if is_my_bgp(block[0], intent):
            block = (block[0], *_my_bgp_body(block[1:], intent))
        out.append(block)
    if intent.user_redistribute:
        entry = f"route-map {intent.user_redistribute} permit {intent.redist_seq}"
        out.append((entry, f" match ip address prefix-list {PREFIX_LIST}"))
    return out


def _my_bgp_body(body: Sequence[str], intent: FrrIntent) -> list[str]:
    out: list[str] = []
    af: str | None = None
    for line in body:
        s = line.strip()
        if intent.user_neighbor and s.startswith(f"neighbor {intent.peer} remote-as "):
            continue  # the user's own session definition stays as it is
        if (
            af == _IPV4
            and intent.user_redistribute is not None
            and s.startswith("redistribute static")
        ):
            continue  # the user's own redistribute stays (one per address family)
        if s == "exit-address-family" and af == _IPV4 and intent.activate:
            out.append(f"  neighbor {intent.peer} activate")
        out.append(line)
        af = _af_of(s, af)
    return out


# -- ownership: what meshpath added, and only that ----------------------------------------


def _owned_top(header: str, body: Sequence[str], intent: FrrIntent, statics: Sequence[str]) -> bool:
    if header.startswith((f"ip prefix-list {PREFIX_LIST} ", f"ipv6 prefix-list {PREFIX_LIST6} ")):
        return True
    if intent.rmap_delay and header == RMAP_DELAY:
        return True
    if header.startswith((f"route-map {RMAP_OUT} ", f"route-map {RMAP_IN} ")):
        return True
    if is_cf_entry(header, body):
        return True  # meshpath's entry in the user's redistribute route-map
    return any(header == static_line(p, intent.tunnel) for p in statics)


def is_cf_entry(header: str, body: Sequence[str]) -> bool:
    """A route-map entry matching only meshpath's prefix-list: meshpath wrote it."""
    mine = f"match ip address prefix-list {PREFIX_LIST}"
    return header.startswith("route-map ") and [" ".join(b.split()) for b in body] == [mine]


def _owned_bgp_line(line: str, intent: FrrIntent, af: str | None) -> bool:
    """meshpath's line in its router bgp block; ``af``: the address family it is in.

    meshpath writes only at the bgp level and in the ipv4 and ipv6 unicast families: a
    peer it created is its own there; a user's peer only has meshpath's route-maps (and
    ``activate`` when meshpath added it). Other families are never touched.
    """
    s = " ".join(line.split())
    if af not in (None, _IPV4, _IPV6):
        return False
    if af is not None and s == f"redistribute static route-map {RMAP_OUT}":
        return True
    if intent.peer is None or not s.startswith(f"neighbor {intent.peer} "):
        return False
    if not intent.user_neighbor:
        return True
    mine = {
        f"neighbor {intent.peer} route-map {RMAP_IN} in",
        f"neighbor {intent.peer} route-map {RMAP_OUT} out",
    }
    if (intent.activate and af == _IPV4) or (intent.activate6 and af == _IPV6):
        mine.add(f"neighbor {intent.peer} activate")
    return af is not None and s in mine


def _strip_body(body: Sequence[str], intent: FrrIntent) -> list[str]:
    out: list[str] = []
    af: str | None = None
    for line in body:
        s = " ".join(line.split())
        if not _owned_bgp_line(s, intent, af):
            out.append(line)
        af = _af_of(s, af)
    return out


def strip_owned(blocks: Iterable[Block], intent: FrrIntent, statics: Sequence[str]) -> list[Block]:
    """``blocks`` without meshpath's lines (``statics``: which static lines count as ours)."""
    out: list[Block] = []
    for block in blocks:
        header = block[0]
        if _owned_top(header, block[1:], intent, statics):
            continue
        if is_my_bgp(header, intent):
            if intent.bgp_created:
                continue
            block = (header, *_strip_body(block[1:], intent))
        out.append(block)
    return out


# -- composing with the user's router bgp -------------------------------------------------


def check_asn(blocks: Sequence[Block], intent: FrrIntent) -> None:
    existing = bgp_asn_of(blocks)
    if intent.bgp and existing is not None and existing != intent.asn:
        header = next(
            b[0] for b in blocks if b[0].split()[:2] == ["router", "bgp"] and len(b[0].split()) == 3
        )
        shown = f"'{header}'" + (f" (AS {existing})" if header.split()[2] != str(existing) else "")
        raise BadInputError(f"FRR already runs {shown}; --asn {intent.asn} must match it")


# -- the text edit -------------------------------------------------------------------------


def merge_text(running: str, intent: FrrIntent) -> str:
    """The desired config: the running config's own text, meshpath's lines inserted where
    missing and its stale ones removed (nothing else moves)."""
    blocks = parse_blocks(running)
    check_asn(blocks, intent)
    lines = config_lines(running)
    mine = intent_blocks(intent)
    want = line_keys(mine)
    lines = _remove(lines, intent, intent.statics, keep=want)
    present = line_keys(parse_blocks("\n".join(lines)))
    users_bgp = any(is_my_bgp(sp.header, intent) for sp in spans(lines))
    missing: list[Block] = []
    for block in mine:
        if users_bgp and is_my_bgp(block[0], intent):
            lines = _splice_bgp_text(lines, block, present, intent)
        elif not line_keys([block]) <= present:
            missing.append(block)
    return _join(_insert_top(lines, missing))


def strip_text(running: str, intent: FrrIntent) -> str:
    """The running config's text without meshpath's lines (rollback)."""
    return _join(_remove(config_lines(running), intent, intent.owned_statics, keep=frozenset()))


def _join(lines: Sequence[str]) -> str:
    return "\n".join(lines).rstrip("\n") + "\n"


def _remove(
    lines: list[str], intent: FrrIntent, statics: Sequence[str], keep: frozenset[tuple[str, ...]]
) -> list[str]:
    """Drop meshpath's blocks and bgp lines that are not wanted (``keep``)."""
    drop: set[int] = set()
    for sp in spans(lines):
        body = _body(lines, sp)
        if _owned_top(sp.header, body, intent, statics):
            if not line_keys([(sp.header, *body)]) <= keep:
                drop.update(range(sp.start, sp.end))
                drop.update(_separator_after(lines, sp.end))
        elif is_my_bgp(sp.header, intent):
            drop.update(_bgp_drops(lines, sp, intent, keep))
    return [line for i, line in enumerate(lines) if i not in drop]


def _separator_after(lines: Sequence[str], end: int) -> range:
    return (
        range(end, end + 1) if end < len(lines) and lines[end].strip() == _SEPARATOR else range(0)
    )


def _bgp_drops(
    lines: Sequence[str], sp: Span, intent: FrrIntent, keep: frozenset[tuple[str, ...]]
) -> set[int]:
    if intent.bgp_created and not keep:
        return set(range(sp.start, sp.end)) | set(_separator_after(lines, sp.end))
    head = _header_key(sp.header)
    drop: set[int] = set()
    af: str | None = None
    for i in range(sp.start + 1, sp.end):
        s = " ".join(lines[i].split())
        key = (head, af, s) if af is not None else (head, s)
        if s and _owned_bgp_line(s, intent, af) and key not in keep:
            drop.add(i)
        af = _af_of(s, af)
    opened = {af for af, made in ((_IPV4, intent.af_created), (_IPV6, intent.af6_created)) if made}
    return drop | _emptied_families(lines, sp, drop, opened)


def _emptied_families(lines: Sequence[str], sp: Span, drop: set[int], opened: set[str]) -> set[int]:
    """Address-family sections left with nothing but meshpath's lines, when meshpath
    opened the family (``opened``): gone with them (its header, exit and the ' !' before
    it)."""
    out: set[int] = set()
    sections: list[list[int]] = []
    open_ = False
    stop = sp.exit_at if sp.exit_at is not None else sp.end
    for i in range(sp.start + 1, stop):
        s = lines[i].strip()
        if s.startswith("address-family "):
            open_ = _af_of(" ".join(s.split()), None) in opened
            if open_:
                sections.append([i])
        elif open_ and s and not s.startswith(_SEPARATOR):
            sections[-1].append(i)
            open_ = s != "exit-address-family"
    for section in sections:
        body = [i for i in section[1:] if lines[i].strip() != "exit-address-family"]
        if body and all(i in drop for i in body):
            out.update(section)
            if lines[section[0] - 1].strip() == _SEPARATOR:
                out.add(section[0] - 1)
    return out


def _splice_bgp_text(
    lines: list[str], mine: Block, present: frozenset[tuple[str, ...]], intent: FrrIntent
) -> list[str]:
    head = _header_key(mine[0])
    bgp_level, families = _split_af(mine[1:])
    top = [ln for ln in bgp_level if (head, ln.strip()) not in present]
    out = list(lines)
    # later positions first, so the earlier ones stay where they were computed
    edits: list[tuple[int, list[str]]] = []
    for family, af_lines in families.items():
        missing = [ln for ln in af_lines if (head, family, ln.strip()) not in present]
        if missing:
            edits.append(_family_edit(lines, intent, family, missing))
    if top:
        first = _first_af(lines, [s for s in spans(lines) if is_my_bgp(s.header, intent)][0])
        edits.append((first, top))
    # at one position the later edit goes in first, so the earlier one ends up before it
    for _, at, new in sorted(
        ((i, at, new) for i, (at, new) in enumerate(edits)),
        key=lambda e: (e[1], e[0]),
        reverse=True,
    ):
        out[at:at] = new
    return out


def _family_edit(
    lines: Sequence[str], intent: FrrIntent, family: str, missing: list[str]
) -> tuple[int, list[str]]:
    """Where ``missing`` lines of ``family`` go, and the lines to insert there: into the
    user's section of that family (FRR merges repeated router bgp blocks, so the first
    block that has one), else a new section at the end of the first block."""
    mine_spans = [s for s in spans(lines) if is_my_bgp(s.header, intent)]
    ends = [e for x in mine_spans if (e := _af_end(lines, x, family)) is not None]
    if ends:
        return ends[0], missing
    sp = mine_spans[0]
    end = sp.exit_at if sp.exit_at is not None else sp.end
    return end, [" !", f" {family}", *missing, " exit-address-family"]


def _split_af(body: Sequence[str]) -> tuple[list[str], dict[str, list[str]]]:
    top: list[str] = []
    families: dict[str, list[str]] = {}
    af: str | None = None
    for line in body:
        s = " ".join(line.split())
        if s.startswith("address-family") or s == "exit-address-family":
            af = _af_of(s, af)
        elif af is not None:
            families.setdefault(af, []).append(line)
        else:
            top.append(line)
    return top, families


def _af_end(lines: Sequence[str], sp: Span, family: str) -> int | None:
    """Where to append to ``family`` in a router bgp block: before its
    exit-address-family, the next address-family (FRR leaves one family for the next
    without it), or the block's end; None when the block has no such family."""
    start: int | None = None
    stop = sp.exit_at if sp.exit_at is not None else sp.end
    for i in range(sp.start + 1, stop):
        s = " ".join(lines[i].split())
        if start is None:
            if s.startswith("address-family ") and _af_of(s, None) == family:
                start = i
        elif s == "exit-address-family" or s.startswith("address-family "):
            return _before_separators(lines, i, start)
    return _before_separators(lines, stop, start) if start is not None else None


def _before_separators(lines: Sequence[str], i: int, floor: int) -> int:
    while i - 1 > floor and lines[i - 1].strip() in ("", _SEPARATOR):
        i -= 1
    return i


def _first_af(lines: Sequence[str], sp: Span) -> int:
    """Where bgp-level lines go: before the first address family (and its ' !')."""
    stop = sp.exit_at if sp.exit_at is not None else sp.end
    for i in range(sp.start + 1, stop):
        if lines[i].strip().startswith("address-family"):
            return _before_separators(lines, i, sp.start)
    return _before_separators(lines, stop, sp.start)


def _insert_top(lines: list[str], blocks: Sequence[Block]) -> list[str]:
    """New top-level blocks, each closed as FRR closes it, before the final ``end``."""
    if not blocks:
        return lines
    text = render_blocks(blocks).rstrip("\n").split("\n")
    at = len(lines)
    while at > 0 and lines[at - 1].strip() in ("", "end"):
        at -= 1
    if at > 0 and lines[at - 1].strip() != _SEPARATOR:
        text = [_SEPARATOR, *text]
    return [*lines[:at], *text, *lines[at:]]


def merge(running: str, intent: FrrIntent) -> list[Block]:
    """The desired full config as blocks (see :func:`merge_text`)."""
    return parse_blocks(merge_text(running, intent))


def render_blocks(blocks: Iterable[Block]) -> str:
    """Config text for frr-reload.py / vtysh -C: blocks closed as FRR closes them."""
    out: list[str] = []
    for block in blocks:
        out.extend(block)
        if block[0].startswith("vrf "):
            out.append("exit-vrf")
        elif len(block) > 1 or block[0].startswith(("route-map ", "router ")):
            out.append("exit")
        out.append("!")
    return "\n".join(out) + "\n"


def diff(before: str, after: str, label: str = "frr") -> str:
    """A unified diff of the real running config and the desired one (the plan shows it)."""
    lines = difflib.unified_diff(
        config_lines(before),
        _split_lines(after),
        f"{label} (running)",
        f"{label} (desired)",
        lineterm="",
    )
    return "\n".join(lines)
