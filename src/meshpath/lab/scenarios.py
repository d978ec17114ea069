"""The lab's scenarios as data, and the pure judgement of what a run observed.

A scenario is: how the LAN treats the CGNAT range (``lan``), whether the tailnet router
exists, which fix step runs (by name; the steps live in :mod:`meshpath.lab.fixes` and can
be replaced, e.g. by ``meshpath fix --apply``), and what must then be true
(:class:`Expectation`). :func:`evaluate` turns an :class:`Observation` into named checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

from meshpath.errors import BadInputError
from meshpath.lab.capture import Hop, Sighting, find, match_sequence
from meshpath.lab.frr import LEAK_CANARY
from meshpath.lab.topology import (
    DEVICE_RANGE,
    DEVICE_RANGE6,
    LAN_ADDR,
    LAN_IF,
    SERVICE_IP,
    SERVICE_IP6,
    SOURCE_RANGE,
    SOURCE_RANGE6,
    TAILNET_NODE,
    TUN_CONN,
    WORKER_SOURCE,
    WORKER_SOURCE6,
)

# broken: svc routes the CGNAT range to conn; gateway: svc knows only its default gateway;
# router: the router has a static route for the source range via conn (svc's gateway).
LanMode = Literal["broken", "gateway", "router"]
HANDSHAKE_TIMEOUT: Final = "handshake timeout"


@dataclass(frozen=True, slots=True)
class Expectation:
    """What must hold after the scenario's fix step (None: not checked)."""

    status: int
    body_contains: str | None = None
    seen_source: str | None = None  # None: the service must log no request at all
    trace: tuple[Hop, ...] = ()  # ordered hops that must appear in conn's capture
    trace_absent: tuple[Hop, ...] = ()  # hops that must not appear
    bgp_from_conn: frozenset[str] | None = None  # exactly these prefixes at the router
    conn_statics: frozenset[str] | None = None  # FRR static routes in conn's kernel
    router_via: tuple[tuple[str, str], ...] = ()  # (destination, gateway) on the router
    tailnet_answers: bool = False  # svc reaches the tailnet node and the tailnet answers
    warp_covers: tuple[str, ...] = ()  # ranges WARP's table 65743 must route via the tunnel
    # (fix mode, whether a Worker call still gets 200 after a WARP reconnect)
    survival: tuple[tuple[str, bool], ...] = ()


@dataclass(frozen=True, slots=True)
class Expect6:
    """What must hold of the Worker's IPv6 call (``/v6/``: the service at [fd00:1::50]:3000),
    judged on the IPv6 packets of the same capture and the service's IPv6 clients."""

    status: int
    body_contains: str | None = None
    seen_source: str | None = None  # None: the service must log no IPv6 request at all
    trace: tuple[Hop, ...] = ()
    bgp_from_conn: frozenset[str] | None = None  # exactly these IPv6 prefixes at the router


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    summary: str
    lan: LanMode
    fix: str | None
    expect: Expectation
    tailnet: bool = False
    drill: str | None = None  # a procedure run after the fix step (lab.drift.DRILLS)
    ha: bool = False  # a second connector, connb (lab/ha.py)
    # The profile excludes all of IPv6 and WARP applies it literally (lab/warp.py): WARP's
    # table 65743 leaves the IPv6 source range out, as IPv4's default profile does CGNAT.
    v6_excluded: bool = False
    expect6: Expect6 | None = None  # None: no IPv6 call


@dataclass(frozen=True, slots=True)
class WorkerResult:
    """What the Worker (in workerd) answered, and the source the service saw (if any)."""

    status: int
    body: str
    seen_source: str | None


@dataclass(frozen=True, slots=True)
class ReconnectResult:
    """One fix mode through a WARP reconnect: the Worker's answer afterwards."""

    mode: str
    status: int
    seen_source: str | None
    seconds: float  # until WARP's state was back on the new device

    @property
    def survived(self) -> bool:
        return self.status == 200


@dataclass(frozen=True, slots=True)
class Observation:
    """Everything measured after a scenario ran (None: not measured)."""

    worker: WorkerResult
    service_sources: tuple[str, ...]
    packets: tuple[Sighting, ...] | None = None
    bgp_from_conn: frozenset[str] | None = None
    conn_statics: frozenset[str] | None = None
    router_via: dict[str, str | None] = field(default_factory=dict)
    tailnet_answer: str | None = None
    warp_covers: dict[str, str] = field(default_factory=dict)  # range -> full/partial/none
    reconnects: tuple[ReconnectResult, ...] = ()
    worker6: WorkerResult | None = None  # the IPv6 call, when the scenario makes one
    service_sources6: tuple[str, ...] = ()
    packets6: tuple[Sighting, ...] | None = None
    bgp6_from_conn: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str


def _syn(iface: str, direction: str, **kw: str) -> Hop:
    return Hop(iface, direction, "S", **kw)


def _synack(iface: str, direction: str, **kw: str) -> Hop:
    return Hop(iface, direction, "S.", **kw)


# The field report's trace, hop by hop.
REPORT_TRACE: Final = (
    _syn(TUN_CONN, "In", src=WORKER_SOURCE, dst=SERVICE_IP),
    _syn(LAN_IF, "Out", src=WORKER_SOURCE, dst=SERVICE_IP),
    _synack(LAN_IF, "In", src=SERVICE_IP, dst=WORKER_SOURCE),
    _synack(LAN_IF, "Out", src=SERVICE_IP, dst=WORKER_SOURCE),
    _syn(TUN_CONN, "In", src=WORKER_SOURCE, dst=SERVICE_IP),
)
REPLY_VIA_TUNNEL: Final = (
    _syn(TUN_CONN, "In", src=WORKER_SOURCE),
    _synack(TUN_CONN, "Out", dst=WORKER_SOURCE),
)
# The same two, over IPv6: the reply of a LAN on IPv6 to the Worker's IPv6 source.
REPORT_TRACE6: Final = (
    _syn(TUN_CONN, "In", src=WORKER_SOURCE6, dst=SERVICE_IP6),
    _syn(LAN_IF, "Out", src=WORKER_SOURCE6, dst=SERVICE_IP6),
    _synack(LAN_IF, "In", src=SERVICE_IP6, dst=WORKER_SOURCE6),
    _synack(LAN_IF, "Out", src=SERVICE_IP6, dst=WORKER_SOURCE6),
    _syn(TUN_CONN, "In", src=WORKER_SOURCE6, dst=SERVICE_IP6),
)
REPLY_VIA_TUNNEL6: Final = (
    _syn(TUN_CONN, "In", src=WORKER_SOURCE6),
    _synack(TUN_CONN, "Out", dst=WORKER_SOURCE6),
)
TIMEOUT: Final = Expectation(500, HANDSHAKE_TIMEOUT, None)
BGP_RANGES: Final = frozenset({SOURCE_RANGE, DEVICE_RANGE})
# The bgp fix's IPv6 family (--also-device-range: the device range too), nothing else.
BGP_RANGES6: Final = frozenset({SOURCE_RANGE6, DEVICE_RANGE6})
# staticd also holds a canary route: present on conn, it must not reach the router.
CONN_STATICS: Final = BGP_RANGES | {LEAK_CANARY}

SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "broken",
        "fresh WARP install; the service routes the CGNAT range (and Cloudflare's IPv6 /48) "
        "to the connector; the profile keeps IPv6 out of the tunnel",
        "broken",
        None,
        Expectation(500, HANDSHAKE_TIMEOUT, None, trace=REPORT_TRACE),
        v6_excluded=True,
        expect6=Expect6(500, HANDSHAKE_TIMEOUT, None, trace=REPORT_TRACE6),
    ),
    Scenario(
        "gateway",
        "the service knows only its default gateway; the router has no route for the range",
        "gateway",
        None,
        Expectation(
            500,
            HANDSHAKE_TIMEOUT,
            None,
            trace=REPORT_TRACE[:2],
            trace_absent=(_synack(LAN_IF, "In"),),
        ),
    ),
    Scenario(
        "nat",
        "masquerade of the source range out eth0 plus the range via CloudflareWARP",
        "gateway",
        "nat",
        Expectation(
            200,
            None,
            LAN_ADDR["conn"],
            trace=(
                _syn(LAN_IF, "Out", src=LAN_ADDR["conn"], dst=SERVICE_IP),
                _synack(LAN_IF, "In", dst=LAN_ADDR["conn"]),
                _synack(TUN_CONN, "Out", dst=WORKER_SOURCE),
            ),
        ),
    ),
    Scenario(
        "route",
        "kernel routes for the source ranges (IPv4 and IPv6) via CloudflareWARP, no NAT",
        "broken",
        "route",
        Expectation(200, None, WORKER_SOURCE, trace=REPLY_VIA_TUNNEL),
        v6_excluded=True,
        expect6=Expect6(200, None, WORKER_SOURCE6, trace=REPLY_VIA_TUNNEL6),
    ),
    Scenario(
        "bgp",
        "FRR on the connector owns and advertises the two /12s (and the IPv6 source and "
        "device ranges in the ipv6 unicast family); the router installs them",
        "gateway",
        "bgp",
        Expectation(
            200,
            None,
            WORKER_SOURCE,
            trace=REPLY_VIA_TUNNEL,
            bgp_from_conn=BGP_RANGES,
            conn_statics=CONN_STATICS,
            router_via=((WORKER_SOURCE, LAN_ADDR["conn"]),),
        ),
        expect6=Expect6(
            200,
            None,
            WORKER_SOURCE6,
            trace=REPLY_VIA_TUNNEL6,
            bgp_from_conn=BGP_RANGES6,
        ),
    ),
    Scenario(
        "nat-only",
        "masquerade alone: conntrack restores the destination before routing; still broken",
        "gateway",
        "nat-only",
        Expectation(
            500,
            HANDSHAKE_TIMEOUT,
            None,
            trace=(
                _synack(LAN_IF, "In", src=SERVICE_IP, dst=LAN_ADDR["conn"]),
                _synack(LAN_IF, "Out", src=SERVICE_IP, dst=WORKER_SOURCE),
            ),
            trace_absent=(_synack(TUN_CONN, "Out"),),
        ),
    ),
    Scenario(
        "tailscale-overlap",
        "a tailnet router advertises 100.64.0.5/32; longest prefix beats the connector's /12",
        "gateway",
        "bgp",
        Expectation(
            200,
            None,
            WORKER_SOURCE,
            trace=REPLY_VIA_TUNNEL,
            bgp_from_conn=BGP_RANGES,
            conn_statics=CONN_STATICS,
            router_via=((WORKER_SOURCE, LAN_ADDR["conn"]), (TAILNET_NODE, LAN_ADDR["ts"])),
            tailnet_answers=True,
        ),
        tailnet=True,
    ),
    Scenario(
        "drift",
        "the route fix, then the route vanishes (as on a WARP reconnect): meshpath watch "
        "sees it within 1 s; without --heal it stays broken, with --heal it comes back",
        "broken",
        "route",
        Expectation(200, None, WORKER_SOURCE, trace=REPLY_VIA_TUNNEL),
        drill="drift",
    ),
)
# What a WARP reconnect leaves of each fix, as measured by the reconnect scenario (README).
SURVIVAL: Final = (("nat", False), ("route", False), ("profile", True), ("bgp", True))
SCENARIOS = (
    *SCENARIOS,
    Scenario(
        "profile",
        "the profile's Split Tunnels exclude the source range (500); meshpath fix --mode "
        "profile through the API emulator; WARP re-installs 65743; the router routes it back",
        "router",
        "profile",
        Expectation(200, None, WORKER_SOURCE, trace=REPLY_VIA_TUNNEL, warp_covers=(SOURCE_RANGE,)),
    ),
    Scenario(
        "reconnect",
        "nat, route, profile and bgp in turn: apply, WARP reconnect (CloudflareWARP "
        "re-created), call the Worker, roll back; bgp stays for the final call",
        "router",
        "reconnect",
        Expectation(200, None, WORKER_SOURCE, trace=REPLY_VIA_TUNNEL, survival=SURVIVAL),
    ),
)
# Two connectors, replicas of one Mesh node (lab/ha.py): Cloudflare keeps one active.
SCENARIOS = (
    *SCENARIOS,
    Scenario(
        "ha",
        "two connectors on the LAN, each with its own session; bgp fix with --role primary "
        "on conn and --role standby on connb; the primary's session killed and restored",
        "gateway",
        "ha",
        Expectation(
            200,
            None,
            WORKER_SOURCE,
            trace=REPLY_VIA_TUNNEL,
            bgp_from_conn=BGP_RANGES,
            router_via=((WORKER_SOURCE, LAN_ADDR["conn"]),),
        ),
        drill="ha",
        ha=True,
    ),
    Scenario(
        "ha-equal",
        "both connectors fixed without a role (equal preference), the standby first: the "
        "router sends replies to connb, whose session does not carry conn's flows",
        "gateway",
        "ha-equal",
        Expectation(
            500,
            HANDSHAKE_TIMEOUT,
            None,
            trace=REPORT_TRACE[:2],
            trace_absent=(_synack(LAN_IF, "In"),),
            router_via=((WORKER_SOURCE, LAN_ADDR["connb"]),),
        ),
        ha=True,
    ),
)
SCENARIO_NAMES: Final[tuple[str, ...]] = tuple(s.name for s in SCENARIOS)
# `lab run all` runs every scenario but these: reconnect re-applies all four fixes (bgp's
# alone takes ~9 s), which would take `all` past its 60 s budget; run it by name.
# ha and ha-equal build a second connector and fix both (~20 s): by name too.
NOT_IN_ALL: Final = frozenset({"reconnect", "ha", "ha-equal"})
ALL_NAMES: Final[tuple[str, ...]] = tuple(n for n in SCENARIO_NAMES if n not in NOT_IN_ALL)


def get_scenario(name: str) -> Scenario:
    """The scenario called ``name``; BadInputError listing the valid names otherwise."""
    for s in SCENARIOS:
        if s.name == name:
            return s
    raise BadInputError(
        f"unknown lab scenario {name!r}; expected one of {', '.join(SCENARIO_NAMES)}"
    )


def _check_worker(e: Expectation, o: Observation) -> list[Check]:
    w = o.worker
    checks = [Check("worker status", w.status == e.status, f"got {w.status}, want {e.status}")]
    if e.body_contains is not None:
        ok = e.body_contains in w.body
        checks.append(Check("worker body", ok, f"{w.body[:80]!r} contains {e.body_contains!r}"))
    return checks


def _check_service(e: Expectation, o: Observation) -> Check:
    seen = ", ".join(o.service_sources) or "nothing"
    if e.seen_source is None:
        return Check("service log", not o.service_sources, f"service logged {seen}; want nothing")
    ok = bool(o.service_sources) and set(o.service_sources) == {e.seen_source}
    return Check("service saw", ok, f"service logged {seen}; want {e.seen_source}")


def _check_trace(e: Expectation, o: Observation) -> list[Check]:
    if not e.trace and not e.trace_absent:
        return []
    if o.packets is None:
        return [Check("capture", False, "no capture taken")]
    m = match_sequence(e.trace, o.packets)
    detail = f"{m.matched}/{len(e.trace)} hops in order"
    if m.missing is not None:
        detail += f"; missing {m.missing.describe()}"
    checks = [Check("trace on conn", m.ok, detail)] if e.trace else []
    for hop in e.trace_absent:
        hit = find(hop, o.packets)
        detail = f"unexpected {hit.describe()}" if hit else f"no {hop.describe()}"
        checks.append(Check("trace absent", hit is None, detail))
    return checks


def _check_routing(e: Expectation, o: Observation) -> list[Check]:
    checks: list[Check] = []
    if e.conn_statics is not None:
        have = o.conn_statics or frozenset()
        detail = f"conn kernel has FRR statics {sorted(have)}"
        checks.append(Check("conn statics", have == e.conn_statics, detail))
    if e.bgp_from_conn is not None:
        got = o.bgp_from_conn or frozenset()
        detail = f"router learned {sorted(got)} from conn; want exactly {sorted(e.bgp_from_conn)}"
        checks.append(Check("bgp table", got == e.bgp_from_conn, detail))
    for dest, gateway in e.router_via:
        via = o.router_via.get(dest)
        checks.append(Check(f"router {dest}", via == gateway, f"via {via}; want via {gateway}"))
    if e.tailnet_answers:
        ok = o.tailnet_answer == "ts"
        checks.append(Check("tailnet node", ok, f"{TAILNET_NODE} answered by {o.tailnet_answer}"))
    return checks


def _check_warp(e: Expectation, o: Observation) -> list[Check]:
    checks = []
    for rng in e.warp_covers:
        cover = o.warp_covers.get(rng, "not measured")
        checks.append(Check(f"table 65743 {rng}", cover == "full", f"{cover} via {TUN_CONN}"))
    seen = {r.mode: r for r in o.reconnects}
    for mode, survives in e.survival:
        got = seen.get(mode)
        if got is None:
            checks.append(Check(f"reconnect {mode}", False, "not measured"))
            continue
        word = "survives" if got.survived else "lost"
        detail = f"after a reconnect: {got.status} ({word}); documented: "
        detail += "survives" if survives else "lost"
        checks.append(Check(f"reconnect {mode}", got.survived == survives, detail))
    return checks


def _check_v6(e6: Expect6 | None, o: Observation) -> list[Check]:
    """The IPv6 call judged like the IPv4 one (same checks on the IPv6 half of ``o``),
    each check's name marked ``(v6)``."""
    if e6 is None:
        return []
    if o.worker6 is None:
        return [Check("worker status (v6)", False, "no IPv6 call made")]
    e = Expectation(
        e6.status, e6.body_contains, e6.seen_source, trace=e6.trace, bgp_from_conn=e6.bgp_from_conn
    )
    half = Observation(o.worker6, o.service_sources6, o.packets6, o.bgp6_from_conn)
    checks = [*_check_worker(e, half), _check_service(e, half), *_check_trace(e, half)]
    checks += _check_routing(e, half)
    return [Check(f"{c.name} (v6)", c.ok, c.detail) for c in checks]


def evaluate(scenario: Scenario, obs: Observation) -> tuple[Check, ...]:
    """Every expectation of ``scenario`` judged against ``obs``."""
    e = scenario.expect
    return (
        *_check_worker(e, obs),
        _check_service(e, obs),
        *_check_trace(e, obs),
        *_check_routing(e, obs),
        *_check_warp(e, obs),
        *_check_v6(scenario.expect6, obs),
    )
