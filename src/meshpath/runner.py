"""The one narrow door between meshpath and external programs.

Every external command is built as an argv list (data first, logged and testable) and run
through a :class:`Runner`: :meth:`~Runner.run` for a command that finishes,
:meth:`~Runner.spawn` for a long-running one (a daemon, tcpdump, an emulator), which returns
a :class:`Process` handle (poll, send_signal, terminate, kill, wait). Collectors, appliers
and the lab take a Runner as an argument; tests pass a :class:`RecordedRunner` (canned
outputs, :class:`FakeProcess` handles) instead of spawning anything. ``shell=True`` is
never used.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from meshpath.errors import CommandError, MissingToolError


@dataclass(frozen=True, slots=True)
class Completed:
    """What a finished command left behind."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class Process(Protocol):
    """A long-running process a Runner started (see :meth:`Runner.spawn`)."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None:
        """The exit status once it ended (negative: killed by that signal), else None."""
        ...

    def poll(self) -> int | None:
        """The exit status if it has ended, else None (never blocks)."""
        ...

    def send_signal(self, sig: int) -> None: ...

    def terminate(self) -> None: ...

    def kill(self) -> None: ...

    def wait(self, timeout: float | None = None) -> int | None:
        """The exit status; None when it still runs after ``timeout`` seconds."""
        ...

    def disown(self) -> None:
        """Stop owning it: it runs on, this process no longer waits for it."""
        ...


class Runner(Protocol):
    """Runs argv lists. ``check=True`` raises :class:`CommandError` on a non-zero exit."""

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        input_text: str | None = None,
        timeout: float | None = 60.0,
    ) -> Completed: ...

    def has(self, program: str) -> bool:
        """Whether ``program`` can be run at all (on PATH or an absolute path)."""
        ...

    def spawn(
        self, argv: Sequence[str], *, stdout: Path | None = None, stderr: Path | None = None
    ) -> Process:
        """Start ``argv`` and return at once: stdin empty, stdout appended to ``stdout``
        (discarded when None), stderr appended to ``stderr`` (or to stdout's file when
        None), in a session of its own so a terminal's Ctrl-C does not reach it."""
        ...


def netns_argv(netns: str | None, argv: Sequence[str]) -> list[str]:
    """Prefix ``argv`` so that it runs inside the named network namespace."""
    return ["ip", "netns", "exec", netns, *argv] if netns else list(argv)


@dataclass(frozen=True, slots=True)
class SubprocessRunner:
    """Runs commands for real, optionally inside a named network namespace."""

    netns: str | None = None
    env: Mapping[str, str] | None = None

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        input_text: str | None = None,
        timeout: float | None = 60.0,
    ) -> Completed:
        full = netns_argv(self.netns, argv)
        try:
            proc = subprocess.run(  # noqa: S603 - argv list, never a shell
                full,
                input=input_text,
                capture_output=True,
                text=True,
                timeout=timeout,
                env=dict(self.env) if self.env is not None else None,
                check=False,
            )
        except FileNotFoundError as exc:
            raise MissingToolError(full[0]) from exc
        except subprocess.TimeoutExpired as exc:
            raise CommandError(full, -1, f"timed out after {timeout}s") from exc
        done = Completed(tuple(full), proc.returncode, proc.stdout, proc.stderr)
        if check and not done.ok:
            raise CommandError(full, done.returncode, done.stderr)
        return done

    def has(self, program: str) -> bool:
        return shutil.which(program) is not None

    def spawn(
        self, argv: Sequence[str], *, stdout: Path | None = None, stderr: Path | None = None
    ) -> Process:
        full = netns_argv(self.netns, argv)
        out = stdout.open("ab") if stdout is not None else None
        err = stderr.open("ab") if stderr is not None else None
        try:
            popen = subprocess.Popen(  # noqa: S603 - argv list, never a shell
                full,
                stdin=subprocess.DEVNULL,
                stdout=out if out is not None else subprocess.DEVNULL,
                stderr=err if err is not None else subprocess.STDOUT,
                env=dict(self.env) if self.env is not None else None,
                start_new_session=True,
            )
        except FileNotFoundError as exc:
            raise MissingToolError(full[0]) from exc
        finally:  # the child holds its own copies of the descriptors
            for fh in (out, err):
                if fh is not None:
                    fh.close()
        return SpawnedProcess(popen)


@dataclass(frozen=True, slots=True)
class SpawnedProcess:
    """A :class:`Process` backed by :class:`subprocess.Popen`."""

    popen: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        return self.popen.returncode

    def poll(self) -> int | None:
        return self.popen.poll()

    def send_signal(self, sig: int) -> None:
        self.popen.send_signal(sig)

    def terminate(self) -> None:
        self.popen.terminate()

    def kill(self) -> None:
        self.popen.kill()

    def wait(self, timeout: float | None = None) -> int | None:
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def disown(self) -> None:
        # Marking it settled stops Popen warning at exit that the child still runs.
        if self.popen.poll() is None:
            self.popen.returncode = 0


@dataclass(slots=True)
class FakeProcess:
    """A :class:`Process` for tests: runs until ``exit()`` or a signal ends it."""

    argv: tuple[str, ...]
    pid: int
    returncode: int | None = None
    signals: list[int] = field(default_factory=list)
    disowned: bool = False

    def exit(self, code: int) -> None:
        self.returncode = code

    def poll(self) -> int | None:
        return self.returncode

    def send_signal(self, sig: int) -> None:
        self.signals.append(sig)
        if self.returncode is None:
            self.returncode = -sig

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int | None:
        return self.returncode

    def disown(self) -> None:
        self.disowned = True


@dataclass(slots=True)
class RecordedRunner:
    """A Runner for tests: answers argv lists from a table and records every call.

    ``answers`` maps a space-joined argv to a Completed (or to a callable producing one);
    an unknown argv is answered as a missing program (exit 127), never by spawning.
    :meth:`spawn` records the argv and returns a :class:`FakeProcess` (in ``spawned``).
    """

    answers: dict[str, Completed | Callable[[Sequence[str]], Completed]] = field(
        default_factory=dict
    )
    programs: frozenset[str] = frozenset()
    calls: list[tuple[str, ...]] = field(default_factory=list)
    spawned: list[FakeProcess] = field(default_factory=list)

    def answer(self, argv: Sequence[str], stdout: str = "", returncode: int = 0) -> None:
        self.answers[" ".join(argv)] = Completed(tuple(argv), returncode, stdout, "")

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        input_text: str | None = None,
        timeout: float | None = 60.0,
    ) -> Completed:
        self.calls.append(tuple(argv))
        found = self.answers.get(" ".join(argv))
        if found is None:
            done = Completed(tuple(argv), 127, "", f"{argv[0]}: not recorded")
        elif isinstance(found, Completed):
            done = found
        else:
            done = found(argv)
        if check and not done.ok:
            raise CommandError(argv, done.returncode, done.stderr)
        return done

    def has(self, program: str) -> bool:
        return program in self.programs

    def spawn(
        self, argv: Sequence[str], *, stdout: Path | None = None, stderr: Path | None = None
    ) -> Process:
        process = FakeProcess(tuple(argv), pid=100_000 + len(self.spawned))
        self.spawned.append(process)
        return process
