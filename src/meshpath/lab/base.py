"""What every part of a :class:`~meshpath.lab.core.Lab` shares: its identity, its state
file, the Runner, the processes it started, and running commands inside its nodes.

The Lab is split by concern into mixins over this base (:mod:`~meshpath.lab.wiring`,
:mod:`~meshpath.lab.warp_nodes`, :mod:`~meshpath.lab.apps`, :mod:`~meshpath.lab.frr_nodes`,
:mod:`~meshpath.lab.tcpdump`); :mod:`~meshpath.lab.core` puts them together with the life
cycle (create, setup, down).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from meshpath.errors import BadInputError, LabTimeout
from meshpath.lab import topology
from meshpath.lab.scenarios import ReconnectResult, Scenario
from meshpath.lab.state import RUN_ROOT, new_state, read_state
from meshpath.lab.topology import check_instance
from meshpath.lab.worker.app import WorkerApp
from meshpath.runner import Completed, Process, Runner, SubprocessRunner, netns_argv


class LabBase:
    """One lab instance's shared parts (see :class:`~meshpath.lab.core.Lab`)."""

    def __init__(
        self, instance: str, run_root: Path = RUN_ROOT, runner: Runner | None = None
    ) -> None:
        self.instance = check_instance(instance)
        self.run_root = run_root
        self.run_dir = run_root / instance
        # Every command and process of the lab goes through it (tests pass a RecordedRunner).
        self.runner: Runner = runner if runner is not None else SubprocessRunner()
        self.scenario: Scenario | None = None
        # How long Mesh waits for a SYN-ACK before the Worker sees "handshake timeout".
        self.connect_timeout = 2.5
        self.response_timeout = 5.0  # ... and for the response, once connected
        # A user's Worker run beside the lab's own (`lab up --worker DIR`), set before setup.
        self.user_worker: WorkerApp | None = None
        self.reconnects: list[ReconnectResult] = []  # filled by the reconnect scenario
        # Seconds per phase of the last setup (teardown, netns, ..., frr): where time goes.
        self.phases: dict[str, float] = {}
        self._children: list[Process] = []
        self._named: dict[str, Process] = {}
        self._state = read_state(run_root, instance) or new_state(run_root, instance, None)

    # -- names and commands -----------------------------------------------------------
    def ns(self, node: str) -> str:
        """The namespace name of ``node`` (edge, conn, router, svc, ts, lan)."""
        if node not in topology.NODES:
            raise BadInputError(f"unknown lab node {node!r}; expected one of {topology.NODES}")
        return topology.ns_name(self.instance, node)

    def exec(
        self, node: str, argv: Sequence[str], *, check: bool = False, timeout: float = 30.0
    ) -> Completed:
        """Run ``argv`` inside ``node``'s namespace."""
        return self.runner.run(netns_argv(self.ns(node), argv), check=check, timeout=timeout)

    def ip_batch(self, node: str, text: str) -> None:
        self.runner.run(["ip", "-n", self.ns(node), "-batch", "-"], input_text=text)

    def nft(self, node: str, ruleset: str) -> None:
        self.runner.run(netns_argv(self.ns(node), ["nft", "-f", "-"]), input_text=ruleset)

    # -- processes --------------------------------------------------------------------
    def spawn(self, name: str, node: str, argv: Sequence[str]) -> Process:
        """Start ``argv`` in ``node`` as the lab's process ``name`` (log: <run dir>/NAME.log);
        stopped with the lab (lab/ha.py starts the second connector's tunnel with it)."""
        return self._spawn(name, node, argv)

    def _spawn(self, name: str, node: str, argv: Sequence[str]) -> Process:
        """Start ``argv`` inside ``node`` (output to ``<run dir>/<name>.log``). Every process
        runs inside a lab namespace, so teardown finds it with ``ip netns pids`` even after
        this process was killed."""
        log = self.run_dir / f"{name}.log"
        child = self.runner.spawn(netns_argv(self.ns(node), argv), stdout=log)
        self._children.append(child)
        self._named[name] = child
        return child

    def _ready_probe(self, path: Path) -> Callable[[], bool]:
        return lambda: path.exists() or self._any_died()

    def _any_died(self) -> bool:
        return any(c.poll() is not None for c in self._children)

    def _raise_if_died(self) -> None:
        for name, child in self._named.items():
            if child.poll() is not None:
                log = (self.run_dir / f"{name}.log").read_text(errors="replace").strip()
                last = _last_message(log) if log else "no output"
                raise LabTimeout(f"lab: {name} exited ({child.returncode}): {last}")


def _last_message(log: str) -> str:
    """The last message of a log: its last line, with the indented lines before it folded
    in (workerd: 'Uncaught Error: No such module "hono". | imported from "index.js"')."""
    lines = log.splitlines()
    start = len(lines) - 1
    while start > 0 and lines[start][:1].isspace():
        start -= 1
    return " | ".join(ln.strip() for ln in lines[start:])
