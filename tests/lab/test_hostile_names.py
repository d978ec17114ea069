"""Hostile interface names against the real kernel, nft and FRR (issue 10, "Done when").

A namespace this module owns holds a LAN veth, a tunnel veth and FRR (zebra, staticd,
bgpd). Each name of tests/hostile_names.py is given to the LAN and then to the tunnel
interface, and the nat, route and bgp plans meshpath makes from the collected snapshot
either work on exactly that interface or are refused in one line (exit 2):

* nat: applied and rolled back for real; the kernel's own comparison (``nft
  --debug=netlink``: the bytes of ``cmp eq``) must be the whole name, NUL-padded, with a
  masquerade, and verify's exact check must hold; the route step's ``dev`` is the name.
* route/bgp: FRR's checker (``vtysh -C``) takes the desired config; FRR then routes the
  range via exactly that interface (``show ip route json``).
* A refusal must be necessary: the naive rendering (the name pasted in) is shown to go
  wrong in the same tool (a syntax error, another interface, no masquerade, a Null0 or
  gateway route), so a refusal list that grew too broad fails here.
* systemd: the unit's device name is what ``systemd-escape --path`` says and
  ``systemd-analyze verify`` takes the unit (skipped until render/systemd.py escapes).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pytest

from meshpath.apply import Applier
from meshpath.apply.frr import FRR_RELOAD
from meshpath.cli import main
from meshpath.collect import collect_snapshot
from meshpath.collect.frr import running_daemons
from meshpath.config import Settings
from meshpath.errors import BadInputError
from meshpath.fix import FixOptions, NftFile, Plan, frrfit, plan_fix
from meshpath.fix.model import FrrReload, WriteFile
from meshpath.fix.verify import nft_checks
from meshpath.lab import frr as lab_frr
from meshpath.lab.procs import FRR_RUN_DIR, LabTimeout, kill_in_namespaces, wait_for
from meshpath.render import frr as frr_render
from meshpath.render import nft as nft_render
from meshpath.render import systemd
from meshpath.runner import SubprocessRunner
from meshpath.state import FrrState
from tests.conftest import needs_root, sh
from tests.hostile_names import ACCEPTED, LAB_SAMPLE, REFUSED

pytestmark = [needs_root, pytest.mark.lab, pytest.mark.root]
SRC = "100.64.0.0/12"
NAIVE_DST = "192.0.2.0/24"
LAN, TUNNEL = "lan0", "CloudflareWARP"
BGP = FixOptions(peer="10.0.1.1", asn=65001, peer_asn="65000")
NAMES = ACCEPTED if os.environ.get("MESHPATH_HOSTILE_NAMES") == "all" else LAB_SAMPLE


@dataclass
class Host:
    """The namespace: its name, FRR's pathspace and the interfaces' current names."""

    ns: str
    frr_dir: Path
    names: dict[str, str] = field(default_factory=lambda: {"lan": LAN, "tunnel": TUNNEL})

    def run(self, argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(  # noqa: S603 - argv list
            ["ip", "netns", "exec", self.ns, *argv], capture_output=True, text=True, check=False
        )
        if check and done.returncode != 0:
            raise AssertionError(f"{argv} failed ({done.returncode}): {done.stderr.strip()}")
        return done

    def vtysh(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run(["vtysh", "-N", self.ns, *args], check=check)

    def rename(self, role: str, new: str) -> None:
        old = self.names[role]
        for argv in (["down"], ["name", new], ["up"]):
            sh(["ip", "link", "set", "dev", old if argv[0] != "up" else new, *argv], self.ns)
        self.names[role] = new
        if role == "lan":  # the default route left with the link
            sh(["ip", "route", "replace", "default", "via", "10.0.1.1", "dev", new], self.ns)


def _build(ns: str) -> None:
    sh(["ip", "netns", "add", ns])
    batch = "\n".join([
        "link set lo up",
        f"link add {LAN} type veth peer name lanpeer",
        f"link add {TUNNEL} type veth peer name tunpeer",
        "addr add 10.0.1.1/24 dev lanpeer",
        f"addr add 10.0.1.2/24 dev {LAN}",
        f"addr add 100.96.0.5/32 dev {TUNNEL}",
        *(f"link set {d} up" for d in ("lanpeer", "tunpeer", LAN, TUNNEL)),
        f"route add default via 10.0.1.1 dev {LAN}",
    ])  # fmt: skip
    subprocess.run(  # noqa: S603
        ["ip", "-n", ns, "-batch", "-"], input=batch + "\n", text=True, check=True
    )


def _start_daemon(host: Host, daemon: str) -> None:
    conf = host.frr_dir / f"{daemon}.conf"
    conf.write_text("hostname conn\n!\n")
    conf.chmod(0o644)
    host.run(lab_frr.daemon_argv(daemon, str(conf), str(host.frr_dir)))
    wait_for(f"{daemon} in the test namespace", lambda: daemon in running_daemons(host.frr_dir), 15)


def _start_frr(host: Host) -> None:
    host.frr_dir.mkdir(parents=True)
    shutil.chown(host.frr_dir, "frr", "frr")
    for daemon in lab_frr.DAEMONS:
        _start_daemon(host, daemon)


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    ns = f"mpt-{os.getpid()}-names"
    made = Host(ns, FRR_RUN_DIR / ns)
    subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
    try:
        _build(ns)
        _start_frr(made)
        yield made
    finally:
        kill_in_namespaces([ns])
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        # Only the pathspace this fixture made for its own namespace.
        if made.frr_dir.resolve().parent == FRR_RUN_DIR.resolve() and made.frr_dir.is_dir():
            shutil.rmtree(made.frr_dir)


@pytest.fixture
def lan_named(host: Host, request: pytest.FixtureRequest) -> Iterator[str]:
    name: str = request.param
    host.rename("lan", name)
    try:
        yield name
    finally:
        host.rename("lan", LAN)


@pytest.fixture
def tunnel_named(host: Host, request: pytest.FixtureRequest) -> Iterator[str]:
    name: str = request.param
    host.rename("tunnel", name)
    try:
        yield name
    finally:
        host.rename("tunnel", TUNNEL)


# -- what the kernel and the tools did ------------------------------------------------------
def oifname_compares(debug: str) -> list[bytes]:
    """The bytes each ``meta load oifname; cmp eq`` pair of ``nft --debug=netlink`` compares."""
    lines = [ln.strip() for ln in debug.splitlines()]
    out = []
    for i, line in enumerate(lines[:-1]):
        nxt = lines[i + 1]
        if line.startswith("[ meta load oifname") and nxt.startswith("[ cmp eq reg 1 "):
            words = nxt.removeprefix("[ cmp eq reg 1 ").rstrip(" ]").split()
            out.append(b"".join(int(w, 16).to_bytes(4, sys.byteorder) for w in words))
    return out


def nft_matches_exactly(host: Host, text: str, name: str, path: Path) -> bool:
    """nft -c takes ``text``, and the kernel would compare the whole name and masquerade."""
    path.write_text(text)
    done = host.run(["nft", "--debug=netlink", "-c", "-f", str(path)], check=False)
    if done.returncode != 0:
        return False
    exact = name.encode().ljust(16, b"\0")
    return oifname_compares(done.stdout) == [exact] and "[ masq" in done.stdout


def vtysh_problems(done: subprocess.CompletedProcess[str]) -> list[str]:
    """What ``vtysh -C`` reported, less its note that this pathspace has no vtysh.conf."""
    lines = (done.stdout + done.stderr).splitlines()
    return [ln for ln in lines if ln.strip() and "Can't open configuration file" not in ln]


def frr_nexthops(host: Host, prefix: str) -> list[dict[str, Any]]:
    data = json.loads(host.vtysh("-c", f"show ip route {prefix} json").stdout or "{}")
    return [nh for entry in data.get(prefix, []) for nh in entry.get("nexthops", [])]


def naive_frr_goes_wrong(host: Host, name: str) -> bool:
    """Pasting the name into a static route gives FRR something else than that interface
    (an error, a help text, a Null0 or gateway route), or kills staticd (restarted here)."""
    done = host.vtysh("-c", "configure terminal", "-c", f"ip route {NAIVE_DST} {name}", check=False)
    if "staticd" not in running_daemons(host.frr_dir):
        _start_daemon(host, "staticd")
        return True
    hops = frr_nexthops(host, NAIVE_DST)
    if done.returncode == 0 and not hops:  # zebra may not have it yet: a moment's grace
        with contextlib.suppress(LabTimeout):
            wait_for("the naive route", lambda: frr_nexthops(host, NAIVE_DST) != [], 2.0)
        hops = frr_nexthops(host, NAIVE_DST)
    running = host.vtysh("-c", "show running-config").stdout
    for line in running.split("\n"):
        if line.startswith(f"ip route {NAIVE_DST} "):
            host.vtysh("-c", "configure terminal", "-c", f"no {line}")
    took = done.returncode == 0 and [h.get("interfaceName") for h in hops] == [name]
    return not took


def collect(host: Host, tunnel: str = TUNNEL) -> Any:
    snap = collect_snapshot(netns=host.ns)
    assert snap.link(host.names["lan"]) is not None and snap.link(tunnel) is not None
    return snap


def applier(host: Host, tmp_path: Path) -> Applier:
    runner = SubprocessRunner(netns=host.ns)
    return Applier(runner=runner, state_dir=tmp_path / "state", root=tmp_path, netns=host.ns)


def plan_or_refusal(
    snap: Any, tunnel: str, mode: str, name: str, options: FixOptions | None = None
) -> Plan | None:
    """The plan, or None when meshpath refused: then in one line naming the name."""
    chosen = options or (BGP if mode == "bgp" else FixOptions())
    try:
        return plan_fix(snap, Settings(tunnel_interface=tunnel), mode, chosen)  # type: ignore[arg-type]
    except BadInputError as exc:
        assert "\n" not in str(exc) and repr(name) in str(exc), str(exc)
        return None


# -- the tests ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", REFUSED)
def test_names_the_kernel_refuses_are_refused_by_meshpath_too(
    host: Host, name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert host.run(["ip", "link", "set", "dev", "tunpeer", "name", name], check=False).returncode
    code = main(["fix", "--mode", "nat", "--netns", host.ns, "--root", str(tmp_path),
                 "--lan-if", name])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err


@pytest.mark.parametrize("lan_named", NAMES, indirect=True)
def test_nat_out_of_a_hostile_lan_name_is_exact_or_refused(
    host: Host, lan_named: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = lan_named
    code = main(["fix", "--mode", "nat", "--netns", host.ns, "--root", str(tmp_path),
                 "--lan-if", name])  # fmt: skip
    err = capsys.readouterr().err
    snap = collect(host)
    plan = plan_or_refusal(snap, TUNNEL, "nat", name, options=FixOptions(lan_if=name))
    naive = f'table inet naive {{ chain c {{ type nat hook postrouting priority srcnat; \
oifname "{name}" ip saddr {SRC} masquerade; }}; }}\n'
    if plan is None:
        assert code == 2 and err.count("\n") == 1, err
        assert not nft_matches_exactly(host, naive, name, tmp_path / "naive.nft")
        return
    assert code == 0, err
    (step,) = [s for s in plan.steps if isinstance(s.action, NftFile)]
    assert nft_matches_exactly(host, step.action.text, name, tmp_path / "mine.nft")
    run = applier(host, tmp_path)
    assert run.apply(plan).status == "applied"
    try:
        after = collect_snapshot(netns=host.ns)
        want = {nft_render.Masquerade(name, SRC)}
        assert nft_render.masquerades_in(after.nft.ruleset) == want
        assert [c.ok for c in nft_checks(after, plan.expect)] == [True]
    finally:
        assert run.rollback().status == "rolled-back"
    assert nft_render.masquerades_in(collect_snapshot(netns=host.ns).nft.ruleset) is None


@pytest.mark.parametrize("tunnel_named", NAMES, indirect=True)
def test_routes_and_frr_through_a_hostile_tunnel_name_are_exact_or_refused(
    host: Host, tunnel_named: str, tmp_path: Path
) -> None:
    name = tunnel_named
    snap = collect(host, name)
    nat = plan_or_refusal(snap, name, "nat", name, options=FixOptions())
    assert nat is not None  # the tunnel reaches only ip(8)'s argv in nat mode
    run = applier(host, tmp_path)
    assert run.apply(nat).status == "applied"
    try:
        shown = host.run(["ip", "-j", "route", "show", SRC, "proto", "232"]).stdout
        routes = json.loads(shown, strict=False)  # ip -j prints control characters raw
        assert [r["dev"] for r in routes] == [name]
    finally:
        assert run.rollback().status == "rolled-back"
    plans = {m: plan_or_refusal(snap, name, m, name) for m in ("route", "bgp")}
    if plans["route"] is None or plans["bgp"] is None:
        assert plans == {"route": None, "bgp": None}
        running = host.vtysh("-c", "show running-config").stdout
        assert naive_frr_goes_wrong(host, name) or naive_reload_goes_wrong(
            host, name, running, tmp_path / "naive.conf"
        )
        return
    intents = {m: _frr_intent(p) for m, p in plans.items() if p is not None}
    running = host.vtysh("-c", "show running-config").stdout
    for mode, intent in intents.items():
        conf = tmp_path / f"{mode}.conf"
        conf.write_text(frr_render.render_blocks(frr_render.merge(running, intent)))
        checked = host.vtysh("-C", "-f", str(conf), check=False)
        assert checked.returncode == 0 and vtysh_problems(checked) == [], mode
    # FRR reads meshpath's static line as exactly this interface, and meshpath reads it back.
    mine = tmp_path / "mine.conf"
    mine.write_text(frr_render.render_blocks(frr_render.render_intent(intents["route"])))
    host.vtysh("-f", str(mine))
    try:
        # staticd hands the route to zebra after vtysh returns: waited for, not sampled once
        # (a loaded run read it too early and saw no route).
        wait_for("FRR's static route", lambda: frr_nexthops(host, SRC) != [], 10.0)
        assert [h.get("interfaceName") for h in frr_nexthops(host, SRC)] == [name]
        running = host.vtysh("-c", "show running-config").stdout
        assert frrfit.is_applied(running, intents["route"])
    finally:
        host.vtysh("-c", "configure terminal", "-c", f"no ip route {SRC} {name}")
    wait_for("FRR's static route gone", lambda: frr_nexthops(host, SRC) == [], 10.0)


def _frr_intent(plan: Plan) -> frr_render.FrrIntent:
    (step,) = [s for s in plan.steps if isinstance(s.action, FrrReload)]
    assert isinstance(step.action, FrrReload)
    return step.action.intent


# The production path (vtysh -C, frr-reload.py --test and --reload, rollback) for the names
# that are hardest on a line-based, Python-parsed config.
RELOAD_NAMES = ('-a;${}#=@~!\\"é', "a\u2028b", "a\x01b", "!ab", "#ab", 'a"b', "--help")


@pytest.mark.parametrize("tunnel_named", RELOAD_NAMES, indirect=True)
def test_frr_reload_applies_and_rolls_back_a_hostile_tunnel_name(
    host: Host, tunnel_named: str, tmp_path: Path
) -> None:
    name = tunnel_named
    before = host.vtysh("-c", "show running-config").stdout
    plan = plan_or_refusal(collect(host, name), name, "route", name)
    if plan is None:
        assert naive_reload_goes_wrong(host, name, before, tmp_path / "naive.conf")
        return
    run = applier(host, tmp_path)
    result = run.apply(plan)
    assert result.status == "applied", result.error
    try:
        assert [h.get("interfaceName") for h in frr_nexthops(host, SRC)] == [name]
    finally:
        assert run.rollback().status == "rolled-back"
    assert host.vtysh("-c", "show running-config").stdout == before


def naive_reload_goes_wrong(host: Host, name: str, running: str, conf: Path) -> bool:
    """frr-reload.py, given the running config plus the pasted static line, does not route
    the range via exactly that interface (then the running config is put back)."""
    conf.write_text(running.replace("\nend", f"\nip route {SRC} {name}\n!\nend"))
    reload = [FRR_RELOAD, "--reload", "--pathspace", host.ns, "--stdout", str(conf)]
    done = host.run(reload, check=False)
    took = done.returncode == 0 and [h.get("interfaceName") for h in frr_nexthops(host, SRC)]
    conf.write_text(running)
    host.run(reload, check=False)
    assert frr_nexthops(host, SRC) == []
    return took != [name]


def systemd_escapes() -> bool:
    return systemd.device_unit("w-1") != "sys-subsystem-net-devices-w-1.device"


@pytest.mark.parametrize("tunnel_named", NAMES, indirect=True)
def test_the_route_unit_for_a_hostile_tunnel_name_is_what_systemd_expects(
    host: Host, tunnel_named: str, tmp_path: Path
) -> None:
    if not systemd_escapes():
        pytest.skip("render/systemd.py does not escape unit names yet (issue 10 item 6)")
    if shutil.which("systemd-analyze") is None or shutil.which("systemd-escape") is None:
        pytest.skip("systemd-analyze/systemd-escape not installed")
    name = tunnel_named
    snap = collect(host, name)
    no_frr = msgspec.structs.replace(snap, frr=FrrState(available=True, running=False))
    plan = plan_or_refusal(no_frr, name, "route", name, options=FixOptions())
    if plan is None:
        return
    writes = {s.action.path: s.action for s in plan.steps if isinstance(s.action, WriteFile)}
    unit_path, link_path = systemd.unit_path(name)
    escaped = subprocess.run(
        ["systemd-escape", "--path", "--suffix=device", f"/sys/subsystem/net/devices/{name}"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert f"/{escaped}.wants/" in f"/{link_path}"
    unit = tmp_path / systemd.UNIT_NAME
    unit.write_text(writes[unit_path].content)
    done = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
