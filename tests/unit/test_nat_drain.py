"""--replace-nat waits for masqueraded connections to end before NAT goes (issue 18)."""

from __future__ import annotations

from collections.abc import Sequence

from meshpath.apply.drain import CONNTRACK_PROC, wait_drained
from meshpath.fix.model import WaitNatDrain
from meshpath.runner import Completed, RecordedRunner
from meshpath.state.conntrack import open_translated
from tests.clock import Clock

SRC = ("100.64.0.0/12",)
# What /proc/net/nf_conntrack shows on the lab's connector: a masqueraded Worker
# connection, one closing, one in TIME_WAIT, an unmasqueraded one, one from the LAN, a UDP.
MASQ = (
    "ipv4     2 tcp      6 431999 ESTABLISHED src=100.64.12.189 dst=10.0.1.50 sport=41234 "
    "dport=3000 src=10.0.1.50 dst=10.0.1.2 sport=3000 dport=41234 [ASSURED] mark=0 zone=0 use=2"
)
FIN = MASQ.replace("431999 ESTABLISHED", "119 FIN_WAIT").replace("41234", "41236")
TIME_WAIT = MASQ.replace("431999 ESTABLISHED", "119 TIME_WAIT").replace("41234", "41235")
ROUTED = (
    "ipv4     2 tcp      6 431999 ESTABLISHED src=100.64.12.189 dst=10.0.1.50 sport=5000 "
    "dport=3000 src=10.0.1.50 dst=100.64.12.189 sport=3000 dport=5000 [ASSURED] mark=0 use=2"
)
LAN = (
    "ipv4     2 tcp      6 431999 ESTABLISHED src=10.0.1.7 dst=10.0.1.50 sport=6000 "
    "dport=3000 src=10.0.1.50 dst=10.0.1.2 sport=3000 dport=6000 [ASSURED] mark=0 use=2"
)
UDP = (
    "ipv4     2 udp      17 29 src=100.64.12.189 dst=10.0.1.50 sport=53 dport=53 "
    "src=10.0.1.50 dst=10.0.1.2 sport=53 dport=53 mark=0 use=2"
)
TABLE = "\n".join((MASQ, FIN, TIME_WAIT, ROUTED, LAN, UDP, "garbage line", "")) + "\n"


def test_open_translated_finds_only_open_masqueraded_tcp_from_the_sources() -> None:
    assert open_translated(TABLE, SRC) == [
        "100.64.12.189:41234 -> 10.0.1.50:3000 ESTABLISHED as 10.0.1.2",
        "100.64.12.189:41236 -> 10.0.1.50:3000 FIN_WAIT as 10.0.1.2",
    ]
    assert open_translated(TABLE, ("100.96.0.0/12",)) == []
    assert open_translated("", SRC) == []


class Table:
    """conntrack as it changes: one table per read (the last one repeats)."""

    def __init__(self, tables: Sequence[str]) -> None:
        self.tables = list(tables)
        self.reads = 0

    def __call__(self, argv: Sequence[str]) -> Completed:
        text = self.tables[min(self.reads, len(self.tables) - 1)]
        self.reads += 1
        return Completed(tuple(argv), 0, text, "")


def run_wait(tables: Sequence[str], timeout: float = 10.0) -> tuple[str, int, float]:
    table, clock = Table(tables), Clock()
    runner = RecordedRunner(answers={f"cat {CONNTRACK_PROC}": table})
    said = wait_drained(runner, WaitNatDrain(sources=SRC, timeout=timeout), clock, clock.sleep)
    return said, table.reads, clock.now


def test_the_wait_lasts_until_the_masqueraded_connection_ended() -> None:
    said, reads, _ = run_wait([TABLE, TABLE, ROUTED + "\n" + TIME_WAIT])
    assert reads == 3 and said.startswith("no masqueraded connection open")


def test_nothing_masqueraded_returns_at_the_first_read() -> None:
    said, reads, now = run_wait([ROUTED])
    assert (reads, now) == (1, 0.0) and "waited 0.00s" in said


def test_a_connection_that_never_ends_is_cut_after_the_timeout_and_named() -> None:
    said, _, now = run_wait([MASQ], timeout=1.0)
    assert 1.0 <= now < 1.1
    assert said.startswith("1 masqueraded connection(s) open after 1s, cut: 100.64.12.189:41234")


def test_an_unreadable_table_is_said_not_waited_for() -> None:
    runner = RecordedRunner()  # cat answers exit 127
    said = wait_drained(runner, WaitNatDrain(sources=SRC))
    assert said.startswith(f"{CONNTRACK_PROC} not readable") and said.endswith("not waited")
