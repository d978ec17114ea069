"""The ha-equal scenario: two replicas with equal preference break the Worker's flows.

(The ha scenario's primary/standby fix and its failover drill run in
tests/ansible/test_collection_lab.py, configured by the Ansible collection.)
"""

from __future__ import annotations

import pytest

from meshpath.lab import Lab, run_scenario

pytestmark = [pytest.mark.root, pytest.mark.lab]


def test_equal_preference_sends_replies_to_the_standby_and_the_worker_times_out(
    lab: Lab,
) -> None:
    result = run_scenario(lab, "ha-equal")
    assert result.passed, [c for c in result.checks if not c.ok]
    assert result.worker.status == 500 and "handshake timeout" in result.worker.body
