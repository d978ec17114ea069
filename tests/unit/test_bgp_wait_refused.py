"""fix's wait for BGP gives up at once when an OPEN was refused (a wrong AS number), not
after --bgp-timeout; a refusal from before the wait, or another reset, is waited out."""

from __future__ import annotations

import json
from typing import Any

import pytest

from meshpath.apply.frr import Frr
from meshpath.errors import StepFailed
from meshpath.runner import RecordedRunner
from meshpath.state.frr import PeerReset, last_reset
from tests.clock import Clock

PEER = "10.0.1.1"
SUMMARY = json.dumps({"ipv4Unicast": {"peers": {PEER: {"state": "Active"}}}})
# `show bgp neighbors 10.0.1.1 json` of FRR 8.4 after the router refused our OPEN (our
# --peer-asn did not match its `neighbor ... remote-as`); the fields meshpath reads.
BAD_PEER_AS = {
    PEER: {
        "bgpState": "Active",
        "lastResetTimerMsecs": 1000,
        "lastResetDueTo": "BGP Notification received",
        "lastErrorCodeSubcode": "0202",
        "lastNotificationReason": "OPEN Message Error/Bad Peer AS",
    }
}


def _runner(neighbors: dict[str, Any]) -> RecordedRunner:
    runner = RecordedRunner(programs=frozenset({"vtysh"}))
    runner.answer(["vtysh", "-c", "show bgp summary json"], SUMMARY)
    runner.answer(["vtysh", "-c", f"show bgp neighbors {PEER} json"], json.dumps(neighbors))
    return runner


def _wait(neighbors: dict[str, Any], timeout: float = 20.0) -> tuple[str, float]:
    clock = Clock()
    frr = Frr(_runner(neighbors), None)
    with pytest.raises(StepFailed) as failed:
        frr.wait(PEER, ("100.64.0.0/12",), timeout, clock=clock, sleep=clock.sleep)
    return str(failed.value), clock.now


def test_a_refused_open_since_the_wait_began_fails_at_once() -> None:
    # The router has refused our OPEN since the reload: no point in waiting 20 s.
    message, waited = _wait(BAD_PEER_AS)
    assert waited == 0.0  # the first poll
    assert "Bad Peer AS" in message and "NOTIFICATION 2/2" in message
    assert "--peer-asn" in message


def test_a_refusal_frr_dates_a_second_before_the_wait_still_counts() -> None:
    # FRR's whole seconds: at the first poll a reset made as the wait began reads 1000 ms.
    early = {PEER: {**BAD_PEER_AS[PEER], "lastResetTimerMsecs": 2000}}
    message, waited = _wait(early)
    assert waited == pytest.approx(1.0) and "Bad Peer AS" in message


def test_an_older_refusal_or_another_reset_is_waited_out() -> None:
    older = {PEER: {**BAD_PEER_AS[PEER], "lastResetTimerMsecs": 60_000}}
    message, waited = _wait(older, timeout=3.0)
    assert waited == pytest.approx(3.0) and "not ready after 3s" in message
    hold = {
        PEER: {
            "lastResetTimerMsecs": 0,
            "lastResetDueTo": "BGP Notification send",
            "lastErrorCodeSubcode": "0400",  # Hold Timer Expired: may recover
            "lastNotificationReason": "Hold Timer Expired",
        }
    }
    message, waited = _wait(hold, timeout=3.0)
    assert waited == pytest.approx(3.0) and "not ready after 3s" in message


def test_last_reset_reads_what_frr_prints_and_nothing_else() -> None:
    reset = last_reset(BAD_PEER_AS, PEER)
    assert reset == PeerReset(
        "BGP Notification received", 1.0, 2, 2, "OPEN Message Error/Bad Peer AS"
    )
    assert reset.open_refused
    assert last_reset({PEER: {"bgpState": "Idle"}}, PEER) is None  # never went down
    assert last_reset(BAD_PEER_AS, "10.0.1.9") is None
    assert last_reset(None, PEER) is None
    odd = {
        PEER: {
            "lastResetDueTo": "Admin. shutdown",
            "lastErrorCodeSubcode": "zz",
            "lastResetTimerMsecs": True,
        }
    }
    assert last_reset(odd, PEER) == PeerReset("Admin. shutdown", None)
