"""`meshpath fix` through the CLI against a fake kernel and a temp root: the state dir and
the files meshpath touches (issue 10 items 3, 8, 9, 10 and 11).

The CLI's edges are swapped for the test: the :class:`Host` it acts on (runner and
collector) for a :class:`FakeHost`, the post-apply verify for a pass; everything else is real.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path
from typing import Any

import msgspec
import pytest

from meshpath.apply import journal as jr
from meshpath.cli import fix_cmd, main
from meshpath.config import Settings
from meshpath.fix.model import Plan, Step, WaitBgp
from meshpath.fix.plan import expect_for
from meshpath.state import Snapshot, codec
from meshpath.usecase import Host
from meshpath.usecase import fix as use_fix
from meshpath.usecase.host import state_dir_of
from tests.builders import broken_connector
from tests.fake_host import FakeHost

UNIT = "etc/systemd/system/meshpath-routes.service"
WANTS = "etc/systemd/system/sys-subsystem-net-devices-CloudflareWARP.device.wants"


@pytest.fixture
def host(monkeypatch: pytest.MonkeyPatch) -> FakeHost:
    fake = FakeHost()
    use_host(monkeypatch, fake, lambda: fake.snapshot())
    monkeypatch.setattr(use_fix, "post_check", lambda *_a: lambda: (True, "ok"))
    monkeypatch.setattr(fix_cmd, "require_root", lambda _what: None)
    return fake


def use_host(monkeypatch: pytest.MonkeyPatch, fake: FakeHost, collect: Any) -> None:
    """The CLI acts on ``fake``; ``collect`` makes its snapshots."""

    def host_for(netns: str | None, root: Path, state_dir: Path | None) -> Host:
        return Host(
            runner=fake,
            netns=netns,
            root=root,
            state_dir=state_dir_of(root, state_dir),
            collector=lambda _runner, _netns: collect(),
        )

    monkeypatch.setattr(fix_cmd, "host_for", host_for)


def fix(tmp_path: Path, *args: str) -> list[str]:
    return ["--json", "fix", *args, "--root", str(tmp_path / "root"),
            "--state-dir", str(tmp_path / "state")]  # fmt: skip


def run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, Any, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    try:
        data = json.loads(out) if out.strip() else None
    except json.JSONDecodeError:
        data = out
    return code, data, err


def one_line(err: str) -> bool:
    return err.strip().count("\n") == 0 and "Traceback" not in err and err.strip() != ""


# -- item 9: the plan is made under the lock ----------------------------------------------
def test_a_run_starting_while_another_plans_fails_fast_and_nothing_is_applied_twice(
    tmp_path: Path, host: FakeHost, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    second: dict[str, Any] = {}

    def collect() -> Snapshot:
        snap = host.snapshot()  # the host as this run sees it...
        if not second:  # ...while a second run starts before this one applies
            second["started"] = True
            second["code"] = main(fix(tmp_path, "--mode", "nat", "--apply"))
            second["err"] = capsys.readouterr().err
        return snap

    use_host(monkeypatch, host, collect)
    code, data, err = run(capsys, fix(tmp_path, "--mode", "nat", "--apply"))
    assert code == 0 and data["result"]["status"] == "applied", err
    assert second["code"] == 3 and "another meshpath fix is running" in second["err"]
    journals = jr.load_all(tmp_path / "state")
    assert [j.status for j in journals] == ["applied"]
    code, data, _ = run(capsys, fix(tmp_path, "--rollback"))
    assert code == 0 and data["result"]["status"] == "rolled-back"
    assert host.routes == set() and not host.nft_table


def test_a_run_after_another_finished_finds_nothing_to_do(
    tmp_path: Path, host: FakeHost, capsys: Any
) -> None:
    assert run(capsys, fix(tmp_path, "--mode", "nat", "--apply"))[0] == 0
    code, data, _ = run(capsys, fix(tmp_path, "--mode", "nat", "--apply"))
    assert code == 0 and data["result"]["status"] == "nothing-to-do"
    assert len(jr.load_all(tmp_path / "state")) == 1


# -- item 3: an unreadable journal is one line, exit 3 -------------------------------------
def nan_journal(state: Path) -> None:
    """What `--bgp-timeout nan` used to leave: msgspec writes NaN as null."""
    step = Step(
        key="wait:10.0.1.1",
        description="wait",
        action=WaitBgp(peer="10.0.1.1", prefixes=("100.64.0.0/12",), timeout=float("nan")),
        inverse=None,
        check="",
    )
    plan = Plan(mode="bgp", steps=(step,), expect=expect_for("bgp", Settings()))
    jr.write(state, jr.new_journal(state, plan, None, Path("/")))


def write_bad(state: Path, kind: str) -> Path:
    path = state / "journals" / "000001-nat.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    good = msgspec.json.encode({"seq": 1})
    if kind == "nan":
        nan_journal(state)
        return state / "journals" / "000001-bgp.json"
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "symlink":
        path.symlink_to("/etc/hostname")
    else:
        body = {
            "bad-json": b"{not json",
            "truncated": good[:-3],
            "empty": b"",
            "wrong-types": b'{"seq": "one", "mode": 5}',
            "not-utf8": b'{"seq": 1, "mode": "\xff\xfe"}',
        }[kind]
        path.write_bytes(body)
    return path


BAD_JOURNALS = [
    "nan", "bad-json", "truncated", "empty", "wrong-types", "not-utf8",
    "directory", "fifo", "symlink",
]  # fmt: skip


@pytest.mark.parametrize("kind", BAD_JOURNALS)
@pytest.mark.parametrize(
    "argv",
    [
        ["--mode", "nat"],
        ["--mode", "nat", "--apply"],
        ["--rollback"],
        ["--resume"],
    ],
    ids=["plan", "apply", "rollback", "resume"],
)
def test_an_unreadable_journal_is_one_line_naming_it(
    kind: str, argv: list[str], tmp_path: Path, host: FakeHost, capsys: Any
) -> None:
    bad = write_bad(tmp_path / "state", kind)
    code, _, err = run(capsys, fix(tmp_path, *argv))
    assert code == 3 and one_line(err), err
    assert str(bad) in err and "move it out of" in err
    assert host.routes == set() and not host.nft_table


@pytest.mark.parametrize("kind", ["nan", "bad-json", "directory"])
def test_verify_with_an_unreadable_journal_is_one_line(
    kind: str, tmp_path: Path, capsys: Any
) -> None:
    bad = write_bad(tmp_path / "state", kind)
    argv = ["verify", "--root", str(tmp_path / "root"), "--state-dir", str(tmp_path / "state")]
    code, _, err = run(capsys, argv)
    assert code == 3 and one_line(err) and str(bad) in err


def test_a_journal_whose_content_is_another_journal_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "state"
    nan_free = Plan(mode="nat", steps=(), expect=expect_for("nat", Settings()))
    journal = jr.new_journal(state, nan_free, None, Path("/"))
    (state / "journals").mkdir(parents=True)
    (state / "journals" / "000007-nat.json").write_bytes(msgspec.json.encode(journal))
    with pytest.raises(jr.JournalError, match="holds journal #1"):
        jr.load_all(state)


# -- item 8: a state dir that cannot be written --------------------------------------------
def test_a_state_dir_that_cannot_be_made_is_one_line_exit_3(
    tmp_path: Path, host: FakeHost, capsys: Any
) -> None:
    (tmp_path / "state").write_text("a file where the state dir should be\n")
    for argv in (["--mode", "nat", "--apply"], ["--rollback"]):
        code, _, err = run(capsys, fix(tmp_path, *argv))
        assert code == 3 and one_line(err) and "cannot use the state directory" in err
    assert host.routes == set() and not host.nft_table


def test_a_full_disk_mid_apply_is_one_line_exit_3_and_the_host_as_before(
    tmp_path: Path, host: FakeHost, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    real = jr.write
    count = [0]

    def write(state_dir: Path, journal: jr.Journal) -> Path:
        count[0] += 1
        if count[0] >= 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(state_dir, journal)

    monkeypatch.setattr(jr, "write", write)
    code, data, err = run(capsys, fix(tmp_path, "--mode", "nat", "--apply"))
    assert code == 3 and one_line(err), err
    assert "No space left on device" in err and "fix --rollback" in err
    assert data["result"]["status"] == "failed"
    assert host.routes == set() and not host.nft_table


# -- item 10: route-mode rollback puts back exactly what was there ------------------------
def users_files(root: Path) -> None:
    system = root / "etc/systemd/system"
    system.mkdir(parents=True)
    (system / "other.service").write_text("[Service]\nExecStart=/bin/true\n")
    (system / "meshpath-routes.service").symlink_to("/usr/lib/systemd/system/mine.service")


def test_rollback_restores_a_users_symlinked_unit_and_removes_only_new_dirs(
    tmp_path: Path, host: FakeHost, capsys: Any
) -> None:
    root = tmp_path / "root"
    users_files(root)
    code, data, err = run(capsys, fix(tmp_path, "--mode", "route", "--apply"))
    assert code == 0, (data, err)
    assert not (root / UNIT).is_symlink() and "proto 232" in (root / UNIT).read_text()
    assert (root / WANTS / "meshpath-routes.service").is_symlink()
    assert run(capsys, fix(tmp_path, "--rollback"))[0] == 0
    assert os.readlink(root / UNIT) == "/usr/lib/systemd/system/mine.service"
    assert not (root / WANTS).exists()  # made by meshpath: gone
    assert (root / "etc/systemd/system/other.service").exists()  # the user's: kept


def test_rollback_restores_a_users_unit_byte_for_byte_with_its_mode_and_owner(
    tmp_path: Path, host: FakeHost, capsys: Any
) -> None:
    root = tmp_path / "root"
    unit = root / UNIT
    unit.parent.mkdir(parents=True)
    wants = root / WANTS
    wants.mkdir()  # an empty .wants dir the user had: not meshpath's to remove
    original = b"# mine\r\n[Service]\r\nExecStart=/bin/true \xff\xfe\r\n"
    unit.write_bytes(original)
    unit.chmod(0o600)
    as_root = os.geteuid() == 0
    if as_root:
        os.chown(unit, 4321, 4322)
    assert run(capsys, fix(tmp_path, "--mode", "route", "--apply"))[0] == 0
    assert unit.read_bytes() != original
    assert run(capsys, fix(tmp_path, "--rollback"))[0] == 0
    assert unit.read_bytes() == original
    assert stat.S_IMODE(unit.stat().st_mode) == 0o600
    if as_root:
        assert (unit.stat().st_uid, unit.stat().st_gid) == (4321, 4322)
    assert wants.is_dir() and list(wants.iterdir()) == []


def test_a_directory_at_the_unit_path_is_refused_before_anything_changes(
    tmp_path: Path, host: FakeHost, capsys: Any
) -> None:
    (tmp_path / "root" / UNIT).mkdir(parents=True)
    code, _, err = run(capsys, fix(tmp_path, "--mode", "route", "--apply"))
    assert code == 3 and one_line(err) and "not a regular file or a symlink" in err
    assert host.routes == set()


# -- item 11: which .network file gets the drop-in ------------------------------------------
@pytest.fixture
def snap_file(tmp_path: Path) -> Path:
    path = tmp_path / "snap.json"
    codec.save(broken_connector(), path)
    return path


def route_plan(tmp_path: Path, snap_file: Path, capsys: Any) -> dict[str, Any]:
    code, data, err = run(capsys, fix(tmp_path, "--mode", "route", "--snapshot", str(snap_file)))
    assert code == 0 and "Traceback" not in err, err
    plan: dict[str, Any] = data["plan"]
    return plan


def network_dir(tmp_path: Path) -> Path:
    path = tmp_path / "root/etc/systemd/network"
    path.mkdir(parents=True)
    return path


def dropins(plan: dict[str, Any]) -> list[str]:
    return [
        s["action"]["path"] for s in plan["steps"] if ".network.d/" in s["action"].get("path", "")
    ]


def test_a_commented_name_does_not_make_a_network_file_match(
    tmp_path: Path, snap_file: Path, capsys: Any
) -> None:
    net = network_dir(tmp_path)
    (net / "10-lan.network").write_text(
        "# Name=CloudflareWARP\n; Name=CloudflareWARP\n[Match]\nName=eth9\n"
        "[Network]\nDescription=#Name=CloudflareWARP\n"
    )
    plan = route_plan(tmp_path, snap_file, capsys)
    assert dropins(plan) == []
    assert any(s["key"] == f"file:{UNIT}" for s in plan["steps"])


def test_non_files_and_non_utf8_network_files_are_skipped_with_a_note(
    tmp_path: Path, snap_file: Path, capsys: Any
) -> None:
    net = network_dir(tmp_path)
    (net / "10-dir.network").mkdir()
    (net / "20-dangling.network").symlink_to(tmp_path / "nowhere")
    (net / "30-binary.network").write_bytes(b"[Match]\nName=CloudflareWARP\xff\n")
    (net / "40-masked.network").symlink_to("/dev/null")
    (net / "50-warp.network").write_text("[Match]\nName=Cloudflare*   \n")
    plan = route_plan(tmp_path, snap_file, capsys)
    notes = " ".join(plan["notes"])
    for name in ("10-dir", "20-dangling", "30-binary"):
        assert f"{name}.network" in notes
    assert "not UTF-8" in notes and "40-masked" not in notes
    assert dropins(plan) == ["etc/systemd/network/50-warp.network.d/meshpath.conf"]


def test_a_network_file_matching_other_links_too_gets_no_dropin(
    tmp_path: Path, snap_file: Path, capsys: Any
) -> None:
    (network_dir(tmp_path) / "10-all.network").write_text("[Match]\nName=*\n")
    plan = route_plan(tmp_path, snap_file, capsys)
    assert dropins(plan) == [] and "also matches" in " ".join(plan["notes"])


def test_network_files_follow_systemds_directory_order_and_masking(
    tmp_path: Path, snap_file: Path, capsys: Any
) -> None:
    etc = network_dir(tmp_path)
    lib = tmp_path / "root/usr/lib/systemd/network"
    lib.mkdir(parents=True)
    (lib / "10-masked.network").write_text("[Match]\nName=CloudflareWARP\n")
    (etc / "10-masked.network").write_text("")  # an empty file in /etc masks it
    (lib / "20-vendor.network").write_text("[Match]\nName=CloudflareWARP\n")
    (etc / "50-admin.network").write_text("[Match]\nName=CloudflareWARP\n")
    plan = route_plan(tmp_path, snap_file, capsys)
    assert dropins(plan) == ["etc/systemd/network/20-vendor.network.d/meshpath.conf"]


# -- the file edge refuses paths outside the root --------------------------------------------
def test_file_actions_never_leave_the_root(tmp_path: Path) -> None:
    from meshpath.apply import files
    from meshpath.fix.model import RemoveFile, WriteFile

    root = tmp_path / "root"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("x")
    root.mkdir()
    (root / "etc").symlink_to(outside)
    with pytest.raises(files.FileRefused):
        files.write(root, WriteFile(path="etc/keep", content="y"))
    with pytest.raises(files.FileRefused):
        files.remove(root, RemoveFile(path="../outside/keep"))
    with pytest.raises(files.FileRefused):
        files.remove(root, RemoveFile(path="usr/x", dirs=("var",)))
    assert (outside / "keep").read_text() == "x"
