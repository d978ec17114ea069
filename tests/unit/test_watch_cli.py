"""meshpath watch's command line: bad input is one line and exit 2, nothing started."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from meshpath.cli import main

SNAPSHOT = str(Path(__file__).parent.parent / "data" / "snapshots" / "broken.json")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--listen", "localhost"], "--listen 'localhost'"),
        (["--listen", "127.0.0.1:0"], "port must be 1-65535"),
        (["--listen", "300.1.1.1:9847"], "expected ADDRESS:PORT"),
        (["--listen", "[::1]:99999"], "port must be 1-65535"),
        (["--interval", "0"], "--interval"),
        (["--refresh", "-5"], "--refresh"),
        (["--heal-calm", "-1"], "--heal-calm"),
        (["--target", "10.0.1.50:99999"], "target"),
        (["--textfile", "/nonexistent/dir"], "--textfile /nonexistent/dir: not a directory"),
        (["--snapshot", SNAPSHOT], "--snapshot needs --once"),
        (["--once", "--snapshot", "/nonexistent.json"], "cannot read"),
        (["--netns", "no/such"], "invalid network namespace name"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    args: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["watch", *args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err


def test_a_missing_namespace_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["watch", "--once", "--netns", "mp-watch-no-such-ns"])
    assert code == 2
    assert "not found" in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() == 0, reason="checks the refusal of a non-root user")
def test_watching_needs_root(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["watch", "--listen", "none"])
    assert code == 3
    assert "needs root" in capsys.readouterr().err


def test_once_writes_the_textfile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["watch", "--once", "--snapshot", SNAPSHOT, "--textfile", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 1  # the field report's connector: broken
    assert (tmp_path / "meshpath.prom").read_text() == out
