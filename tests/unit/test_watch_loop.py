"""The watch loop with stand-in sources and evaluations: debouncing, counting, errors, the
FRR poll and SIGTERM. No namespace or kernel is touched (the lab tests do that)."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from meshpath.errors import CommandError
from meshpath.state import Snapshot
from meshpath.watch.evaluate import Evaluation, PeerState
from meshpath.watch.events import parse_logfmt
from meshpath.watch.loop import LoopOptions, Watcher
from tests.builders import broken_connector

SNAP = broken_connector()


class PairSource:
    """A change source whose 'messages' are bytes written to the other end."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.read, self.write = socket.socketpair()
        self.read.setblocking(False)

    def fileno(self) -> int:
        return self.read.fileno()

    def drain(self) -> int:
        seen = 0
        while True:
            try:
                seen += len(self.read.recv(65536))
            except BlockingIOError:
                return seen

    def changes(self, n: int) -> None:
        self.write.send(b"x" * n)

    def close(self) -> None:
        self.read.close()
        self.write.close()


@pytest.fixture
def pair() -> Iterator[Callable[[str], PairSource]]:
    made: list[PairSource] = []

    def factory(name: str) -> PairSource:
        made.append(PairSource(name))
        return made[-1]

    yield factory
    for source in made:
        source.close()


def evaluation(ok: bool = True, peers: tuple[PeerState, ...] = ()) -> Evaluation:
    verdict = "PATH OK" if ok else "PATH BROKEN: x [MP101]"
    return Evaluation(ok, verdict, None if ok else "MP101", (), (), (), peers, False, 0.0, 0.01)


class Script:
    """Evaluations on demand; counts the calls."""

    def __init__(self, results: list[Evaluation | Exception], slow: float = 0.0) -> None:
        self.results = results
        self.calls = 0
        self.slow = slow

    def __call__(self) -> tuple[Snapshot, Evaluation]:
        self.calls += 1
        time.sleep(self.slow)
        result = self.results[min(self.calls, len(self.results)) - 1]
        if isinstance(result, Exception):
            raise result
        return SNAP, result


def wait_until(what: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def run_with(
    watcher: Watcher, script: Script, actions: Callable[[Callable[[], float]], None]
) -> int:
    """Run the loop in this (main) thread; ``actions(stop)`` runs in another thread once the
    first evaluation started; ``stop()`` sends SIGTERM and returns how long the loop took."""
    done = threading.Event()
    ended: list[float] = []
    errors: list[BaseException] = []

    def stop() -> float:
        start = time.monotonic()
        os.kill(os.getpid(), signal.SIGTERM)
        assert done.wait(5.0), "the loop ignored SIGTERM"
        return ended[0] - start

    def body() -> None:
        try:
            wait_until(lambda: script.calls >= 1)
            actions(stop)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            errors.append(exc)
            if not done.is_set():
                os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=body)
    thread.start()
    try:
        code = watcher.run({"test": "yes"})
    finally:
        ended.append(time.monotonic())
        done.set()
        thread.join(10.0)
    if errors:
        raise errors[0]
    return code


def make(
    script: Script, *sources: PairSource, **kw: object
) -> tuple[Watcher, list[dict[str, str]]]:
    lines: list[dict[str, str]] = []
    options = LoopOptions(interval=kw.pop("interval", 3600.0), refresh=3600.0)  # type: ignore[arg-type]
    watcher = Watcher(
        options,
        script,
        sources,
        emit=lambda text: lines.append(parse_logfmt(text)),
        **kw,  # type: ignore[arg-type]
    )
    return watcher, lines


def test_a_burst_of_changes_is_one_evaluation(pair: Callable[[str], PairSource]) -> None:
    source = pair("rtnetlink")
    script = Script([evaluation()])
    watcher, lines = make(script, source)

    def act(stop: Callable[[], float]) -> None:
        for _ in range(200):  # 10,000 changes in about 40 ms
            source.changes(50)
            time.sleep(0.0002)
        wait_until(lambda: watcher.view.evaluations >= 2)
        time.sleep(0.3)  # no further evaluation comes
        stop()

    assert run_with(watcher, script, act) == 0
    assert script.calls == 2
    assert watcher.view.changes == {"rtnetlink": 10000}
    assert watcher.view.evaluations == 2
    assert [line["event"] for line in lines] == ["started", "path_ok", "stopped"]


def test_changes_that_never_stop_are_evaluated_every_max_wait(
    pair: Callable[[str], PairSource],
) -> None:
    source = pair("nftables")
    script = Script([evaluation()])
    watcher, _ = make(script, source)

    def act(stop: Callable[[], float]) -> None:
        end = time.monotonic() + 1.2
        while time.monotonic() < end:  # never 100 ms quiet
            source.changes(1)
            time.sleep(0.01)
        stop()

    run_with(watcher, script, act)
    assert 3 <= script.calls <= 6  # the first, then about one per 500 ms of the flood


def test_sigterm_abandons_a_slow_evaluation_within_a_second(
    pair: Callable[[str], PairSource],
) -> None:
    source = pair("rtnetlink")
    script = Script([evaluation()], slow=0.0)
    watcher, lines = make(script, source)

    def act(stop: Callable[[], float]) -> None:
        script.slow = 30.0  # the next evaluation hangs (a stuck vtysh)
        source.changes(1)
        wait_until(lambda: script.calls >= 2)
        assert stop() < 1.0

    assert run_with(watcher, script, act) == 0
    assert lines[-1]["event"] == "stopped"


def test_a_failed_evaluation_is_counted_and_logged_and_the_loop_goes_on(
    pair: Callable[[str], PairSource],
) -> None:
    source = pair("rtnetlink")
    script = Script([evaluation(), CommandError(["nft"], 1, "boom"), evaluation(ok=False)])
    watcher, lines = make(script, source)

    def act(stop: Callable[[], float]) -> None:
        source.changes(1)
        wait_until(lambda: script.calls >= 2)
        time.sleep(0.2)
        source.changes(1)
        wait_until(lambda: watcher.view.evaluations >= 2)
        stop()

    run_with(watcher, script, act)
    assert watcher.view.evaluation_errors == 1 and watcher.view.evaluations == 2
    events = [line["event"] for line in lines]
    assert events == ["started", "path_ok", "evaluation_failed", "path_broken", "stopped"]
    assert "boom" in lines[2]["error"]


def test_a_changed_bgp_view_is_a_change() -> None:
    peers = [(PeerState("10.0.1.1", "Established", 2),)]
    script = Script([evaluation(peers=peers[0])])
    watcher, _ = make(script, bgp_probe=lambda: peers[0], interval=0.05)

    def act(stop: Callable[[], float]) -> None:
        time.sleep(0.3)  # polls that see no change trigger nothing
        assert script.calls == 1
        peers[0] = (PeerState("10.0.1.1", "Active", 0),)
        wait_until(lambda: watcher.view.evaluations >= 2)
        stop()

    run_with(watcher, script, act)
    assert watcher.view.changes == {"frr": 1}


@pytest.fixture(autouse=True)
def _handlers_restored() -> Iterator[None]:
    before = signal.getsignal(signal.SIGTERM)
    yield
    assert signal.getsignal(signal.SIGTERM) == before
