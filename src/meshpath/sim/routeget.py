"""`route get`'s edges that need no host: its selectors into a FlowKey, its answer as text.

Kept out of ``cli/sim_cmd.py`` (command files stay small); pure, so the CLI and tests
share one reading of ``--ipproto``/``--sport``/... and one ``ip route get`` line.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from meshpath.errors import BadInputError
from meshpath.sim.addr6 import is_v6
from meshpath.sim.lookup import table_name
from meshpath.sim.values import LEG_BY_HASH, LEG_BY_UNKNOWN, UDP, Decision, FlowKey, Leg
from meshpath.values import given, parse_u32

IPPROTO: Final = {"tcp": 6, "udp": 17, "icmp": 1, "sctp": 132, "dccp": 33}
ERRNO_TEXT: Final = {
    "ENETUNREACH": "Network is unreachable",
    "EHOSTUNREACH": "No route to host",
    "EACCES": "Permission denied",
    "EINVAL": "Invalid argument",
}


def _number(flag: str, text: str, top: int, example: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise BadInputError(f"{flag} {text!r}: expected a number like {example}") from None
    if not 0 <= value <= top:
        raise BadInputError(f"{flag} {text!r}: expected 0 to {top}")
    return value


def _ipproto(text: str | None, dst: str) -> int:
    if text is None:
        # `ip -6 route get` sets no protocol unless asked (inet6_rtm_getroute); `ip route
        # get` assumes UDP (the FlowKey default).
        return 0 if is_v6(dst) else UDP
    if text.lower() in IPPROTO:
        return IPPROTO[text.lower()]
    return _number("--ipproto", text, 255, "tcp, udp or 6")


def route_get_packet(
    dst: str,
    *,
    src: str | None = None,
    iif: str | None = None,
    oif: str | None = None,
    mark: str = "0",
    uid: str | None = None,
    ipproto: str | None = None,
    ports: tuple[str, str] = ("0", "0"),
    tos: str = "0",
) -> FlowKey:
    """The FlowKey ``ip route get DST from SRC iif DEV oif DEV mark M uid U ...`` asks about."""
    src, iif = given(src, "--from"), given(iif, "--iif")
    oif, uid = given(oif, "--oif"), given(uid, "--uid")
    if oif is not None and iif is not None:
        raise BadInputError(
            "--oif is for locally generated packets; with --iif the kernel ignores it"
        )
    if uid is not None and iif is not None:
        raise BadInputError("--uid is for locally generated packets (a forwarded one has uid 0)")
    return FlowKey(
        dst=dst, src=src, iif=iif, oif=oif, mark=parse_u32(mark, "--mark"),
        uid=None if uid is None else _number("--uid", uid, 2**32 - 1, "1000"),
        proto=_ipproto(ipproto, dst), sport=_number("--sport", ports[0], 65535, "443"),
        dport=_number("--dport", ports[1], 65535, "443"), tos=_number("--tos", tos, 255, "0x10"),
    )  # fmt: skip


def decision_data(decision: Decision) -> dict[str, Any]:
    """The JSON: the Decision; with a multipath leg that cannot be known, no one leg as
    the answer (``dev``/``gateway`` null, every leg in ``legs``)."""
    data: dict[str, Any] = msgspec.to_builtins(decision)
    if decision.leg_by == LEG_BY_UNKNOWN:
        data["dev"] = data["gateway"] = None
    return data


def ip_route_line(d: Decision) -> str:
    """The decision the way `ip route get` prints it (or its error)."""
    if d.error is not None:
        return f"{d.outcome}: {d.error} ({ERRNO_TEXT.get(d.error, d.error)})"
    p = d.packet
    parts = [] if d.outcome in ("forward", "output") else [d.outcome]
    parts.append(p.dst)
    if p.src:
        parts.append(f"from {p.src}")
    parts.append(_egress_text(d))
    if d.table is not None and d.table != 254:
        parts.append(f"table {table_name(d.table)}")
    if d.prefsrc and not p.src:
        parts.append(f"src {d.prefsrc}")
    if p.mark:
        parts.append(f"mark {p.mark:#x}")
    if p.uid is not None:
        parts.append(f"uid {p.uid}")
    if p.iif:
        parts.append(f"iif {p.iif}")
    if d.leg_by == LEG_BY_HASH:
        parts.append(f"(multipath: this leg of {len(d.legs)}, by the kernel's hash)")
    return " ".join(parts)


def _egress_text(d: Decision) -> str:
    if d.leg_by == LEG_BY_UNKNOWN:
        legs = " | ".join(_leg_text(leg) for leg in d.legs)
        return f"one of [{legs}] (multipath: the kernel's hash seed is random)"
    return f"via {d.gateway} dev {d.dev}" if d.gateway else f"dev {d.dev}"


def _leg_text(leg: Leg) -> str:
    via = f"via {leg.gateway} " if leg.gateway else ""
    return f"{via}dev {leg.dev} weight {leg.weight}"
