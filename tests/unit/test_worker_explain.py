"""`meshpath explain`: the catalogue, lookup of pasted lines, and the doctor's link to it."""

from __future__ import annotations

import json
import shlex

import pytest

from meshpath.checks.context import CheckContext
from meshpath.checks.path import PathOutcome
from meshpath.checks.report import build_report
from meshpath.checks.targets import Target
from meshpath.cli import main
from meshpath.config import Settings
from meshpath.errors import BadInputError
from meshpath.worker.explain import CATALOGUE, commands_for, explain, lookup
from tests.builders import broken_connector


@pytest.mark.parametrize("entry", CATALOGUE, ids=lambda e: e.key)
def test_every_spelling_finds_its_entry(entry: object) -> None:
    from meshpath.worker.explain import Explanation

    assert isinstance(entry, Explanation)
    for text in (entry.key, *entry.matches):
        assert lookup(text) is entry, text
        assert lookup(f"handler failed: Error: {text.upper()}") is entry
    assert entry.layer and entry.meaning and entry.commands and entry.source


def test_keys_are_unique_and_cloudflare_codes_are_covered() -> None:
    keys = [e.key for e in CATALOGUE]
    assert len(keys) == len(set(keys))
    for code in (
        "connection_refused",
        "connection_terminated",
        "connection_timeout",
        "connection_limit_reached",
        "destination_unavailable",
        "dns_error",
    ):
        assert lookup(code) is not None, code


def test_wrangler_tail_line() -> None:
    entry = explain("(error) handler failed: Error: handshake timeout")
    assert entry.key == "handshake timeout"
    assert entry.layer.startswith("return path on the connector")


def test_unknown_error_is_bad_input() -> None:
    with pytest.raises(BadInputError, match="known errors: 'handshake timeout'"):
        explain("kaboom")
    with pytest.raises(BadInputError):
        explain("   ")


def test_commands_take_the_target() -> None:
    entry = explain("connection refused")
    filled = commands_for(entry, Target("10.0.1.50", 3000))
    assert filled[0] == "nc -vz 10.0.1.50 3000   # from the connector"
    assert all("IP" not in c and "{" not in c for c in filled)
    assert any("IP:PORT" in c for c in commands_for(entry))


def test_doctor_verdict_points_to_explain() -> None:
    """The doctor's explanation names the command, and that command finds the same entry."""
    target = Target("10.0.1.50", 3000, "eth0")
    flow = PathOutcome(
        target, "100.64.12.189", "misrouted", stage="reply", cause="no-return-route", egress="eth0"
    )
    ctx = CheckContext(broken_connector(), Settings(), lan_interfaces=("eth0",))
    report = build_report(ctx, (flow,))
    assert report.explanation is not None
    command = report.explanation.split("More: ", 1)[1]
    argv = shlex.split(command)
    assert argv[:2] == ["meshpath", "explain"]
    assert explain(argv[2]).key == "handshake timeout"


def test_cli_human_json_and_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "handshake timeout", "--target", "10.0.1.50:3000"]) == 0
    out = capsys.readouterr().out
    assert "sudo meshpath doctor --target 10.0.1.50:3000" in out
    assert main(["--json", "explain", "Error: connection refused"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["error"] == "connection refused" and data["commands"]
    assert main(["--json", "explain"]) == 0
    assert len(json.loads(capsys.readouterr().out)["entries"]) == len(CATALOGUE)
    assert main(["explain", "kaboom"]) == 2
    assert main(["explain", "handshake timeout", "--target", "nope"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "target 'nope'" in err
