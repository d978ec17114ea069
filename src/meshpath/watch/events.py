"""The journal lines of ``meshpath watch``: one structured line per state change (pure).

Lines are logfmt (``key=value``, values quoted when they need it), so ``journalctl -u
meshpath-watch`` reads as text and ``journalctl ... | grep event=path_broken`` or a log
shipper's logfmt parser gets the fields. Under systemd (``JOURNAL_STREAM`` set) each line
starts with a ``<N>`` syslog priority so ``journalctl -p warning`` finds a broken path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from meshpath.watch.evaluate import Evaluation

# The id of a --json event line (meshpath.schemas: "watch-event"); kept here, a literal, so the
# pure core does not import the CLI's schema registry.
WATCH_EVENT_SCHEMA: Final = "meshpath/watch-event/1"

# sd-daemon(3) priority prefixes.
ERR: Final = 3
WARNING: Final = 4
NOTICE: Final = 5
INFO: Final = 6


def timestamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


def _value(value: object) -> str:
    text = str(value)
    if text and not any(c in text for c in ' "=\\\n\t'):
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def logfmt(fields: Mapping[str, object]) -> str:
    """``k=v k2="v 2"``; None values are left out."""
    return " ".join(f"{k}={_value(v)}" for k, v in fields.items() if v is not None)


def line(
    event: str,
    when: float,
    fields: Mapping[str, object],
    priority: int = INFO,
    journal: bool = False,
    as_json: bool = False,
) -> str:
    """One log line for ``event`` at ``when`` (epoch seconds): logfmt, or with ``as_json``
    (``meshpath watch --json``) one JSON object per line (schema ``meshpath/watch-event``)."""
    record = {"ts": timestamp(when), "event": event, **fields}
    if as_json:
        doc = {"schema": WATCH_EVENT_SCHEMA, **{k: v for k, v in record.items() if v is not None}}
        text = json.dumps(doc, default=str)
    else:
        text = logfmt(record)
    return f"<{priority}>{text}" if journal else text


def _broken_targets(ev: Evaluation) -> str | None:
    broken = [t.target for t in ev.targets if not t.ok]
    return ",".join(broken) or None


def transition(
    previous: Evaluation | None, current: Evaluation
) -> tuple[str, int, dict[str, object]] | None:
    """The state change from ``previous`` to ``current`` as (event, priority, fields), or
    None when the path's state and root cause are what they were.

    The first evaluation gives ``path_ok`` or ``path_broken`` (the state at start); later,
    ``path_broken`` / ``path_restored`` when the verdict flips and ``root_cause_changed``
    when it stays broken for another reason.
    """
    fields: dict[str, object] = {
        "finding": current.root_cause,
        "verdict": current.verdict,
        "targets_broken": _broken_targets(current),
    }
    if previous is None:
        return ("path_ok", INFO, fields) if current.ok else ("path_broken", WARNING, fields)
    if previous.ok and not current.ok:
        return "path_broken", WARNING, fields
    if not previous.ok and current.ok:
        return "path_restored", NOTICE, {"finding": previous.root_cause, "verdict": current.verdict}
    if not current.ok and previous.root_cause != current.root_cause:
        return "root_cause_changed", WARNING, {**fields, "was": previous.root_cause}
    return None


_TOKEN = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')


def parse_logfmt(text: str) -> dict[str, str]:
    """The fields of one :func:`line` (without its ``<N>`` priority prefix)."""
    text = re.sub(r"^<\d>", "", text.strip())
    out = {}
    for key, raw in _TOKEN.findall(text):
        if raw.startswith('"'):
            raw = re.sub(r"\\(.)", lambda m: "\n" if m[1] == "n" else m[1], raw[1:-1])
        out[key] = raw
    return out
