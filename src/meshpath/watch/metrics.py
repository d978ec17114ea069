"""Prometheus metrics of ``meshpath watch`` (the only module importing prometheus_client).

The families are built at scrape time from one immutable :class:`WatchView` that the watch
loop replaces after each evaluation or heal, so a finding that goes away disappears from the
next scrape instead of lingering as a stale label set. Names follow Prometheus' conventions:
the ``meshpath_`` prefix, base units (``_seconds``), ``_total`` for counters (added by the
client library), ``_info`` for label-carrying constant-1 gauges.

Served by a small threaded HTTP server whose socket is bound where :func:`serve` is called
(inside the watched namespace when the caller entered it), and written atomically for
node_exporter's textfile collector by :func:`write_textfile`.
"""

from __future__ import annotations

import errno
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, generate_latest, write_to_textfile
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import ThreadingWSGIServer, make_wsgi_app
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from meshpath import __version__
from meshpath.errors import BadInputError, EnvironmentProblem
from meshpath.watch.evaluate import Evaluation

TEXTFILE_NAME: Final = "meshpath.prom"
SEVERITIES: Final = ("error", "warning", "info")
CHANGE_SOURCES: Final = ("rtnetlink", "nftables", "frr")
HEAL_KINDS: Final = ("route", "nft")
Registry = CollectorRegistry  # for callers' annotations: prometheus_client stays in here


@dataclass(frozen=True, slots=True)
class WatchView:
    """Everything the metrics show, as of the last evaluation or heal."""

    evaluation: Evaluation | None = None
    evaluations: int = 0
    evaluation_errors: int = 0
    changes: Mapping[str, int] = field(default_factory=dict)
    heals: Mapping[str, int] = field(default_factory=dict)
    heal_failures: int = 0
    keeper: bool = False


def _gauge(name: str, doc: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=list(labels))


def _counter(name: str, doc: str, labels: Iterable[str] = ()) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, labels=list(labels))


def path_families(ev: Evaluation) -> Iterator[Metric]:
    """The verdict, per target and overall, and the findings behind it."""
    path = _gauge("meshpath_path_ok", "1 when every Worker target's flow works (doctor: PATH OK)")
    path.add_metric([], float(ev.ok))
    target = _gauge("meshpath_target_ok", "1 when a Worker's flow to this target works", ["target"])
    info = _gauge(
        "meshpath_target_info",
        "The flow's status and the device its reply leaves by (constant 1)",
        ["target", "status", "reply_device"],
    )
    for t in ev.targets:
        target.add_metric([t.target], float(t.ok))
        info.add_metric([t.target, t.status, t.reply_device or "none"], 1.0)
    active = _gauge(
        "meshpath_finding_active", "1 for each finding the doctor reports", ["id", "severity"]
    )
    count = _gauge("meshpath_findings", "Findings by severity", ["severity"])
    for f in ev.findings:
        active.add_metric([f.id, f.severity], 1.0)
    for severity in SEVERITIES:
        count.add_metric([severity], float(sum(f.severity == severity for f in ev.findings)))
    yield from (path, target, info, active, count)


def route_families(ev: Evaluation) -> Iterator[Metric]:
    """Each Cloudflare range's route, BGP sessions, and meshpath's NAT."""
    present = _gauge(
        "meshpath_range_route_present",
        "1 when a route more specific than the default covers the Cloudflare range",
        ["range", "cidr"],
    )
    egress = _gauge(
        "meshpath_range_egress_info",
        "The device traffic to the Cloudflare range leaves by (constant 1)",
        ["range", "cidr", "device"],
    )
    for r in ev.ranges:
        present.add_metric([r.key, r.cidr], float(r.present))
        egress.add_metric([r.key, r.cidr, r.device or "none"], 1.0)
    up = _gauge(
        "meshpath_bgp_session_established", "1 when the BGP session is Established", ["peer"]
    )
    state = _gauge(
        "meshpath_bgp_session_info", "The BGP session's state (constant 1)", ["peer", "state"]
    )
    sent = _gauge(
        "meshpath_bgp_advertised_prefixes", "Prefixes advertised to the BGP peer", ["peer"]
    )
    for p in ev.peers:
        up.add_metric([p.peer], float(p.state == "Established"))
        state.add_metric([p.peer, p.state], 1.0)
        if p.advertised is not None:
            sent.add_metric([p.peer], float(p.advertised))
    nat = _gauge("meshpath_nat_present", "1 when meshpath's NAT (table inet meshpath) is present")
    nat.add_metric([], float(ev.nat_present))
    yield from (present, egress, up, state, sent, nat)


def timing_families(ev: Evaluation) -> Iterator[Metric]:
    when = _gauge("meshpath_last_evaluation_timestamp_seconds", "When the last evaluation finished")
    when.add_metric([], ev.finished_at)
    took = _gauge("meshpath_last_evaluation_duration_seconds", "How long the last evaluation took")
    took.add_metric([], ev.duration)
    yield from (when, took)


def activity_families(view: WatchView) -> Iterator[Metric]:
    """Counters: changes seen, evaluations, heals; and whether the keeper runs."""
    changes = _counter("meshpath_changes", "Kernel and FRR changes seen", ["source"])
    for source in CHANGE_SOURCES:
        changes.add_metric([source], float(view.changes.get(source, 0)))
    evaluations = _counter("meshpath_evaluations", "Evaluations run")
    evaluations.add_metric([], float(view.evaluations))
    errors = _counter("meshpath_evaluation_errors", "Evaluations that failed")
    errors.add_metric([], float(view.evaluation_errors))
    heals = _counter("meshpath_heals", "What the keeper re-asserted", ["kind"])
    for kind in HEAL_KINDS:
        heals.add_metric([kind], float(view.heals.get(kind, 0)))
    failures = _counter("meshpath_heal_failures", "Heals that failed")
    failures.add_metric([], float(view.heal_failures))
    keeper = _gauge("meshpath_keeper_enabled", "1 when the keeper (--heal) runs")
    keeper.add_metric([], float(view.keeper))
    build = _gauge("meshpath_build_info", "meshpath's version (constant 1)", ["version"])
    build.add_metric([__version__], 1.0)
    yield from (changes, evaluations, errors, heals, failures, keeper, build)


def families(view: WatchView) -> Iterator[Metric]:
    """Every family for ``view`` (the path families only once an evaluation exists)."""
    if view.evaluation is not None:
        yield from path_families(view.evaluation)
        yield from route_families(view.evaluation)
        yield from timing_families(view.evaluation)
    yield from activity_families(view)


class ViewCollector(Collector):
    """Builds the families from the current view at each scrape."""

    def __init__(self, current: Callable[[], WatchView]) -> None:
        self._current = current

    def collect(self) -> Iterable[Metric]:
        return list(families(self._current()))


def new_registry(current: Callable[[], WatchView]) -> Registry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ViewCollector(current))
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    """The text format, exactly as a scrape would return it."""
    return generate_latest(registry)


def write_textfile(directory: Path, registry: CollectorRegistry) -> Path:
    """``DIR/meshpath.prom``, replaced atomically (temp file in DIR, then rename), readable
    by node_exporter's user also under the service's ``UMask=0077``."""
    path = directory / TEXTFILE_NAME
    write_to_textfile(str(path), registry)
    path.chmod(0o644)
    return path


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Scrapes are not worth a log line each."""


@dataclass(frozen=True, slots=True)
class Listener:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_listen(text: str) -> Listener:
    """``127.0.0.1:9847``, ``[::1]:9847`` or ``0.0.0.0:9847``."""
    host, sep, port_text = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
        port = int(port_text)
    except (OSError, ValueError) as exc:
        raise BadInputError(
            f"--listen {text!r}: expected ADDRESS:PORT, e.g. 127.0.0.1:9847 or [::1]:9847"
        ) from exc
    if not sep or not 0 < port < 65536:
        raise BadInputError(f"--listen {text!r}: the port must be 1-65535")
    return Listener(host, port)


def serve(listener: Listener, registry: CollectorRegistry) -> ThreadingWSGIServer:
    """Bind ``listener`` now (in the caller's network namespace) and serve /metrics from a
    daemon thread. The thread blocks in select without a poll interval: no idle wake-ups."""

    class Server(ThreadingWSGIServer):
        address_family = socket.AF_INET6 if ":" in listener.host else socket.AF_INET

    try:
        httpd = make_server(
            listener.host, listener.port, make_wsgi_app(registry), Server, handler_class=_Quiet
        )
    except OSError as exc:
        if exc.errno == errno.EADDRNOTAVAIL:
            raise BadInputError(f"--listen {listener}: no such address here") from exc
        raise EnvironmentProblem(f"cannot listen on {listener}: {exc.strerror}") from exc
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": None}, daemon=True
    )
    thread.start()
    return httpd


Sample = tuple[str, frozenset[tuple[str, str]]]


def read_samples(text: str) -> dict[Sample, float]:
    """Every sample of an exposition (a scrape or a textfile): (name, labels) -> value."""
    out: dict[Sample, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out
