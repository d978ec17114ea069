"""The file edge of `meshpath trace`: open a capture and map it, never read it whole."""

from __future__ import annotations

import mmap
import os
import sys
from collections.abc import Mapping
from functools import partial
from pathlib import Path

from meshpath.errors import CaptureError
from meshpath.ranges import DEFAULT_RANGES, CloudflareRanges
from meshpath.trace.analyse import analyse
from meshpath.trace.model import Endpoint, TraceReport


def trace_file(
    path: Path,
    *,
    ranges: CloudflareRanges = DEFAULT_RANGES,
    target: Endpoint | None = None,
    max_examples: int = 10,
    iface_names: Mapping[int, str] | None = None,
) -> TraceReport:
    """Analyse the capture at ``path`` (``-`` = standard input) through an mmap."""
    run = partial(
        analyse, ranges=ranges, target=target, max_examples=max_examples, iface_names=iface_names
    )
    if str(path) == "-":
        return run(sys.stdin.buffer.read(), name="<stdin>")
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise CaptureError(f"{path}: cannot open ({exc.strerror})") from exc
    with handle:
        size = os.fstat(handle.fileno()).st_size
        if size == 0:
            raise CaptureError(f"{path}: the file is empty")
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
            return run(view, name=str(path))
