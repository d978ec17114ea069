"""``meshpath verify``'s judgement (pure): FRR's, the kernel's and nft's view of a fix.

Input is a Snapshot plus what a snapshot does not hold (the routes advertised to the peer,
the outcome of a round trip); output is one :class:`VerifyCheck` per fact, each naming
what was seen and what was wanted.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from meshpath.fix.model import Expect
from meshpath.render import nft as nft_render
from meshpath.state import TABLE_MAIN, Snapshot
from meshpath.state.frr import ESTABLISHED
from meshpath.state.model import PROTO_FRR_STATIC
from meshpath.state.split import infer_split


@dataclass(frozen=True, slots=True)
class VerifyCheck:
    view: str  # kernel, nft, frr, bgp, round-trip
    name: str
    ok: bool
    detail: str

    def to_dict(self) -> dict[str, object]:
        return {"view": self.view, "name": self.name, "ok": self.ok, "detail": self.detail}


def kernel_checks(snap: Snapshot, expect: Expect) -> list[VerifyCheck]:
    """Each range routed in the main table via the tunnel with the expected protocol."""
    out = []
    for rng in expect.ranges:
        found = [r for r in snap.routes_in(TABLE_MAIN) if r.dst == rng]
        good = [r for r in found if r.dev == expect.tunnel and r.protocol == expect.route_proto]
        up = [r for r in good if "linkdown" not in r.flags]
        seen = ", ".join(f"dev {r.dev} proto {r.protocol}{_flags(r.flags)}" for r in found)
        want = f"want dev {expect.tunnel} proto {expect.route_proto}"
        out.append(VerifyCheck("kernel", f"route {rng}", bool(up), f"{seen or 'no route'}; {want}"))
    return out


def _flags(flags: Iterable[str]) -> str:
    text = " ".join(flags)
    return f" {text}" if text else ""


def nft_checks(snap: Snapshot, expect: Expect) -> list[VerifyCheck]:
    """meshpath's table holds exactly the expected masquerades (or none, when NAT must be
    gone). Rules are compared by their whole ``nft -j`` expressions (see
    :mod:`meshpath.state.nft`), never by a substring of their text."""
    if expect.nat is None:
        return []
    have = snap.nft.view.masquerades or frozenset()
    shown = ", ".join(_masq_text(m) for m in sorted(have)) or "none"
    if not expect.nat:
        return [VerifyCheck("nft", "meshpath NAT", not have, f"{shown}; want absent")]
    want = expected_masquerades(expect)
    if want is not None:
        wanted = ", ".join(_masq_text(m) for m in sorted(want))
        return [VerifyCheck("nft", "meshpath NAT", have == want, f"{shown}; want {wanted}")]
    # A journal from before the exact masquerades were recorded: every rule must be an
    # exact meshpath masquerade of one of the ranges.
    ok = bool(have) and all(m.source in expect.ranges for m in have)
    return [VerifyCheck("nft", "meshpath NAT", ok, f"{shown}; want present")]


def expected_masquerades(expect: Expect) -> frozenset[nft_render.Masquerade] | None:
    if expect.lan_if is None or not expect.nat_sources:
        return None
    return frozenset(nft_render.Masquerade(expect.lan_if, s) for s in expect.nat_sources)


def _masq_text(m: nft_render.Masquerade) -> str:
    if m.oifname == "?":
        return f"a rule meshpath did not write ({m.source})"
    return f"{m.source} out {m.oifname!r}"


def frr_static_checks(snap: Snapshot, expect: Expect) -> list[VerifyCheck]:
    """FRR's own view: each static route selected and installed in the kernel."""
    if expect.route_proto != PROTO_FRR_STATIC:
        return []
    out = []
    for rng in expect.ranges:
        entries = [r for r in snap.frr.view.statics if r.prefix == rng]
        sel = any(r.selected for r in entries)
        inst = any(r.installed for r in entries)
        detail = f"static {'present' if entries else 'absent'}, selected={sel}, installed={inst}"
        out.append(VerifyCheck("frr", f"static {rng}", sel and inst, detail))
    return out


def bgp_checks(
    snap: Snapshot, expect: Expect, advertised: frozenset[str] | None
) -> list[VerifyCheck]:
    if expect.peer is None:
        return []
    peer = snap.frr.view.peer(expect.peer)
    state = None if peer is None else peer.state
    out = [VerifyCheck("bgp", f"session {expect.peer}", state == ESTABLISHED, f"state {state}")]
    got = advertised or frozenset()
    want = frozenset(expect.advertised)
    detail = f"advertised {sorted(got) or 'nothing'}; want exactly {sorted(want)}"
    out.append(VerifyCheck("bgp", f"advertised to {expect.peer}", got == want, detail))
    return out


def warp_checks(snap: Snapshot, expect: Expect) -> list[VerifyCheck]:
    """WARP's table 65743 routes each range via the tunnel (the profile fix's effect)."""
    if not expect.warp_covers:
        return []
    ranges = {r: ipaddress.ip_network(r) for r in expect.warp_covers}
    view = infer_split(snap, expect.tunnel, ranges)
    return [
        VerifyCheck(
            "kernel",
            f"table 65743 {c.range}",
            c.cover == "full",
            f"{c.cover} via {expect.tunnel}"
            + (f" (gap {', '.join(c.gap)})" if c.gap else "")
            + f"; WARP's table looks like {view.mode} mode",
        )
        for c in view.ranges
    ]


def judge(
    snap: Snapshot,
    expect: Expect,
    advertised: frozenset[str] | None = None,
    round_trip: tuple[bool, str] | None = None,
) -> tuple[VerifyCheck, ...]:
    checks = [
        *frr_static_checks(snap, expect),
        *bgp_checks(snap, expect, advertised),
        *kernel_checks(snap, expect),
        *warp_checks(snap, expect),
        *nft_checks(snap, expect),
    ]
    if round_trip is not None:
        checks.append(VerifyCheck("round-trip", "worker round trip", *round_trip))
    return tuple(checks)
