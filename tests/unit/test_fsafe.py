"""meshpath.fsafe: bounded reads, atomic writes and confined removal, all inside tmp_path."""

from __future__ import annotations

import errno
import io
import os
import resource
import shutil
import stat
import time
from pathlib import Path

import pytest

from meshpath import fsafe


def _victim(tmp_path: Path) -> Path:
    """A directory outside every root under test, holding a file: must survive."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious").write_text("keep me")
    return victim


def _intact(victim: Path) -> bool:
    return (victim / "precious").read_text() == "keep me"


# -- names ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("", "empty"),
        (".", "'.'"),
        ("..", "'..'"),
        ("a/b", "'/'"),
        ("a\0b", "NUL"),
        ("a" * 256, "255 bytes"),
        ("é" * 128, "255 bytes"),  # 128 characters, 256 bytes
    ],
)
def test_component_problem_names_what_is_wrong(name: str, why: str) -> None:
    problem = fsafe.component_problem(name)
    assert problem is not None and why in problem


@pytest.mark.parametrize("name", ["a", "a" * 255, "mplab-ab12-conn", "-x", "a b", "é" * 127])
def test_component_problem_accepts_one_component(name: str) -> None:
    assert fsafe.component_problem(name) is None


# -- atomic_write ---------------------------------------------------------------------
def test_atomic_write_creates_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    fsafe.atomic_write(target, b"one")
    fsafe.atomic_write(target, b"two")
    assert target.read_bytes() == b"two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]  # no temp left


def test_atomic_write_keeps_the_mode_of_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_bytes(b"old")
    target.chmod(0o600)
    fsafe.atomic_write(target, b"new")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600 and target.read_bytes() == b"new"


def test_atomic_write_sets_an_explicit_mode_exactly(tmp_path: Path) -> None:
    target = tmp_path / "zebra.conf"
    old = os.umask(0o077)
    try:
        fsafe.atomic_write(target, b"x", mode=0o644)  # FRR (another user) must read it
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_atomic_write_refuses_a_symlink_target(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    link = tmp_path / "out.json"
    link.symlink_to(victim)
    with pytest.raises(OSError, match="symbolic link") as info:
        fsafe.atomic_write(link, b"overwritten")
    assert info.value.errno == errno.ELOOP
    assert link.is_symlink() and victim.read_text() == "keep me"


def test_atomic_write_refuses_fifo_and_directory(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="is a FIFO"):
        fsafe.atomic_write(fifo, b"x")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    (tmp_path / "d").mkdir()
    with pytest.raises(OSError, match="is a directory"):
        fsafe.atomic_write(tmp_path / "d", b"x")
    for name in ("", ".", ".."):
        with pytest.raises(OSError, match="directory"):
            fsafe.atomic_write(tmp_path / name, b"x")


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")
def test_atomic_write_does_not_replace_a_device(tmp_path: Path) -> None:
    dev = tmp_path / "full"
    os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(1, 7))  # what /dev/full is
    with pytest.raises(OSError, match="character device"):
        fsafe.atomic_write(dev, b"x")
    assert stat.S_ISCHR(os.lstat(dev).st_mode)


def test_atomic_write_ignores_planted_temp_names(tmp_path: Path) -> None:
    """Whatever a temp file might be called, a link planted there is never written through:
    the temp name is random and opened with O_EXCL|O_NOFOLLOW."""
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    for name in (".out.json.tmp", "out.tmp", ".out.json.meshpath-tmp"):
        (tmp_path / name).symlink_to(victim)
    fsafe.atomic_write(tmp_path / "out.json", b"data")
    assert victim.read_text() == "keep me"
    assert (tmp_path / "out.json").read_bytes() == b"data"


def test_atomic_write_failure_leaves_target_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.json"
    target.write_bytes(b"old")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fsafe.os, "fsync", full)
    with pytest.raises(OSError, match="No space"):
        fsafe.atomic_write(target, b"new")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


# -- reading --------------------------------------------------------------------------
def test_read_bounded_reads_a_file_and_refuses_above_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 10)
    assert fsafe.read_bounded(path, 10) == b"x" * 10
    with pytest.raises(OSError, match="larger than the limit of 9 bytes") as info:
        fsafe.read_bounded(path, 9)
    assert info.value.errno == errno.EFBIG


def test_read_bounded_refuses_a_fifo_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    start = time.monotonic()
    with pytest.raises(OSError, match="is a FIFO"):
        fsafe.read_bounded(fifo, 100)
    assert time.monotonic() - start < 1.0


def test_read_bounded_refuses_devices_and_directories(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="character device"):
        fsafe.read_bounded(Path("/dev/null"), 100)
    with pytest.raises(OSError, match="is a directory"):
        fsafe.read_bounded(tmp_path, 100)


def test_read_bounded_follows_or_refuses_links(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.write_bytes(b"data")
    link = tmp_path / "link"
    link.symlink_to(real)
    assert fsafe.read_bounded(link, 10) == b"data"
    with pytest.raises(OSError, match="symbolic link"):
        fsafe.read_bounded(link, 10, follow=False)


def test_read_stream_is_bounded() -> None:
    assert fsafe.read_stream(io.BytesIO(b"abc"), 3) == b"abc"
    with pytest.raises(OSError, match="larger than the limit of 3 bytes"):
        fsafe.read_stream(io.BytesIO(b"abcd"), 3)


def test_open_regular_creates_but_never_through_a_link(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    lock = tmp_path / "lock"
    lock.symlink_to(victim)
    with pytest.raises(OSError, match="symbolic link"):
        fsafe.open_regular(lock, os.O_RDWR | os.O_CREAT, follow=False)
    fresh = tmp_path / "fresh"
    os.close(fsafe.open_regular(fresh, os.O_RDWR | os.O_CREAT, follow=False))
    assert fresh.is_file() and victim.read_text() == "keep me"


# -- ensure_dir -----------------------------------------------------------------------
def test_ensure_dir_makes_parents_and_refuses_links(tmp_path: Path) -> None:
    made = tmp_path / "a" / "b"
    fsafe.ensure_dir(made, 0o700)
    assert stat.S_IMODE(made.stat().st_mode) == 0o700
    victim = _victim(tmp_path)
    victim.chmod(0o755)
    link = tmp_path / "work"
    link.symlink_to(victim, target_is_directory=True)
    with pytest.raises(OSError, match="symbolic link"):
        fsafe.ensure_dir(link, 0o700)
    assert stat.S_IMODE(victim.stat().st_mode) == 0o755  # no chmod through the link
    (tmp_path / "file").write_text("")
    with pytest.raises(OSError, match="is a regular file, not a directory"):
        fsafe.ensure_dir(tmp_path / "file", 0o700)


# -- remove_inside / clear_inside -----------------------------------------------------
# Never "/" itself: should the check regress, a test must not be able to harm the host.
@pytest.mark.parametrize("name", ["..", ".", "", "../victim", "a/../../victim", "x\0y", "a" * 300])
def test_remove_inside_refuses_names_that_are_not_one_component(tmp_path: Path, name: str) -> None:
    victim = _victim(tmp_path)
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(OSError, match="not a single file name"):
        fsafe.remove_inside(root, name)
    assert _intact(victim) and root.is_dir()


def test_remove_inside_refuses_an_absolute_path_as_a_name(tmp_path: Path) -> None:
    victim = _victim(tmp_path)
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(OSError, match="'/'"):
        fsafe.remove_inside(root, str(victim))
    assert _intact(victim)


def test_remove_inside_removes_trees_and_files(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "lab" / "sub").mkdir(parents=True)
    (root / "lab" / "sub" / "f").write_text("x")
    (root / "file").write_text("x")
    assert fsafe.remove_inside(root, "lab") and fsafe.remove_inside(root, "file")
    assert list(root.iterdir()) == []
    assert not fsafe.remove_inside(root, "lab")  # gone: nothing to do
    assert not fsafe.remove_inside(tmp_path / "missing", "lab")


def test_remove_inside_refuses_a_symlinked_entry(tmp_path: Path) -> None:
    victim = _victim(tmp_path)
    root = tmp_path / "root"
    root.mkdir()
    (root / "ab12").symlink_to(victim, target_is_directory=True)
    with pytest.raises(OSError, match="symbolic link"):
        fsafe.remove_inside(root, "ab12")
    assert _intact(victim) and (root / "ab12").is_symlink()


def test_remove_inside_refuses_a_symlinked_root_and_intermediate(tmp_path: Path) -> None:
    victim = _victim(tmp_path)
    link_root = tmp_path / "run"
    link_root.symlink_to(victim, target_is_directory=True)
    with pytest.raises(OSError, match="symbolic link"):
        fsafe.remove_inside(link_root, "precious")
    root = tmp_path / "root"
    root.mkdir()
    (root / "lab").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(OSError, match="symbolic link"):
        fsafe.remove_inside(root, "lab", "victim")
    assert _intact(victim)


def test_remove_inside_does_not_follow_links_inside_the_tree(tmp_path: Path) -> None:
    victim = _victim(tmp_path)
    root = tmp_path / "root"
    (root / "lab").mkdir(parents=True)
    (root / "lab" / "escape").symlink_to(victim, target_is_directory=True)
    assert fsafe.remove_inside(root, "lab")
    assert _intact(victim) and not (root / "lab").exists()


def test_clear_inside_keeps_named_entries(tmp_path: Path) -> None:
    victim = _victim(tmp_path)
    root = tmp_path / "root"
    lab = root / "ab12"
    (lab / "frr").mkdir(parents=True)
    (lab / "state.json").write_text("{}")
    (lab / "service.log").write_text("x")
    fsafe.clear_inside(root, "ab12", keep=("state.json",))
    assert [p.name for p in lab.iterdir()] == ["state.json"]
    (lab / "planted").symlink_to(victim, target_is_directory=True)
    with pytest.raises(OSError, match="symbolic link"):
        fsafe.clear_inside(root, "ab12", keep=("state.json",))
    assert _intact(victim)
    fsafe.clear_inside(root, "missing")  # nothing there: nothing to do


def test_reads_do_not_allocate_the_whole_limit(tmp_path: Path) -> None:
    # read(limit + 1) asked for 1 GiB per snapshot load: MemoryError under `ulimit -v`
    # (found by tests/unit/test_fuzz_cli.py, which bounds each case's memory).
    path = tmp_path / "small"
    path.write_bytes(b"x" * 1000)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    used = int(Path("/proc/self/statm").read_text().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (used + (256 << 20), hard))
    try:
        assert fsafe.read_bounded(path, 1 << 30) == b"x" * 1000
        with path.open("rb") as fh:
            assert fsafe.read_stream(fh, 1 << 30) == b"x" * 1000
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def test_read_stream_stops_past_the_limit_in_chunks() -> None:
    stream = io.BytesIO(b"y" * (3 << 20))
    with pytest.raises(OSError, match="larger than the limit"):
        fsafe.read_stream(stream, (2 << 20) + 5)
    assert fsafe.read_stream(io.BytesIO(b"y" * (3 << 20)), 3 << 20) == b"y" * (3 << 20)


def test_remove_inside_retries_a_tree_a_writer_refilled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A daemon killed a moment before teardown renamed one more file into a directory
    # rmtree had emptied: ENOTEMPTY once, then the tree goes; a lasting ENOTEMPTY is raised.
    tree = tmp_path / "run" / "warp.json.d"
    tree.mkdir(parents=True)
    (tree / "status").write_text("x")
    real = shutil.rmtree
    calls: list[str] = []

    def refilled_once(path: str, *args: object, **kwargs: object) -> None:
        calls.append(path)
        if len(calls) == 1:
            raise OSError(errno.ENOTEMPTY, "Directory not empty", path)
        real(path, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(shutil, "rmtree", refilled_once)
    assert fsafe.remove_inside(tmp_path, "run", "warp.json.d")
    assert not tree.exists() and len(calls) == 2

    tree.mkdir()
    monkeypatch.setattr(
        shutil, "rmtree", lambda p, *a, **k: (_ for _ in ()).throw(OSError(errno.ENOTEMPTY, "x"))
    )
    with pytest.raises(OSError):
        fsafe.remove_inside(tmp_path, "run", "warp.json.d")
