"""`meshpath lab up SCENARIO --worker DIR`: a user's own Worker against the lab's Mesh.

tests/data/user_worker is a small Worker as a user writes it: JSONC with comments and
trailing commas, its own binding names (two of them), vars, and a helper module that gets
the binding handed in. In `broken` it sees the thrown `Error: handshake timeout`; after
the bgp fix it gets the service's answer with the real source address.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshpath.cli import main
from meshpath.lab import remove_lab
from meshpath.lab.topology import WORKER_SOURCE
from tests.conftest import needs_root

pytestmark = [needs_root, pytest.mark.lab, pytest.mark.root]

USER_WORKER = Path(__file__).resolve().parents[1] / "data" / "user_worker"


@pytest.fixture
def instance() -> Iterator[str]:
    name = f"u{os.getpid() % 10_000_000}"
    yield name
    remove_lab(name)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, object]]:
    code = main(["--json", *args])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


def test_user_worker_broken_then_bgp(instance: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, up = cli(capsys, "lab", "up", "broken", "-i", instance, "--worker", str(USER_WORKER))
    assert code == 0
    worker = up["worker"]
    assert isinstance(worker, dict) and worker["url"] == "http://127.0.0.1:8788/"
    assert "orders-api" in str(worker["worker"])

    code, got = cli(capsys, "lab", "call", "-i", instance, "/orders/7")
    assert code == 1
    assert (got["status"], got["body"]) == (500, "upstream error: Error: handshake timeout")
    assert got["log"] == ["orders-api: /orders/7 failed: Error: handshake timeout"]
    # the lab's own Worker runs beside it, untouched
    code, got = cli(capsys, "lab", "call", "-i", instance, "--lab-worker", "/health")
    assert (code, got["status"], got["body"]) == (0, 200, "ok")
    assert main(["lab", "down", "-i", instance]) == 0
    capsys.readouterr()

    code, _ = cli(capsys, "lab", "up", "bgp", "-i", instance, "--worker", str(USER_WORKER))
    assert code == 0
    for path in ("/orders/7", "/backup/orders/7"):  # through each of the two bindings
        code, got = cli(capsys, "lab", "call", "-i", instance, path)
        assert (code, got["status"], got["log"]) == (0, 200, [])
        seen = json.loads(str(got["body"]))
        assert seen["client"] == WORKER_SOURCE and seen["path"] == path


def test_what_the_lab_cannot_run_is_refused_before_building(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "wrangler.toml").write_text(
        'name = "w"\nmain = "index.js"\n[[kv_namespaces]]\nbinding = "CACHE"\nid = "1"\n'
    )
    (tmp_path / "index.js").write_text("export default {};\n")
    assert main(["lab", "up", "broken", "--worker", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "kv_namespaces[0] (CACHE): the lab cannot provide" in err
    assert err.count("\n") == 1
