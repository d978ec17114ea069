"""Long fuzz run of the capture reader (outside the test suite): counts what it tried.

    .venv/bin/python bench/fuzz_trace.py [--examples 100000]

Same contract as tests/unit/test_trace_bad_input.py: every input either yields a report
or raises a one-line BadInputError; anything else is a bug and stops the run.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hypothesis import HealthCheck, given, settings  # noqa: E402
from tests.unit.test_trace_bad_input import _mutations  # noqa: E402

from meshpath.errors import BadInputError  # noqa: E402
from meshpath.trace import analyse  # noqa: E402

OUTCOMES: Counter[str] = Counter()


def check(data: bytes) -> None:
    try:
        report = analyse(data, name="fuzz")
    except BadInputError as exc:
        assert "\n" not in str(exc), str(exc)
        OUTCOMES["one-line error"] += 1
        return
    OUTCOMES["report"] += 1
    if report.skipped:
        OUTCOMES["report with noted skips"] += 1


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=100_000)
    args = parser.parse_args()
    run = settings(
        max_examples=args.examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )(given(_mutations())(check))
    start = time.perf_counter()
    run()
    total = OUTCOMES["report"] + OUTCOMES["one-line error"]
    print(f"{total} inputs in {time.perf_counter() - start:.0f} s: {dict(OUTCOMES)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
