"""How meshpath's FRR intent meets the running config (pure): :func:`compose` fits the
desired intent to what the user already runs (whose neighbour, whose redistribute, which
address families exist), :func:`is_applied` says whether it is in place. Both read the
config through :mod:`meshpath.state.frrconf`; :mod:`meshpath.render.frr` only writes text.
"""

from __future__ import annotations

from collections.abc import Sequence

from meshpath.errors import BadInputError
from meshpath.render.frr import (
    PREFIX_LIST,
    RMAP_IN,
    RMAP_OUT,
    FrrIntent,
    check_asn,
    intent_blocks,
    is_cf_entry,
    is_my_bgp,
)
from meshpath.state.frrconf import (
    IPV4_AF,
    IPV6_AF,
    Block,
    header_key,
    line_keys,
    parse_blocks,
)


def compose(running: str, intent: FrrIntent) -> FrrIntent:
    """``intent`` fitted to the user's config: whose neighbour, whose redistribute."""
    if not intent.bgp:
        return intent
    blocks = parse_blocks(running)
    check_asn(blocks, intent)
    mine = [b for b in blocks if is_my_bgp(b[0], intent)]  # FRR merges repeated blocks
    if not mine:
        return intent
    keys = line_keys(mine)
    head = header_key(mine[0][0])
    af = (head, IPV4_AF)
    peer = intent.peer
    maps = {f"neighbor {peer} route-map {RMAP_IN} in", f"neighbor {peer} route-map {RMAP_OUT} out"}
    user_neighbor = any(
        len(k) > 1 and k[-1].startswith(f"neighbor {peer} ") and k[-1] not in maps for k in keys
    )
    _check_peer_maps(keys, af, intent)
    no_default = (head, "no bgp default ipv4-unicast") in keys
    activated = (*af, f"neighbor {peer} activate") in keys
    redist = _user_redistribute(keys, af)
    return _replace(
        intent,
        af_created=af not in keys,
        user_neighbor=user_neighbor,
        activate=no_default and not (user_neighbor and activated),
        user_redistribute=redist,
        redist_seq=_free_seq(blocks, redist) if redist else 0,
        **_compose_v6(keys, head, intent, user_neighbor),
    )


def _compose_v6(
    keys: frozenset[tuple[str, ...]], head: str, intent: FrrIntent, user_neighbor: bool
) -> dict[str, bool]:
    """How the ipv6 unicast family composes with the user's: who opened it, who activated
    the peer in it. A user's ``redistribute static`` there is refused: FRR keeps one per
    family, and meshpath's would replace it."""
    if not intent.advertise_v6:
        return {}
    af6 = (head, IPV6_AF)
    _check_peer_maps(keys, af6, intent)
    redist = _user_redistribute(keys, af6)
    if redist is not None:
        shown = f"redistribute static route-map {redist}" if redist else "redistribute static"
        raise BadInputError(
            f"FRR's ipv6 unicast family already has '{shown}'; meshpath would replace it with "
            f"its own (route-map {RMAP_OUT}): remove it, or fix IPv6 with --mode route"
        )
    activated = (*af6, f"neighbor {intent.peer} activate") in keys
    return {"af6_created": af6 not in keys, "activate6": not (user_neighbor and activated)}


def _replace(intent: FrrIntent, **changes: object) -> FrrIntent:
    fields = {f: getattr(intent, f) for f in intent.__dataclass_fields__}
    return FrrIntent(**{**fields, **changes})


def _check_peer_maps(
    keys: frozenset[tuple[str, ...]], af: tuple[str, str], intent: FrrIntent
) -> None:
    """FRR keeps one route-map per direction per neighbour: never replace the user's."""
    for direction, mine in (("in", RMAP_IN), ("out", RMAP_OUT)):
        prefix = f"neighbor {intent.peer} route-map "
        for key in keys:
            line = key[-1]
            if key[:2] == af and line.startswith(prefix) and line.endswith(f" {direction}"):
                name = line[len(prefix) : -len(direction) - 1]
                if name != mine:
                    raise BadInputError(
                        f"neighbor {intent.peer} already has 'route-map {name} {direction}' "
                        f"in FRR; meshpath would replace it with {mine}: remove it, or "
                        "advertise to another peer"
                    )


def _user_redistribute(keys: frozenset[tuple[str, ...]], af: tuple[str, str]) -> str | None:
    for key in keys:
        if key[:2] == af and len(key) == 3 and key[2].startswith("redistribute static"):
            words = key[2].split()
            if words[2:3] == ["route-map"] and len(words) >= 4:
                return None if words[3] == RMAP_OUT else words[3]
            return ""
    return None


def _free_seq(blocks: Sequence[Block], name: str) -> int:
    """A sequence number for meshpath's entry in route-map ``name``: before the user's
    first entry when there is room (their entries then see no meshpath prefix), else
    after their last."""
    taken = sorted(
        int(b[0].split()[3])
        for b in blocks
        if b[0].startswith(f"route-map {name} ")
        and len(b[0].split()) == 4
        and b[0].split()[3].isdigit()
        and not is_cf_entry(b[0], b[1:])
    )
    if not taken:
        return 10
    return taken[0] - 1 if taken[0] > 1 else taken[-1] + 1


def is_applied(running: str | None, intent: FrrIntent) -> bool:
    """meshpath's lines are all in ``running`` and no stale meshpath-named line is."""
    if running is None:
        return False
    have = line_keys(parse_blocks(running))
    want = line_keys(intent_blocks(intent))
    named = {k for k in have if any(n in k[0] for n in (PREFIX_LIST, RMAP_OUT, RMAP_IN))}
    return want <= have and named <= want
