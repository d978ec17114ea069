"""The doctor on connector snapshots recorded from the lab (tests/data/snapshots)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from meshpath.cli import main
from tests.doctor_expectations import EXPECT

SNAPSHOTS = Path(__file__).parent.parent / "data" / "snapshots"


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_doctor_on_recorded_state(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    verdict, root, must = EXPECT[name]
    code = main(
        [
            "--json",
            "doctor",
            "--snapshot",
            str(SNAPSHOTS / f"{name}.json"),
            "--target",
            "10.0.1.50:3000",
        ]
    )
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"].startswith(verdict), report["verdict"]
    assert report["root_cause"] == root
    assert must <= {f["id"] for f in report["findings"]}
    assert code == (0 if verdict == "PATH OK" else 1)


def test_human_report_explains_handshake_timeout(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["doctor", "--snapshot", str(SNAPSHOTS / "broken.json"), "--target", "10.0.1.50:3000"]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "MP101" in out and "root cause" in out
    assert "handshake timeout" in out
    assert "ip route add 100.64.0.0/12 dev CloudflareWARP" in out


def test_default_targets_cover_the_lan(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--json", "doctor", "--snapshot", str(SNAPSHOTS / "broken.json")])
    report = json.loads(capsys.readouterr().out)
    assert [f["target"] for f in report["flows"]] == ["10.0.1.1:80"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--target", "10.0.1.50:99999"], "target"),
        (["--target", "nonsense"], "target"),
        (["--snapshot", "/nonexistent/x.json"], "cannot read"),
    ],
)
def test_bad_inputs_exit_2(
    args: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = (
        ["doctor"]
        if "--snapshot" in args
        else ["doctor", "--snapshot", str(SNAPSHOTS / "broken.json")]
    )
    assert main([*base, *args]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err


def test_other_schema_version_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = json.loads((SNAPSHOTS / "broken.json").read_text())
    doc["schema_version"] = 99
    path = tmp_path / "future.json"
    path.write_text(json.dumps(doc))
    assert main(["doctor", "--snapshot", str(path)]) == 2
    assert "schema_version 99" in capsys.readouterr().err


@pytest.mark.parametrize(("field", "value"), [("dst", "garbage"), ("gateway", "zzz")])
def test_meaningless_route_is_one_line_exit_2(
    field: str, value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = json.loads((SNAPSHOTS / "broken.json").read_text())
    route = next(r for r in doc["routes"] if r["dst"] == "0.0.0.0/0" and r["table"] == 254)
    route[field] = value
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    assert main(["doctor", "--snapshot", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("meshpath: error:") and "\n" not in err


def _dual(name: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    args = ["--json", "doctor", "--snapshot", str(SNAPSHOTS / "dual" / f"{name}.json")]
    code = main([*args, "--target", "10.0.1.50:3000", "--target", "[fd00:1::50]:3000"])
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    return code, report


def test_dual_stack_broken_names_the_missing_ipv6_route(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The dual-stack lab's connector, recorded: the IPv6 flow fails too, and its own MP101
    names the IPv6 source range with the reply's route as evidence."""
    code, report = _dual("broken-dual", capsys)
    assert code == 1
    flows = {f["target"]: f["status"] for f in report["flows"]}
    assert flows["[fd00:1::50]:3000"] != "delivered"  # the target as --target reads it
    v6 = next(f for f in report["findings"] if "2606:4700:cf1:5000::/64" in f["title"])
    assert v6["id"] == "MP101"
    assert any(
        "reply [fd00:1::50]:3000 > [2606:4700:cf1:5000::5]" in e and "route ::/0" in e
        for e in v6["evidence"]
    ), v6["evidence"]


def test_dual_stack_route_fix_is_path_ok_for_both_families(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, report = _dual("route-dual", capsys)
    assert (code, report["verdict"]) == (0, "PATH OK")
    assert {f["target"]: f["status"] for f in report["flows"]} == {
        "10.0.1.50:3000": "delivered",
        "[fd00:1::50]:3000": "delivered",
    }
