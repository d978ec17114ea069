"""Cloudflare WARP client state via ``warp-cli`` (when installed), parsed leniently.

What is asked, and the formats parsed (recorded samples with their sources live in
``tests/data/warp/``, see its SOURCES file):

* ``warp-cli status``: ``Status update: Connected`` (Cloudflare's Mesh Linux guide,
  https://developers.cloudflare.com/mesh/guides/run-mesh-on-linux/), or
  ``Status update: Disconnected`` / ``Reason: ...``; older clients print ``Status: ...``.
* ``warp-cli tunnel ip list`` (clients since 2024): a heading ``Excluded routes:`` or
  ``Included routes:`` and one indented entry a line, an annotation in parentheses after
  it (``192.0.2.1/32 (CLI exclude)``).
* ``warp-cli settings`` (every client): ``(network policy)  Exclude mode, with hosts/ips:``
  followed by indented entries, as in Cloudflare's troubleshooting guide's
  ``warp-settings.txt`` example; also the ``Mode:`` line. Used when ``tunnel ip list`` is
  missing (older clients) or fails.
* ``warp-cli registration show``: which kind of registration (a Mesh node / WARP
  Connector, or a user device), or none.
* ``warp-cli --version``.

A failing sub-command never fails the collection: what could not be read stays None.
"""

from __future__ import annotations

import re

import msgspec

from meshpath.errors import MeshpathError
from meshpath.runner import Completed, Runner
from meshpath.state.model import SplitEntry, WarpState

STATUS_ARGV = ("warp-cli", "--accept-tos", "status")
SETTINGS_ARGV = ("warp-cli", "--accept-tos", "settings")
TUNNEL_IP_ARGV = ("warp-cli", "--accept-tos", "tunnel", "ip", "list")
REGISTRATION_ARGV = ("warp-cli", "--accept-tos", "registration", "show")
VERSION_ARGV = ("warp-cli", "--version")
_STATUS = re.compile(r"^\s*Status(?: update)?:\s*(.+?)\s*$", re.MULTILINE | re.IGNORECASE)
_MODE = re.compile(r"^[^\n]*?\bMode:\s*(.+?)\s*$", re.MULTILINE | re.IGNORECASE)
_SPLIT_HEAD = re.compile(
    r"^(?:\([^)]*\)\s*)?(?P<mode>Exclude|Include)(?:d routes| mode, with hosts/ips):",
    re.IGNORECASE,
)
_ANNOTATION = re.compile(r"^(?P<value>\S+)(?:\s+\((?P<note>[^)]*)\))?")
_VERSION = re.compile(r"(\d{4}\.\d+\.\d+(?:\.\d+)?)")


def collect_warp(runner: Runner) -> WarpState:
    """warp-cli status, split tunnels, registration; absent -> available=False."""
    if not runner.has("warp-cli"):
        return WarpState(available=False)
    try:
        status = runner.run(STATUS_ARGV, check=False, timeout=15)
        settings = runner.run(SETTINGS_ARGV, check=False, timeout=15)
        listing = runner.run(TUNNEL_IP_ARGV, check=False, timeout=15)
        registration = runner.run(REGISTRATION_ARGV, check=False, timeout=15)
        version = runner.run(VERSION_ARGV, check=False, timeout=15)
    except MeshpathError as exc:
        return WarpState(available=True, error=str(exc))
    raw = f"{status.stdout}\n{settings.stdout}".strip()
    error = None
    if not status.ok:
        error = f"warp-cli status: {status.stderr.strip() or status.stdout.strip()}"
    state = parse_warp(raw, error)
    split = parse_split_list(_ok(listing)) or parse_split_list(_ok(settings))
    return msgspec.structs.replace(
        state,
        split_mode=split[0] if split else None,
        split_entries=split[1] if split else None,
        registration=parse_registration(_ok(registration), state.status or ""),
        version=parse_version(_ok(version)),
    )


def _ok(done: Completed) -> str:
    return done.stdout if done.ok else ""


def parse_warp(raw: str, error: str | None = None) -> WarpState:
    """Status ('Connected', 'Disconnected', ...) and mode from warp-cli's text output."""
    status = _STATUS.search(raw)
    mode = _MODE.search(raw)
    return WarpState(
        available=True,
        status=status.group(1) if status else None,
        mode=mode.group(1) if mode else None,
        raw=raw or None,
        error=error,
    )


def parse_split_list(text: str) -> tuple[str, tuple[SplitEntry, ...]] | None:
    """(mode, entries) from ``tunnel ip list`` or ``settings`` output; None if absent.

    The block starts at its heading and ends at the next line that is not indented
    (``settings`` continues with ``(network policy)  Fallback domains:`` and the like).
    Cloudflare's own example elides entries with a bare ``...`` line: skipped.
    """
    mode: str | None = None
    entries: list[SplitEntry] = []
    for line in text.splitlines():
        head = _SPLIT_HEAD.match(line.strip())
        if mode is None:
            if head is not None:
                mode = head.group("mode").lower()
            continue
        if line.strip() and not line[:1].isspace() and line.strip() != "...":
            break
        entry = _entry(line.strip())
        if entry is not None:
            entries.append(entry)
    return (mode, tuple(entries)) if mode is not None else None


def _entry(text: str) -> SplitEntry | None:
    if not text or text == "..." or text.startswith("#"):
        return None
    found = _ANNOTATION.match(text)
    if found is None:  # pragma: no cover - \S+ always matches a non-empty stripped line
        return None
    return SplitEntry(value=found.group("value"), note=found.group("note"))


def parse_registration(text: str, status: str) -> str | None:
    """'connector', 'device', 'missing' or None (cannot tell)."""
    blob = f"{text}\n{status}".lower()
    if "registration missing" in blob or "missing registration" in blob:
        return "missing"
    if "warp_connector@" in blob or "connector" in blob:
        return "connector"
    if "device id" in blob or "account type" in blob:
        return "device"
    return None


def parse_version(text: str) -> str | None:
    found = _VERSION.search(text)
    return found.group(1) if found else None
