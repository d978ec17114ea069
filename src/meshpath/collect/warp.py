"""Cloudflare WARP client state via ``warp-cli`` (when installed), parsed leniently."""

from __future__ import annotations

import re

from meshpath.errors import MeshpathError
from meshpath.runner import Runner
from meshpath.state.model import WarpState

STATUS_ARGV = ("warp-cli", "--accept-tos", "status")
SETTINGS_ARGV = ("warp-cli", "--accept-tos", "settings")
_STATUS = re.compile(r"^\s*Status(?: update)?:\s*(.+?)\s*$", re.MULTILINE | re.IGNORECASE)
_MODE = re.compile(r"^[^\n]*?\bMode:\s*(.+?)\s*$", re.MULTILINE | re.IGNORECASE)


def collect_warp(runner: Runner) -> WarpState:
    """warp-cli status and settings; absent -> available=False; failures kept as error."""
    if not runner.has("warp-cli"):
        return WarpState(available=False)
    try:
        status = runner.run(STATUS_ARGV, check=False, timeout=15)
        settings = runner.run(SETTINGS_ARGV, check=False, timeout=15)
    except MeshpathError as exc:
        return WarpState(available=True, error=str(exc))
    raw = f"{status.stdout}\n{settings.stdout}".strip()
    error = None
    if not status.ok:
        error = f"warp-cli status: {status.stderr.strip() or status.stdout.strip()}"
    return parse_warp(raw, error)


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
