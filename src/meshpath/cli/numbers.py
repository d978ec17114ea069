"""Number options, parsed strictly at the CLI (pure).

Click's own ``float`` accepts ``nan``, ``inf`` and ``1_0``, and its ``int`` accepts
``1_000``, ``+5`` and non-ASCII digits: a ``--bgp-timeout nan`` then waited forever
holding the lock and was journaled as ``null``. Every number option of every command goes
through these parsers instead (``typer.Option(..., parser=numbers.seconds(...))``): plain
ASCII decimal text, finite, inside documented bounds, else a one-line
:class:`BadInputError` (exit 2) naming the option and the value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Final

from meshpath.errors import BadInputError

_INT: Final = re.compile(r"[0-9]+")
_FLOAT: Final = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")

# Seconds meshpath waits for a BGP session; FRR's connect-retry is 120 s, an hour is ample.
BGP_TIMEOUT_MAX: Final = 3600.0
# One request to Cloudflare's API, or waiting for WARP to apply a profile: minutes at most.
API_TIMEOUT_MAX: Final = 600.0
# meshpath watch's poll, refresh and calm periods: a day is the longest that makes sense.
WATCH_SECONDS_MAX: Final = 86400.0
# Flows shown per verdict by ``trace`` (the rest are counted).
MAX_FLOWS_MAX: Final = 100_000


def seconds(option: str, high: float, zero: bool = False) -> Callable[[object], float]:
    """A parser for ``option``: seconds, ``0 < N <= high`` (``0 <= N`` with ``zero``, for
    an option whose command refuses 0 itself only when it would use the value)."""
    low = "0 <=" if zero else "0 <"

    def parse(value: object) -> float:
        text = str(value)
        number = float(text) if _FLOAT.fullmatch(text) else math.nan
        if not (math.isfinite(number) and (number > 0 or zero) and number <= high):
            raise BadInputError(f"{option} {_shown(text)}: expected seconds, {low} N <= {high:g}")
        return number

    parse.__name__ = "seconds"
    return parse


def integer(option: str, low: int, high: int, what: str = "an integer") -> Callable[[object], int]:
    """A parser for ``option``: a plain decimal integer, ``low <= N <= high``."""

    def parse(value: object) -> int:
        text = str(value)
        number = int(text) if _INT.fullmatch(text) and len(text) <= 20 else None
        if number is None or not low <= number <= high:
            raise BadInputError(f"{option} {_shown(text)}: expected {what} {low}..{high}")
        return number

    parse.__name__ = "integer"
    return parse


def _shown(text: str) -> str:
    """The value as typed, kept to one short line for the error message."""
    short = text if len(text) <= 40 else text[:40] + "..."
    return short if short.isprintable() and short.strip() == short and short else repr(short)
