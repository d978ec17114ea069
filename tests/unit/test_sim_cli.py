"""`meshpath route get` and `meshpath flow` on a saved snapshot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meshpath.cli import main
from meshpath.state import codec
from tests.builders import broken_connector


@pytest.fixture
def snap_file(tmp_path: Path) -> Path:
    path = tmp_path / "conn.json"
    codec.save(broken_connector(), path)
    return path


def test_route_get_json(snap_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--json", "route", "get", "100.64.12.189", "--from", "10.0.1.50", "--iif", "eth0",
            "--snapshot", str(snap_file)]  # fmt: skip
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["outcome"], data["dev"], data["gateway"]) == ("forward", "eth0", "10.0.1.1")
    assert [s["kind"] for s in data["steps"]][0] == "martian"


def test_route_get_human_looks_like_ip_route_get(
    snap_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["route", "get", "8.8.8.8", "--mark", "0x100cf", "--snapshot", str(snap_file)]) == 0
    out = capsys.readouterr().out
    assert "8.8.8.8 via 10.0.1.1 dev eth0 src 10.0.1.2 mark 0x100cf" in out


def test_flow_misrouted_exits_1(snap_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--json", "flow", "10.0.1.50:3000", "--snapshot", str(snap_file)]) == 1
    (result,) = json.loads(capsys.readouterr().out)["flows"]
    assert result["outcome"] == "misrouted" and result["reply"]["egress"] == "eth0"


@pytest.mark.parametrize(
    "argv",
    [["flow", "10.0.1.50"], ["flow", "10.0.1.50:99999"], ["route", "get", "1.2.3.4", "--mark", "x"],
     ["route", "get", "1.2.3.400"]],
)  # fmt: skip
def test_bad_input_exits_2(snap_file: Path, argv: list[str]) -> None:
    assert main([*argv, "--snapshot", str(snap_file)]) == 2


def test_snapshot_and_netns_exclusive(snap_file: Path) -> None:
    assert main(["route", "get", "1.1.1.1", "--snapshot", str(snap_file), "--netns", "x"]) == 2
