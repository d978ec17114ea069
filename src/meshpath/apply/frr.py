"""FRR through vtysh and frr-reload.py (I/O edge): read, check, reload, wait."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from meshpath.collect.frr import decode_show, vtysh_base
from meshpath.errors import StepFailed as StepFailed  # re-exported: its old home
from meshpath.fix import frrfit
from meshpath.render import frr as frr_render
from meshpath.runner import Runner
from meshpath.state import frr as frr_state
from meshpath.values import parse_peer

# Tests inject a failing reload through the Runner (tests/faults.py rewrites this argv[0]).
FRR_RELOAD: Final = "/usr/lib/frr/frr-reload.py"
# FRR reports a BGP reset's age in whole seconds (see Frr._refused).
FRR_CLOCK_SLACK: Final = 1.0


def vtysh(netns: str | None, *args: str) -> list[str]:
    """``vtysh [-N NS] ARGS``: FRR for a namespace lives in the pathspace named after it."""
    return [*vtysh_base(netns), *args]


def reload_argv(netns: str | None, verb: str, conf: Path) -> list[str]:
    space = ["--pathspace", netns] if netns else []
    return [FRR_RELOAD, verb, *space, "--stdout", str(conf)]


def owned_lines(running: str, intent: frr_render.FrrIntent) -> set[tuple[str, ...]]:
    """The line keys of ``running`` that stripping meshpath's ``intent`` would remove."""
    blocks = frr_render.parse_blocks(running)
    kept = frr_render.strip_owned(blocks, intent, intent.owned_statics)
    return set(frr_render.line_keys(blocks) - frr_render.line_keys(kept))


@dataclass(frozen=True, slots=True)
class Frr:
    runner: Runner
    netns: str | None

    def running_config(self) -> str:
        return self.runner.run(vtysh(self.netns, "-c", "show running-config")).stdout

    def show_json(self, command: str) -> dict[str, Any]:
        done = self.runner.run(vtysh(self.netns, "-c", command), check=False)
        value, _problem = decode_show(command, done.stdout or "{}")
        return value or {}

    def desired(self, intent: frr_render.FrrIntent, remove: bool) -> str:
        running = self.running_config()
        if remove:
            return frr_render.strip_text(running, intent)
        return frr_render.merge_text(running, intent)

    def check(self, conf: Path) -> None:
        """FRR's own parser on the whole desired config; then frr-reload's dry run."""
        self.runner.run(vtysh(self.netns, "-C", "-f", str(conf)))
        self.runner.run(reload_argv(self.netns, "--test", conf), timeout=60)

    def reload(self, conf: Path) -> None:
        self.runner.run(reload_argv(self.netns, "--reload", conf), timeout=120)

    def confirm(self, intent: frr_render.FrrIntent, remove: bool) -> None:
        running = self.running_config()
        if remove:
            left = owned_lines(running, intent)
            if left:
                raise StepFailed(f"FRR still has meshpath's lines after reload: {sorted(left)[:3]}")
        elif not frrfit.is_applied(running, intent):
            raise StepFailed("frr-reload.py finished but meshpath's lines are not all running")

    def has_owned(self, intent: frr_render.FrrIntent) -> bool:
        """Whether FRR's running config still holds any of meshpath's lines for ``intent``."""
        return bool(owned_lines(self.running_config(), intent))

    def peer_state(self, peer: str) -> str | None:
        """The session's state, from whichever family lists the peer (a v6 peer with
        ``no bgp default ipv4-unicast`` is only in ipv6Unicast)."""
        summary = self.show_json("show bgp summary json")
        peers = [p for afi in frr_state.FAMILIES for p in frr_state.bgp_peers(summary, afi)]
        return next((p.state for p in peers if p.address == peer), None)

    def advertised(self, peer: str) -> frozenset[str]:
        """What ``peer`` is sent, IPv4 and IPv6 unicast together."""
        # The peer may come from a journal: parsed again before it reaches ``vtysh -c``
        # (which runs each line of a command as its own command).
        address = parse_peer(peer, "BGP peer")
        got: frozenset[str] = frozenset()
        for family in ("ipv4", "ipv6"):
            data = self.show_json(
                f"show bgp {family} unicast neighbors {address} advertised-routes json"
            )
            got |= frr_state.advertised_routes(data) or frozenset()
        return got

    def last_reset(self, peer: str) -> frr_state.PeerReset | None:
        address = parse_peer(peer, "BGP peer")  # see advertised(): it reaches vtysh -c
        return frr_state.last_reset(self.show_json(f"show bgp neighbors {address} json"), peer)

    def wait(
        self,
        peer: str,
        prefixes: tuple[str, ...],
        timeout: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> str:
        """Poll until Established and exactly ``prefixes`` advertised; StepFailed on timeout,
        or at once when the peer and we refused each other's OPEN since the wait began."""
        started = clock()
        deadline = started + timeout
        want = frozenset(prefixes)
        state: str | None = None
        got: frozenset[str] = frozenset()
        while True:
            state = self.peer_state(peer)
            if state == "Established":
                got = self.advertised(peer)
                if got == want:
                    return f"{peer} Established, advertised {', '.join(sorted(got))}"
            else:
                self._refused(peer, clock() - started)
            if clock() >= deadline:
                raise StepFailed(
                    f"BGP with {peer} not ready after {timeout:g}s: state {state}, "
                    f"advertised {sorted(got)}, want {sorted(want)}"
                )
            sleep(0.2)

    def _refused(self, peer: str, waited: float) -> None:
        """StepFailed when the session's last reset, since the wait began, was an OPEN
        error (a wrong --asn/--peer-asn, the peer not configured for our AS): the timeout
        would only delay the rollback. An older reset says nothing about the new config;
        FRR counts the age in whole seconds (``lastResetTimerMsecs`` is a multiple of 1000,
        rounded either way against our clock), hence a second's slack: a reset that old is
        from the reload this wait follows, the new config's own."""
        reset = self.last_reset(peer)
        if reset is None or not reset.open_refused or reset.age is None:
            return
        if reset.age > waited + FRR_CLOCK_SLACK:
            return
        raise StepFailed(
            f"BGP with {peer}: {reset.due_to} ({reset.reason or 'OPEN Message Error'}, "
            f"NOTIFICATION {reset.code}/{reset.subcode}); the session will not come up "
            "until the AS numbers (--asn, --peer-asn) or the peer's neighbor configuration "
            "agree"
        )
