"""The newcomer's tour: the field report's failure, the bgp fix, the proof (I/O edge).

:func:`run_demo` drives a lab through the steps and hands each finished
:class:`DemoStep` to a callback (the CLI renders them with Rich as they arrive); the lab
is torn down whatever happens.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from meshpath.checks.targets import Target
from meshpath.config import Settings
from meshpath.lab import frr
from meshpath.lab.capture import match_sequence
from meshpath.lab.core import Lab
from meshpath.lab.fixes import FIXES
from meshpath.lab.scenarios import REPORT_TRACE
from meshpath.lab.topology import LAN_ADDR, SERVICE_IP, SERVICE_PORT, WORKER_SOURCE
from meshpath.usecase import Host, doctor


@dataclass(frozen=True, slots=True)
class DemoStep:
    title: str
    ok: bool
    lines: tuple[str, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


Report = Callable[[DemoStep], None]
Progress = Callable[[str], None]


def _timed(title: str, fn: Callable[[], DemoStep], progress: Progress) -> DemoStep:
    progress(title)
    t0 = time.monotonic()
    step = fn()
    return DemoStep(step.title, step.ok, step.lines, step.data, round(time.monotonic() - t0, 2))


def _bring_up(lab: Lab) -> DemoStep:
    lab.setup("broken")
    lines = tuple(f"{node:7} {lab.ns(node)}" for node in ("edge", "conn", "router", "svc", "lan"))
    return DemoStep("lab up: fresh WARP Connector, LAN routes 100.64.0.0/10 to it", True, lines)


def _health(lab: Lab) -> DemoStep:
    r = lab.worker_call("/health")
    return DemoStep(
        "Worker /health (does not touch Mesh)", r.status == 200, (f"{r.status} {r.body}",)
    )


def _failing_call(lab: Lab) -> DemoStep:
    cap = lab.capture("conn", lab.worker_call, name="demo-broken")
    r = cap.value
    verdict = lab.exec(
        "conn", ["ip", "route", "get", WORKER_SOURCE, "from", SERVICE_IP, "iif", "eth0"]
    )
    m = match_sequence(REPORT_TRACE, cap.packets)
    tail = [ln for ln in lab.worker_log() if "handler failed" in ln]
    lines = (
        f"Worker /mesh/ -> {r.status} {r.body}",
        f"wrangler tail (workerd's log): {tail[-1] if tail else '(nothing logged)'}",
        f"service log: {len(lab.service_log())} requests",
        "tcpdump -i any on conn:",
        *(f"  {p.describe()}" for p in cap.packets),
        f"kernel on conn: ip route get {WORKER_SOURCE} from {SERVICE_IP} iif eth0",
        f"  {verdict.stdout.strip().splitlines()[0] if verdict.stdout.strip() else verdict.stderr}",
    )
    ok = r.status == 500 and m.ok and bool(tail) and tail[-1].endswith("Error: handshake timeout")
    return DemoStep("the failure: handshake timeout, the report's trace", ok, lines)


def _diagnose(lab: Lab) -> DemoStep:
    """What `meshpath doctor --netns <conn>` says: the diagnosis that leads to the fix."""
    host = Host.local(lab.ns("conn"))
    report = doctor.run(host, Settings(), (Target(SERVICE_IP, SERVICE_PORT),)).report
    cause = report.root_cause
    lines: list[str] = [f"meshpath doctor --netns {lab.ns('conn')} --target {SERVICE_IP}:3000"]
    if cause is not None:
        lines += [f"  {cause.id} {cause.title}", *(f"    evidence: {e}" for e in cause.evidence)]
        lines += [f"    fix: {c}" for c in cause.fix_commands]
    lines += [f"  {report.verdict}"]
    ok = cause is not None and cause.id == "MP101"
    return DemoStep("the diagnosis: meshpath doctor on the connector", ok, tuple(lines))


def _fix(lab: Lab) -> DemoStep:
    FIXES["bgp"](lab)
    lab.mark_fixed("bgp")
    statics = lab.exec("conn", ["ip", "route", "show", "proto", "196"]).stdout.strip()
    lines = (
        "conn: meshpath fix --mode bgp made FRR staticd own these; bgpd advertises them "
        "through prefix-list MESHPATH-CF",
        f"({frr.LEAK_CANARY} is a canary static route that must not leak):",
        *statics.splitlines(),
    )
    return DemoStep("apply the bgp fix on the connector", True, lines)


def _round_trip(lab: Lab) -> DemoStep:
    r = lab.worker_call()
    lines = (f"Worker /mesh/ -> {r.status}", f"the service saw the source {r.seen_source}")
    return DemoStep(
        "the round trip, with the real source IP",
        r.status == 200 and r.seen_source == WORKER_SOURCE,
        lines,
    )


def _router(lab: Lab) -> DemoStep:
    table = lab.vtysh("router", "show bgp ipv4 unicast").strip().splitlines()
    kernel = lab.exec("router", ["ip", "route", "show", "proto", "bgp"]).stdout.strip().splitlines()
    learned = lab.bgp_learned("router", LAN_ADDR["conn"])
    lines = (*[ln for ln in table if ln.strip()], "router kernel:", *kernel)
    ok = learned == frozenset({"100.64.0.0/12", "100.96.0.0/12"})
    return DemoStep("the router's BGP table: exactly the two /12s", ok, lines)


STEPS: tuple[tuple[str, Callable[[Lab], DemoStep]], ...] = (
    ("bringing up the broken lab", _bring_up),
    ("calling the Worker's /health", _health),
    ("calling the Worker through Mesh, capturing on the connector", _failing_call),
    ("running meshpath doctor on the connector", _diagnose),
    ("starting FRR on the connector, waiting for BGP", _fix),
    ("calling the Worker again", _round_trip),
    ("reading the router's BGP table", _router),
)


def run_demo(report: Report, progress: Progress, instance: str | None = None) -> list[DemoStep]:
    """Run every step in a fresh lab (torn down at the end); returns the steps."""
    steps: list[DemoStep] = []
    with Lab.create(instance) as lab:
        for label, fn in STEPS:
            step = _timed(label, partial(fn, lab), progress)
            steps.append(step)
            report(step)
    return steps
