"""The simulator's verdict on the lab's real connector agrees with what the Worker sees.

For each scenario the lab builds the connector for real (kernel, nft); the snapshot is
collected from it and ``simulate_flow`` predicts the round trip; the Worker (in workerd) then
makes the call through the real tunnel. Delivered must mean HTTP 200, and the source the
simulator says the LAN sees must be the one the service logged.
"""

from __future__ import annotations

import pytest

from meshpath.collect import collect_snapshot
from meshpath.lab import FIXES, Lab, get_scenario
from meshpath.lab.topology import SERVICE_IP, SERVICE_PORT, WORKER_SOURCE
from meshpath.sim import simulate_flow
from meshpath.sim.flow import DELIVERED, MISROUTED

pytestmark = [pytest.mark.lab, pytest.mark.root]


@pytest.mark.parametrize(
    ("scenario", "outcome"),
    [("broken", MISROUTED), ("gateway", MISROUTED), ("nat", DELIVERED), ("route", DELIVERED),
     ("nat-only", MISROUTED)],
)  # fmt: skip
def test_simulation_matches_the_worker(lab: Lab, scenario: str, outcome: str) -> None:
    lab.connect_timeout = 1.5
    scn = get_scenario(scenario)
    lab.setup(scn)
    if scn.fix is not None:
        FIXES[scn.fix](lab)
    snap = collect_snapshot(netns=lab.ns("conn"))
    predicted = simulate_flow(snap, WORKER_SOURCE, SERVICE_IP, SERVICE_PORT)
    worker = lab.worker_call()
    assert predicted.outcome == outcome, predicted.reason
    assert (worker.status == 200) == (predicted.outcome == DELIVERED), (worker, predicted.reason)
    if worker.status == 200:
        assert worker.seen_source == predicted.source_seen_by_target
