"""`lab run --jobs`: scenarios at once in labs of their own, torn down whatever happens."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from meshpath.lab import run_many
from meshpath.lab.procs import lab_namespaces, wait_for
from meshpath.lab.state import RUN_ROOT
from tests.conftest import needs_root

pytestmark = [needs_root, pytest.mark.lab, pytest.mark.root]


def _gone(instances: list[str]) -> bool:
    return not any(lab_namespaces(i) for i in instances) and not any(
        (RUN_ROOT / i).exists() for i in instances
    )


def test_two_workers_report_in_the_given_order_and_leave_nothing() -> None:
    base = f"p{os.getpid() % 100000}"
    seen: list[str] = []
    results = run_many(["broken", "route", "nat"], base, lambda r: seen.append(r.name), jobs=2)
    assert [r.name for r in results] == seen == ["broken", "route", "nat"]
    assert all(r.passed for r in results), [r.to_dict()["checks"] for r in results]
    assert results[0].worker.status == 500 and results[1].worker.status == 200
    assert set(results[0].setup_phases) >= {"netns", "apps+workerd", "frr"}
    assert _gone([base, f"{base}1"])


def test_sigterm_mid_run_tears_every_workers_lab_down() -> None:
    base = f"q{os.getpid() % 100000}"
    instances = [base, f"{base}1"]
    argv = [sys.executable, "-m", "meshpath", "--json", "lab", "run", "all", "--jobs", "2"]
    proc = subprocess.Popen(  # noqa: S603 - argv list
        [*argv, "--instance", base], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        # Both labs are being built: their services run (past namespaces and links).
        wait_for(
            "both labs' services",
            lambda: all((RUN_ROOT / i / "service.ready").exists() for i in instances),
            30.0,
        )
        proc.send_signal(signal.SIGTERM)
        out, _err = proc.communicate(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode != 0
    assert _gone(instances), [lab_namespaces(i) for i in instances]
    assert not out.strip()  # no result document on an abort
