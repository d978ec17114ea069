"""`meshpath trace --live` in a real connector namespace while a request fails or works."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from meshpath.cli import main
from tests.conftest import needs_root
from tests.trace_netlab import NetLab, wait_for

pytestmark = [needs_root, pytest.mark.root]


def live_trace(lab: NetLab, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:
    path = tmp_path / "live.pcap"
    codes: list[int] = []
    argv = ["--json", "trace", "--live", "--netns", lab.conn, "--duration", "3.5",
            "--write", str(path), "--target", "10.0.1.50:3000"]  # fmt: skip
    worker = threading.Thread(target=lambda: codes.append(main(argv)))
    worker.start()
    try:
        wait_for(lambda: path.exists() and path.stat().st_size >= 24, "tcpdump to start")
        lab.request(timeout=1.6)
    finally:
        worker.join(timeout=30)
    assert codes, "meshpath trace --live did not finish"
    return codes[0], json.loads(capsys.readouterr().out)


def test_live_capture_names_the_misrouted_reply(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with NetLab("broken", tag=f"live{id(tmp_path) % 10000}") as lab:
        code, data = live_trace(lab, tmp_path, capsys)
    assert code == 1
    (flow,) = data["flows"]
    assert flow["verdict"] == "return-misrouted"
    assert (flow["tunnel_interface"], flow["reply_interface"]) == ("CloudflareWARP", "eth0")
    assert (
        flow["evidence"][0]
        .split(" ", 1)[1]
        .startswith("CloudflareWARP In  IP 100.64.12.189.9025 > 10.0.1.50.3000: Flags [S], seq ")
    )


def test_live_capture_ok_with_nat(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with NetLab("nat", tag=f"live{id(tmp_path) % 10000}") as lab:
        code, data = live_trace(lab, tmp_path, capsys)
    assert code == 0
    (flow,) = data["flows"]
    assert flow["verdict"] == "ok" and flow["nat"]
    assert flow["service_saw"].startswith("10.0.1.2:")
