"""What the host keeps on disk and runs (I/O edge, files only): for the doctor's WARP checks.

* Forwarding sysctls persisted in the files ``sysctl --system`` / systemd-sysctl apply at
  boot. Cloudflare's Mesh Linux guide writes
  ``/etc/sysctl.d/99-zzz-cloudflare-warp-connector.conf`` (older WARP Connector guides
  ``/etc/sysctl.d/99-warp-svc.conf``); a value set only with ``sysctl -w`` is lost at the
  next boot ("Make IP forwarding persistent",
  https://developers.cloudflare.com/mesh/best-practices/#make-ip-forwarding-persistent).
* The names of the processes whose network namespace is the one collected (``cloudflared``
  next to the connector, other VPN clients, a DNS server: Cloudflare's tips page).

A namespace shares the host's files, so the sysctl files are the host's even with --netns.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from meshpath.state.model import PersistedSysctl

# systemd-sysctl's search path (sysctl.d(5)), then procps' /etc/sysctl.conf.
SYSCTL_DIRS: Final = (
    "etc/sysctl.d",
    "run/sysctl.d",
    "usr/local/lib/sysctl.d",
    "usr/lib/sysctl.d",
    "lib/sysctl.d",
)
SYSCTL_CONF: Final = "etc/sysctl.conf"
_FORWARDING: Final = re.compile(r"^net\.ipv4\.ip_forward$|^net\.ipv[46]\.conf\.[^.]+\.forwarding$")


def parse_sysctl_conf(text: str) -> list[tuple[str, str]]:
    """``key = value`` lines of a sysctl.d file (``/`` separators allowed, ``-`` prefix
    meaning "ignore errors"), comments skipped; keys normalised to dots."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;" or "=" not in line:
            continue
        key, _sep, value = line.partition("=")
        key = key.strip().lstrip("-").replace("/", ".")
        out.append((key, value.strip()))
    return out


def forwarding_lines(path: str, text: str) -> list[PersistedSysctl]:
    return [
        PersistedSysctl(file=path, key=k, value=v)
        for k, v in parse_sysctl_conf(text)
        if _FORWARDING.match(k)
    ]


def sysctl_files(root: Path) -> Iterator[Path]:
    """The files in the order they are applied: by name across the directories (the
    first directory wins a name), then /etc/sysctl.conf."""
    chosen: dict[str, Path] = {}
    for rel in SYSCTL_DIRS:
        directory = root / rel
        if directory.is_dir():
            for path in sorted(directory.glob("*.conf")):
                chosen.setdefault(path.name, path)
    yield from (chosen[name] for name in sorted(chosen))
    conf = root / SYSCTL_CONF
    if conf.is_file():
        yield conf


def read_persisted_sysctls(root: Path = Path("/")) -> tuple[PersistedSysctl, ...]:
    out: list[PersistedSysctl] = []
    for path in sysctl_files(root):
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        out += forwarding_lines("/" + str(path.relative_to(root)), text)
    return tuple(out)


def _netns_inode(netns: str | None) -> int:
    where = f"/run/netns/{netns}" if netns else "/proc/self/ns/net"
    return os.stat(where).st_ino


def processes_in_netns(netns: str | None, proc: Path = Path("/proc")) -> tuple[str, ...]:
    """Sorted unique process names (``comm``) living in ``netns`` (or this namespace)."""
    want = _netns_inode(netns)
    names: set[str] = set()
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.stat(entry / "ns" / "net").st_ino != want:
                continue
            names.add((entry / "comm").read_text().strip())
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return tuple(sorted(names))
