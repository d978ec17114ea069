"""``meshpath watch --install-unit``: a hardened systemd unit for the watch service.

:func:`render_unit` is pure; :func:`install_unit` writes it atomically under ``--root``,
refusing a path that resolves outside the root (a symlinked ``etc``) and a file of the same
name that meshpath did not write.

What the service needs, and so all it gets: ``CAP_NET_ADMIN`` (nft and netlink: reading the
ruleset, joining the nftables group, the keeper's ``ip route``/``nft -f``) and, only with
``--netns``, ``CAP_SYS_ADMIN`` (entering the namespace: setns, and ``ip netns exec``'s
mounts). It stays uid 0 so it can write ``/var/lib/meshpath`` (its journals) and reach
FRR's vty sockets (also via the ``frrvty`` group when it exists); everything else is
read-only (``ProtectSystem=strict``) or hidden.
"""

from __future__ import annotations

import grp
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from meshpath.errors import BadInputError

UNIT_NAME: Final = "meshpath-watch.service"
UNIT_DIR: Final = "etc/systemd/system"
MARKER: Final = "# meshpath: meshpath watch as a service"
DEFAULT_STATE_DIR: Final = "/var/lib/meshpath"


@dataclass(frozen=True, slots=True)
class UnitOptions:
    argv: tuple[str, ...]  # ExecStart: the full meshpath watch command
    state_dir: str = DEFAULT_STATE_DIR
    textfile: str | None = None
    netns: str | None = None
    loopback_only: bool = True  # the metrics listener is on a loopback address
    frr_group: str | None = None  # FRR's vty group, when it exists on this host


def quote(arg: str) -> str:
    """One ExecStart word (systemd splits on spaces and honours double quotes)."""
    if any(c in arg for c in "\n\r"):
        raise BadInputError(f"argument {arg!r}: a systemd unit cannot hold a newline")
    if arg and not any(c in arg for c in " \"'\\;$%"):
        return arg
    escaped = arg.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    return f'"{escaped}"'


def _state_lines(state_dir: str) -> list[str]:
    if state_dir == DEFAULT_STATE_DIR:
        return ["StateDirectory=meshpath", "StateDirectoryMode=0700"]
    return [f"ReadWritePaths=-{quote(state_dir)}"]


def _sandbox(opts: UnitOptions) -> list[str]:
    caps = "CAP_NET_ADMIN" + (" CAP_SYS_ADMIN" if opts.netns else "")
    lines = [
        f"CapabilityBoundingSet={caps}",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "PrivateDevices=yes",
        "ProtectKernelModules=yes",
        "ProtectKernelLogs=yes",
        "ProtectControlGroups=yes",
        "ProtectClock=yes",
        "ProtectHostname=yes",
        "ProtectProc=invisible",
        "RestrictRealtime=yes",
        "RestrictSUIDSGID=yes",
        "LockPersonality=yes",
        "SystemCallArchitectures=native",
        "UMask=0077",
        "RestrictAddressFamilies=AF_UNIX AF_NETLINK AF_INET AF_INET6",
    ]
    if opts.netns:  # ip netns exec unshares a mount namespace and mounts /sys
        lines += ["RestrictNamespaces=mnt net", "SystemCallFilter=@system-service @mount"]
    else:
        lines += ["ProtectKernelTunables=yes", "RestrictNamespaces=yes"]
        lines += ["SystemCallFilter=@system-service"]
    if opts.loopback_only:  # the only IP traffic is a local Prometheus scraping us
        lines += ["IPAddressDeny=any", "IPAddressAllow=localhost"]
    if opts.frr_group:
        lines.append(f"SupplementaryGroups={opts.frr_group}")
    return lines


def render_unit(opts: UnitOptions) -> str:
    paths = _state_lines(opts.state_dir)
    if opts.textfile:
        paths.append(f"ReadWritePaths={quote(opts.textfile)}")
    lines = [
        MARKER,
        "[Unit]",
        "Description=meshpath watch: the Worker return path's health as metrics",
        "Wants=network-online.target",
        "After=network-online.target frr.service",
        "",
        "[Service]",
        "Type=simple",
        "ExecStart=" + " ".join(quote(a) for a in opts.argv),
        "Restart=on-failure",
        "RestartSec=5s",
        *paths,
        *_sandbox(opts),
        "",
        "[Install]",
        "WantedBy=multi-user.target",
    ]
    return "\n".join(lines) + "\n"


def unit_path(root: Path) -> Path:
    """Where the unit goes under ``root``; BadInputError when that resolves outside it."""
    base = root.resolve()
    if not base.is_dir():
        raise BadInputError(f"--root {root}: not a directory")
    target = (base / UNIT_DIR / UNIT_NAME).resolve()
    if not target.is_relative_to(base):
        raise BadInputError(
            f"--root {root}: {UNIT_DIR}/{UNIT_NAME} resolves to {target}, outside the root"
        )
    return target


def install_unit(root: Path, text: str) -> tuple[Path, bool]:
    """Write the unit under ``root`` (atomically); (path, changed)."""
    path = unit_path(root)
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise BadInputError(f"{path} exists and is not a regular file; remove it first")
    if path.exists():
        current = path.read_text(errors="replace")
        if current == text:
            return path, False
        if not current.startswith(MARKER):
            raise BadInputError(f"{path} exists and was not written by meshpath; remove it first")
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.parent.resolve().is_relative_to(root.resolve()):  # created through a link
        raise BadInputError(f"--root {root}: {path.parent} lies outside the root")
    _write_atomic(path, text)
    return path, True


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.meshpath-tmp")
    tmp.unlink(missing_ok=True)
    with tmp.open("w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.chmod(0o644)
    os.replace(tmp, path)


def loopback(host: str) -> bool:
    """Whether a listen address is the loopback (the unit can then deny other networks)."""
    return host == "::1" or host.startswith("127.")


def existing_group(name: str) -> str | None:
    """``name`` when the group exists on this host (the unit adds it), else None."""
    try:
        grp.getgrnam(name)
    except KeyError:
        return None
    return name
