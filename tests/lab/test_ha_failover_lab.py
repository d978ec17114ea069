"""Failover between the ha lab's two connectors, with and without BFD (lab/failover.py).

One lab for the module: both connectors fixed (primary and standby) without BFD; the
primary's LAN link taken down while a Worker calls every 100 ms; then both re-fixed with
``fix --bfd`` and the same drill again. bench/ha.py runs every event and reports figures.
"""

from __future__ import annotations

import pytest

from meshpath.checks.fleet import ads_from_doc, check_fleet
from meshpath.lab import Lab, failover, get_scenario, ha
from meshpath.lab.procs import wait_for
from meshpath.lab.topology import LAN_ADDR

pytestmark = [pytest.mark.root, pytest.mark.lab]

ROUTER = LAN_ADDR["router"]
REPLICAS = {LAN_ADDR["conn"], LAN_ADDR["connb"]}
# Seconds before the event is undone. Without BFD the router switches after its 3 s hold
# time and a call's SYN is retransmitted 1 s later: 4 s left no margin (a CI run saw the
# calls recover just after it); bench/ha.py uses the same 6 s.
WINDOW = 6.0
# ... and when the path has not come back by then, up to this much longer, as soon as it
# has: under CI load a recovery came after the window (the calls' SYN retransmissions go
# through user-space tunnel emulators), and the drill reported it as none.
PATIENCE = 2 * WINDOW


@pytest.fixture(scope="module")
def ha_lab(lab: Lab) -> Lab:
    lab.setup(get_scenario("ha"))
    ha.start_replica(lab)  # both connectors with their sessions, bare FRR and bfdd
    failover.fix_all(lab, bfd=False)
    return lab


def test_the_fleet_check_is_clean_and_models_the_paths_the_router_sees(ha_lab: Lab) -> None:
    ads = [ad for n in ha.ROLES for ad in ads_from_doc(ha.fleet_facts(ha_lab, n), n)]
    assert check_fleet(ads) == ()
    seen = ha.router_paths(ha_lab)
    assert {a.peer: a.as_path_length for a in ads if a.host == "conn"} == {ROUTER: 1}
    for ad in ads:  # the AS-path length fleet facts compute is the one the router got
        assert ad.as_path_length == seen[LAN_ADDR[ad.host]], (ad, seen)


def test_bfd_comes_up_and_makes_link_failover_faster(ha_lab: Lab) -> None:
    lab = ha_lab
    # The router is ready for BFD with both, but a connector without --bfd has no session:
    # down, and BGP does not care (fix_all waited for the router's route via conn).
    assert failover.bfd_status(lab, "router") == dict.fromkeys(REPLICAS, "down")
    without = failover.drill(lab, "link", bfd=False, window=WINDOW, patience=PATIENCE)

    failover.fix_all(lab, bfd=True)
    assert failover.bfd_status(lab, "router") == dict.fromkeys(REPLICAS, "up")
    # fix_all waited for the router's side; each connector's side turns up on the same
    # control packets, a moment later under load: waited for, not sampled once.
    for node in ha.ROLES:
        wait_for(
            f"BFD up at {node}", lambda n=node: failover.bfd_status(lab, n) == {ROUTER: "up"}, 10.0
        )
    with_bfd = failover.drill(lab, "link", bfd=True, window=WINDOW, patience=PATIENCE)

    print(f"without BFD: {without.calls}\nwith BFD: {with_bfd.calls}")  # shown on failure
    for run in (without, with_bfd):
        assert run.via_standby, (run, run.calls)  # the calls moved to connb's session
        # Failback: conn's session is back at once, its BGP session only after the connect
        # retry (the link was down longer than the hold time): a call in between goes in
        # through conn and its reply to connb, and fails (seen in 1 of ~20 drills). What
        # must hold is that calls succeed again for good within the window.
        assert run.failback.recovery is not None, (run, run.calls)
    # With BFD the calls are carried by the standby again once the router has switched.
    # Without BFD they were too in every run here but two of about ten, both clean-clone
    # CI runs with the pure tiers beside them: there the calls through the standby kept
    # failing (162 of 180 over 18 s) although the router had switched at 2.7 s. Not
    # explained yet (bench/README "ha"); a drill that never recovers counts as slower.
    assert with_bfd.failover.recovery is not None, (with_bfd, with_bfd.calls)
    # Without BFD the router keeps conn's paths until its hold timer (3 s) expires; BFD
    # drops them after 3 x 300 ms.
    assert without.router_switch is not None and with_bfd.router_switch is not None
    assert with_bfd.router_switch < without.router_switch, (with_bfd, without)
    if without.failover.recovery is not None:
        assert with_bfd.failover.recovery < without.failover.recovery, (with_bfd, without)
    assert with_bfd.failover.failed <= without.failover.failed, (with_bfd, without)
