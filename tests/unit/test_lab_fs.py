"""Lab instance names never become paths outside the lab (issue #10, item 1 and 15).

Everything aims at tmp_path: the lab's run root is ``tmp_path/d1/d2/run`` (so even
``../..`` stays inside tmp_path) and a ``victim`` directory in tmp_path must survive every
call. No name here is ``/`` or otherwise points outside tmp_path, so a regression fails
these tests without harming the machine. Namespace work (``ip netns``, killing
processes) is stubbed out, so these run without root and touch nothing on the host.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import typer

from meshpath.errors import BadInputError, EnvironmentProblem
from meshpath.lab import Lab, clean_leftovers, remove_lab
from meshpath.lab import core as lab_core
from meshpath.lab import procs as lab_procs

HOSTILE = [
    "../..",
    "..",
    ".",
    "",
    "../../../victim",
    "a/b",
    "x\0y",
    "a" * 300,
    "ABCD",
    "ab-cd",
    "abc\n",
    " ab1",
]


class Calls:
    """Records what would have reached the kernel (namespaces, processes)."""

    def __init__(self) -> None:
        self.killed: list[list[str]] = []
        self.deleted: list[list[str]] = []


class FakeRunner:
    """Stands in for the lab's SubprocessRunner: records argv, runs nothing."""

    def __init__(self) -> None:
        self.ran: list[list[str]] = []

    def run(self, argv: list[str], **kwargs: object) -> None:
        self.ran.append(list(argv))


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Calls:
    """No namespace exists and none is touched; preflight would fail the test if reached."""
    seen = Calls()

    def preflight() -> None:
        raise AssertionError("reached preflight: the bad name was not refused first")

    monkeypatch.setattr(lab_core, "preflight", preflight)
    monkeypatch.setattr("meshpath.cli.lab_cmd.preflight", preflight)
    monkeypatch.setattr(lab_core, "lab_namespaces", lambda instance=None: [])
    monkeypatch.setattr(lab_core, "kill_in_namespaces", lambda ns, *a: seen.killed.append(ns))
    monkeypatch.setattr(lab_core, "delete_namespaces", lambda ns: seen.deleted.append(list(ns)))
    return seen


@pytest.fixture
def victim(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "victim"
    path.mkdir()
    (path / "precious").write_text("keep me")
    (path / "state.json").write_text("{}")  # looks like a lab to a careless glob
    yield path
    assert (path / "precious").read_text() == "keep me", "a file outside the run root went"


@pytest.fixture
def run_root(tmp_path: Path) -> Path:
    root = tmp_path / "d1" / "d2" / "run"
    root.mkdir(mode=0o755, parents=True)
    return root


def _state(run_root: Path, instance: str, **fields: Any) -> None:
    (run_root / instance).mkdir()
    data = {"instance": instance, "run_dir": str(run_root / instance), **fields}
    (run_root / instance / "state.json").write_text(json.dumps(data))


# -- the library ------------------------------------------------------------------------
@pytest.mark.parametrize("name", HOSTILE)
def test_remove_lab_refuses_a_bad_instance_and_removes_nothing(
    name: str, calls: Calls, victim: Path, run_root: Path
) -> None:
    with pytest.raises(BadInputError, match="must be 1-8 characters"):
        remove_lab(name, run_root)
    assert calls.killed == [] and calls.deleted == []


def test_remove_lab_refuses_an_absolute_path(calls: Calls, victim: Path, run_root: Path) -> None:
    with pytest.raises(BadInputError, match="must be 1-8 characters"):
        remove_lab(str(victim), run_root)


@pytest.mark.parametrize("name", HOSTILE)
def test_every_lab_entry_point_refuses_a_bad_instance(
    name: str, calls: Calls, victim: Path, run_root: Path
) -> None:
    for make in (
        lambda: Lab(name, run_root),
        lambda: Lab.create(name, run_root=run_root),
        lambda: Lab.attach(name, run_root=run_root),
    ):
        with pytest.raises(BadInputError, match="must be 1-8 characters"):
            make()


def test_a_symlinked_instance_dir_is_refused_not_followed(
    calls: Calls, victim: Path, run_root: Path
) -> None:
    (run_root / "ab12").symlink_to(victim, target_is_directory=True)
    with pytest.raises(EnvironmentProblem, match="symbolic link") as info:
        remove_lab("ab12", run_root)
    assert info.value.exit_code == 3 and "\n" not in str(info.value)
    lab = Lab("ab12", run_root)
    with pytest.raises(EnvironmentProblem, match="symbolic link"):
        lab.down()  # used to empty the link's target, keeping only its state.json
    assert (run_root / "ab12").is_symlink()


def test_a_symlinked_run_root_is_refused(calls: Calls, victim: Path, tmp_path: Path) -> None:
    _state(victim, "ab12")
    link = tmp_path / "linked-run"
    link.symlink_to(victim, target_is_directory=True)
    for call in (
        lambda: remove_lab("ab12", link),
        lambda: clean_leftovers(link, everything=True),
        lambda: Lab("ab12", link).down(),
    ):
        with pytest.raises(EnvironmentProblem, match="is a symbolic link"):
            call()
    assert (victim / "ab12" / "state.json").exists()


def test_a_run_root_others_can_write_is_refused(calls: Calls, run_root: Path) -> None:
    _state(run_root, "ab12")
    run_root.chmod(0o777)
    with pytest.raises(EnvironmentProblem, match="writable by other users"):
        remove_lab("ab12", run_root)
    assert (run_root / "ab12").is_dir()


def test_leftovers_never_include_names_that_are_not_instances(
    monkeypatch: pytest.MonkeyPatch, calls: Calls, victim: Path, run_root: Path, tmp_path: Path
) -> None:
    """`ip netns add mplab-..-conn` is allowed to anyone with CAP_SYS_ADMIN; a lab down
    used to turn it into rmtree(run_root/..)."""
    monkeypatch.setattr(
        lab_core, "lab_namespaces", lambda instance=None: ["mplab-..-conn", "mplab--conn"]
    )
    _state(run_root, "ABCD")
    (run_root / "ef34").symlink_to(victim, target_is_directory=True)
    _state(run_root, "ab12", owner_pid=None)
    assert clean_leftovers(run_root, everything=True) == ["ab12"]
    assert sorted(p.name for p in run_root.iterdir()) == ["ABCD", "ef34"]
    assert run_root.is_dir()


def test_a_tampered_state_file_cannot_aim_the_frr_cleanup(
    monkeypatch: pytest.MonkeyPatch, calls: Calls, victim: Path, run_root: Path, tmp_path: Path
) -> None:
    """The state file lists the lab's namespaces; teardown removes /var/run/frr/<ns> for
    each. A name in it is data and must never leave FRR's run dir."""
    frr_dir = tmp_path / "frr"
    (frr_dir / "mplab-ab12-conn").mkdir(parents=True)
    monkeypatch.setattr(lab_procs, "FRR_RUN_DIR", frr_dir)
    runner = FakeRunner()
    monkeypatch.setattr(lab_procs, "_RUN", runner)
    monkeypatch.setattr(lab_core, "delete_namespaces", lab_procs.delete_namespaces)
    _state(run_root, "ab12", namespaces=["../victim", "mplab-ab12-conn", "mplab-zz99-edge"])
    Lab("ab12", run_root).down()
    assert runner.ran == [["ip", "netns", "del", "mplab-ab12-conn"]]
    assert not (frr_dir / "mplab-ab12-conn").exists() and not (run_root / "ab12").exists()


def test_delete_namespaces_refuses_a_name_that_is_not_a_lab_namespace(
    monkeypatch: pytest.MonkeyPatch, victim: Path, tmp_path: Path
) -> None:
    monkeypatch.setattr(lab_procs, "FRR_RUN_DIR", tmp_path / "frr")
    runner = FakeRunner()
    monkeypatch.setattr(lab_procs, "_RUN", runner)
    with pytest.raises(EnvironmentProblem, match="not a lab namespace"):
        lab_procs.delete_namespaces(["../victim"])
    assert runner.ran == []


def test_state_is_written_and_read_only_in_real_dirs(run_root: Path, victim: Path) -> None:
    from meshpath.lab.state import LabRootError, new_state, read_state, write_state

    write_state(run_root, new_state(run_root, "ab12", None))
    assert read_state(run_root, "ab12") is not None
    (run_root / "cd34").symlink_to(victim, target_is_directory=True)
    with pytest.raises(LabRootError, match="symbolic link"):
        write_state(run_root, new_state(run_root, "cd34", None))
    assert json.loads((victim / "state.json").read_text()) == {}


# -- the command line: every option that takes an instance -------------------------------
def _instance_options() -> list[tuple[tuple[str, ...], str]]:
    """(command path, option) for every option whose help says it takes a lab instance."""
    from meshpath.cli import app

    found = []

    def walk(cmd: click.Command, path: tuple[str, ...]) -> None:
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                walk(sub, (*path, name))
            return
        for param in cmd.params:
            if isinstance(param, click.Option) and "lab instance" in (param.help or "").lower():
                found.append((path, param.opts[0]))

    walk(typer.main.get_command(app), ())
    return found


# What each command needs besides the option; --netns of a namespace that does not exist
# keeps fix/verify from looking at this host should the name not be refused.
_REQUIRED = {
    ("lab", "exec"): ["conn", "true"],
    ("lab", "run"): ["broken"],
    ("fix",): ["--mode", "nat", "--netns", "mpt-none-h10"],
    ("verify",): ["--mode", "nat", "--netns", "mpt-none-h10"],
}


def test_the_sweep_finds_every_instance_option() -> None:
    found = {(" ".join(path), opt) for path, opt in _instance_options()}
    lab = {
        (f"lab {c}", "--instance") for c in ("up", "status", "exec", "run", "down", "demo", "call")
    }
    warp = {(f"lab warp {c}", "--instance") for c in ("reconnect", "status")}
    assert found == lab | warp | {("fix", "--lab-worker"), ("verify", "--lab-worker")}


@pytest.mark.parametrize(("path", "option"), _instance_options())
def test_every_instance_option_refuses_hostile_names(
    path: tuple[str, ...],
    option: str,
    monkeypatch: pytest.MonkeyPatch,
    calls: Calls,
    victim: Path,
    run_root: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from meshpath.cli import main

    monkeypatch.setattr("meshpath.cli.lab_cmd.RUN_ROOT", run_root)
    for name in [*HOSTILE, str(victim)]:
        code = main([*path, option, name, *_REQUIRED.get(path, [])])
        err = capsys.readouterr().err.strip()
        assert code == 2, (path, option, name, err)
        assert "lab instance" in err and err.count("\n") == 0 and "Traceback" not in err
    assert calls.killed == [] and calls.deleted == []


def test_lab_down_of_a_symlinked_instance_is_one_line_exit_3(
    monkeypatch: pytest.MonkeyPatch,
    calls: Calls,
    victim: Path,
    run_root: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The name is fine, the host is not: the run dir was replaced by a link."""
    from meshpath.cli import main

    monkeypatch.setattr("meshpath.cli.lab_cmd.RUN_ROOT", run_root)
    monkeypatch.setattr("meshpath.cli.lab_cmd.preflight", lambda: None)
    (run_root / "ab12").symlink_to(victim, target_is_directory=True)
    assert main(["lab", "down", "--instance", "ab12"]) == 3
    err = capsys.readouterr().err.strip()
    assert "symbolic link" in err and err.count("\n") == 0
