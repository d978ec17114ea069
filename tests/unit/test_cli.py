from __future__ import annotations

import json
from pathlib import Path

import pytest

from meshpath import __version__
from meshpath.cli import main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out


def test_ranges_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--json", "ranges"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ranges"][0] == {
        "key": "source_v4",
        "cidr": "100.64.0.0/12",
        "default": "100.64.0.0/12",
        "purpose": data["ranges"][0]["purpose"],
    }
    assert data["neighbours"][0]["name"] == "tailscale"


def test_bad_range_flag_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--range", "source_v4=100.96.0.0/11", "ranges"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "overlaps device_v4" in err
    assert "Traceback" not in err


def test_unknown_command_is_usage_error() -> None:
    assert main(["no-such-command"]) == 2


def test_debug_shows_the_exception() -> None:
    from meshpath.errors import RangeError

    with pytest.raises(RangeError):
        main(["--debug", "--range", "bogus", "ranges"])


def test_missing_config_file_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(tmp_path / "none.toml"), "ranges"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_binary_config_file_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = tmp_path / "binary.toml"
    conf.write_bytes(b"\xff\xfe\x00garbage")
    assert main(["--config", str(conf), "ranges"]) == 2
    assert "not valid TOML" in capsys.readouterr().err


def test_snapshot_to_unwritable_path_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from meshpath.state import codec
    from tests.builders import broken_connector

    src = tmp_path / "s.json"
    codec.save(broken_connector(), src)
    assert main(["snapshot", "--input", str(src), "-o", str(tmp_path / "no" / "x.json")]) == 2
    assert "cannot write snapshot" in capsys.readouterr().err


@pytest.mark.parametrize("mark", ["-1", "0x100000000", "banana"])
def test_out_of_range_mark_exit_2(mark: str, capsys: pytest.CaptureFixture[str]) -> None:
    snap = Path(__file__).parent.parent / "data" / "snapshots" / "broken.json"
    assert main(["route", "get", "10.0.1.50", "--snapshot", str(snap), "--mark", mark]) == 2
    assert "--mark" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["no-such-command"], "No such command 'no-such-command'. (see 'meshpath --help')"),
        (["doctor", "--target"], "Option '--target' requires an argument."),
        (["route", "get"], "Missing argument 'DST'. (see 'meshpath route get --help')"),
        (["doctor", "--nosuch"], "No such option: --nosuch"),
    ],
)
def test_usage_error_is_one_line(
    argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Click printed "Usage: ...", "Try ...", a blank line and "Error: ..." (four lines).
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("meshpath: error: ") and needle in err


def test_error_naming_a_value_with_a_newline_stays_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["doctor", "--netns", "a\nb"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "a\\nb" in err
