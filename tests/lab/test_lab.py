"""The lab for real: every scenario's outcome, the WARP state, and guaranteed teardown."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from meshpath.cli import main
from meshpath.lab import SCENARIO_NAMES, Lab, ScenarioResult, clean_leftovers, frr, run_many
from meshpath.lab.core import LabConfigError
from meshpath.lab.parallel import default_jobs
from meshpath.lab.state import RUN_ROOT, read_state
from meshpath.lab.topology import WORKER_SOURCE
from tests.conftest import needs_root, sh
from tests.schema_check import assert_schema

pytestmark = [needs_root, pytest.mark.lab, pytest.mark.root]


def leftovers(instance: str) -> list[str]:
    """Everything of lab ``instance`` still on the host: namespaces, processes, run dir."""
    found = [
        ns for ns in sh(["ip", "netns", "list"]).split() if ns.startswith(f"mplab-{instance}-")
    ]
    needles = (f"mplab-{instance}-".encode(), f"meshpath-lab/{instance}/".encode())
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if any(n in cmdline for n in needles):
            shown = cmdline.replace(b"\0", b" ").decode(errors="replace")[:80]
            found.append(f"pid {proc.name}: {shown}")
    if (RUN_ROOT / instance).exists():
        found.append(str(RUN_ROOT / instance))
    for tun in ("cfedge", "CloudflareWARP"):  # never in the root namespace
        assert subprocess.run(["ip", "link", "show", tun], capture_output=True).returncode != 0
    return found


@pytest.fixture(scope="module")
def scenario_results() -> dict[str, ScenarioResult]:
    """Every scenario, run at once on default_jobs workers (labs of their own, each torn
    down by run_many): one after another they took ~2 minutes of this tier (issue 18)."""
    names = list(SCENARIO_NAMES)
    return {r.name: r for r in run_many(names, jobs=default_jobs(len(names)))}


@pytest.mark.parametrize("name", SCENARIO_NAMES)
def test_scenario(scenario_results: dict[str, ScenarioResult], name: str) -> None:
    result = scenario_results[name]
    failed = [f"{c.name}: {c.detail}" for c in result.checks if not c.ok]
    assert result.passed, f"{name}: {failed}; trace: {[p.describe() for p in result.packets]}"


def test_fresh_warp_state_sends_the_reply_out_eth0(lab: Lab) -> None:
    lab.setup("broken")
    route = lab.route_get("conn", "100.64.12.189")
    verdict = lab.exec(
        "conn", ["ip", "-j", "route", "get", WORKER_SOURCE, "from", "10.0.1.50", "iif", "eth0"]
    )
    got = json.loads(verdict.stdout)[0]
    assert (got["dev"], got.get("gateway")) == ("eth0", "10.0.1.1")
    assert route["dev"] == "eth0"
    # Mesh-bound and LAN-bound lookups are unaffected: the device range uses the tunnel.
    dev = json.loads(lab.exec("conn", ["ip", "-j", "route", "get", "100.96.0.9"]).stdout)[0]
    assert dev["dev"] == "CloudflareWARP"
    lan = json.loads(lab.exec("conn", ["ip", "-j", "route", "get", "10.0.1.50"]).stdout)[0]
    assert lan["dev"] == "eth0"
    table = lab.exec("conn", ["ip", "-j", "route", "show", "table", "65743"]).stdout
    assert len(json.loads(table)) > 500
    nft = lab.exec("conn", ["nft", "list", "tables"]).stdout
    assert "table inet cloudflare-warp" in nft and "nat" not in nft
    assert "100.64.0.0/12" not in lab.exec("conn", ["ip", "route", "show"]).stdout
    for node, dev in (("conn", "CloudflareWARP"), ("edge", "cfedge")):
        link = json.loads(lab.exec(node, ["ip", "-j", "link", "show", dev]).stdout)[0]
        assert link["mtu"] == 1280 and "LOWER_UP" in link["flags"]


def test_health_and_tunnel_outage(lab: Lab) -> None:
    lab.setup("route")
    from meshpath.lab import FIXES

    FIXES["route"](lab)
    assert lab.worker_call("/health").status == 200
    ok = lab.worker_call()
    assert (ok.status, ok.seen_source) == (200, WORKER_SOURCE)
    before = lab.tunnel_status()
    assert before["edge_to_conn"] > 0 and before["conn_to_edge"] > 0
    lab.pause_tunnel(True)
    down = lab.worker_call()
    assert (down.status, down.body) == (500, "handshake timeout")
    assert lab.worker_call("/health").status == 200  # the Worker itself is fine
    assert lab.tunnel_status()["dropped"] > 0
    lab.pause_tunnel(False)
    assert lab.worker_call().status == 200


def test_rendered_frr_configs_pass_frr_own_check(lab: Lab) -> None:
    lab.setup("broken")  # the checks run inside a lab namespace, never the root one
    where = lab.run_dir / "check"
    where.mkdir(parents=True, exist_ok=True)
    shutil.chown(where, "frr", "frr")  # FRR parses as user frr (and opens its log file)
    for cfg in (frr.router_config(True), frr.connector_config(), frr.tailnet_config()):
        for daemon, text in frr.render_all(cfg, str(where / "frr.log")).items():
            conf = where / f"{cfg.hostname}-{daemon}.conf"
            conf.write_text(text)
            conf.chmod(0o644)
            lab.check_frr_config("router", daemon, conf)
    bad = where / "bad.conf"
    bad.write_text("router bgp 65000\n neighbour 10.0.1.1 remote-as 65001\n")
    bad.chmod(0o644)
    with pytest.raises(LabConfigError, match="No such command"):
        lab.check_frr_config("router", "bgpd", bad)


def test_nothing_survives_down() -> None:
    with Lab.create() as made:
        made.setup("tailscale-overlap")
        instance = made.instance
        assert len(made.status()["namespaces"]) == 6
        assert leftovers(instance)  # the probe sees a live lab
    assert leftovers(instance) == []


def test_nothing_survives_an_exception_mid_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(self: Lab, *_: object) -> None:
        raise RuntimeError("injected failure after the tunnel started")

    monkeypatch.setattr(Lab, "_start_apps", boom)
    with pytest.raises(RuntimeError, match="injected"), Lab.create() as made:
        instance = made.instance
        made.setup("broken")
    assert leftovers(instance) == []


def _start_lab_up(instance: str) -> subprocess.Popen[bytes]:
    code = "import sys; from meshpath.cli import main; sys.exit(main(sys.argv[1:]))"
    argv = [sys.executable, "-c", code, "lab", "up", "bgp", "--instance", instance]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait(pred: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_sigkilled_lab_up_is_cleaned_by_the_next_run() -> None:
    instance = f"k{os.getpid() % 100000}"
    proc = _start_lab_up(instance)
    try:
        _wait(lambda: (RUN_ROOT / instance / "tunnel.json").exists())
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        state = read_state(RUN_ROOT, instance)
        assert state is not None and state.owner_pid == proc.pid  # killed mid-setup
        assert leftovers(instance)
        assert instance in clean_leftovers()  # what `lab up` / `lab down` run first
    finally:
        proc.kill()
        main(["lab", "down", "--instance", instance])
    assert leftovers(instance) == []


def test_cli_up_status_exec_down(capsys: pytest.CaptureFixture[str]) -> None:
    instance = f"c{os.getpid() % 100000}"
    try:
        assert main(["--json", "lab", "up", "route", "--instance", instance]) == 0
        up = json.loads(capsys.readouterr().out)
        assert_schema(up)
        assert up["owner_pid"] is None and up["fixed"] == "route"
        assert main(["lab", "status", "--instance", instance, "--json"]) == 0
        labs = json.loads(capsys.readouterr().out)
        assert_schema(labs)
        status = labs["labs"][0]
        assert status["namespaces"][f"mplab-{instance}-edge"]  # tunnel + worker run there
        argv = ["lab", "exec", "--instance", instance, "conn", "--", "ip", "-j", "route"]
        assert main(argv) == 0
        assert main(["lab", "exec", "--instance", instance, "conn", "--", "false"]) == 1
        capsys.readouterr()
        assert (
            main(
                ["--json", "lab", "exec", "--instance", instance, "conn", "--", "ip", "-j", "link"]
            )
            == 0
        )
        ran = json.loads(capsys.readouterr().out)
        assert_schema(ran)
        assert ran["returncode"] == 0 and "CloudflareWARP" in ran["stdout"]
        survivor = Lab.attach(instance)
        assert survivor.worker_call().seen_source == WORKER_SOURCE
    finally:
        assert main(["lab", "down", "--instance", instance, "--json"]) == 0
    down = json.loads(capsys.readouterr().out)
    assert_schema(down)
    assert instance in down["removed"]
    assert leftovers(instance) == []


def test_collector_reads_the_fresh_warp_state(lab: Lab) -> None:
    """What `meshpath snapshot --netns` (and so the doctor) sees of the lab's connector."""
    from meshpath.collect import collect_snapshot
    from meshpath.lab import warp

    lab.setup("broken")
    snap = collect_snapshot(netns=lab.ns("conn"))
    assert len(snap.routes_in(warp.WARP_TABLE)) == len(warp.tunnel_prefixes())
    rule = next(r for r in snap.rules if r.family == 4 and r.priority == 32765)
    assert (rule.invert, rule.fwmark, rule.table) == (True, warp.WARP_FWMARK, warp.WARP_TABLE)
    assert snap.link("CloudflareWARP") is not None
    assert [a.dev for a in snap.addresses if a.family == 4 and a.dev == "CloudflareWARP"]
    assert {c.table for c in snap.nft.base_chains} == {"cloudflare-warp"}
    main_routes = {str(r.dst) for r in snap.routes_in(254)}
    assert not any(d.startswith("100.64.") for d in main_routes)
