"""The bgp fix's FRR merge over FRR's own topotests configs (issue #12).

    .venv/bin/python bench/frr_topotests.py DIR [--daemons-limit N] [--daemons zebra,...]

DIR holds bgpd.conf / frr.conf files taken from FRRouting/frr ``tests/topotests`` (see
bench/README.md for the commit; ``git cat-file`` them out of a clone). Two passes:

1. **text** (every file, no root): meshpath's merge for a new peer and, where the config
   has neighbours, for its first neighbour as the peer; held: every user line kept,
   meshpath's lines present, stripping gives the user's config back, and a refusal is a
   one-line ``BadInputError`` (never a traceback).
2. **daemons** (root; the first N files, or all): each config loaded into real FRR daemons
   in a namespace of this run's own (FRR normalises it), then the full round trip of
   tests/frr_host.py: ``vtysh -C`` and ``frr-reload.py --test`` of the desired text,
   ``--reload``, meshpath's lines running and the user's kept, rollback, and the running
   config equal to the original byte for byte. Configs FRR itself refuses (topotests
   follow FRR's master; this host runs 8.4.4) are counted apart.
"""

from __future__ import annotations

import argparse
import re
import signal
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.frr_host import PEER, frr_host, intent_for, round_trip  # noqa: E402

from meshpath.errors import BadInputError  # noqa: E402
from meshpath.fix import frrfit
from meshpath.render import frr  # noqa: E402

_NEIGHBOR = re.compile(r"^\s*neighbor (\d+\.\d+\.\d+\.\d+) remote-as ", re.M)


def text_pass(files: list[Path]) -> int:
    counts: Counter[str] = Counter()
    notes: list[str] = []
    for path in files:
        text = path.read_text(errors="replace")
        first = _NEIGHBOR.search(text)
        for peer in (PEER, first.group(1) if first else None):
            if peer is None:
                continue
            kind, note = _check_text(text, peer)
            counts[kind] += 1
            if note:
                notes.append(f"{path.name} (peer {peer}): {note}")
    print(f"text: {len(files)} configs, {sum(counts.values())} merges: {dict(counts)}")
    for note in notes[:25]:
        print(f"  {note}")
    return counts["lost"] + counts["strip differs"] + counts["not applied"] + counts["crash"]


def _check_text(text: str, peer: str) -> tuple[str, str | None]:
    try:
        intent = intent_for(text, peer)
        merged = frr.merge_text(text, intent)
    except BadInputError as exc:
        return "refused (one line)", str(exc) if "\n" in str(exc) else None
    except Exception as exc:  # noqa: BLE001 - what this pass looks for
        return "crash", f"{type(exc).__name__}: {exc}"
    user = frr.line_keys(frr.parse_blocks(text))
    if not user <= frr.line_keys(frr.parse_blocks(merged)):
        return "lost", str(sorted(user - frr.line_keys(frr.parse_blocks(merged)))[:2])
    if not frrfit.is_applied(merged, intent):
        return "not applied", None
    if frr.line_keys(frr.parse_blocks(frr.strip_text(merged, intent))) != user:
        return "strip differs", None
    return "kept, applied, stripped back", None


def daemon_pass(files: list[Path], daemons: list[str]) -> int:
    counts: Counter[str] = Counter()
    problems: list[str] = []
    took: list[float] = []
    for path in files:
        with frr_host(daemons) as host:  # fresh per config: nothing carries over
            result = round_trip(host, path.name, path.read_text(errors="replace"))
        if not result.loaded:
            counts["FRR 8.4.4 refuses the config itself"] += 1
            continue
        took.append(result.seconds)
        if result.problem is None:
            counts["round trip held"] += 1
        else:
            counts["failed"] += 1
            problems.append(f"{path.name}: {result.problem}")
    mean = sum(took) / len(took) if took else 0.0
    print(f"daemons ({','.join(daemons)}): {len(files)} configs: {dict(counts)}; "
          f"{mean:.2f} s per round trip")  # fmt: skip
    for line in problems[:25]:
        print(f"  {line}")
    return counts["failed"]


def _stop(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through frr_host(): daemons and namespace go


def main() -> int:
    signal.signal(signal.SIGTERM, _stop)
    parser = argparse.ArgumentParser()
    parser.add_argument("dir", type=Path)
    parser.add_argument("--daemons-limit", type=int, default=0, help="0: every file")
    parser.add_argument("--every", type=int, default=1, help="daemons pass: every Nth file")
    parser.add_argument("--daemons", default="zebra,staticd,bgpd")
    parser.add_argument("--skip-daemons", action="store_true")
    args = parser.parse_args()
    files = sorted(p for p in args.dir.iterdir() if p.is_file())
    start = time.perf_counter()
    bad = text_pass(files)
    print(f"  ({time.perf_counter() - start:.1f} s)")
    if not args.skip_daemons:
        chosen = files[:: args.every]
        chosen = chosen[: args.daemons_limit] if args.daemons_limit else chosen
        start = time.perf_counter()
        bad += daemon_pass(chosen, args.daemons.split(","))
        print(f"  ({time.perf_counter() - start:.0f} s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
