"""Running scenarios: set up, apply the fix step, observe, judge (I/O edge)."""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from meshpath.collect.iproute import host_prefix, ip_json
from meshpath.errors import BadInputError
from meshpath.lab.capture import Sighting
from meshpath.lab.core import Lab
from meshpath.lab.fixes import FIXES, FixStep
from meshpath.lab.scenarios import (
    Check,
    Observation,
    Scenario,
    WorkerResult,
    evaluate,
    get_scenario,
)
from meshpath.lab.topology import LAN_ADDR, SERVICE_PORT, TAILNET_NODE, TUN_CONN
from meshpath.state import TABLE_WARP, Route
from meshpath.state.split import cover_of, paint


@dataclass(frozen=True, slots=True)
class ScenarioResult:
    """The outcome of one scenario: every check, the Worker's answer, the timings."""

    name: str
    checks: tuple[Check, ...]
    worker: WorkerResult
    packets: tuple[Sighting, ...]
    timings: dict[str, float] = field(default_factory=dict)
    # where setup's time went: teardown of the previous build, netns, ..., frr
    setup_phases: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(c.ok for c in self.checks)

    def to_dict(self) -> dict[str, object]:
        return {
            "scenario": self.name,
            "passed": self.passed,
            "worker": {"status": self.worker.status, "body": self.worker.body[:200]},
            "seen_source": self.worker.seen_source,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
            "trace": [p.describe() for p in self.packets],
            "timings": self.timings,
            "setup_phases": self.setup_phases,
        }


V6_PATH = "/v6/mesh/"  # the lab's Worker fetches [fd00:1::50]:3000 for paths under /v6/


def _calls(lab: Lab, v6: bool) -> Callable[[], tuple[WorkerResult, WorkerResult | None]]:
    """The Worker call, and with ``v6`` its IPv6 call at the same time (a failing call
    waits out the handshake timeout: side by side, both cost one)."""

    def both() -> tuple[WorkerResult, WorkerResult | None]:
        if not v6:
            return lab.worker_call(), None
        with ThreadPoolExecutor(max_workers=1) as pool:
            six = pool.submit(lab.worker_call, V6_PATH)
            return lab.worker_call(), six.result()

    return both


def _family(sightings: tuple[Sighting, ...], v6: bool) -> tuple[Sighting, ...]:
    return tuple(p for p in sightings if (":" in p.src) == v6)


def observe(lab: Lab, scenario: Scenario) -> Observation:
    """Call the Worker (and its IPv6 call, if the scenario has one) under a capture on
    conn, then read everything the checks need."""
    v6 = scenario.expect6 is not None
    cap = lab.capture("conn", _calls(lab, v6), name=f"capture-{scenario.name}")
    worker, worker6 = cap.value
    e = scenario.expect
    bgp = lab.bgp_learned("router", LAN_ADDR["conn"]) if e.bgp_from_conn is not None else None
    e6 = scenario.expect6
    bgp6 = None
    if e6 is not None and e6.bgp_from_conn is not None:
        bgp6 = lab.bgp_learned("router", LAN_ADDR["conn"], 6)
    statics = lab.frr_statics("conn") if e.conn_statics is not None else None
    via = {dest: lab.route_get("router", dest).get("gateway") for dest, _gw in e.router_via}
    covers = warp_covers(lab, e.warp_covers) if e.warp_covers else {}
    answer = None
    if e.tailnet_answers:
        got = lab.http_get("svc", f"http://{TAILNET_NODE}:{SERVICE_PORT}/")
        answer = _service_name(got.body)
    clients = tuple(str(x["client"]) for x in lab.service_log())
    return Observation(
        worker=worker,
        service_sources=tuple(c for c in clients if ":" not in c),
        packets=_family(cap.packets, False),
        bgp_from_conn=bgp,
        conn_statics=statics,
        router_via=via,
        tailnet_answer=answer,
        warp_covers=covers,
        reconnects=tuple(lab.reconnects),
        worker6=worker6,
        service_sources6=tuple(c for c in clients if ":" in c),
        packets6=_family(cap.packets, True) if v6 else None,
        bgp6_from_conn=bgp6,
    )


def warp_covers(lab: Lab, ranges: tuple[str, ...]) -> dict[str, str]:
    """How conn's table 65743 covers each range (longest-prefix painting, state.split)."""
    done = lab.exec("conn", ["ip", "-j", "-4", "route", "show", "table", str(TABLE_WARP)])
    rows = ip_json(done.stdout) if done.ok else []
    routes = [
        Route(table=TABLE_WARP, family=4, dst=host_prefix(r["dst"]),
              type=r.get("type", "unicast"), dev=r.get("dev"))
        for r in rows
    ]  # fmt: skip
    segments = paint(routes, TUN_CONN, 4)
    return {rng: cover_of(segments, ipaddress.ip_network(rng)) for rng in ranges}


def _service_name(body: str) -> str | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return str(data.get("service")) if isinstance(data, dict) else None


def run_scenario(
    lab: Lab, scenario: str | Scenario, fixes: Mapping[str, FixStep] = FIXES
) -> ScenarioResult:
    """Set ``lab`` up for ``scenario``, apply its fix step from ``fixes``, and judge it."""
    scn = get_scenario(scenario) if isinstance(scenario, str) else scenario
    t0 = time.monotonic()
    lab.setup(scn)
    t1 = time.monotonic()
    if scn.fix is not None:
        fixes[scn.fix](lab)
        lab.mark_fixed(scn.fix)
    t2 = time.monotonic()
    drilled = _drill(lab, scn.drill) if scn.drill is not None else ()
    t3 = time.monotonic()
    obs = observe(lab, scn)
    packets = (*(obs.packets or ()), *(obs.packets6 or ()))
    timings = {"setup": t1 - t0, "fix": t2 - t1, "observe": time.monotonic() - t3}
    if scn.drill is not None:
        timings["drill"] = t3 - t2
    return ScenarioResult(
        scn.name,
        (*drilled, *evaluate(scn, obs)),
        obs.worker,
        packets,
        {k: round(v, 2) for k, v in timings.items()},
        {k: round(v, 2) for k, v in lab.phases.items()},
    )


def failed_result(name: str, why: str) -> ScenarioResult:
    """A scenario that could not run to its judgement (its set-up or fix step raised)."""
    return ScenarioResult(name, (Check("ran", False, why),), WorkerResult(0, "", None), ())


def _drill(lab: Lab, name: str) -> tuple[Check, ...]:
    # Imported here: the drills bring meshpath watch and prometheus_client along, which
    # every process importing the lab (each Worker call) would otherwise pay for.
    from meshpath.lab.drift import DRILLS

    return DRILLS[name](lab)


def run_many(
    names: list[str],
    instance: str | None = None,
    on_result: Callable[[ScenarioResult], None] | None = None,
    fixes: Mapping[str, FixStep] = FIXES,
    jobs: int = 1,
) -> list[ScenarioResult]:
    """Run scenarios one after another in one lab instance, torn down at the end; with
    ``jobs`` > 1, on that many worker processes at once, each with its own lab instance
    (:mod:`meshpath.lab.parallel`; results still in the order of ``names``)."""
    if jobs > 1 and len(names) > 1:
        if fixes is not FIXES:
            raise BadInputError("jobs > 1 runs the registered fix steps only (lab.fixes.FIXES)")
        from meshpath.lab.parallel import run_parallel  # the worker processes import run

        return run_parallel(names, jobs, instance, on_result)
    results = []
    with Lab.create(instance) as lab:
        for name in names:
            result = run_scenario(lab, name, fixes)
            results.append(result)
            if on_result is not None:
                on_result(result)
    return results
