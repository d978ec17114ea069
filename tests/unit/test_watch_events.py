"""Debouncing and the journal lines: pure, with the time passed in."""

from __future__ import annotations

import dataclasses

import pytest

from meshpath.watch.debounce import Debouncer
from meshpath.watch.evaluate import Evaluation, TargetState
from meshpath.watch.events import WARNING, line, logfmt, parse_logfmt, transition


def test_a_single_change_is_due_after_the_quiet_time() -> None:
    d = Debouncer(quiet=0.1, max_wait=0.5)
    assert d.deadline() is None and not d.due(100.0)
    d.event(10.0)
    assert not d.due(10.09) and d.due(10.1)


def test_a_burst_is_due_once_quiet_or_at_the_latest_after_max_wait() -> None:
    d = Debouncer(quiet=0.1, max_wait=0.5)
    for i in range(1000):  # a change every millisecond for a second: never quiet
        d.event(10.0 + i / 1000)
    assert d.deadline() == pytest.approx(10.5)
    d.take()
    assert d.deadline() is None
    d.event(11.0)
    d.event(11.05)
    assert d.deadline() == pytest.approx(11.15)


def ev(ok: bool, cause: str | None = None, broken: tuple[str, ...] = ()) -> Evaluation:
    targets = tuple(TargetState(t, False, "misrouted", "eth0") for t in broken)
    verdict = "PATH OK" if ok else f"PATH BROKEN: x [{cause}]"
    return Evaluation(ok, verdict, cause, targets, (), (), (), False, 0.0, 0.0)


def test_transitions_only_on_a_change_of_state() -> None:
    ok, broken = ev(True), ev(False, "MP101", ("10.0.1.50:3000",))
    assert transition(None, ok) is not None and transition(None, ok)[0] == "path_ok"  # type: ignore[index]
    assert transition(ok, ok) is None
    event, priority, fields = transition(ok, broken) or ("", 0, {})
    assert (event, priority) == ("path_broken", WARNING)
    assert fields["finding"] == "MP101" and fields["targets_broken"] == "10.0.1.50:3000"
    assert transition(broken, dataclasses.replace(broken, finished_at=5.0)) is None
    restored = transition(broken, ok)
    assert restored is not None and restored[0] == "path_restored"
    assert restored[2]["finding"] == "MP101"
    other = transition(broken, ev(False, "MP150"))
    assert other is not None and other[0] == "root_cause_changed"
    assert other[2]["was"] == "MP101"


def test_lines_are_logfmt_and_read_back() -> None:
    text = line("path_broken", 0.0, {"finding": "MP101", "verdict": 'PATH "BROKEN"\nx', "n": None})
    assert text.startswith("ts=1970-01-01T00:00:00.000Z event=path_broken finding=MP101 ")
    assert "\n" not in text and "n=" not in text
    assert parse_logfmt(text) == {
        "ts": "1970-01-01T00:00:00.000Z",
        "event": "path_broken",
        "finding": "MP101",
        "verdict": 'PATH "BROKEN"\nx',
    }


def test_under_systemd_lines_carry_a_priority() -> None:
    text = line("path_broken", 0.0, {}, WARNING, journal=True)
    assert text.startswith("<4>ts=")
    assert parse_logfmt(text)["event"] == "path_broken"


def test_logfmt_quotes_only_what_needs_it() -> None:
    assert logfmt({"a": "x", "b": "two words", "c": "", "d": 3}) == 'a=x b="two words" c="" d=3'
