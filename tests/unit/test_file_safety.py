"""Files users name and files in the state dir (issue #10, items 7, 13, 15, 17).

Writes never follow a symlink, never replace a device, FIFO or directory, and keep the
mode of what they replace; reads are bounded and never block on a FIFO; a namespace name
is checked before it becomes a path. Everything aims at tmp_path.
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshpath.apply import Applier, locked
from meshpath.apply import journal as jr
from meshpath.cli import main
from meshpath.errors import EnvironmentProblem, MeshpathError
from meshpath.fix.model import Expect, NftFile, Plan, Run, Step
from meshpath.runner import RecordedRunner

SNAPSHOT = Path(__file__).parent.parent / "data" / "snapshots" / "broken.json"
EXPECT = Expect(tunnel="CloudflareWARP", ranges=("100.64.0.0/12",), route_proto=232, nat=None)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err.strip()


def one_line(err: str) -> bool:
    return bool(err) and "\n" not in err and "Traceback" not in err


@pytest.fixture
def victim(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "victim"
    path.write_text("keep me")
    yield path
    assert path.read_text() == "keep me", "a write went through a symlink"


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[Path]:
    """A FIFO nobody writes to. Code that opens it for reading blocks: a helper thread
    then opens and closes the write end, so such code ends (and the test fails on what it
    says) instead of hanging the suite."""
    path = tmp_path / "fifo"
    os.mkfifo(path)
    stop = threading.Event()

    def unblock() -> None:
        while not stop.wait(0.2):
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                continue  # ENXIO: no reader, nothing blocked
            os.close(fd)

    helper = threading.Thread(target=unblock, daemon=True)
    helper.start()
    yield path
    stop.set()
    helper.join()


# -- snapshot -o (items 7 and 17) -------------------------------------------------------
def test_snapshot_output_empty_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(capsys, "snapshot", "--input", str(SNAPSHOT), "-o", "")
    assert code == 2 and one_line(err) and "cannot write snapshot" in err


def test_snapshot_output_through_a_symlink_is_refused(
    tmp_path: Path, victim: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    link = tmp_path / "out.json"
    link.symlink_to(victim)
    code, err = run(capsys, "snapshot", "--input", str(SNAPSHOT), "-o", str(link))
    assert code == 2 and one_line(err) and "symbolic link" in err
    assert link.is_symlink()


def test_snapshot_output_to_a_fifo_or_directory_is_refused(
    tmp_path: Path, fifo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run(capsys, "snapshot", "--input", str(SNAPSHOT), "-o", str(fifo))
    assert code == 2 and one_line(err) and "FIFO" in err
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)  # not replaced by a regular file
    (tmp_path / "dir").mkdir()
    code, err = run(capsys, "snapshot", "--input", str(SNAPSHOT), "-o", str(tmp_path / "dir"))
    assert code == 2 and one_line(err) and "directory" in err


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")
def test_snapshot_output_to_a_device_does_not_replace_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dev = tmp_path / "full"
    os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(1, 7))  # a /dev/full inside tmp_path
    code, err = run(capsys, "snapshot", "--input", str(SNAPSHOT), "-o", str(dev))
    assert code == 2 and one_line(err) and "character device" in err
    assert stat.S_ISCHR(os.lstat(dev).st_mode)


def test_snapshot_output_ignores_a_planted_temp_link_and_keeps_the_mode(
    tmp_path: Path, victim: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.json"
    out.write_text("old")
    out.chmod(0o600)
    (tmp_path / ".out.json.tmp").symlink_to(victim)  # the old fixed temp name
    code, _ = run(capsys, "snapshot", "--input", str(SNAPSHOT), "-o", str(out))
    assert code == 0
    assert out.read_text().startswith("{") and stat.S_IMODE(out.stat().st_mode) == 0o600


# -- the state dir (item 7) -------------------------------------------------------------
def _journal(state: Path) -> jr.Journal:
    step = Step(key="a", description="do a", action=Run(argv=("do", "a")), inverse=None, check="-")
    return jr.new_journal(state, Plan(mode="route", steps=(step,), expect=EXPECT), None, Path("/"))


def test_journal_write_ignores_a_planted_temp_link(tmp_path: Path, victim: Path) -> None:
    state = tmp_path / "state"
    (state / "journals").mkdir(parents=True)
    (state / "journals" / "000001-route.tmp").symlink_to(victim)  # the old fixed temp name
    path = jr.write(state, _journal(state))
    assert path.name == "000001-route.json" and jr.latest(state) is not None
    assert (state / "journals" / "000001-route.tmp").is_symlink()


def test_journal_dir_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    state = tmp_path / "state"
    state.mkdir()
    (state / "journals").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises((OSError, MeshpathError), match="symbolic link"):
        jr.write(state, _journal(state))
    assert list(elsewhere.iterdir()) == []


def test_the_lock_is_never_opened_through_a_symlink(tmp_path: Path, victim: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "lock").symlink_to(victim)  # locking used to truncate it and write a pid
    with pytest.raises(EnvironmentProblem, match="lock .*symbolic link") as info, locked(state):
        pass
    assert "\n" not in str(info.value)


def test_the_lock_must_be_a_regular_file(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    os.mkfifo(state / "lock")
    with pytest.raises(EnvironmentProblem, match="FIFO"), locked(state):
        pass


def test_nft_scratch_files_are_never_written_through_a_symlink(
    tmp_path: Path, victim: Path
) -> None:
    state = tmp_path / "state"
    (state / "work").mkdir(parents=True)
    (state / "work" / "000001-check.nft").symlink_to(victim)
    step = Step(
        key="nat",
        description="nat table",
        action=NftFile(text="table inet meshpath {}\n"),
        inverse=NftFile(text="delete table inet meshpath\n"),
        check="missing",
    )
    runner = RecordedRunner()
    result = Applier(runner, state).apply(Plan(mode="nat", steps=(step,), expect=EXPECT))
    assert result.status == "failed" and "symbolic link" in (result.error or "")
    assert (state / "work" / "000001-check.nft").is_symlink()
    assert runner.calls == []  # refused before nft ever ran


# -- bounded reads that never block (item 13) -------------------------------------------
@pytest.mark.parametrize(
    "argv",
    [
        ["doctor", "--snapshot", "FILE"],
        ["--config", "FILE", "ranges"],
        ["trace", "FILE"],
        ["route", "get", "10.0.1.50", "--snapshot", "FILE"],
        ["snapshot", "--input", "FILE"],
    ],
)
def test_a_fifo_where_a_file_is_expected_is_refused_at_once(
    argv: list[str], fifo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    start = time.monotonic()
    code, err = run(capsys, *[str(fifo) if a == "FILE" else a for a in argv])
    assert time.monotonic() - start < 2.0
    assert code == 2 and one_line(err) and "FIFO" in err and str(fifo) in err


@pytest.mark.parametrize(
    "argv",
    [
        ["doctor", "--snapshot", "/dev/null"],
        ["--config", "/dev/null", "ranges"],
        ["trace", "/dev/null"],
    ],
)
def test_a_device_where_a_file_is_expected_is_refused(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # /dev/null, not /dev/zero: reading it is harmless even for code that reads everything.
    code, err = run(capsys, *argv)
    assert code == 2 and one_line(err) and "character device" in err


def test_a_snapshot_above_the_limit_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("meshpath.state.codec.SNAPSHOT_LIMIT", 1000)
    big = tmp_path / "big.json"
    shutil.copy(SNAPSHOT, big)
    code, err = run(capsys, "doctor", "--snapshot", str(big))
    assert code == 2 and one_line(err) and "larger than the limit of 1000 bytes" in err


def test_the_snapshot_limit_fits_a_million_route_snapshot_twice() -> None:
    """Measured, not assumed: what `snapshot -o` writes per route, times a million."""
    import msgspec

    from meshpath.state import codec
    from meshpath.state.model import Route

    snap = codec.load(SNAPSHOT)
    routes = tuple(
        Route(table=254, family=4, dst=f"{10 + i // 65536}.{i // 256 % 256}.{i % 256}.0/24",
              gateway="10.0.1.3", dev="eth0", metric=20, protocol=186)
        for i in range(10_000)
    )  # fmt: skip
    base = len(codec.dumps(snap, indent=2))
    grown = len(codec.dumps(msgspec.structs.replace(snap, routes=snap.routes + routes), indent=2))
    per_route = (grown - base) / len(routes)
    assert 250 < per_route < 400  # ~305 MiB for 1M routes
    assert 2 * (base + 1_000_000 * per_route) < codec.SNAPSHOT_LIMIT


def test_a_config_above_the_limit_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("meshpath.config.CONFIG_LIMIT", 100)
    conf = tmp_path / "big.toml"
    conf.write_text("# " + "x" * 200 + "\n")
    code, err = run(capsys, "--config", str(conf), "ranges")
    assert code == 2 and one_line(err) and "larger than the limit of 100 bytes" in err


def test_trace_stdin_is_read_bounded(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("meshpath.trace.files.STDIN_LIMIT", 1000)
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"\0" * 5000)))
    code, err = run(capsys, "trace", "-")
    assert code == 2 and one_line(err) and "<stdin>: larger than the limit" in err


# -- --netns names (item 15) ------------------------------------------------------------
NETNS_HOSTILE = ["a" * 300, "a" * 256, "é" * 128, "x\0y", "a/b", "..", ".", ""]
_NETNS_REQUIRED = {
    ("flow",): ["10.0.1.50:3000"],
    ("route", "get"): ["10.0.1.50"],
    ("trace",): ["FILE"],
    ("fix",): ["--mode", "nat"],
    ("verify",): ["--mode", "nat"],
}


def _netns_commands() -> list[tuple[str, ...]]:
    import click
    import typer

    from meshpath.cli import app

    found: list[tuple[str, ...]] = []

    def walk(cmd: click.Command, path: tuple[str, ...]) -> None:
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                walk(sub, (*path, name))
        elif any("--netns" in p.opts for p in cmd.params):
            found.append(path)

    walk(typer.main.get_command(app), ())
    return found


def test_the_netns_sweep_finds_every_command() -> None:
    assert set(_netns_commands()) == {
        ("snapshot",), ("trace",), ("flow",), ("doctor",), ("fix",), ("verify",),
        ("route", "get"), ("watch",), ("fleet", "facts"),
    }  # fmt: skip


@pytest.mark.parametrize("path", _netns_commands())
def test_every_netns_option_refuses_names_ip_netns_cannot_have(
    path: tuple[str, ...], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capture = tmp_path / "x.pcap"
    capture.write_bytes(b"")
    extra = [str(capture) if a == "FILE" else a for a in _NETNS_REQUIRED.get(path, [])]
    for name in NETNS_HOSTILE:
        code, err = run(capsys, *path, *extra, "--netns", name)
        assert code == 2, (path, name, err)
        assert one_line(err) and "invalid network namespace name" in err, (path, name, err)


def test_a_255_byte_netns_name_is_valid_and_simply_not_found(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, err = run(capsys, "doctor", "--netns", "m" * 255)
    assert code == 2 and one_line(err) and "not found" in err
