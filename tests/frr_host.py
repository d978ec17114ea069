"""Real FRR daemons in a namespace of the caller's own: the merge checked by FRR itself.

Used by tests/lab/test_frr_merge_real.py and bench/frr_topotests.py. One namespace
(``mpt-frr-<pid>-<n>``) with zebra, staticd and bgpd (and whichever other daemons are
asked for) started the way the lab starts them (FACTS.md: per-namespace paths under
``/var/run/frr/NS``); everything is stopped and removed on exit, also on failure.

:func:`round_trip` is the promise the issue names, on one config: load it (FRR normalises
it), plan meshpath's merge on the running config, ``vtysh -C`` and ``frr-reload.py --test``
the desired text, reload it, check meshpath's lines are running and every user line is
kept, roll back with the stripped text, and compare the running config with the original,
byte for byte.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from meshpath.apply.frr import Frr
from meshpath.fix import frrfit
from meshpath.fsafe import atomic_write, ensure_dir, remove_inside
from meshpath.lab import frr as lab_frr
from meshpath.lab.procs import FRR_RUN_DIR, frr_pathspace, kill_in_namespaces, wait_for
from meshpath.render import frr
from meshpath.runner import SubprocessRunner, netns_argv

BASE_DAEMONS = ("zebra", "staticd", "bgpd")
_COUNT = itertools.count()
PEER = "192.0.2.254"  # meshpath's peer in these checks: never configured by a topotest


@dataclass(frozen=True, slots=True)
class FrrHost:
    ns: str
    frr: Frr
    workdir: Path

    def running(self) -> str:
        return self.frr.running_config()

    def write(self, name: str, text: str) -> Path:
        path = self.workdir / name
        atomic_write(path, text.encode(), mode=0o644)
        return path

    def load(self, text: str) -> str:
        """Make ``text`` the running config (frr-reload.py --reload); FRR's rendering of it."""
        lines = frr.config_lines(text)  # a saved running config starts with vtysh's banner
        self.frr.reload(self.write("load.conf", "\n".join(lines) + "\n"))
        return self.running()


def _sh(argv: Sequence[str]) -> None:
    subprocess.run(argv, check=True, capture_output=True)  # noqa: S603 - argv list


@contextmanager
def frr_host(daemons: Sequence[str] = BASE_DAEMONS) -> Iterator[FrrHost]:
    """A namespace with FRR daemons running; all of it gone afterwards."""
    ns = f"mpt-frr-{os.getpid()}-{next(_COUNT)}"
    rundir = frr_pathspace(ns)
    workdir = Path(tempfile.mkdtemp(prefix="meshpath-frr-"))
    _sh(["ip", "netns", "add", ns])
    try:
        _sh(netns_argv(ns, ["ip", "link", "set", "lo", "up"]))
        ensure_dir(rundir, 0o755, owner=("frr", "frr"))
        for daemon in daemons:
            conf = rundir / f"{daemon}.conf"
            atomic_write(conf, f"hostname {ns}\n".encode(), mode=0o644)
            argv = lab_frr.daemon_argv(daemon, str(conf), str(rundir))
            _sh(netns_argv(ns, argv))
        host = FrrHost(ns, Frr(SubprocessRunner(), ns), workdir)
        wait_for(f"FRR in {ns}", lambda: _answers(host, daemons), 15.0)
        yield host
    finally:
        kill_in_namespaces([ns])
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        remove_inside(FRR_RUN_DIR, ns)
        remove_inside(workdir.parent, workdir.name)


def _answers(host: FrrHost, daemons: Sequence[str]) -> bool:
    done = host.frr.runner.run(["vtysh", "-N", host.ns, "-c", "show daemons"], check=False)
    return done.ok and all(d in done.stdout for d in daemons)


@dataclass(frozen=True, slots=True)
class RoundTrip:
    """What one config went through; ``problem`` None when every promise held."""

    name: str
    problem: str | None
    seconds: float
    loaded: bool = True  # FRR itself took the config (topotests follow FRR's master)


V4_ONLY = ("100.64.0.0/12",)


def intent_for(running: str, peer: str = PEER, statics: tuple[str, ...] = V4_ONLY) -> frr.FrrIntent:
    """meshpath's bgp intent for a host running ``running``: its own ASN, a new peer."""
    blocks = frr.parse_blocks(running)
    asn = frr.bgp_asn_of(blocks)
    have = frr.line_keys(blocks)
    owned = tuple(p for p in statics if (frr.static_line(p, "CloudflareWARP"),) not in have)
    intent = frr.FrrIntent(
        tunnel="CloudflareWARP",
        statics=statics,
        advertise=statics,
        asn=asn or 65001,
        peer=peer,
        bgp_created=asn is None,
        owned_statics=owned,
    )
    return frrfit.compose(running, intent)


def round_trip(
    host: FrrHost, name: str, text: str, peer: str = PEER, statics: tuple[str, ...] = V4_ONLY
) -> RoundTrip:
    start = time.monotonic()
    try:
        original = host.load(text)
    except Exception as exc:  # noqa: BLE001 - FRR refusing the input is not meshpath's
        return RoundTrip(name, _short(exc), round(time.monotonic() - start, 2), loaded=False)
    try:
        problem = _round_trip(host, original, peer, statics)
    except Exception as exc:  # noqa: BLE001 - one config's failure is a result, not a crash
        problem = _short(exc)
    return RoundTrip(name, problem, round(time.monotonic() - start, 2))


def _short(exc: Exception) -> str:
    """One line: the error's last words that are not vtysh's pathspace warning."""
    text = getattr(exc, "stderr", None) or str(exc)
    lines = [ln for ln in text.splitlines() if ln.strip() and "Can't open configuration" not in ln]
    return f"{type(exc).__name__}: {' '.join(' '.join(lines[-3:]).split())[:300]}"


def _round_trip(host: FrrHost, original: str, peer: str, statics: tuple[str, ...]) -> str | None:
    intent = intent_for(original, peer, statics)
    desired = frr.merge_text(original, intent)
    user = frr.line_keys(frr.parse_blocks(original))
    lost = user - frr.line_keys(frr.parse_blocks(desired))
    if lost:
        return f"user lines lost: {sorted(lost)[:3]}"
    conf = host.write("desired.conf", desired)
    host.frr.check(conf)  # vtysh -C, frr-reload.py --test
    host.frr.reload(conf)
    applied = host.running()
    if not frrfit.is_applied(applied, intent):
        missing = frr.line_keys(frr.intent_blocks(intent)) - frr.line_keys(
            frr.parse_blocks(applied)
        )
        return f"meshpath's lines not running after reload: {sorted(missing)[:3]}"
    gone = user - frr.line_keys(frr.parse_blocks(applied))
    if gone:
        return f"user lines gone after reload: {sorted(gone)[:3]}"
    back = host.write("rollback.conf", frr.strip_text(applied, intent))
    host.frr.check(back)
    host.frr.reload(back)
    after = host.running()
    if after != original:
        return "rollback differs: " + _first_difference(original, after)
    return None


def _first_difference(a: str, b: str) -> str:
    for x, y in itertools.zip_longest(a.splitlines(), b.splitlines(), fillvalue="<none>"):
        if x != y:
            return f"{x!r} became {y!r}"
    return "?"
