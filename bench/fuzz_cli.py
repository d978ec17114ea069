"""The full CLI fuzz sweep: every command that takes a file or a name, malformed inputs.

    .venv/bin/python bench/fuzz_cli.py [--jobs 2] [--timeout 8] [--only SUBSTRING]
                                       [--readme bench/README.md] [--failures FILE]

The cases are ``tests/fuzz_cases.py``'s catalogue (each command x each option that takes
input x malformed values: empty, huge, NUL, unicode, negative, nan/inf, /dev/zero, a FIFO,
a directory, a symlink loop, truncated/garbage JSON/TOML/pcap, deep nesting, hostile names),
each once plain and once with ``--json``. Every case runs in its own child process, forked
from this one after meshpath is imported (a fork costs milliseconds, an interpreter start
half a second), with stdin, stdout and stderr redirected to files, an address-space limit
(so unbounded growth ends in MemoryError, not in the OOM killer), a file-size limit, and
the :class:`tests.fuzz_cases.Guard` that blocks anything that would change the host. A
child still running after ``--timeout`` seconds is killed with its process group.

Outcomes: ``exit2``/``exit3`` (the right answer: one line on stderr), ``ok`` (exit 0 or 1
where the case allows it: odd but readable input), ``accepted`` (exit 0 or 1: malformed
input taken as good), ``multiline`` (exit 2/3 with more or less than one
stderr line), ``traceback`` (an uncaught exception or a crash), ``hang`` (killed at the
timeout), ``guard`` (tried to change the host). Prints the counts and every case that is
not exit2/exit3; ``--readme`` rewrites the "fuzz" section of bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pkgutil
import re
import resource
import signal
import sys
import tempfile
import textwrap
import time
import traceback
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fuzz_cases import (  # noqa: E402
    NO_NETNS,
    Case,
    Guard,
    GuardViolation,
    assert_safe,
    catalogue,
    make_inputs,
)

import meshpath  # noqa: E402
from meshpath.cli import main  # noqa: E402

GOOD: frozenset[str] = frozenset({"exit2", "exit3", "ok"})
ORDER = ("exit2", "exit3", "ok", "accepted", "multiline", "traceback", "hang", "guard")
MEMORY_LIMIT = 1536 * 1024 * 1024
FILE_LIMIT = 256 * 1024 * 1024
GUARD_EXIT = 99


@dataclass
class Result:
    case: Case
    outcome: str
    code: int | None
    seconds: float
    detail: str


def import_everything() -> None:
    """Import every meshpath module now, so no child imports (or writes bytecode) later."""
    for info in pkgutil.walk_packages(meshpath.__path__, "meshpath."):
        if not info.name.endswith(".__main__"):  # that one runs the CLI
            __import__(info.name)


def child(case: Case, sandbox: Path, out: Path) -> None:
    """In the forked child: limits, redirections, the guard, then the CLI. Never returns."""
    code = 1
    try:
        os.setpgrp()
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
        resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT, FILE_LIMIT))
        sys.dont_write_bytecode = True
        tempfile.tempdir = str(sandbox / "tmp")
        stdin = os.open(case.stdin or os.devnull, os.O_RDONLY)
        os.dup2(stdin, 0)
        for fd, suffix in ((1, ".out"), (2, ".err")):
            target = os.open(f"{out}{suffix}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(target, fd)
        guard = Guard(sandbox, report=Path(f"{out}.guard"))
        guard.install()
        code = main(list(case.argv))
    except GuardViolation:
        code = GUARD_EXIT
    except BaseException:  # what the console script would print: the traceback
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def judge(case: Case, status: int | None, seconds: float, out: Path) -> Result:
    err = _read(f"{out}.err")
    if status is None:
        return Result(case, "hang", None, seconds, "killed at the timeout")
    if Path(f"{out}.guard").exists():
        return Result(case, "guard", None, seconds, _read(f"{out}.guard").strip())
    if os.WIFSIGNALED(status):
        return Result(case, "traceback", None, seconds, f"signal {os.WTERMSIG(status)}")
    code = os.WEXITSTATUS(status)
    last = err.strip().splitlines()[-1:] or [""]
    if "Traceback (most recent call last)" in err or code not in (0, 1, 2, 3):
        return Result(case, "traceback", code, seconds, last[0])
    if code in (0, 1):
        outcome = "ok" if case.may_succeed else "accepted"
        return Result(case, outcome, code, seconds, f"exit {code}")
    if err.count("\n") != 1 or not err.startswith("meshpath: error:"):
        return Result(case, "multiline", code, seconds, err[:300])
    return Result(case, f"exit{code}", code, seconds, err.strip())


def _read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except FileNotFoundError:
        return ""


def sweep(cases: list[Case], sandbox: Path, jobs: int, timeout: float) -> list[Result]:
    """Run the cases ``jobs`` at a time; kill a child's group past ``timeout``."""
    outdir = sandbox / "out"
    outdir.mkdir(exist_ok=True)
    pending = list(enumerate(cases))
    running: dict[int, tuple[int, Case, float, Path]] = {}
    results: dict[int, Result] = {}
    while pending or running:
        while pending and len(running) < jobs:
            index, case = pending.pop(0)
            out = outdir / str(index)
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                child(case, sandbox, out)
            running[pid] = (index, case, time.monotonic(), out)
        _reap(running, results, timeout)
    return [results[i] for i in range(len(cases))]


def _reap(
    running: dict[int, tuple[int, Case, float, Path]], results: dict[int, Result], timeout: float
) -> None:
    pid, status = os.waitpid(-1, os.WNOHANG)
    now = time.monotonic()
    if pid:
        index, case, start, out = running.pop(pid)
        results[index] = judge(case, status, now - start, out)
        return
    for pid, (index, case, start, out) in list(running.items()):
        if now - start > timeout:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            running.pop(pid)
            results[index] = judge(case, None, now - start, out)
    time.sleep(0.005)


# -- reporting ----------------------------------------------------------------------------
def group_of(case_id: str) -> str:
    """``doctor/--snapshot/fifo+json`` -> ``doctor/--snapshot``: the command and option."""
    return "/".join(case_id.removesuffix("+json").split("/")[:2])


def summary(results: list[Result], seconds: float, jobs: int) -> str:
    counts = Counter(r.outcome for r in results)
    slowest = max((r for r in results if r.outcome != "hang"), key=lambda r: r.seconds)
    lines = [
        f"{len(results)} cases in {seconds:.0f} s ({jobs} at a time); slowest finished: "
        f"{slowest.case.id} {slowest.seconds:.1f} s",
        "  ".join(f"{k}: {counts.get(k, 0)}" for k in ORDER),
    ]
    return "\n".join(lines)


def failures(results: list[Result]) -> dict[str, dict[str, list[str]]]:
    """outcome -> command/option -> the values (the case ids' last part), plain runs only."""
    out: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for r in results:
        if r.outcome in GOOD or r.case.id.endswith("+json"):
            continue
        out[r.outcome][group_of(r.case.id)].append(r.case.id.split("/", 2)[-1])
    return out


# Which part of issue 10 a failing case belongs to, for the report (first match wins).
OWNERS: tuple[tuple[str, str], ...] = (
    ("/devzero", "13"), ("/fifo", "13"), ("/long300", "15"), ("lab-", "1"),
    ("snapshot/-o/empty", "17"), ("snapshot/-o/", "7"), ("garbage-journal", "3"),
    ("--bgp-timeout", "3"), ("--max-flows", "3, 18"), ("--config/toml-tunnel", "4, 18"),
)  # fmt: skip


def owner_of(group: str, value: str) -> str:
    case_id = f"{group}/{value}"
    return next((item for pattern, item in OWNERS if pattern in case_id), "18")


def failure_lines(results: list[Result]) -> list[str]:
    """One table row per outcome, command/option and issue-10 item."""
    lines = []
    for outcome, groups in sorted(failures(results).items(), key=lambda kv: ORDER.index(kv[0])):
        for group, values in sorted(groups.items()):
            by_owner: dict[str, list[str]] = defaultdict(list)
            for value in values:
                by_owner[owner_of(group, value)].append(value)
            for owner, owned in sorted(by_owner.items()):
                lines.append(f"| {outcome} | `{group}` | {', '.join(owned)} | {owner} |")
    return lines


README_START = "<!-- fuzz_cli: begin -->"
README_END = "<!-- fuzz_cli: end -->"


def readme_section(results: list[Result], seconds: float, jobs: int, when: str) -> str:
    counts = Counter(r.outcome for r in results)
    plain = sum(1 for r in results if not r.case.id.endswith("+json"))
    rows = [f"| {k} | {counts.get(k, 0)} |" for k in ORDER]
    fails = failure_lines(results) or ["| - | - | none | - |"]
    intro = (
        "`python bench/fuzz_cli.py --readme bench/README.md` (root; no namespace is made and "
        "nothing on the host changes). The catalogue is `tests/fuzz_cases.py`: every command "
        "that takes a file or a name x each option that takes input x malformed values "
        "(empty, huge, NUL, unicode, negative, nan/inf, /dev/zero, a FIFO, a directory, a "
        "symlink loop, truncated or garbage JSON/TOML/pcap, deep nesting, hostile names, bad "
        f"targets/ranges/modes), each run plain and with `--json`: {len(results)} cases "
        f"({plain} x 2). Each runs in a child forked after meshpath is imported, with a "
        "1.5 GiB address-space limit, stdin/stdout/stderr in files, and a guard that blocks "
        "any write, removal, signal or non-query command outside the sandbox (`guard`). "
        "Right answer: exit 2 or 3 with one line on stderr, within the 8 s timeout (`ok`: a "
        "result, exit 0/1, for the few inputs that are odd but readable, e.g. a pcapng time "
        "past year 9999). `tests/unit/test_fuzz_cli.py` runs a sample of 193 in the suite "
        "(in-process, same guard; 5 s on a quiet machine, 25 s at load 9)."
    )
    head = [README_START, "## fuzz (CLI)", textwrap.fill(intro, 95), ""]
    run = f"Last run ({when}, 2-core VM shared with other jobs; {seconds:.0f} s, {jobs} at a time):"
    table = ["| outcome | cases |", "|---|---:|", *rows]
    todo = textwrap.fill(
        "Not yet right (plain runs; the `--json` twin of each fails the same way), with the "
        "issue-10 item that fixes each on its own branch:",
        95,
    )
    failing = ["| outcome | command / option | values | item |", "|---|---|---|---|", *fails]
    return "\n".join([*head, run, "", *table, "", todo, "", *failing, README_END])


def write_readme(path: Path, section: str) -> None:
    text = path.read_text()
    pattern = re.compile(re.escape(README_START) + ".*?" + re.escape(README_END), re.S)
    text = (
        pattern.sub(lambda _m: section, text)
        if pattern.search(text)
        else text.rstrip() + "\n\n" + section + "\n"
    )
    path.write_text(text)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=8.0)
    parser.add_argument("--only", default="", help="run the cases whose id contains this")
    parser.add_argument("--readme", type=Path, help="rewrite the fuzz section of this file")
    parser.add_argument("--failures", type=Path, help="write the failing case ids here")
    parser.add_argument("--verbose", action="store_true", help="each failing case's detail")
    return parser.parse_args()


def run(args: argparse.Namespace) -> tuple[list[Result], float]:
    """Build the sandbox and its inputs, check every case is safe, sweep."""
    import_everything()
    with tempfile.TemporaryDirectory(prefix="mpfuzz-") as tmp:
        sandbox = Path(tmp).resolve()
        for sub in ("root", "state", "tmp"):
            (sandbox / sub).mkdir()
        cases = [c for c in catalogue(make_inputs(sandbox), sandbox) if args.only in c.id]
        for case in cases:
            assert_safe(case, sandbox)
        start = time.monotonic()
        results = sweep(cases, sandbox, args.jobs, args.timeout)
        return results, time.monotonic() - start


def report(args: argparse.Namespace, results: list[Result], seconds: float) -> None:
    print(summary(results, seconds, args.jobs))
    for line in failure_lines(results):
        print(line)
    if args.verbose:
        for r in results:
            if r.outcome not in GOOD:
                print(f"{r.outcome:9} {r.case.id}: {r.detail[:200]}")
    if args.failures:
        bad = sorted(r.case.id for r in results if r.outcome not in GOOD)
        args.failures.write_text("".join(f"{i}\n" for i in bad))
    if args.readme:
        when = time.strftime("%Y-%m-%d %H:%M")
        write_readme(args.readme, readme_section(results, seconds, args.jobs, when))


def main_() -> int:
    args = parse_args()
    if os.geteuid() != 0:
        print("needs root (the netns/lab cases must reach the checks root gets to)")
        return 2
    if (Path("/run/netns") / NO_NETNS).exists():
        print(f"namespace {NO_NETNS} exists: the cases assume it does not")
        return 2
    results, seconds = run(args)
    report(args, results, seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main_())
