"""The file edge of `meshpath trace`: open a capture and map it, never read it whole."""

from __future__ import annotations

import mmap
import os
import sys
from collections.abc import Iterable, Mapping
from functools import partial
from pathlib import Path
from typing import Final

from meshpath.errors import CaptureError
from meshpath.fsafe import open_regular, read_stream
from meshpath.ranges import DEFAULT_RANGES, CloudflareRanges
from meshpath.trace.analyse import analyse
from meshpath.trace.flows import Network
from meshpath.trace.model import Endpoint, TraceReport

# A file is mapped, never read whole, so it has no limit; standard input has to be read
# into memory: bounded, generously (the 200 MB captures of bench/README.md fit).
STDIN_LIMIT: Final = 256 << 20


def trace_file(
    path: Path,
    *,
    ranges: CloudflareRanges = DEFAULT_RANGES,
    target: Endpoint | None = None,
    max_examples: int = 10,
    iface_names: Mapping[int, str] | None = None,
    sources: Iterable[Network] | None = None,
) -> TraceReport:
    """Analyse the capture at ``path`` (``-`` = standard input) through an mmap."""
    run = partial(
        analyse,
        ranges=ranges,
        target=target,
        max_examples=max_examples,
        iface_names=iface_names,
        sources=sources,
    )
    if str(path) == "-":
        return run(_stdin(), name="<stdin>")
    try:
        handle = os.fdopen(open_regular(path), "rb")  # a FIFO or device is refused, unopened
    except OSError as exc:
        raise CaptureError(f"{path}: cannot open ({exc.strerror})") from exc
    with handle:
        size = os.fstat(handle.fileno()).st_size
        if size == 0:
            raise CaptureError(f"{path}: the file is empty")
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
            return run(view, name=str(path))


def _stdin() -> bytes:
    try:
        return read_stream(sys.stdin.buffer, STDIN_LIMIT)
    except OSError as exc:
        raise CaptureError(
            f"<stdin>: {exc.strerror}; save the capture to a file and pass its name"
        ) from exc
