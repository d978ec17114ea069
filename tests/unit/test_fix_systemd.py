"""systemd names and files the way systemd reads them (issue 10 items 6 and 11).

The escaping is held to the real ``systemd-escape --path`` and the rendered units to
``systemd-analyze verify`` where those are installed (skipped, with the reason, where
not); the ``.network`` matching to systemd.network(5) and net-condition.c.
"""

from __future__ import annotations

import re
import shutil
import string
import subprocess
from pathlib import Path

import pytest

from meshpath.config import Settings
from meshpath.errors import BadInputError
from meshpath.fix import FixOptions, plan_fix
from meshpath.fix.networkd import choose, glob_match, logical_lines, parse_match
from meshpath.render import systemd
from meshpath.render.systemd import RouteSpec, device_unit, escape_path, exec_word
from tests.builders import broken_connector, link

ESCAPE = shutil.which("systemd-escape")
ANALYZE = shutil.which("systemd-analyze")
needs_escape = pytest.mark.skipif(ESCAPE is None, reason="systemd-escape is not installed")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")

# Interface names of every character class the kernel accepts (no '/', ':', whitespace).
NAMES = [
    "CloudflareWARP", "w-1", 'w"q', "w'q", "a%b$c", "x\\y;z", "#x", "[a]", "é€", ".dot",
    "a=b*c?", "{x}", "@x", "~x", "a,b", "-lead", "x" * 15, "a&b|c", "<>", "`cmd`", "!x",
]  # fmt: skip
PRINTABLE = [c + "x" for c in string.printable if c not in "/:" and not c.isspace()]


def specs(dev: str) -> list[RouteSpec]:
    return [
        RouteSpec("100.64.0.0/12", dev, 232, 64),
        RouteSpec("2606:4700:cf1:5000::/64", dev, 232, 64),
    ]


# -- item 6: escaping ------------------------------------------------------------------------
def test_a_dash_in_the_tunnel_name_is_escaped_in_the_device_unit() -> None:
    assert device_unit("w-1") == "sys-subsystem-net-devices-w\\x2d1.device"
    text = systemd.render_unit(specs("w-1"))
    assert "BindsTo=sys-subsystem-net-devices-w\\x2d1.device\n" in text
    assert "WantedBy=sys-subsystem-net-devices-w\\x2d1.device\n" in text
    _, link_path = systemd.unit_path("w-1")
    assert "/sys-subsystem-net-devices-w\\x2d1.device.wants/" in link_path


def test_known_vectors_of_systemd_escape_path() -> None:
    """From systemd's test-unit-name.c (test_unit_name_path_escape) and the man page."""
    assert escape_path("/waldi/hallo") == "waldi-hallo"
    assert escape_path("/waldi/hallo/") == "waldi-hallo"
    assert escape_path("//waldi//hallo") == "waldi-hallo"
    assert escape_path("/") == "-"
    assert escape_path("/.x") == "\\x2ex"
    assert escape_path("/dev/disk/by-label/Root") == "dev-disk-by\\x2dlabel-Root"
    assert escape_path("/tmp/ü") == "tmp-\\xc3\\xbc"
    with pytest.raises(BadInputError):
        escape_path("/a/../b")


@needs_escape
def test_escaping_matches_the_real_systemd_escape() -> None:
    paths = [f"{systemd.NET_DEVICES}/{name}" for name in NAMES + PRINTABLE]
    real = subprocess.run(
        [ESCAPE or "systemd-escape", "--path", *paths], capture_output=True, text=True, check=True
    ).stdout.split()
    assert len(real) == len(paths)
    wrong = [
        (p, r, escape_path(p)) for p, r in zip(paths, real, strict=True) if escape_path(p) != r
    ]
    assert wrong == []


def test_exec_words_are_quoted_for_systemds_parser() -> None:
    assert exec_word("CloudflareWARP") == "CloudflareWARP"
    assert exec_word("100.64.0.0/12") == "100.64.0.0/12"
    assert exec_word('w"q') == '"w\\"q"'
    assert exec_word("a%b$c") == '"a%%b$$c"'
    assert exec_word("x\\y;z") == '"x\\\\y;z"'


@pytest.mark.parametrize("name", ["", ".", "..", "a/b"])
def test_names_without_a_device_unit_are_refused(name: str) -> None:
    with pytest.raises(BadInputError):
        device_unit(name)


@pytest.mark.parametrize("name", ["a\x01b", "a\x7fb", "a\udcffb"])
def test_names_a_unit_file_cannot_carry_are_refused_by_the_plan(name: str) -> None:
    snap = broken_connector(
        links=(link(1, "lo", ""), link(2, "eth0", "veth"), link(3, name, "tun"))
    )
    settings = Settings(tunnel_interface=name)
    # refused by the unit renderer, or earlier by the interface-name parser (meshpath.values)
    with pytest.raises(BadInputError, match="systemd unit|a unit cannot|not valid UTF-8"):
        plan_fix(snap, settings, "route", FixOptions())


def verify(tmp_path: Path, units: dict[str, str]) -> tuple[int, str]:
    """``systemd-analyze verify`` of the given units (file name -> text), in one run."""
    for name, text in units.items():
        (tmp_path / name).write_text(text)
    done = subprocess.run(
        [ANALYZE or "systemd-analyze", "verify", *(str(tmp_path / n) for n in units)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    return done.returncode, done.stdout + done.stderr


@needs_analyze
def test_rendered_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    units = {f"u{i}.service": systemd.render_unit(specs(n)) for i, n in enumerate(NAMES)}
    assert verify(tmp_path, units) == (0, "")


@needs_analyze
def test_systemd_reads_each_exec_word_back_as_the_name(tmp_path: Path) -> None:
    """systemd-analyze names the executable it parsed (and refuses it: it does not
    exist); that parsed path must be ours. '$$' stays: variables expand at exec time."""
    paths = [f"/nonexistent-meshpath/{name}" for name in NAMES]
    units = {
        f"probe{i}.service": f"[Service]\nType=oneshot\nExecStart={exec_word(p)}\n"
        for i, p in enumerate(paths)
    }
    _, out = verify(tmp_path, units)
    said = re.compile(
        r"(probe\d+)\.service(?::\d+)?: (?:Executable name contains special characters: |"
        r"Command )(/nonexistent-meshpath/.*?)(?: is not executable: .*)?$",
        re.M,
    )
    parsed = {m.group(1): m.group(2) for m in said.finditer(out)}
    assert len(parsed) == len(paths), out
    for i, path in enumerate(paths):
        assert parsed[f"probe{i}"] == path.replace("$", "$$"), out


# -- item 11: .network matching ---------------------------------------------------------------
def test_comments_continuations_and_sections_are_read_like_systemd() -> None:
    text = "# Name=a\n  ; Name=b\n[Match]\nName=c \\\n# skipped\n d\n[Network]\nName=e\n"
    assert list(logical_lines(text)) == ["[Match]", "Name=c   d", "[Network]", "Name=e"]
    assert parse_match(text).names == ("c", "d")


def test_name_assignments_add_up_reset_and_invert() -> None:
    assert parse_match("[Match]\nName=a b\nName=c\n").names == ("a", "b", "c")
    assert parse_match("[Match]\nName=a\nName=\nName=c\n").names == ("c",)
    assert parse_match("[Match]\nName=!a b\n").names == ("!a", "!b")
    assert parse_match("[Match]\nType=wlan\nDriver=\n").others == ("Type",)


@pytest.mark.parametrize(
    ("names", "ifname", "expected"),
    [
        ("Name=CloudflareWARP", "CloudflareWARP", True),
        ("Name=Cloudflare*", "CloudflareWARP", True),
        ("Name=eth* Cloud?lareWARP", "CloudflareWARP", True),
        ("Name=!CloudflareWARP", "CloudflareWARP", False),
        ("Name=!eth*", "CloudflareWARP", True),
        ("Name=!eth*\nName=wg*", "CloudflareWARP", False),
        ("Name=cloudflarewarp", "CloudflareWARP", False),
        ("", "CloudflareWARP", True),
    ],
)
def test_name_matching_follows_net_condition(names: str, ifname: str, expected: bool) -> None:
    assert parse_match(f"[Match]\n{names}\n").names_match(ifname) is expected


@pytest.mark.parametrize(
    ("pattern", "name", "expected"),
    [
        ("w[!0-9]", "wx", True), ("w[!0-9]", "w1", False), ("w[^a]", "wb", True),
        ("w[]]", "w]", True), ("w[", "w[", True), ("a\\*", "a*", True), ("a\\*", "ab", False),
        ("*", "", True), ("?", "", False), ("a.b", "axb", False), ("w-[0-9]", "w-1", True),
    ],
)  # fmt: skip
def test_glob_matching_follows_fnmatch(pattern: str, name: str, expected: bool) -> None:
    assert glob_match(pattern, name) is expected


def test_the_first_matching_file_decides_and_only_an_exact_one_gets_the_dropin() -> None:
    files = [
        ("10-lan.network", "[Match]\nName=eth0\n"),
        ("20-wifi.network", "[Match]\nType=wlan\n"),
        ("30-warp.network", "[Match]\nName=CloudflareWARP\n"),
        ("40-late.network", "[Match]\nName=Cloudflare*\n"),
    ]
    assert choose(files, "CloudflareWARP", ["lo", "eth0"]) == ("30-warp.network", ())
    ambiguous = [("05-tun.network", "[Match]\nName=Cloudflare*\nKind=tun\n"), *files]
    name, notes = choose(ambiguous, "CloudflareWARP", ["eth0"])
    assert name is None and "Kind=" in notes[0]
    catch_all = [("01-all.network", "[Match]\n"), *files]
    name, notes = choose(catch_all, "CloudflareWARP", ["eth0"])
    assert name is None and "every interface" in notes[0]
