"""meshpath watch on a real (throw-away) namespace: a flood of route changes, nftables
changes, the metrics endpoint inside the namespace (and promtool on what it serves), SIGTERM.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from meshpath.collect.netns import inside_netns
from meshpath.watch.metrics import read_samples
from tests.conftest import needs_root, sh

pytestmark = [needs_root, pytest.mark.root]


@dataclass
class Running:
    proc: subprocess.Popen[str]
    textfile: Path

    def value(self, name: str, **labels: str) -> float | None:
        path = self.textfile / "meshpath.prom"
        if not path.exists():
            return None
        return read_samples(path.read_text()).get((name, frozenset(labels.items())))

    def wait(self, what: Callable[[], bool], timeout: float = 10.0) -> float:
        start = time.monotonic()
        while not what():
            assert self.proc.poll() is None, f"watch exited {self.proc.returncode}"
            assert time.monotonic() - start < timeout, "timed out"
            time.sleep(0.01)
        return time.monotonic() - start

    def stop(self) -> float:
        start = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=10)
        return time.monotonic() - start


@pytest.fixture
def watch(
    make_netns: Callable[[], str], tmp_path: Path
) -> Iterator[Callable[..., tuple[str, Running]]]:
    started: list[Running] = []

    def start(*extra: str) -> tuple[str, Running]:
        ns = make_netns()
        textfile = tmp_path / f"tf{len(started)}"
        textfile.mkdir()
        argv = [sys.executable, "-m", "meshpath", "watch", "--netns", ns]
        argv += ["--textfile", str(textfile), "--root", str(tmp_path), *extra]
        proc = subprocess.Popen(  # noqa: S603 - argv list
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        running = Running(proc, textfile)
        started.append(running)
        running.wait(lambda: running.value("meshpath_evaluations_total") == 1.0, 20.0)
        return ns, running

    yield start
    for running in started:
        if running.proc.poll() is None:
            running.proc.kill()
        running.proc.wait(timeout=10)
        if running.proc.stdout is not None:
            running.proc.stdout.close()


def batch(ns: str, lines: list[str]) -> None:
    subprocess.run(
        ["ip", "-n", ns, "-batch", "-"], input="\n".join(lines) + "\n", text=True, check=True
    )


def test_a_flood_of_10000_route_changes_is_a_handful_of_evaluations(
    watch: Callable[..., tuple[str, Running]],
) -> None:
    ns, w = watch("--listen", "none")
    start = time.monotonic()
    for chunk in range(10):  # 10,000 routes over one second
        batch(ns, [f"route add 10.{chunk}.{i // 250}.{i % 250}/32 dev lo" for i in range(1000)])
        time.sleep(max(0.0, start + (chunk + 1) * 0.1 - time.monotonic()))
    flood = time.monotonic() - start
    # Settled: every change read and evaluated, nothing pending.
    w.wait(lambda: (w.value("meshpath_changes_total", source="rtnetlink") or 0) >= 10000)
    time.sleep(1.0)
    evaluations = w.value("meshpath_evaluations_total") or 0
    assert flood < 1.5
    assert w.proc.poll() is None
    print(f"flood {flood:.2f}s: {evaluations:g} evaluations")
    assert 2 <= evaluations <= 10, evaluations  # not 10,000
    # Still reacting after the flood.
    sh(["ip", "route", "add", "10.99.0.0/16", "dev", "lo"], netns=ns)
    took = w.wait(lambda: (w.value("meshpath_evaluations_total") or 0) > evaluations, 2.0)
    assert took < 1.0
    assert w.stop() < 1.0
    assert w.proc.returncode == 0


def test_nftables_changes_are_seen(watch: Callable[..., tuple[str, Running]]) -> None:
    ns, w = watch("--listen", "none")
    sh(["nft", "add", "table", "inet", "mp_watch_test"], netns=ns)
    took = w.wait(lambda: (w.value("meshpath_evaluations_total") or 0) >= 2.0, 2.0)
    assert took < 1.0
    assert (w.value("meshpath_changes_total", source="nftables") or 0) >= 1


def test_sigterm_exits_cleanly_within_a_second(watch: Callable[..., tuple[str, Running]]) -> None:
    _ns, w = watch("--listen", "none")
    assert w.stop() < 1.0
    assert w.proc.returncode == 0
    assert w.proc.stdout is not None
    out = w.proc.stdout.read()
    assert "event=started" in out and out.rstrip().splitlines()[-1].split()[1] == "event=stopped"


PORT = 20000 + os.getpid() % 20000


def scrape(ns: str | None) -> str:
    url = f"http://127.0.0.1:{PORT}/metrics"
    with inside_netns(ns), urllib.request.urlopen(url, timeout=5) as resp:
        return resp.read().decode()


def test_the_endpoint_lives_in_the_namespace_and_passes_promtool(
    watch: Callable[..., tuple[str, Running]],
) -> None:
    ns, w = watch("--listen", f"127.0.0.1:{PORT}")
    text = scrape(ns)
    assert "meshpath_path_ok 0.0" in text  # a bare namespace: no tunnel (MP150)
    assert 'meshpath_finding_active{id="MP150",severity="error"} 1.0' in text
    with pytest.raises(OSError):
        scrape(None)  # the host's 127.0.0.1 has no such listener
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package prometheus; make system)")
    done = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr
    assert w.stop() < 1.0
