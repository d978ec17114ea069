"""FRR's view through vtysh, when FRR runs for the host or for the namespace.

This is the one place that builds vtysh's argv and decodes its JSON (:func:`decode_show`);
:mod:`meshpath.state.frr` turns the documents into typed values. The applier's reads (the
wait for BGP), meshpath watch's poll and the lab go through the same functions.

FRR daemons started for a namespace with ``-N NS`` live in a pathspace: their vty sockets
are under ``/var/run/frr/NS/`` and vtysh reaches them with ``vtysh -N NS``. A daemon counts
as running when its ``<daemon>.vty`` socket accepts a connection (what vtysh itself needs).
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from meshpath.errors import MeshpathError
from meshpath.runner import Runner
from meshpath.state import frr as frr_state
from meshpath.state.model import FrrState
from meshpath.values import ifname_problem

FRR_RUN_DIR = Path("/var/run/frr")


def vtysh_base(netns: str | None, vty_dir: Path | None = None) -> list[str]:
    """``vtysh [-N NS | --vty_socket DIR]``: the argv every vtysh run starts with.

    ``-N NS`` is FRR's pathspace for daemons started with ``-N NS``; ``vty_dir`` is for
    daemons started with their own ``--vty_socket DIR`` (as the meshpath lab does).
    """
    if vty_dir is not None:
        return ["vtysh", "--vty_socket", str(vty_dir)]
    return ["vtysh", *(["-N", netns] if netns else [])]


def vtysh_argv(netns: str | None, command: str, vty_dir: Path | None = None) -> list[str]:
    """``vtysh [-N NS | --vty_socket DIR] -c COMMAND``."""
    return [*vtysh_base(netns, vty_dir), "-c", command]


def decode_show(command: str, text: str) -> tuple[dict[str, Any] | None, str | None]:
    """The JSON object a ``show ... json`` command printed, or None and why not."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None, f"{command}: not JSON: {text.strip()[:200]}"
    if not isinstance(value, dict):
        return None, f"{command}: expected a JSON object"
    return value, None


def decode_show_list(command: str, text: str) -> tuple[list[Any] | None, str | None]:
    """The JSON list a ``show ... json`` command printed (``show bfd peers json``), or None
    and why not (bfdd not running: vtysh prints nothing)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None, f"{command}: not JSON: {text.strip()[:200]}"
    if not isinstance(value, list):
        return None, f"{command}: expected a JSON list"
    return value, None


def running_daemons(run_dir: Path) -> tuple[str, ...]:
    """Daemons whose vty socket in ``run_dir`` accepts a connection, sorted."""
    if not run_dir.is_dir():
        return ()
    return tuple(sorted(p.stem for p in run_dir.glob("*.vty") if _accepts(p)))


def _accepts(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        try:
            sock.connect(str(path))
        except OSError:
            return False
    return True


def collect_frr(runner: Runner, netns: str | None, vty_dir: Path | None = None) -> FrrState:
    """FRR state: absent (no vtysh), not running, or the JSON of its show commands.

    FRR's vty sockets are looked for in ``vty_dir`` when given, else in FRR's default
    place for the namespace (``/var/run/frr/NS``) or the host (``/var/run/frr``).
    """
    if not runner.has("vtysh"):
        return FrrState(available=False)
    directory = vty_dir or (FRR_RUN_DIR / netns if netns else FRR_RUN_DIR)
    daemons = running_daemons(directory)
    if not daemons:
        return FrrState(available=True, running=False)
    return query_frr(runner, lambda command: vtysh_argv(netns, command, vty_dir), daemons)


def query_frr(
    runner: Runner, argv: Callable[[str], list[str]], daemons: tuple[str, ...]
) -> FrrState:
    """Run the show commands for the running daemons; failures are kept as error text."""
    errors: list[str] = []
    ip_route = _json(runner, argv, "show ip route json", errors) if "zebra" in daemons else None
    bgp = _json(runner, argv, "show bgp summary json", errors) if "bgpd" in daemons else None
    config = _text(runner, argv, "show running-config", errors)
    # staticd's IPv6 routes (meshpath's v6 fixes), asked only when the config has some
    v6_statics = "zebra" in daemons and "\nipv6 route " in f"\n{config or ''}"
    ipv6_route = _json(runner, argv, "show ipv6 route json", errors) if v6_statics else None
    advertised = _advertised(runner, argv, bgp, errors) if bgp is not None else None
    # The IPv6 unicast family's, for the peers it is activated with (meshpath's v6 ranges).
    advertised6 = _advertised(runner, argv, bgp, errors, 6) if bgp is not None else None
    # Why a session is down (the doctor's evidence); not asked when all are up: it is long.
    down = bgp is not None and any(not p.established for p in frr_state.bgp_peers(bgp))
    neighbors = _json(runner, argv, "show bgp neighbors json", errors) if down else None
    return FrrState(
        available=True,
        running=True,
        daemons=daemons,
        ip_route=ip_route,
        ipv6_route=ipv6_route,
        bgp_summary=bgp,
        running_config=config,
        bgp_advertised=advertised,
        error="; ".join(errors) or None,
        bgp_neighbors=neighbors,
        bgp_advertised6=advertised6 or None,
    )


def _text(
    runner: Runner, argv: Callable[[str], list[str]], command: str, errors: list[str]
) -> str | None:
    try:
        done = runner.run(argv(command), check=False, timeout=30)
    except MeshpathError as exc:
        errors.append(f"{command}: {exc}")
        return None
    if not done.ok:
        errors.append(f"{command}: {(done.stderr or done.stdout).strip() or done.returncode}")
        return None
    return done.stdout


def _json(
    runner: Runner, argv: Callable[[str], list[str]], command: str, errors: list[str]
) -> dict[str, Any] | None:
    text = _text(runner, argv, command, errors)
    if text is None:
        return None
    value, problem = decode_show(command, text)
    if problem is not None:
        errors.append(problem)
    return value


def bgp_peers(summary: dict[str, Any], family: int = 4) -> tuple[str, ...]:
    """The peer addresses of one unicast family in a `show bgp summary json`, sorted."""
    afi = frr_state.IPV4_UNICAST if family == 4 else frr_state.IPV6_UNICAST
    return tuple(sorted(p.address for p in frr_state.bgp_peers(summary, afi)))


def _one_word(peer: str) -> bool:
    """A peer key vtysh can take as one word of a command: an IP address (no zone) or, for
    an unnumbered session, an interface name (never holds blanks or newlines)."""
    try:
        ipaddress.ip_address(peer)
    except ValueError:
        return ifname_problem(peer) is None
    return "%" not in peer


def _advertised(
    runner: Runner,
    argv: Callable[[str], list[str]],
    summary: dict[str, Any],
    errors: list[str],
    family: int = 4,
) -> dict[str, Any]:
    """What each peer is sent: the doctor checks exactly the Cloudflare ranges go out."""
    out: dict[str, Any] = {}
    for peer in bgp_peers(summary, family):
        if not _one_word(peer):
            errors.append(f"BGP peer {peer!r}: not an address or interface; not queried")
            continue
        which = "ip bgp" if family == 4 else "bgp ipv6 unicast"
        command = f"show {which} neighbors {peer} advertised-routes json"
        out[peer] = _json(runner, argv, command, errors)
    return out
