"""`meshpath fix --mode profile` against the lab's Cloudflare API emulator (in a namespace
made for the test): plan, apply, rollback, rollback on failure, every bad answer a
one-line exit 3 with nothing changed, and the token in no output, journal or log."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from meshpath.cli import main
from meshpath.collect.netns import inside_netns
from meshpath.lab import cfapi
from tests.conftest import ROOT_OK, ROOT_REASON

pytestmark = [pytest.mark.root, pytest.mark.skipif(not ROOT_OK, reason=ROOT_REASON)]

ACCOUNT = "0123456789abcdef0123456789abcdef"
TOKEN = "lab-token-6f1b9c0e7d2a4f58"  # a made-up secret; must never show up anywhere
READ_TOKEN = "lab-read-only-token-0000"
DEFAULT_EXCLUDE = [{"address": a} for a in ("10.0.0.0/8", "100.64.0.0/10", "192.168.0.0/16")]


@dataclass
class Api:
    netns: str
    state: Path
    base: str
    log: list[str]
    stderr: str = ""

    def data(self) -> dict[str, Any]:
        return cfapi.read_state(self.state)

    def exclude(self) -> list[str]:
        return [e["address"] for e in self.data()["profiles"]["default"]["exclude"]]

    def fault(self, fault: object) -> None:
        data = self.data()
        data["fault"] = fault
        cfapi.write_state(self.state, data)


@pytest.fixture
def api(make_netns: Callable[[], str], tmp_path: Path) -> Iterator[Api]:
    """The emulator, bound inside a fresh namespace, served from a thread of this test."""
    ns = make_netns()
    state = tmp_path / "cfapi.json"
    tokens = {TOKEN: "edit", READ_TOKEN: "read"}
    cfapi.write_state(state, cfapi.new_state(ACCOUNT, tokens, list(DEFAULT_EXCLUDE)))
    served: list[str] = []
    with inside_netns(ns):
        server = cfapi.make_server(state, "127.0.0.1", 0, log=served.append)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    try:
        yield Api(ns, state, f"http://127.0.0.1:{port}/client/v4", served)
    finally:
        server.shutdown()
        server.server_close()


def run(
    api: Api,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    *extra: str,
    token: str | None = TOKEN,
) -> tuple[int, str]:
    """Run meshpath in-process; returns (exit code, stdout + stderr)."""
    if token is None:
        monkeypatch.delenv("CLOUDFLARE_API_TOKEN", raising=False)
    else:
        monkeypatch.setenv("CLOUDFLARE_API_TOKEN", token)
    argv = ["fix", "--mode", "profile", "--account-id", ACCOUNT, "--api-base", api.base]
    argv += ["--netns", api.netns, "--root", str(tmp_path / "root"), "--api-timeout", "1"]
    code = main([*argv, *extra])
    out = capsys.readouterr()
    text = out.out + out.err
    api.log.append(text)
    api.stderr = out.err
    return code, text


def journals(tmp_path: Path) -> str:
    root = tmp_path / "root" / "var/lib/meshpath/journals"
    return "".join(p.read_text() for p in sorted(root.glob("*.json"))) if root.exists() else ""


def test_plan_shows_the_diff(
    api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, text = run(api, tmp_path, capsys, monkeypatch)
    assert code == 0
    assert "- 100.64.0.0/10" in text and "+ 100.80.0.0/12" in text and "+ 100.112.0.0/12" in text
    assert "the LAN still needs its way back" in text
    assert api.exclude() == ["10.0.0.0/8", "100.64.0.0/10", "192.168.0.0/16"]  # a plan only


def test_apply_then_rollback_and_the_token_is_nowhere(
    api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, text = run(api, tmp_path, capsys, monkeypatch, "--apply")
    assert code == 0, text
    assert api.exclude() == ["10.0.0.0/8", "100.80.0.0/12", "100.112.0.0/12", "192.168.0.0/16"]
    journal = journals(tmp_path)
    assert '"status": "applied"' in journal and "100.64.0.0/10" in journal  # the old list
    again, text = run(api, tmp_path, capsys, monkeypatch, "--apply")
    assert again == 0 and "nothing to do" in text
    code, text = run(api, tmp_path, capsys, monkeypatch, "--rollback")
    assert code == 0, text
    assert api.exclude() == ["10.0.0.0/8", "100.64.0.0/10", "192.168.0.0/16"]
    everything = "".join(api.log) + journals(tmp_path) + api.state.read_text().replace(TOKEN, "")
    assert TOKEN not in everything


def test_failed_post_check_rolls_the_profile_back(
    api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No WARP runs in this namespace: table 65743 never routes the ranges, so waiting for it
    fails and the list is restored (exit 1, like every failed apply)."""
    code, text = run(api, tmp_path, capsys, monkeypatch, "--apply", "--wait-warp", "0.3")
    assert code == 1 and "rolled back" in text
    assert api.exclude() == ["10.0.0.0/8", "100.64.0.0/10", "192.168.0.0/16"]
    assert '"status": "rolled-back"' in journals(tmp_path)
    assert TOKEN not in "".join(api.log) + journals(tmp_path)


@pytest.mark.parametrize(
    ("fault", "token", "policy", "want"),
    [
        (None, "wrong-token", None, "HTTP 401"),
        (None, READ_TOKEN, None, "HTTP 403"),
        (None, TOKEN, "no-such-profile", "HTTP 404"),
        ({"status": 500}, TOKEN, None, "HTTP 500"),
        ({"status": 503}, TOKEN, None, "HTTP 503"),
        ("malformed", TOKEN, None, "not Cloudflare's API format"),
        ({"hang": 2.5}, TOKEN, None, "no answer within 1s"),
    ],
)
def test_bad_answers_are_one_line_exit_3(
    api: Api,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    fault: object,
    token: str,
    policy: str | None,
    want: str,
) -> None:
    api.fault(fault)
    extra = ["--apply", *(["--policy", policy] if policy else [])]
    code, text = run(api, tmp_path, capsys, monkeypatch, *extra, token=token)
    assert code == 3, text
    lines = [line for line in api.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("meshpath: error: Cloudflare API")
    assert want in lines[0]
    if token != READ_TOKEN:  # refused at the first read: the error is all there is
        assert text.strip() == lines[0]
    assert "Traceback" not in text and TOKEN not in text
    api.fault(None)
    assert api.exclude() == ["10.0.0.0/8", "100.64.0.0/10", "192.168.0.0/16"]
    if token == READ_TOKEN:  # the PUT was attempted: journaled, and its undo recorded
        assert '"status": "rolled-back"' in journals(tmp_path) and "nothing changed" in text
        assert TOKEN not in journals(tmp_path) and READ_TOKEN not in journals(tmp_path)
    else:
        assert journals(tmp_path) == ""


def test_read_only_token_reads_but_cannot_write(
    api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plan (GETs) works with a read token (the PUT's 403 is in the test above)."""
    code, text = run(api, tmp_path, capsys, monkeypatch, token=READ_TOKEN)
    assert code == 0 and "+ 100.80.0.0/12" in text


def test_missing_token_is_exit_3(
    api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, text = run(api, tmp_path, capsys, monkeypatch, token=None)
    assert code == 3 and "CLOUDFLARE_API_TOKEN is not set" in text


def test_bad_account_id_is_exit_2(
    api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    code = main(["fix", "--mode", "profile", "--account-id", "nope", "--netns", api.netns])
    err = capsys.readouterr().err
    assert code == 2 and "--account-id 'nope'" in err
    assert json.loads(api.state.read_text())["fault"] is None
