"""Every number option of every command is finite and bounded (issue 10 item 3).

``--bgp-timeout nan`` was accepted, waited forever holding the lock and was journaled as
``null``. The sweep below finds the number options by walking the CLI itself, so a new
``int``/``float`` option that bypasses :mod:`meshpath.cli.numbers` fails here.
"""

from __future__ import annotations

from pathlib import Path

import click
import pytest
import typer

from meshpath.cli import app, main, numbers
from meshpath.state import codec
from tests.builders import broken_connector
from tests.fix_builders import with_frr

BAD_NUMBERS = [
    "nan", "NaN", "inf", "-inf", "Infinity", "1e999", "-1", "1_0", "0x10", "+5", " 5",
    "5 ", "٣", "５", "abc", "", "1e", ".", "--", "9" * 400,
]  # fmt: skip


def number_options() -> dict[str, tuple[str, click.Option]]:
    """Every option of every command whose value is a number: {--flag: (command, option)}."""
    found: dict[str, tuple[str, click.Option]] = {}
    root = typer.main.get_command(app)
    assert isinstance(root, click.Group)
    for name, command in root.commands.items():
        for param in command.params:
            if isinstance(param, click.Option) and _is_number(param):
                found[param.opts[0]] = (name, param)
    return found


def _is_number(option: click.Option) -> bool:
    """Click's own number types, meshpath's number parsers, or a number default."""
    kind = option.type
    ours = isinstance(kind, click.types.FuncParamType) and kind.func.__module__ == numbers.__name__
    default = option.default
    numeric_default = isinstance(default, int | float) and not isinstance(default, bool)
    return isinstance(kind, click.types._NumberParamTypeBase) or ours or numeric_default


def test_no_option_uses_clicks_own_number_types() -> None:
    """click.INT/FLOAT accept nan, inf, 1_000 and non-ASCII digits: none may be used."""
    found = number_options()
    # --asn is text (asdot "1.10" is an AS number too), parsed by meshpath.values.parse_asn.
    assert set(found) >= {"--bgp-timeout", "--duration", "--max-flows"}
    for flag, (_, option) in found.items():
        assert not isinstance(option.type, click.types._NumberParamTypeBase), flag
        assert isinstance(option.type, click.types.FuncParamType), flag
        assert option.type.func.__module__ == numbers.__name__, flag


def argv_for(flag: str, value: str, tmp_path: Path) -> list[str]:
    """A command line that is valid except for ``flag value``."""
    snap = tmp_path / "snap.json"
    codec.save(with_frr(broken_connector(), "hostname conn\n!\nend\n"), snap)
    capture = tmp_path / "x.pcap"
    capture.write_bytes(b"")
    bgp = ["fix", "--mode", "bgp", "--snapshot", str(snap), "--peer", "10.0.1.1"]
    profile = ["fix", "--mode", "profile", "--snapshot", str(snap)]
    table = {
        "--bgp-timeout": [*bgp, "--asn", "65001", "--bgp-timeout", value],
        "--asn": [*bgp, "--asn", value],
        "--duration": ["trace", "--live", "--duration", value],
        "--max-flows": ["trace", str(capture), "--max-flows", value],
        "--api-timeout": [*profile, "--api-timeout", value],
        "--wait-warp": [*profile, "--wait-warp", value],
        "--interval": ["watch", "--once", "--snapshot", str(snap), "--interval", value],
        "--refresh": ["watch", "--once", "--snapshot", str(snap), "--refresh", value],
        "--heal-calm": ["watch", "--once", "--snapshot", str(snap), "--heal-calm", value],
    }
    return table[flag]


@pytest.mark.parametrize("flag", sorted(number_options()))
def test_every_number_option_refuses_non_numbers_in_one_line(
    flag: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for value in BAD_NUMBERS:
        code = main(argv_for(flag, value, tmp_path))
        err = capsys.readouterr().err
        assert code == 2, (flag, value, err)
        assert err.startswith(f"meshpath: error: {flag} ") and err.strip().count("\n") == 0
        assert "Traceback" not in err


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--bgp-timeout", "0"), ("--bgp-timeout", "3601"), ("--asn", "0"),
     ("--asn", "4294967296"), ("--duration", "3601"), ("--max-flows", "100001")],
)  # fmt: skip
def test_numbers_outside_the_bounds_are_refused(
    flag: str, value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv_for(flag, value, tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"meshpath: error: {flag} {value}: ") and err.count("\n") == 1


def test_a_sensible_bgp_timeout_plans(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--json", *argv_for("--bgp-timeout", "2.5", tmp_path)]) == 0
    assert '"timeout": 2.5' in capsys.readouterr().out
