"""The failover drill's pure parts: its figures, BFD status, bfdd in the lab's FRR."""

from __future__ import annotations

import time
from typing import cast

from meshpath.collect.frr import decode_show_list
from meshpath.lab import frr
from meshpath.lab.failover import (
    Call,
    PhaseFigures,
    Prober,
    _await_recovery,
    phase_figures,
    timeline,
)
from meshpath.state.frr import bfd_status


def _calls(*spec: tuple[float, float, bool]) -> list[Call]:
    return [Call(start, start + took, ok) for start, took, ok in spec]


def test_a_phase_without_trouble_recovers_at_once() -> None:
    calls = _calls((10.0, 0.01, True), (10.1, 0.02, True))
    assert phase_figures(calls, 10.0, 12.0) == PhaseFigures(2, 0, 0, 0.0)


def test_the_path_is_back_when_the_first_call_of_the_final_success_run_completes() -> None:
    calls = _calls(
        (9.9, 0.01, True),  # before the event: not this phase's
        (10.0, 2.5, False),
        (10.1, 2.5, False),
        (10.2, 2.1, True),  # its retransmitted SYN got through at 12.3: the path is back
        (10.3, 2.0, True),
        (12.4, 0.01, True),
    )
    figures = phase_figures(calls, 10.0, 16.0)
    assert (figures.calls, figures.failed, figures.delayed) == (5, 2, 2)
    assert figures.recovery is not None and abs(figures.recovery - 2.3) < 1e-9


def test_a_failure_after_successes_restarts_the_run() -> None:
    calls = _calls((10.0, 0.01, True), (10.1, 2.5, False), (10.2, 0.01, True))
    figures = phase_figures(calls, 10.0, 16.0)
    assert figures.failed == 1 and figures.recovery is not None
    assert abs(figures.recovery - 0.21) < 1e-9


def test_a_phase_ending_in_failures_did_not_recover() -> None:
    # The last call was still in flight at the next event and succeeded after it: it
    # judges nothing (its SYN was retransmitted after the restore).
    calls = _calls((10.0, 0.01, True), (10.1, 2.5, False), (15.5, 1.2, True))
    assert phase_figures(calls, 10.0, 16.0) == PhaseFigures(3, 1, 1, None)


class _Seen:
    """What a Prober has seen so far (the drill reads only these two)."""

    def __init__(self, calls: list[Call], pending: list[float]) -> None:
        self.calls, self.pending = calls, pending

    def snapshot(self) -> list[Call]:
        return self.calls

    def idle_since(self, moment: float) -> bool:
        return all(started >= moment for started in self.pending)


def _waited(calls: list[Call], pending: list[float], start: float, patience: float) -> float:
    began = time.monotonic()
    _await_recovery(cast(Prober, _Seen(calls, pending)), start, began + patience)
    return time.monotonic() - began


def test_the_drill_waits_past_its_window_only_until_the_path_is_back() -> None:
    t = time.monotonic() - 8.0  # the event, 8 s ago
    back = _calls((t, 2.5, False), (t + 7.0, 0.01, True), (t + 7.1, 0.01, True))
    assert _waited(back, [], t, 5.0) < 0.5  # back already: no wait
    still_failing = _calls((t, 2.5, False), (t + 5.0, 2.5, False))
    assert 0.6 <= _waited(still_failing, [], t, 0.6) < 1.5  # never back: until the deadline
    # Back by the calls that ended, but one started 2 s ago has not answered (it may fail
    # and restart the run): not yet.
    assert 0.6 <= _waited(back, [time.monotonic() - 2.0], t, 0.6) < 1.5


def test_the_timeline_names_each_call_from_the_event() -> None:
    calls = _calls((9.0, 0.01, True), (9.9, 0.01, True), (10.1, 2.5, False), (11.0, 1.04, True))
    assert timeline(calls, 10.0, 16.0) == "restored at 6.0 s; -0.1:ok0.0 0.1:X2.5 1.0:ok1.0"


def test_bfd_peers_json_to_status() -> None:
    text = (
        '[{"multihop":false,"peer":"10.0.1.2","status":"up"},{"peer":"10.0.1.4","status":"down"}]'
    )
    peers, problem = decode_show_list("show bfd peers json", text)
    assert problem is None
    assert bfd_status(peers) == {"10.0.1.2": "up", "10.0.1.4": "down"}
    assert bfd_status(None) == {}  # bfdd not running: vtysh prints nothing
    for bad in ("% Unknown command", '{"peer": "x"}'):
        peers, problem = decode_show_list("show bfd peers json", bad)
        assert peers is None and problem is not None
    assert bfd_status([{"status": "up"}, "x"]) == {}


def test_the_ha_router_runs_bfdd_with_a_peer_per_connector_and_bgp_follows_it() -> None:
    cfg = frr.router_config(False, ha=True)
    texts = frr.render_all(cfg, "/tmp/frr.log")
    assert texts["bfdd"] == (
        "hostname router\nbfd\n peer 10.0.1.2\n exit\n peer 10.0.1.4\n exit\nexit\n!\n"
    )
    assert " neighbor 10.0.1.2 bfd\n" in texts["bgpd"]
    assert " neighbor 10.0.1.4 bfd\n" in texts["bgpd"]
    assert cfg.daemons == ("zebra", "staticd", "bgpd", "bfdd")
    plain = frr.router_config(False)
    assert "bfdd" not in frr.render_all(plain, "/tmp/frr.log")
    assert " bfd" not in frr.render_bgpd(plain)


def test_each_bfdd_has_its_own_control_socket() -> None:
    argv = frr.daemon_argv("bfdd", "/run/x/bfdd.conf", "/run/x")
    assert argv[-2:] == ["--bfdctl", "/run/x/bfdd.sock"]
    assert "--bfdctl" not in frr.daemon_argv("bgpd", "/run/x/bgpd.conf", "/run/x")
