"""The ha-equal scenario: two replicas with equal preference break the Worker's flows.

(The ha scenario's primary/standby fix and its failover drill run in
tests/ansible/test_collection_lab.py, configured by the Ansible collection.)
"""

from __future__ import annotations

import json

import pytest

from meshpath.checks.fleet import ads_from_doc, check_fleet
from meshpath.lab import Lab, ha, run_scenario

pytestmark = [pytest.mark.root, pytest.mark.lab]


def test_equal_preference_sends_replies_to_the_standby_and_the_worker_times_out(
    lab: Lab,
) -> None:
    result = run_scenario(lab, "ha-equal")
    assert result.passed, [c for c in result.checks if not c.ok]
    assert result.worker.status == 500 and "handshake timeout" in result.worker.body

    # No connector sees the other's advertisement; the fleet check over both does.
    ads = [ad for n in ha.ROLES for ad in ads_from_doc(ha.fleet_facts(lab, n), n)]
    (finding,) = check_fleet(ads)
    assert finding.id == "MP401" and "(conn, connb)" in finding.title, finding
    assert {a.as_path_length for a in ads} == {1}
    assert json.dumps(finding.as_dict())  # what `meshpath fleet check --json` prints
