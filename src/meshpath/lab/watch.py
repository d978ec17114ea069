"""``meshpath watch`` inside the lab's connector namespace, and reading what it says.

The watcher runs in conn (``ip netns exec``), with ``--netns`` so it finds conn's FRR and
the journal ``meshpath fix`` wrote under the lab's run dir; its metrics endpoint is bound
inside conn only (127.0.0.1 there is not the host's). Tests and the ``drift`` drill read its
``--textfile`` output and its log lines from the run dir instead of scraping.
"""

from __future__ import annotations

import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from meshpath.errors import LabTimeout
from meshpath.lab.fixes import fix_root
from meshpath.lab.procs import wait_for
from meshpath.lab.topology import SERVICE_IP, SERVICE_PORT
from meshpath.runner import Process
from meshpath.watch.events import parse_logfmt
from meshpath.watch.metrics import TEXTFILE_NAME, read_samples

if TYPE_CHECKING:
    from meshpath.lab.core import Lab

WATCH_LISTEN: Final = "127.0.0.1:9847"


def watch_argv(lab: Lab, textfile: Path, heal: bool, *extra: str) -> list[str]:
    argv = [sys.executable, "-m", "meshpath", "watch", "--netns", lab.ns("conn")]
    argv += ["--root", str(fix_root(lab)), "--listen", WATCH_LISTEN]
    argv += ["--textfile", str(textfile), "--target", f"{SERVICE_IP}:{SERVICE_PORT}"]
    return argv + (["--heal"] if heal else []) + list(extra)


@dataclass
class Watch:
    """One ``meshpath watch`` process in the lab's conn namespace."""

    name: str
    child: Process
    textfile: Path  # the directory
    log: Path

    @classmethod
    def start(cls, lab: Lab, heal: bool = False, name: str = "watch", *extra: str) -> Watch:
        """Start it and return once its first evaluation is published."""
        textfile = lab.run_dir / name
        textfile.mkdir(parents=True, exist_ok=True)
        (textfile / TEXTFILE_NAME).unlink(missing_ok=True)
        child = lab._spawn(name, "conn", watch_argv(lab, textfile, heal, *extra))
        watch = cls(name, child, textfile, lab.run_dir / f"{name}.log")
        wait_for(f"{name}'s first evaluation", watch._ready, 20.0)
        return watch

    def _ready(self) -> bool:
        if self.child.poll() is not None:
            raise LabTimeout(f"lab: {self.name} exited ({self.child.returncode}): {self.tail()}")
        return (self.textfile / TEXTFILE_NAME).exists()

    def tail(self) -> str:
        lines = (
            self.log.read_text(errors="replace").strip().splitlines() if self.log.exists() else []
        )
        return lines[-1] if lines else "no output"

    def samples(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        return read_samples((self.textfile / TEXTFILE_NAME).read_text())

    def value(self, name: str, **labels: str) -> float | None:
        return self.samples().get((name, frozenset(labels.items())))

    def wait_value(
        self, name: str, want: float, start: float, timeout: float, **labels: str
    ) -> float | None:
        """Seconds from ``start`` (monotonic) until the metric reads ``want``; None if not
        within ``timeout``. Polled every 5 ms: the file is replaced atomically."""
        deadline = start + timeout
        while True:
            if self.value(name, **labels) == want:
                return time.monotonic() - start
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.005)

    def events(self, event: str | None = None) -> list[dict[str, str]]:
        """The watcher's log lines (parsed), those of ``event`` only when given."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        found = [parse_logfmt(line) for line in text.splitlines() if "event=" in line]
        return [f for f in found if event is None or f.get("event") == event]

    def stop(self, timeout: float = 5.0) -> float:
        """SIGTERM; the seconds it took to exit (LabTimeout past ``timeout``)."""
        start = time.monotonic()
        if self.child.poll() is None:
            self.child.send_signal(signal.SIGTERM)
            if self.child.wait(timeout=timeout) is None:
                self.child.kill()
                raise LabTimeout(f"lab: {self.name} ignored SIGTERM for {timeout:.0f}s")
        return time.monotonic() - start
