"""tcpdump around a call inside a lab node (I/O edge); the text is read by
:mod:`meshpath.lab.capture`."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar, overload

from meshpath.errors import LabTimeout
from meshpath.lab.base import LabBase
from meshpath.lab.capture import Sighting, parse_lines
from meshpath.lab.procs import wait_for
from meshpath.runner import Completed, netns_argv

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class CaptureResult(Generic[T]):
    """A capture taken around a call: parsed TCP packets, tcpdump's text, the pcap file."""

    packets: tuple[Sighting, ...]
    text: str
    pcap: Path
    value: T


class Captures(LabBase):
    """Packet captures in a node while something runs."""

    @overload
    def capture(
        self, node: str, action: Callable[[], T], *, bpf: str = ..., name: str = ...
    ) -> CaptureResult[T]: ...

    @overload
    def capture(
        self, node: str, action: Sequence[str], *, bpf: str = ..., name: str = ...
    ) -> CaptureResult[Completed]: ...

    def capture(
        self,
        node: str,
        action: Callable[[], T] | Sequence[str],
        *,
        bpf: str = "tcp port 3000",
        name: str = "capture",
    ) -> CaptureResult[T] | CaptureResult[Completed]:
        """Run tcpdump on every interface of ``node`` while ``action`` runs (a callable, or
        an argv run inside ``node``); returns the packets and the pcap path."""
        pcap = self.run_dir / f"{name}.pcap"
        out, err = self.run_dir / f"{name}.txt", self.run_dir / f"{name}.err"
        argv = ["tcpdump", "-i", "any", "-n", "-l", "-U", "--immediate-mode", "-Z", "root"]
        # A 16 MiB ring (-B, KiB): with the default 2 MiB, 256 KiB snaplen blocks and
        # immediate mode the kernel held ~8 packets, and dropped some of a call's handshake
        # on a loaded machine (18 of 40 seen with a Worker's IPv4 and IPv6 calls at once).
        argv += ["-B", "16384"]
        argv += ["--print", "-w", str(pcap)]
        out.write_bytes(b"")  # a capture of the same name starts afresh
        err.write_bytes(b"")
        proc = self.runner.spawn(netns_argv(self.ns(node), [*argv, bpf]), stdout=out, stderr=err)
        self._children.append(proc)
        try:
            wait_for("tcpdump", lambda: "listening on" in err.read_text() or proc.poll(), 10.0)
            value: Any = action() if callable(action) else self.exec(node, action)
        finally:
            _settle(out)
            proc.send_signal(signal.SIGINT)
            if proc.wait(timeout=10) is None:
                proc.kill()
                raise LabTimeout("lab: tcpdump ignored SIGINT for 10s")
        text = out.read_text(errors="replace")
        return CaptureResult(parse_lines(text), text, pcap, value)


def _settle(path: Path, quiet: float = 0.15, limit: float = 1.0) -> None:
    """Wait until tcpdump's output has stopped growing for ``quiet`` seconds (at most
    ``limit``), so the last packets of a call are printed before tcpdump is stopped."""
    end = time.monotonic() + limit
    size, since = -1, time.monotonic()
    while time.monotonic() < end:
        now_size = path.stat().st_size
        if now_size != size:
            size, since = now_size, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        time.sleep(0.02)
