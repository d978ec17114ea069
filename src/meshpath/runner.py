"""The one narrow door between meshpath and external programs.

Every external command is built as an argv list (data first, logged and testable) and run
through a :class:`Runner`. Collectors, appliers and the lab take a Runner as an argument;
tests pass a :class:`RecordedRunner` (canned outputs) instead of spawning anything.
``shell=True`` is never used.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
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


@dataclass(slots=True)
class RecordedRunner:
    """A Runner for tests: answers argv lists from a table and records every call.

    ``answers`` maps a space-joined argv to a Completed (or to a callable producing one);
    an unknown argv is answered as a missing program (exit 127), never by spawning.
    """

    answers: dict[str, Completed | Callable[[Sequence[str]], Completed]] = field(
        default_factory=dict
    )
    programs: frozenset[str] = frozenset()
    calls: list[tuple[str, ...]] = field(default_factory=list)

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
