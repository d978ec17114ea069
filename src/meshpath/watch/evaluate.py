"""One evaluation of the path: the doctor's core on a fresh snapshot, summarised for metrics.

:func:`summarise` is pure (snapshot + report -> :class:`Evaluation`); :class:`Evaluator` is
the edge that collects the snapshot and asks the kernel the doctor's cross-check questions,
exactly as ``meshpath doctor --netns N`` does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Final

from meshpath.checks.report import Report
from meshpath.checks.targets import Target
from meshpath.config import Settings
from meshpath.runner import Runner
from meshpath.sim import Fib, FlowKey, route_many
from meshpath.state import Snapshot
from meshpath.state.frr import BgpPeer, FrrView
from meshpath.state.model import FrrState
from meshpath.usecase import Host, doctor

# The ranges a connector must route back into the tunnel (sources) or reach (devices).
RANGE_KEYS: Final = ("source_v4", "device_v4", "source_v6", "device_v6")
DEFAULT_ROUTES: Final = frozenset({"0.0.0.0/0", "::/0"})


@dataclass(frozen=True, slots=True)
class TargetState:
    """One Worker target's simulated (and kernel-checked) flow."""

    target: str
    ok: bool
    status: str  # delivered, misrouted, dropped, unknown
    reply_device: str | None  # where the reply leaves the connector


@dataclass(frozen=True, slots=True)
class FindingState:
    id: str
    severity: str
    title: str


@dataclass(frozen=True, slots=True)
class RangeState:
    """Where this host routes a Cloudflare range (its first address, as the kernel would)."""

    key: str
    cidr: str
    present: bool  # a route more specific than a default route matches the range
    device: str | None  # the egress device, None when the lookup fails


@dataclass(frozen=True, slots=True)
class PeerState:
    peer: str
    state: str
    advertised: int | None  # prefixes sent to the peer; None when FRR did not say


@dataclass(frozen=True, slots=True)
class Evaluation:
    """What one evaluation found: the verdict and everything the metrics expose."""

    ok: bool
    verdict: str
    root_cause: str | None
    targets: tuple[TargetState, ...]
    findings: tuple[FindingState, ...]
    ranges: tuple[RangeState, ...]
    peers: tuple[PeerState, ...]
    nat_present: bool
    finished_at: float  # wall clock, seconds since the epoch
    duration: float  # seconds


def summarise(
    snapshot: Snapshot, report: Report, settings: Settings, finished_at: float, duration: float
) -> Evaluation:
    """The metrics' view of one doctor report on ``snapshot``."""
    cause = report.root_cause
    return Evaluation(
        ok=report.ok,
        verdict=report.verdict,
        root_cause=cause.id if cause is not None else None,
        targets=tuple(TargetState(str(f.target), f.ok, f.status, f.egress) for f in report.flows),
        findings=tuple(FindingState(f.id, str(f.severity), f.title) for f in report.findings),
        ranges=range_states(snapshot, settings),
        peers=peer_states(snapshot.frr),
        nat_present=bool(snapshot.nft.view.masquerades),
        finished_at=finished_at,
        duration=duration,
    )


def range_states(snapshot: Snapshot, settings: Settings) -> tuple[RangeState, ...]:
    """Each Cloudflare range's route for the range's first address (the source range: the
    Worker probe), asked of the kernel model, both families in one batch on one model."""
    nets = {key: getattr(settings.ranges, key) for key in RANGE_KEYS}
    probes = [
        settings.ranges.worker_probe() if key == "source_v4" else str(net.network_address + 1)
        for key, net in nets.items()
    ]
    decisions = route_many(
        Fib.from_snapshot(snapshot), [FlowKey(dst=a) for a in probes], trace=False
    )
    out = []
    for (key, net), d in zip(nets.items(), decisions, strict=True):
        route, device = (d.route, d.dev) if d.ok else (None, None)
        present = route is not None and route not in DEFAULT_ROUTES
        out.append(RangeState(key, str(net), present, device))
    return tuple(out)


def peer_states(frr: FrrState) -> tuple[PeerState, ...]:
    """BGP sessions (IPv4 unicast) and what each peer is sent, from FRR's typed view."""
    view = frr.view
    return tuple(
        PeerState(peer.address, peer.state or "unknown", _advertised(view, peer))
        for peer in sorted(view.peers, key=lambda p: p.address)
    )


def _advertised(view: FrrView, peer: BgpPeer) -> int | None:
    """The advertised-routes table when FRR gave it, else the summary's pfxSnt."""
    routes = view.advertised.get(peer.address)
    if routes is not None:
        return len(routes)
    return peer.pfx_snt if isinstance(peer.pfx_snt, int) else None


@dataclass(frozen=True, slots=True)
class Evaluator:
    """Collect a snapshot of ``netns`` (or the host) and run the doctor on it."""

    settings: Settings
    runner: Runner
    netns: str | None = None
    targets: tuple[Target, ...] = ()

    def __call__(self) -> tuple[Snapshot, Evaluation]:
        start = time.monotonic()
        host = Host(runner=self.runner, netns=self.netns)
        found = doctor.run(host, self.settings, self.targets)
        snapshot, report = found.snapshot, found.report
        duration = time.monotonic() - start
        return snapshot, summarise(snapshot, report, self.settings, time.time(), duration)

    def offline(self, snapshot: Snapshot) -> Evaluation:
        """The same evaluation of a saved snapshot (no kernel to ask)."""
        start = time.monotonic()
        report = doctor.run(None, self.settings, self.targets, saved=snapshot).report
        duration = time.monotonic() - start
        return summarise(snapshot, report, self.settings, time.time(), duration)
