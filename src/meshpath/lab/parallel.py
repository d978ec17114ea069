"""`lab run --jobs N`: scenarios at once, each worker process with its own lab instance.

    parent (run_parallel)                       worker k: python -m meshpath.lab.parallel
      preflight, leftovers cleaned once           Lab.create(instance k), then for each
      names handed out one at a time  ──stdin──▶  name read: run_scenario -> result
      results kept in the declared order ◀─fd 1─  (length-prefixed pickle); EOF: lab down

Why processes, not threads: each lab is built, run and torn down by one single-threaded
process that owns it (its state file names that pid), so a Ctrl-C or SIGTERM tears every
lab down the way a sequential run does (``Lab.__exit__``), and a worker killed outright
leaves a lab whose owner is dead, which the parent removes (and any later run would).
A worker's own output goes to a temporary file, never to the terminal, so nothing
interleaves; the parent reports each result whole, in the order the scenarios were given.
"""

from __future__ import annotations

import argparse
import os
import pickle
import secrets
import selectors
import signal
import struct
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO, Final

from meshpath.errors import BadInputError, EnvironmentProblem, LabTimeout, MeshpathError
from meshpath.lab import topology
from meshpath.lab.core import Lab, clean_leftovers, preflight, remove_lab
from meshpath.lab.procs import lab_namespaces
from meshpath.lab.run import ScenarioResult, failed_result, run_scenario
from meshpath.lab.state import RUN_ROOT, known_instances

HEADER: Final = struct.Struct("!Q")
# Seconds a scenario takes alone (bench/README.md, `lab run all --jobs 1`), used only to
# hand the longest out first so no worker starts one late (output order is unaffected);
# a scenario not listed counts as DEFAULT_COST.
COST_HINT: Final = {"drift": 7.5, "profile": 7.0, "bgp": 6.5, "tailscale-overlap": 6.0}
DEFAULT_COST: Final = 5.0
# How long a worker may take to tear its lab down once asked to stop (one scenario's
# teardown is well under a second; a stuck one is killed and its lab removed by name).
STOP_GRACE: Final = 20.0


def default_jobs(scenarios: int, cpus: int | None = None) -> int:
    """Workers for ``scenarios``: the CPU count, at least 2 (a scenario mostly waits on
    timers, TCP and BGP, so two share one core well), never more than the scenarios."""
    n = max(2, cpus if cpus is not None else (os.cpu_count() or 1))
    return max(1, min(n, scenarios))


def instance_names(jobs: int, base: str | None, taken: set[str]) -> list[str]:
    """One lab instance id per worker: ``base``, ``base1``, ``base2`` ... (each a valid id,
    BadInputError otherwise), or free random ids when ``base`` is None."""
    if base is not None:
        topology.check_instance(base)
        return [base] + [topology.check_instance(f"{base[:7]}{k}") for k in range(1, jobs)]
    names: list[str] = []
    while len(names) < jobs:
        name = secrets.token_hex(2)
        if name not in taken and name not in names:
            names.append(name)
    return names


# -- the parent ---------------------------------------------------------------------------
@dataclass
class Worker:
    """One worker process and its lab instance."""

    instance: str
    proc: subprocess.Popen[bytes]
    log: IO[bytes]
    busy: str | None = None  # the scenario it runs now

    @classmethod
    def start(cls, instance: str, run_root: Path) -> Worker:
        log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        argv = [sys.executable, "-m", "meshpath.lab.parallel", "--instance", instance]
        proc = subprocess.Popen(  # noqa: S603 - argv list
            [*argv, "--run-root", str(run_root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
        )
        return cls(instance, proc, log)

    def give(self, name: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(name.encode() + b"\n")
        self.proc.stdin.flush()
        self.busy = name

    def receive(self) -> ScenarioResult:
        """The result of the scenario it runs (blocks until the whole frame is read)."""
        assert self.proc.stdout is not None
        head = self.proc.stdout.read(HEADER.size)
        if len(head) < HEADER.size:
            raise LabTimeout(f"lab: worker {self.instance} ended during {self.busy}: {self.tail()}")
        result = pickle.loads(self.proc.stdout.read(HEADER.unpack(head)[0]))  # noqa: S301 - our child
        self.busy = None
        if not isinstance(result, ScenarioResult):
            raise EnvironmentProblem(f"lab: worker {self.instance} failed: {result}")
        return result

    def tail(self) -> str:
        self.log.seek(0)
        lines = self.log.read().decode(errors="replace").strip().splitlines()
        return " | ".join(lines[-4:]) or f"exit {self.proc.poll()}"

    def stop(self, aborted: bool, run_root: Path) -> None:
        """Ask the worker to end (EOF; SIGTERM when aborted), wait for its teardown;
        a worker that does not end is killed and its lab removed by name."""
        with suppress(OSError):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        if aborted and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.log.close()
        if self.proc.returncode != 0 or lab_namespaces(self.instance):
            remove_lab(self.instance, run_root)  # its owner is gone: nothing else removes it


def run_parallel(
    names: Sequence[str],
    jobs: int,
    instance: str | None = None,
    on_result: Callable[[ScenarioResult], None] | None = None,
    run_root: Path = RUN_ROOT,
) -> list[ScenarioResult]:
    """Run ``names`` on ``jobs`` workers; results (and ``on_result`` calls) in the order
    of ``names``. Every worker's lab is gone when this returns or raises."""
    preflight()
    clean_leftovers(run_root)
    taken = known_instances(run_root) | {
        i for ns in lab_namespaces() if (i := topology.instance_of(ns)) is not None
    }
    workers: list[Worker] = []
    aborted = True  # until every result is in: workers are told to stop at once
    try:
        for name in instance_names(min(jobs, len(names)), instance, taken):
            workers.append(Worker.start(name, run_root))
        results = _dispatch(workers, list(names), on_result or (lambda _r: None))
        aborted = False
        return results
    finally:
        for w in workers:
            w.stop(aborted, run_root)


def longest_first(names: Sequence[str]) -> list[str]:
    """``names`` by their expected time, longest first (stable among equals)."""
    return sorted(names, key=lambda n: -COST_HINT.get(n, DEFAULT_COST))


def _dispatch(
    workers: list[Worker], names: list[str], on_result: Callable[[ScenarioResult], None]
) -> list[ScenarioResult]:
    todo = iter(longest_first(names))
    done: dict[str, ScenarioResult] = {}
    shown = 0
    with selectors.DefaultSelector() as sel:
        for w in workers:
            _next(w, todo, sel)
        while sel.get_map():
            for key, _ in sel.select():
                w = key.data
                sel.unregister(key.fileobj)
                result = w.receive()
                done[result.name] = result
                _next(w, todo, sel)
            while shown < len(names) and names[shown] in done:
                on_result(done[names[shown]])
                shown += 1
    return [done[n] for n in names]


def _next(w: Worker, todo: Iterator[str], sel: selectors.BaseSelector) -> None:
    name = next(todo, None)
    if name is not None:
        w.give(name)
        assert w.proc.stdout is not None
        sel.register(w.proc.stdout, selectors.EVENT_READ, w)


# -- the worker ---------------------------------------------------------------------------
@contextmanager
def _stop_on_signal() -> Iterator[None]:
    """SIGTERM/SIGINT raise KeyboardInterrupt once; later ones are ignored, so the lab's
    teardown in ``Lab.__exit__`` is not cut short by a second signal (Ctrl-C reaches the
    worker directly and the parent's SIGTERM follows)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)
        raise KeyboardInterrupt

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)
    yield


def _send(out: IO[bytes], value: object) -> None:
    data = pickle.dumps(value)
    out.write(HEADER.pack(len(data)) + data)
    out.flush()


def serve(instance: str, run_root: Path, inp: IO[str], out: IO[bytes]) -> int:
    """Run each scenario named on ``inp`` in one lab; send each result on ``out``."""
    with _stop_on_signal(), Lab.create(instance, run_root=run_root) as lab:
        for line in inp:
            name = line.strip()
            try:
                result = run_scenario(lab, name)
            except MeshpathError as exc:  # the scenario failed; the others still run
                result = failed_result(name, f"{type(exc).__name__}: {exc}")
            _send(out, result)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="meshpath.lab.parallel", description=__doc__)
    p.add_argument("--instance", required=True)
    p.add_argument("--run-root", type=Path, default=RUN_ROOT)
    args = p.parse_args(argv)
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything printed goes to the worker's log, never into the results
    try:
        return serve(args.instance, args.run_root, sys.stdin, out)
    except (MeshpathError, BadInputError) as exc:
        _send(out, f"{type(exc).__name__}: {exc}")
        return 3


if __name__ == "__main__":
    raise SystemExit(main())
