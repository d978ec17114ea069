"""`meshpath snapshot` error paths and --input, without touching the kernel."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meshpath.cli import main
from meshpath.collect import collect_snapshot
from meshpath.collect import netns as netns_mod
from meshpath.errors import NetnsError, PrivilegeError
from meshpath.state import codec
from tests.builders import broken_connector


def test_malformed_snapshot_is_exit_2_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schema_version": 1, "taken_at": "x", "links": 3}))
    assert main(["snapshot", "--input", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(bad) in err and "Traceback" not in err


def test_not_json_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    assert main(["snapshot", "--input", str(bad)]) == 2
    assert "not valid JSON" in capsys.readouterr().err


def test_input_reemits_json_unchanged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    snap = broken_connector()
    path = tmp_path / "conn.json"
    codec.save(snap, path)
    assert main(["--json", "snapshot", "--input", str(path)]) == 0
    assert codec.loads(capsys.readouterr().out) == snap


def test_input_prints_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "conn.json"
    codec.save(broken_connector(), path)
    assert main(["snapshot", "--input", str(path)]) == 0
    out = capsys.readouterr().out
    assert "CloudflareWARP(tun,UP)" in out and "table 65743: 4" in out


def test_missing_netns_is_bad_input_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["snapshot", "--netns", "mp-no-such-ns"]) == 2
    err = capsys.readouterr().err.strip()
    assert "'mp-no-such-ns' not found" in err and err.count("\n") == 0


def test_bad_netns_name() -> None:
    with pytest.raises(NetnsError, match="invalid network namespace name"):
        collect_snapshot(netns="../etc")


def test_not_root_in_a_netns_is_privilege_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "conn").touch()
    monkeypatch.setattr(netns_mod, "NETNS_DIR", tmp_path)
    monkeypatch.setattr(netns_mod.os, "geteuid", lambda: 1000)
    with pytest.raises(PrivilegeError, match="'conn' needs root"):
        collect_snapshot(netns="conn")
