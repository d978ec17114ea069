"""meshpath watch --install-unit: the unit's hardening, and writes confined to --root."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from meshpath.cli import main
from meshpath.errors import BadInputError
from meshpath.watch.unit import MARKER, UNIT_DIR, UNIT_NAME, UnitOptions, install_unit, render_unit

ARGV = (sys.executable, "-m", "meshpath", "watch", "--listen", "127.0.0.1:9847")


def directives(text: str) -> dict[str, str]:
    return dict(
        line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#")
    )


def test_the_unit_is_hardened_and_needs_only_net_admin() -> None:
    d = directives(render_unit(UnitOptions(argv=ARGV)))
    assert d["ExecStart"] == " ".join(ARGV)
    assert d["CapabilityBoundingSet"] == "CAP_NET_ADMIN"
    assert "AmbientCapabilities" not in d  # runs as uid 0 with a bounded set
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "ProtectKernelTunables": "yes",
        "RestrictNamespaces": "yes",
        "StateDirectory": "meshpath",
        "SystemCallFilter": "@system-service",
        "IPAddressDeny": "any",
        "IPAddressAllow": "localhost",
        "WantedBy": "multi-user.target",
    }.items():
        assert d[key] == value, key


def test_a_namespace_needs_sys_admin_and_mounts() -> None:
    d = directives(render_unit(UnitOptions(argv=ARGV, netns="conn", loopback_only=False)))
    assert d["CapabilityBoundingSet"] == "CAP_NET_ADMIN CAP_SYS_ADMIN"
    assert d["SystemCallFilter"] == "@system-service @mount"
    assert "IPAddressDeny" not in d and "ProtectKernelTunables" not in d


def test_other_dirs_are_the_only_writable_paths() -> None:
    text = render_unit(UnitOptions(argv=ARGV, state_dir="/srv/mp state", textfile="/var/lib/node"))
    assert 'ReadWritePaths=-"/srv/mp state"' in text
    assert "ReadWritePaths=/var/lib/node" in text
    assert "StateDirectory" not in text


def test_install_writes_under_root_and_is_idempotent(tmp_path: Path) -> None:
    text = render_unit(UnitOptions(argv=ARGV))
    path, changed = install_unit(tmp_path, text)
    assert path == tmp_path / UNIT_DIR / UNIT_NAME and changed
    assert path.read_text() == text and oct(path.stat().st_mode & 0o777) == "0o644"
    assert install_unit(tmp_path, text) == (path, False)
    assert install_unit(tmp_path, text + "# new\n")[1]


def test_install_refuses_a_root_whose_etc_leads_outside(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "etc").symlink_to(outside)
    with pytest.raises(BadInputError, match="outside the root"):
        install_unit(root, render_unit(UnitOptions(argv=ARGV)))
    assert list(outside.iterdir()) == []


def test_install_never_overwrites_a_unit_it_did_not_write(tmp_path: Path) -> None:
    path = tmp_path / UNIT_DIR / UNIT_NAME
    path.parent.mkdir(parents=True)
    path.write_text("[Service]\nExecStart=/usr/bin/true\n")
    with pytest.raises(BadInputError, match="not written by meshpath"):
        install_unit(tmp_path, render_unit(UnitOptions(argv=ARGV)))
    assert path.read_text() == "[Service]\nExecStart=/usr/bin/true\n"


def test_install_refuses_a_symlinked_unit(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.service"
    elsewhere.write_text(MARKER + "\n")
    path = tmp_path / "root" / UNIT_DIR / UNIT_NAME
    path.parent.mkdir(parents=True)
    path.symlink_to(elsewhere)
    with pytest.raises(BadInputError):
        install_unit(tmp_path / "root", render_unit(UnitOptions(argv=ARGV)))
    assert elsewhere.read_text() == MARKER + "\n"


def test_cli_install_unit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    textfile = tmp_path / "textfile"
    textfile.mkdir()
    args = ["watch", "--install-unit", "--root", str(tmp_path), "--heal"]
    code = main([*args, "--textfile", str(textfile), "--target", "10.0.1.50:3000"])
    assert code == 0
    assert "systemctl daemon-reload" in capsys.readouterr().out
    d = directives((tmp_path / UNIT_DIR / UNIT_NAME).read_text())
    assert d["ExecStart"].endswith(
        f"watch --listen 127.0.0.1:9847 --target 10.0.1.50:3000 --heal --textfile {textfile} "
        "--interval 10 --refresh 300"
    )
    assert "--root" not in d["ExecStart"]  # the service runs on the host's root
    assert d["ReadWritePaths"] == str(textfile)


def test_cli_install_unit_bad_root_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["watch", "--install-unit", "--root", str(tmp_path / "missing")])
    assert code == 2
    assert "not a directory" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    unit = tmp_path / UNIT_NAME
    unit.write_text(render_unit(UnitOptions(argv=ARGV, frr_group=None)))
    done = subprocess.run(
        ["systemd-analyze", "verify", str(unit)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"},
    )
    assert done.returncode == 0, done.stderr
    assert UNIT_NAME not in done.stderr, done.stderr  # no warning about our unit
