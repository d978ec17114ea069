"""The doctor against the live lab connector: real kernel, real nft, real FRR."""

from __future__ import annotations

import json

import pytest

from meshpath.cli import main
from meshpath.lab import Lab
from tests.conftest import needs_root
from tests.data.snapshots.record import prepare
from tests.doctor_expectations import EXPECT
from tests.schema_check import assert_schema

pytestmark = [needs_root, pytest.mark.lab]


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_doctor_live(lab: Lab, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    prepare(lab, name)
    code = main(["--json", "doctor", "--netns", lab.ns("conn"), "--target", "10.0.1.50:3000"])
    report = json.loads(capsys.readouterr().out)
    assert_schema(report)
    verdict, root, must = EXPECT[name]
    assert report["verdict"].startswith(verdict), report
    assert report["root_cause"] == root
    assert must <= {f["id"] for f in report["findings"]}
    assert report["disagreements"] == []  # the model agrees with the kernel here
    assert code == (0 if verdict == "PATH OK" else 1)


def test_missing_namespace_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--netns", "mplab-no-such-ns"]) == 2
    assert "mplab-no-such-ns" in capsys.readouterr().err


def test_unknown_rule_falls_back_to_the_kernel(
    lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    """A rule the model cannot evaluate is named, and the kernel's routing decides."""
    lab.setup("broken")
    lab.nft(
        "conn",
        "table inet odd { chain odd_forward { type filter hook forward priority 10; "
        "policy accept; meta cpu 0 counter; }; }\n",
    )
    code = main(["--json", "doctor", "--netns", lab.ns("conn"), "--target", "10.0.1.50:3000"])
    report = json.loads(capsys.readouterr().out)
    unknown = next(f for f in report["findings"] if f["id"] == "MP199")
    assert any("cpu" in line for line in unknown["evidence"]), unknown
    assert report["flows"][0]["decided_by"] == "kernel"
    assert report["root_cause"] == "MP101" and code == 1
