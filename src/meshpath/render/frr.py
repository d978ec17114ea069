"""FRR configuration that meshpath owns, and its merge into a user's config (pure).

meshpath owns, and only ever adds or removes:

* ``ip route RANGE TUNNEL`` static lines for the ranges it was asked to route (staticd),
* the prefix-list ``MESHPATH-CF`` and the route-maps ``MESHPATH-OUT`` / ``MESHPATH-IN``
  (recognised by name),
* inside ``router bgp ASN``: the lines naming its peer and ``redistribute static
  route-map MESHPATH-OUT`` (the whole block only when meshpath created it).

A standby connector (``role="standby"``, one of several HA replicas of a Mesh node) sets
``set as-path prepend`` in ``MESHPATH-OUT``: the LAN then prefers the primary's routes and
uses the standby's only when the primary's are withdrawn. ``bfd`` adds ``neighbor PEER bfd``.

Everything else in the running config is the user's and is carried over verbatim: the
desired config handed to ``frr-reload.py --reload`` is *running minus meshpath's lines
plus meshpath's lines*, so frr-reload's diff touches nothing else.
"""

from __future__ import annotations

import difflib
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from meshpath.errors import BadInputError
from meshpath.values import parse_asn, parse_ifname, parse_peer, parse_peer_asn

PREFIX_LIST: Final = "MESHPATH-CF"
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
_NOISE: Final = ("Building configuration", "Current configuration", "end")
# FRR splits config into lines on '\n' and words on these; str.splitlines()/strip() would
# also cut at characters an interface name may hold (\x1c-\x1f, \x85, \u2028).
_BLANKS: Final = " \t\r"

Block = tuple[str, ...]  # header line, then its indented body (``exit`` not kept)


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
    # RMAP_DELAY is meshpath's (set when it creates router bgp and FRR's default is in effect)
    rmap_delay: bool = False

    @property
    def bgp(self) -> bool:
        return self.asn is not None and self.peer is not None


def parse_blocks(text: str) -> list[Block]:
    """Split FRR config text into top-level blocks; ``!``, ``exit`` and banners dropped."""
    blocks: list[list[str]] = []
    for raw in text.split("\n"):
        line = raw.rstrip(_BLANKS)
        stripped = line.strip(_BLANKS)
        if not stripped or stripped.startswith("!") or stripped.startswith(_NOISE):
            continue
        if line[0] != " ":
            if stripped == "exit":
                continue
            blocks.append([line])
        elif blocks:
            blocks[-1].append(line)
    return [tuple(b) for b in blocks]


def line_keys(blocks: Iterable[Block]) -> frozenset[tuple[str, ...]]:
    """Every configured line with its context path (what frr-reload compares)."""
    keys: set[tuple[str, ...]] = set()
    for block in blocks:
        header = block[0].strip(_BLANKS)
        keys.add((header,))
        sub: str | None = None
        for line in block[1:]:
            s = line.strip(_BLANKS)
            if s.startswith("address-family"):
                sub = s
                keys.add((header, s))
            elif s == "exit-address-family":
                sub = None
            elif sub is not None and line.startswith("  "):
                keys.add((header, sub, s))
            else:
                keys.add((header, s))
    return frozenset(keys)


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
    blocks: list[Block] = [(f"ip route {_prefix(p)} {tunnel}",) for p in intent.statics]
    if not intent.bgp:
        return blocks
    if intent.rmap_delay:
        blocks.append((RMAP_DELAY,))
    blocks += [
        (f"ip prefix-list {PREFIX_LIST} seq {10 * i} permit {_prefix(p)}",)
        for i, p in enumerate(intent.advertise, start=1)
    ]
    blocks.append(_route_map_out(intent))
    # RFC 8212: an eBGP session needs an explicit inbound policy; the connector needs to
    # learn nothing, so it is an explicit deny.
    blocks.append((f"route-map {RMAP_IN} deny 10",))
    blocks.append((f"router bgp {parse_asn(intent.asn or 0, 'ASN')}", *_bgp_lines(intent)))
    return blocks


def _route_map_out(intent: FrrIntent) -> Block:
    """``MESHPATH-OUT``: exactly the prefix-list; a standby also lengthens its AS path."""
    lines = [f"route-map {RMAP_OUT} permit 10", f" match ip address prefix-list {PREFIX_LIST}"]
    if intent.role == "standby":
        asn = str(parse_asn(intent.asn or 0, "ASN"))
        lines.append(f" set as-path prepend {' '.join([asn] * STANDBY_PREPEND)}")
    elif intent.role not in (None, "primary"):
        raise BadInputError(f"role {intent.role!r}: expected primary or standby")
    return tuple(lines)


def _bgp_lines(intent: FrrIntent) -> list[str]:
    peer = parse_peer(intent.peer or "", "BGP peer")
    bfd = [f" neighbor {peer} bfd"] if intent.bfd else []
    return [
        *([f" coalesce-time {COALESCE_MS}"] if intent.bgp_created else []),
        f" neighbor {peer} remote-as {parse_peer_asn(intent.peer_asn, 'peer AS')}",
        *bfd,
        " address-family ipv4 unicast",
        f"  redistribute static route-map {RMAP_OUT}",
        f"  neighbor {peer} route-map {RMAP_IN} in",
        f"  neighbor {peer} route-map {RMAP_OUT} out",
        " exit-address-family",
    ]


def bgp_asn_of(blocks: Iterable[Block]) -> int | None:
    """The ASN of the default-VRF ``router bgp`` block, if there is one."""
    for block in blocks:
        parts = block[0].split()
        if parts[:2] == ["router", "bgp"] and len(parts) == 3:
            return int(parts[2])
    return None


def rmap_delay_set(blocks: Iterable[Block]) -> bool:
    """Whether the config sets bgpd's route-map delay timer (absent: FRR's default)."""
    return any(b[0].startswith("bgp route-map delay-timer") for b in blocks)


def _owned_top(line: str, intent: FrrIntent, statics: Sequence[str]) -> bool:
    if line.startswith(f"ip prefix-list {PREFIX_LIST} "):
        return True
    if intent.rmap_delay and line == RMAP_DELAY:
        return True
    if line.startswith((f"route-map {RMAP_OUT} ", f"route-map {RMAP_IN} ")):
        return True
    return any(line == f"ip route {p} {intent.tunnel}" for p in statics)


def _owned_bgp_line(line: str, intent: FrrIntent) -> bool:
    s = line.strip(_BLANKS)
    if s == f"redistribute static route-map {RMAP_OUT}":
        return True
    return intent.peer is not None and s.startswith(f"neighbor {intent.peer} ")


def strip_owned(blocks: Iterable[Block], intent: FrrIntent, statics: Sequence[str]) -> list[Block]:
    """``blocks`` without meshpath's lines (``statics``: which static lines count as ours)."""
    out: list[Block] = []
    for block in blocks:
        header = block[0]
        if _owned_top(header, intent, statics):
            continue
        if intent.bgp and header == f"router bgp {intent.asn}":
            if intent.bgp_created:
                continue
            block = (header, *(ln for ln in block[1:] if not _owned_bgp_line(ln, intent)))
        out.append(block)
    return out


def merge(running: str, intent: FrrIntent) -> list[Block]:
    """The desired full config: the user's blocks, meshpath's blocks merged in."""
    blocks = parse_blocks(running)
    existing = bgp_asn_of(blocks)
    if intent.bgp and existing is not None and existing != intent.asn:
        raise BadInputError(
            f"FRR already runs 'router bgp {existing}'; --asn {intent.asn} must match it"
        )
    base = strip_owned(blocks, intent, intent.statics)
    mine = render_intent(intent)
    mine_bgp = [b for b in mine if b[0].startswith("router bgp ")]
    mine_top = [b for b in mine if not b[0].startswith("router bgp ")]
    result: list[Block] = []
    for block in base:
        if mine_bgp and block[0] == mine_bgp[0][0]:
            block = _splice_bgp(block, mine_bgp[0])
            mine_bgp = []
        result.append(block)
    return result + mine_top + mine_bgp


def _splice_bgp(user: Block, mine: Block) -> Block:
    """Insert meshpath's neighbour and address-family lines into the user's router bgp."""
    top = [ln for ln in mine[1:] if not ln.startswith("  ") and "address-family" not in ln]
    af = [ln for ln in mine[1:] if ln.startswith("  ")]
    body = list(user[1:])
    af_at = next(
        (i for i, ln in enumerate(body) if ln.strip(_BLANKS) == "address-family ipv4 unicast"), None
    )
    if af_at is None:
        body += [" address-family ipv4 unicast", *af, " exit-address-family"]
    else:
        end = next(
            (i for i in range(af_at, len(body)) if body[i].strip(_BLANKS) == "exit-address-family"),
            len(body),
        )
        body[end:end] = af
    first_af = next((i for i, ln in enumerate(body) if "address-family" in ln), len(body))
    body[first_af:first_af] = top
    return (user[0], *body)


def render_blocks(blocks: Iterable[Block]) -> str:
    """Config text for frr-reload.py / vtysh -C: blocks closed with ``exit`` and ``!``."""
    out: list[str] = []
    for block in blocks:
        out.extend(block)
        if len(block) > 1 or block[0].startswith(("route-map ", "router ")):
            out.append("exit")
        out.append("!")
    return "\n".join(out) + "\n"


def is_applied(running: str | None, intent: FrrIntent) -> bool:
    """meshpath's lines are all in ``running`` and no stale meshpath-named line is."""
    if running is None:
        return False
    have = line_keys(parse_blocks(running))
    want = line_keys(render_intent(intent))
    named = {k for k in have if any(n in k[0] for n in (PREFIX_LIST, RMAP_OUT, RMAP_IN))}
    return want <= have and named <= want


def diff(before: str, after: str, label: str = "frr") -> str:
    """A unified diff of two config texts (for the plan printout)."""
    lines = difflib.unified_diff(
        before.splitlines(),
        after.splitlines(),
        f"{label} (running)",
        f"{label} (desired)",
        lineterm="",
    )
    return "\n".join(lines)
