"""Fleet checks: several connectors' BGP advertisements judged together (pure).

One connector cannot see another's advertisement, so the doctor cannot tell whether two
replicas of a Mesh node advertise the Cloudflare ranges to the LAN with equal preference.
An operator has each connector's snapshot (``meshpath snapshot``) or its fleet facts
(``meshpath fleet facts``, the Ansible module ``meshpath_facts``): this module reduces each
to what it advertises to each peer, with the attributes the LAN router's BGP best-path
choice compares, and judges them together.

MP401: two or more connectors send a Cloudflare range to the same peer with equal best
preference (local preference, AS-path length, MED). The router then keeps one of the
equal paths by age (FRR: the older eBGP path), whichever replica came up first, and sends
every reply to it; Cloudflare keeps one replica active, and each flow that enters through
the other breaks (handshake timeout). The inputs are taken as replicas of one Mesh node.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from meshpath.checks.finding import Finding, Severity
from meshpath.errors import BadInputError
from meshpath.ranges import CloudflareRanges
from meshpath.render.frr import Block, parse_blocks
from meshpath.state.model import Snapshot

DEFAULT_LOCAL_PREF: Final = 100  # RFC 4271 leaves it to the implementation; FRR's default


@dataclass(frozen=True, slots=True)
class Advertisement:
    """What one connector sends one BGP peer: the Cloudflare ranges and their attributes."""

    host: str
    peer: str
    prefixes: tuple[str, ...]
    as_path_length: int  # as the peer receives it: the connector's AS + every prepend
    local_pref: int | None = None  # set by the connector; None on eBGP (never sent there)
    med: int | None = None

    def preference(self) -> tuple[int, int, int]:
        """The best-path steps a replica can influence, as a key (lower is preferred):
        higher local preference, then shorter AS path, then lower MED (RFC 4271 9.1.2.2)."""
        local_pref = DEFAULT_LOCAL_PREF if self.local_pref is None else self.local_pref
        return (-local_pref, self.as_path_length, self.med or 0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "peer": self.peer,
            "prefixes": list(self.prefixes),
            "as_path_length": self.as_path_length,
            "local_pref": self.local_pref,
            "med": self.med,
        }


# -- one connector: its snapshot -> its advertisements ---------------------------------
def advertisements(
    snapshot: Snapshot, ranges: CloudflareRanges, host: str
) -> tuple[Advertisement, ...]:
    """Each peer that is sent Cloudflare ranges (``show ip bgp neighbors PEER
    advertised-routes``), with the attributes the running config's route-maps set."""
    blocks = parse_blocks(snapshot.frr.running_config or "")
    out = []
    for peer, sent in sorted(snapshot.frr.view.advertised.items()):
        mine = tuple(sorted(p for p in sent or () if in_ranges(p, ranges)))
        if mine:
            out.append(_advertisement(blocks, host, peer, mine))
    return tuple(out)


def _advertisement(
    blocks: Sequence[Block], host: str, peer: str, prefixes: tuple[str, ...]
) -> Advertisement:
    """The ranges are FRR statics: ``redistribute static route-map R`` sets their attributes
    in the BGP table, then ``neighbor PEER route-map O out`` on the way out (meshpath's
    standby prepends in both: the router sees 1 + 2 x 3 ASes)."""
    sets: dict[str, str] = {}
    prepends = 0
    for rmap in (_redistribute_map(blocks), _out_map(blocks, peer)):
        found = _entry_sets(blocks, rmap, prefixes[0]) if rmap else {}
        prepends += len(found.get("as-path prepend", "").split())
        sets |= {k: v for k, v in found.items() if k != "as-path prepend"}
    # LOCAL_PREF is only sent to internal peers (RFC 4271 5.1.5): an eBGP peer never sees it.
    local_pref = _int(sets.get("local-preference")) if _internal(blocks, peer) else None
    return Advertisement(host, peer, prefixes, 1 + prepends, local_pref, _int(sets.get("metric")))


def _internal(blocks: Sequence[Block], peer: str) -> bool:
    """``neighbor PEER remote-as internal`` or the block's own AS number."""
    header = next((b[0] for b in blocks if b[0].split()[:2] == ["router", "bgp"]), "")
    own = header.split()[2] if len(header.split()) > 2 else None
    for words in (line.split() for line in _bgp_body(blocks)):
        if words[:3] == ["neighbor", peer, "remote-as"] and len(words) == 4:
            return words[3] == "internal" or words[3] == own
    return False


def in_ranges(prefix: str, ranges: CloudflareRanges) -> bool:
    try:
        net = ipaddress.ip_network(prefix, strict=False)
    except ValueError:
        return False
    return any(net.version == r.version and net.subnet_of(r) for _k, r in ranges.items())  # type: ignore[arg-type]


def _bgp_body(blocks: Sequence[Block]) -> tuple[str, ...]:
    for block in blocks:
        if block[0].split()[:2] == ["router", "bgp"] and "vrf" not in block[0].split():
            return tuple(line.strip() for line in block[1:])
    return ()


def _redistribute_map(blocks: Sequence[Block]) -> str | None:
    for words in (line.split() for line in _bgp_body(blocks)):
        if words[:2] == ["redistribute", "static"] and "route-map" in words:
            return words[words.index("route-map") + 1]
    return None


def _out_map(blocks: Sequence[Block], peer: str) -> str | None:
    for words in (line.split() for line in _bgp_body(blocks)):
        if words[:2] == ["neighbor", peer] and words[2:3] == ["route-map"] and words[-1] == "out":
            return words[3]
    return None


def _entry_sets(blocks: Sequence[Block], name: str, prefix: str) -> dict[str, str]:
    """The ``set`` lines of the first permit entry of route-map ``name`` that lets ``prefix``
    through (no match line, or a matching prefix-list that names it)."""
    entries = []
    for block in blocks:
        words = block[0].split()
        if words[:2] == ["route-map", name] and len(words) == 4 and words[3].isdigit():
            entries.append((int(words[3]), words[2], [line.strip() for line in block[1:]]))
    for _seq, action, body in sorted(entries):
        if action == "permit" and _matches(blocks, body, prefix):
            return _sets(body)
    return {}


def _matches(blocks: Sequence[Block], body: Sequence[str], prefix: str) -> bool:
    for line in body:
        words = line.split()
        if words[:4] == ["match", "ip", "address", "prefix-list"] and len(words) == 5:
            return prefix in _prefix_list(blocks, words[4])
    return True


def _prefix_list(blocks: Sequence[Block], name: str) -> frozenset[str]:
    found = set()
    for block in blocks:
        words = block[0].split()
        if words[:3] == ["ip", "prefix-list", name] and "permit" in words:
            found.add(words[words.index("permit") + 1])
    return frozenset(found)


def _sets(body: Sequence[str]) -> dict[str, str]:
    out = {}
    for line in body:
        if line.startswith("set as-path prepend "):
            out["as-path prepend"] = line.removeprefix("set as-path prepend ")
        elif line.startswith(("set local-preference ", "set metric ")):
            key, _, value = line.removeprefix("set ").partition(" ")
            out[key] = value
    return out


def _int(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None


# -- fleet facts: the compact document one connector contributes ------------------------
def facts_doc(host: str, ads: Iterable[Advertisement]) -> dict[str, Any]:
    return {"host": host, "advertisements": [a.as_dict() for a in ads]}


def ads_from_doc(doc: Mapping[str, Any], source: str) -> tuple[Advertisement, ...]:
    """A fleet-facts document back into advertisements; BadInputError naming ``source``."""
    host = doc.get("host")
    items = doc.get("advertisements")
    if not isinstance(host, str) or not host or not isinstance(items, list):
        raise BadInputError(f"{source}: expected 'host' (text) and 'advertisements' (a list)")
    return tuple(_ad_from(host, item, f"{source}: {host}") for item in items)


def _ad_from(host: str, item: Any, where: str) -> Advertisement:
    if not isinstance(item, Mapping):
        raise BadInputError(f"{where}: an advertisement is not an object")
    peer, prefixes, length = item.get("peer"), item.get("prefixes"), item.get("as_path_length")
    if not isinstance(peer, str) or not isinstance(prefixes, list):
        raise BadInputError(f"{where}: an advertisement needs 'peer' and 'prefixes'")
    if not all(isinstance(p, str) for p in prefixes):
        raise BadInputError(f"{where}: 'prefixes' must be CIDR strings")
    return Advertisement(
        host,
        peer,
        tuple(sorted(prefixes)),
        _attr(length, where, "as_path_length", required=True) or 1,
        _attr(item.get("local_pref"), where, "local_pref"),
        _attr(item.get("med"), where, "med"),
    )


def _attr(value: Any, where: str, name: str, required: bool = False) -> int | None:
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**32:
        raise BadInputError(f"{where}: {name} must be a whole number 0..4294967295, got {value!r}")
    return value


# -- the fleet: every connector's advertisements together -------------------------------
def check_fleet(ads: Iterable[Advertisement]) -> tuple[Finding, ...]:
    """MP401 for each peer and set of hosts that tie at the best preference (the ranges
    they tie on named together)."""
    by_key: dict[tuple[str, str], list[Advertisement]] = defaultdict(list)
    for ad in ads:
        for prefix in ad.prefixes:
            by_key[(ad.peer, prefix)].append(ad)
    ties: dict[tuple[str, tuple[str, ...]], list[str]] = defaultdict(list)
    groups: dict[tuple[str, tuple[str, ...]], list[Advertisement]] = {}
    for (peer, prefix), group in sorted(by_key.items()):
        best = tuple(sorted({a.host for a in _best(group)}))
        if len(best) > 1:
            ties[(peer, best)].append(prefix)
            groups.setdefault((peer, best), group)
    return tuple(_tie_finding(peer, ties[(peer, hosts)], hosts, groups[(peer, hosts)])
                 for peer, hosts in ties)  # fmt: skip


def _best(group: Sequence[Advertisement]) -> list[Advertisement]:
    top = min(a.preference() for a in group)
    return [a for a in group if a.preference() == top]


def _evidence(ad: Advertisement) -> str:
    lp = "-" if ad.local_pref is None else str(ad.local_pref)
    med = "-" if ad.med is None else str(ad.med)
    return f"{ad.host}: AS path length {ad.as_path_length}, local-pref {lp}, MED {med}"


def _tie_finding(
    peer: str, prefixes: Sequence[str], tied: Sequence[str], group: Sequence[Advertisement]
) -> Finding:
    names, ranges = ", ".join(tied), ", ".join(prefixes)
    return Finding(
        "MP401",
        Severity.ERROR,
        f"{len(tied)} connectors advertise {ranges} to {peer} with equal preference ({names})",
        evidence=tuple(_evidence(a) for a in sorted(group, key=lambda a: a.host)),
        why=(
            f"{peer} keeps one of the equal paths by age (FRR: the older eBGP path), so "
            "every reply to a Worker goes to whichever connector came up first; Cloudflare "
            "keeps one replica of a Mesh node active, and each Worker flow that enters "
            "through another one gets its reply sent to the wrong connector and ends in "
            "'handshake timeout'."
        ),
        fix_mode="bgp",
        fix_commands=(
            f"on the replica Cloudflare keeps active: meshpath fix --mode bgp --peer {peer} "
            "--asn ASN --role primary --apply",
            f"on every other: meshpath fix --mode bgp --peer {peer} --asn ASN --role standby "
            "--apply",
        ),
    )
