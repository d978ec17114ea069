"""--json everywhere: global options after the subcommand, and every document's schema."""

from __future__ import annotations

import json
from pathlib import Path

import click
import jsonschema
import pytest
import typer

from meshpath import schemas
from meshpath.cli import app, main
from meshpath.cli.argv import hoist_global_options
from tests.schema_check import assert_schema

DATA = Path(__file__).parent.parent / "data"
SNAPSHOTS = DATA / "snapshots"
CAPTURES = DATA / "trace"

# Every leaf command and the schema of its --json document. A new command without an entry
# here fails test_every_command_has_a_schema.
COMMAND_SCHEMAS = {
    "snapshot": "snapshot",
    "ranges": "ranges",
    "trace": "trace",
    "route get": "route-get",
    "flow": "flow",
    "doctor": "doctor",
    "fix": "fix-plan|fix-result",
    "verify": "verify",
    "lab up": "lab-up",
    "lab status": "lab-status",
    "lab exec": "lab-exec",
    "lab run": "lab-run",
    "lab down": "lab-down",
    "lab demo": "lab-demo",
    "lab call": "lab-call",
    "lab warp reconnect": "lab-warp-reconnect",
    "lab warp status": "lab-warp-status",
    "worker check": "worker-check",
    "explain": "explain|explain-list",
    "watch": "watch-evaluation|watch-unit|watch-event",
    "fleet facts": "fleet-facts",
    "fleet check": "fleet-check",
}


def _leaves(command: click.Command, prefix: str = "") -> list[str]:
    if isinstance(command, click.Group):
        return [
            leaf
            for name, sub in command.commands.items()
            for leaf in _leaves(sub, f"{prefix} {name}".strip())
        ]
    return [prefix]


def test_every_command_has_a_schema() -> None:
    leaves = set(_leaves(typer.main.get_command(app)))
    assert leaves == set(COMMAND_SCHEMAS)
    for names in COMMAND_SCHEMAS.values():
        for name in names.split("|"):
            assert name == "snapshot" or name in schemas.VERSIONS


@pytest.mark.parametrize("name", sorted(schemas.VERSIONS))
def test_schema_files_are_valid_json_schemas(name: str) -> None:
    schema = schemas.load(name)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$id"] == schemas.schema_id(name)
    assert schema["properties"]["schema"]["const"] == schemas.schema_id(name)


@pytest.mark.parametrize("name", sorted(schemas.MODEL_PARTS))
def test_model_parts_are_generated_from_the_types(name: str) -> None:
    """Run `python -m meshpath.schemas` after changing a model type, and commit the files."""
    assert schemas.regenerate(name, schemas.load(name)) == schemas.load(name)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, object]]:
    code = main(list(argv))
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_global_options_after_the_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    before = _run(capsys, "--json", "doctor", "--snapshot", str(SNAPSHOTS / "broken.json"))
    after = _run(capsys, "doctor", "--snapshot", str(SNAPSHOTS / "broken.json"), "--json")
    assert before == after and before[0] == 1
    code, doc = _run(capsys, "ranges", "--range", "source_v4=100.64.0.0/11", "--json")
    assert code == 0 and doc["ranges"][0]["cidr"] == "100.64.0.0/11"  # type: ignore[index]


@pytest.mark.parametrize(
    ("argv", "want"),
    [
        (["doctor", "--json"], ["--json", "doctor"]),
        (["lab", "up", "x", "-q", "--config=a.toml"], ["-q", "--config=a.toml", "lab", "up", "x"]),
        (
            ["fix", "--mode", "nat", "--range", "k=v", "-v"],
            ["--range", "k=v", "-v", "fix", "--mode", "nat"],
        ),
        # after a bare --, everything belongs to the command lab exec runs
        (
            ["lab", "exec", "conn", "--", "curl", "--json", "-v"],
            ["lab", "exec", "conn", "--", "curl", "--json", "-v"],
        ),
    ],
)
def test_hoist_global_options(argv: list[str], want: list[str]) -> None:
    assert hoist_global_options(argv) == want


def test_quiet_silences_status_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "s.json"
    assert main(["snapshot", "--input", str(SNAPSHOTS / "broken.json"), "-o", str(out), "-q"]) == 0
    assert "saved to" not in capsys.readouterr().out
    assert main(["snapshot", "--input", str(SNAPSHOTS / "broken.json"), "-o", str(out)]) == 0
    assert "saved to" in capsys.readouterr().out


@pytest.mark.parametrize("snap", sorted(p.name for p in SNAPSHOTS.glob("*.json")))
def test_doctor_and_fix_plans_validate(snap: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(SNAPSHOTS / snap)
    assert_schema(_run(capsys, "doctor", "--snapshot", path, "--json")[1])
    for mode in ("nat", "route"):
        code, doc = _run(capsys, "fix", "--mode", mode, "--snapshot", path, "--json")
        assert code == 0
        assert_schema(doc)


def test_bgp_plan_validates(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(SNAPSHOTS / "rfc8212.json")
    argv = ["fix", "--mode", "bgp", "--peer", "10.0.1.1", "--asn", "65001", "--snapshot", path]
    code, doc = _run(capsys, *argv, "--json")
    assert code == 0 and doc["schema"] == "meshpath/fix-plan/1"
    assert_schema(doc)


def test_model_commands_validate(capsys: pytest.CaptureFixture[str]) -> None:
    snap = str(SNAPSHOTS / "broken.json")
    assert_schema(_run(capsys, "ranges", "--json")[1])
    get = ["route", "get", "100.64.12.189", "--from", "10.0.1.50", "--iif", "eth0"]
    assert_schema(_run(capsys, *get, "--snapshot", snap, "--json")[1])
    code, doc = _run(capsys, "flow", "10.0.1.50:3000", "10.0.1.1:80", "--snapshot", snap, "--json")
    assert code == 1 and len(doc["flows"]) == 2  # type: ignore[arg-type]
    assert_schema(doc)


@pytest.mark.parametrize("capture", sorted(p.name for p in CAPTURES.glob("*.pcap")))
def test_trace_validates(capture: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = _run(capsys, "trace", str(CAPTURES / capture), "--json")
    assert code in (0, 1)
    assert_schema(doc)


def test_snapshot_json_is_the_snapshot_schema(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = _run(capsys, "snapshot", "--input", str(SNAPSHOTS / "bgp.json"), "--json")
    assert code == 0
    jsonschema.validate(doc, schemas.snapshot_schema(), cls=jsonschema.Draft202012Validator)


def test_a_schema_rejects_a_wrong_document(capsys: pytest.CaptureFixture[str]) -> None:
    _, doc = _run(capsys, "doctor", "--snapshot", str(SNAPSHOTS / "broken.json"), "--json")
    doc["ok"] = "no"
    with pytest.raises(jsonschema.ValidationError):
        assert_schema(doc)


WORKERS = DATA / "worker"


@pytest.mark.parametrize(
    "case", sorted(p.name for p in WORKERS.iterdir() if p.is_dir() and "malformed" not in p.name)
)
def test_worker_check_validates(case: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["worker", "check", str(WORKERS / case), "--json"])
    out = capsys.readouterr().out
    if code == 2:  # a config meshpath refuses: one line on stderr, no document
        assert out == ""
        return
    assert_schema(json.loads(out))


def test_explain_validates(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = _run(capsys, "explain", "--json")
    assert code == 0 and doc["schema"] == "meshpath/explain-list/1"
    assert_schema(doc)
    for entry in doc["entries"]:  # type: ignore[attr-defined]
        code, one = _run(capsys, "explain", entry["error"], "--json")
        assert code == 0
        assert_schema(one)


@pytest.mark.parametrize("snap", ["broken.json", "bgp.json", "tailscale52.json"])
def test_watch_once_validates(snap: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = _run(capsys, "watch", "--once", "--snapshot", str(SNAPSHOTS / snap), "--json")
    assert code in (0, 1) and doc["ok"] is (code == 0)
    assert_schema(doc)


def test_watch_unit_and_event_lines_validate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from meshpath.watch import events

    code, doc = _run(capsys, "watch", "--install-unit", "--root", str(tmp_path), "--json")
    assert code == 0 and doc["changed"] is True
    assert_schema(doc)
    fields = {"finding": "MP101", "verdict": "PATH BROKEN: ...", "targets_broken": None}
    line = events.line("path_broken", 0.0, fields, as_json=True)
    event = json.loads(line)
    assert "targets_broken" not in event  # unknown values are left out, as in logfmt
    assert_schema(event)


FLEET = DATA / "fleet"


@pytest.mark.parametrize("scenario", ["ha", "ha-equal"])
def test_fleet_facts_and_check_validate(scenario: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = _run(capsys, "fleet", "facts", "--snapshot", str(SNAPSHOTS / "bgp.json"), "--json")
    assert code == 0
    assert_schema(doc)
    files = [str(FLEET / f"{scenario}-{node}.json") for node in ("conn", "connb")]
    for path in files:
        assert_schema(json.loads(Path(path).read_text()))
    code, doc = _run(capsys, "fleet", "check", *files, "--json")
    assert code == (0 if scenario == "ha" else 1) and doc["ok"] is (code == 0)
    assert_schema(doc)
