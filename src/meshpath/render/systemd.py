"""Persistence for kernel routes without FRR: a systemd unit or a networkd drop-in (pure).

WARP recreates ``CloudflareWARP`` on every reconnect, which flushes routes through it.
The unit is wanted by the interface's device unit, so systemd re-runs it each time the
interface appears (and at boot); the networkd drop-in does the same for a host whose
tunnel is managed by systemd-networkd. Both use meshpath's route protocol number so the
routes stay recognisable as meshpath's.

Names go into the unit the way systemd reads them back: the device unit's name is the
interface's sysfs path escaped like ``systemd-escape --path`` (``w-1`` is
``sys-subsystem-net-devices-w\\x2d1.device``), and each ``ExecStart=`` word is quoted for
systemd's command-line parser (specifiers ``%``, variables ``$``, quotes, backslashes).
A name that cannot be written into a unit (control characters, not UTF-8) is refused.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from meshpath.errors import BadInputError

UNIT_NAME: Final = "meshpath-routes.service"
NET_DEVICES: Final = "/sys/subsystem/net/devices"
# systemd's VALID_CHARS minus the two it always escapes ('-' and '\\'): unit-name-util.c
_UNIT_PLAIN: Final = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ:_.")
# Words that need no quoting on an Exec line (no quote, backslash, whitespace, %, $, ;).
_EXEC_PLAIN: Final = re.compile(r"[A-Za-z0-9_./:,+=@-]+")
_UNIT_NAME_MAX: Final = 255


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """One kernel route meshpath owns (main table)."""

    dst: str
    dev: str
    proto: int
    metric: int

    def argv(self, verb: str = "replace") -> tuple[str, ...]:
        family = "-6" if ":" in self.dst else "-4"
        return (
            "ip", family, "route", verb, self.dst, "dev", self.dev,
            "proto", str(self.proto), "metric", str(self.metric), "table", "main",
        )  # fmt: skip

    @classmethod
    def from_argv(cls, argv: Sequence[str]) -> tuple[str, RouteSpec] | None:
        """(verb, spec) when ``argv`` is exactly what :meth:`argv` builds, else None."""
        if len(argv) != 13 or not (argv[8].isdigit() and argv[10].isdigit()):
            return None
        spec = cls(argv[4], argv[6], int(argv[8]), int(argv[10]))
        return (argv[3], spec) if spec.argv(argv[3]) == tuple(argv) else None

    def show_argv(self) -> tuple[str, ...]:
        """``ip -N -j route show DST table main``: every route with exactly this prefix,
        protocol numbers unnamed (see :func:`route_listed`)."""
        return ("ip", "-N", "-j", self.argv()[1], "route", "show", self.dst, "table", "main")


# -- systemd's escaping ------------------------------------------------------------------
def escape_path(path: str) -> str:
    """``systemd-escape --path PATH`` (unit_name_path_escape): simplify the path (no empty
    or '.' components, no outer slashes), '/' becomes '-', every byte outside
    ``[A-Za-z0-9:_.]`` (and a leading '.') becomes ``\\xNN``. A path with a '..'
    component cannot be escaped."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts:
        return "-"
    if ".." in parts:
        raise BadInputError(f"{path!r} is not a normalized path; systemd cannot name it")
    return "-".join(_escape_component(p, first=i == 0) for i, p in enumerate(parts))


def _escape_component(part: str, first: bool) -> str:
    out = []
    for i, byte in enumerate(part.encode("utf-8", "surrogateescape")):
        char = chr(byte)
        leading_dot = first and i == 0 and char == "."
        out.append(char if char in _UNIT_PLAIN and not leading_dot else f"\\x{byte:02x}")
    return "".join(out)


def check_unit_text(name: str, what: str = "tunnel interface") -> None:
    """Refuse a name a unit file cannot carry: it must be non-empty UTF-8 text without
    control characters (a unit file is UTF-8, one setting per line)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise BadInputError(f"{what} {name!r} is not UTF-8: a unit cannot name it") from None
    if not name or any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise BadInputError(f"{what} {name!r} cannot be written into a systemd unit")


def device_unit(dev: str) -> str:
    """systemd's device unit name for a network interface (its escaped sysfs path)."""
    if dev in ("", ".", "..") or "/" in dev:
        raise BadInputError(f"interface name {dev!r} has no systemd device unit")
    unit = f"{escape_path(f'{NET_DEVICES}/{dev}')}.device"
    if len(unit) > _UNIT_NAME_MAX:
        raise BadInputError(f"interface name {dev!r}: its device unit name is too long")
    return unit


def exec_word(arg: str) -> str:
    """One word of an ``ExecStart=`` line, read back by systemd as exactly ``arg``:
    '%' doubled (specifiers, expanded first), '$' doubled (variables, expanded at exec
    time), and, unless plain, double-quoted with '\\' and '"' escaped (C-style)."""
    text = arg.replace("%", "%%").replace("$", "$$")
    if _EXEC_PLAIN.fullmatch(arg):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def unit_path(dev: str) -> tuple[str, str]:
    """(unit file, enable symlink) paths relative to the root."""
    base = "etc/systemd/system"
    return f"{base}/{UNIT_NAME}", f"{base}/{device_unit(dev)}.wants/{UNIT_NAME}"


def render_unit(routes: Sequence[RouteSpec]) -> str:
    dev = routes[0].dev
    check_unit_text(dev)
    device = device_unit(dev)
    execs = "\n".join(f"ExecStart=/sbin/{_cmd(r)}" for r in routes)
    # '-': a route already gone with the interface is not a failure.
    stops = "\n".join(f"ExecStop=-/sbin/{_cmd(r, 'del')}" for r in routes)
    return (
        "# meshpath: re-adds the Cloudflare return routes whenever the tunnel appears\n"
        "[Unit]\n"
        f"Description=meshpath routes via {dev.replace('%', '%%')}\n"
        f"BindsTo={device}\n"
        f"After={device}\n"
        "\n[Service]\nType=oneshot\nRemainAfterExit=yes\n"
        f"{execs}\n{stops}\n"
        f"\n[Install]\nWantedBy={device}\n"
    )


def _cmd(route: RouteSpec, verb: str = "replace") -> str:
    return " ".join(exec_word(word) for word in route.argv(verb))


def dropin_path(network_file: str) -> str:
    """The drop-in directory of the ``.network`` file that matches the tunnel."""
    return f"etc/systemd/network/{network_file}.d/meshpath.conf"


def render_dropin(routes: Sequence[RouteSpec]) -> str:
    sections = [
        f"[Route]\nDestination={r.dst}\nProtocol={r.proto}\nMetric={r.metric}\n" for r in routes
    ]
    return "# meshpath: Cloudflare return routes via the tunnel\n" + "\n".join(sections)
