"""``meshpath fix`` / ``verify`` against the lab's connector: real kernel, nft and FRR.

Each test builds its scenario, records the connector's state (routes of every table,
rules, the nft ruleset, FRR's running config), applies, proves, and compares the state
after a rollback or a fault with the one before: fully applied or fully rolled back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from meshpath.apply import Applier, locked
from meshpath.apply import journal as jr
from meshpath.collect import collect_snapshot
from meshpath.config import Settings
from meshpath.fix import FixOptions, plan_fix
from meshpath.lab import Lab
from meshpath.lab.fixes import BGP_ARGS, fix_root, meshpath_argv, run_meshpath, start_conn_frr
from meshpath.lab.procs import wait_for
from meshpath.lab.topology import LAN_ADDR, WORKER_SOURCE
from meshpath.runner import Completed, SubprocessRunner
from tests.conftest import needs_root
from tests.faults import run_faulty
from tests.schema_check import assert_schema

pytestmark = [needs_root, pytest.mark.lab, pytest.mark.root]
LATE = "203.0.113.0/24"
BOTH = ("100.64.0.0/12", "100.96.0.0/12")


def conn_state(lab: Lab) -> dict[str, Any]:
    """Everything meshpath may touch on conn, normalised for comparison."""
    routes = json.loads(
        lab.exec("conn", ["ip", "-4", "-j", "route", "show", "table", "all"]).stdout
    )
    for r in routes:
        r.pop("nhid", None)
    frr = lab.exec("conn", ["vtysh", "-N", lab.ns("conn"), "-c", "show running-config"])
    running = [ln for ln in frr.stdout.splitlines() if not ln.startswith("Building")]
    return {
        "routes": sorted(json.dumps(r, sort_keys=True) for r in routes),
        "rules": lab.exec("conn", ["ip", "rule"]).stdout,
        "nft": lab.exec("conn", ["nft", "list", "ruleset"]).stdout,
        "frr": running if frr.returncode == 0 else None,
    }


def assert_same(after: dict[str, Any], before: dict[str, Any]) -> None:
    """State equality, with the differing routes named when it fails."""
    gone = sorted(set(before["routes"]) - set(after["routes"]))
    new = sorted(set(after["routes"]) - set(before["routes"]))
    assert (gone, new) == ([], []), f"routes lost {gone}, gained {new}"
    assert after == before


def mp(lab: Lab, *args: str, faults: Sequence[str] = ()) -> tuple[int, Any, str]:
    """Run ``meshpath --json ARGS`` against conn: (exit code, parsed JSON or None, stderr);
    with ``faults`` through tests/faults.py (e.g. ``["--kill-after-step", "1"]``)."""
    if faults:
        argv = meshpath_argv(lab, "--json", *args)
        done = run_faulty(argv, faults, lab.meshpath_env(token=True))
    else:
        done = run_meshpath(lab, ["--json", *args])
    try:
        data = json.loads(done.stdout) if done.stdout.strip() else None
    except json.JSONDecodeError:
        data = None
    if data is not None:
        assert_schema(data)  # every --json document matches its published schema
    return done.returncode, data, done.stderr


def verify_ok(lab: Lab) -> dict[str, Any]:
    code, data, err = mp(lab, "verify", "--lab-worker", lab.instance)
    assert code == 0, f"verify failed: {data} {err}"
    assert isinstance(data, dict)
    return data


def test_nat_applies_verifies_is_idempotent_and_rolls_back(lab: Lab) -> None:
    lab.setup("gateway")
    before = conn_state(lab)
    code, data, err = mp(lab, "fix", "--mode", "nat", "--apply")
    assert code == 0 and data["result"]["status"] == "applied", err
    checks = {c["name"]: c for c in verify_ok(lab)["checks"]}
    assert checks["worker round trip"]["detail"].startswith("status 200, service saw 10.0.1.2")
    routes = lab.exec("conn", ["ip", "route", "show", "proto", "232"]).stdout
    assert routes.startswith("100.64.0.0/12 dev CloudflareWARP")
    assert "cloudflare-warp" in lab.exec("conn", ["nft", "list", "tables"]).stdout
    code, data, _ = mp(lab, "fix", "--mode", "nat", "--apply")
    assert code == 0 and data["result"]["status"] == "nothing-to-do"
    code, data, _ = mp(lab, "fix", "--rollback")
    assert code == 0 and data["result"]["status"] == "rolled-back"
    assert_same(conn_state(lab), before)


def test_route_without_frr_writes_persistence_under_root_and_rolls_back(lab: Lab) -> None:
    lab.setup("route")
    before = conn_state(lab)
    code, data, err = mp(lab, "fix", "--mode", "route", "--apply", "--lab-worker", lab.instance)
    assert code == 0, err
    unit = fix_root(lab) / "etc/systemd/system/meshpath-routes.service"
    assert "ip -4 route replace 100.64.0.0/12 dev CloudflareWARP proto 232" in unit.read_text()
    wants = unit.parent / "sys-subsystem-net-devices-CloudflareWARP.device.wants" / unit.name
    assert os.readlink(wants) == "/etc/systemd/system/meshpath-routes.service"
    trip = {c["name"]: c for c in verify_ok(lab)["checks"]}["worker round trip"]
    assert f"service saw {WORKER_SOURCE}" in trip["detail"]
    assert mp(lab, "fix", "--mode", "route", "--apply")[1]["result"]["status"] == "nothing-to-do"
    assert mp(lab, "fix", "--rollback")[0] == 0
    assert_same(conn_state(lab), before)
    assert not unit.exists() and not wants.is_symlink()


def test_route_with_frr_running_uses_staticd_and_keeps_the_users_statics(lab: Lab) -> None:
    lab.setup("route")
    start_conn_frr(lab)
    before = conn_state(lab)
    code, data, err = mp(lab, "fix", "--mode", "route", "--apply", "--lab-worker", lab.instance)
    assert code == 0, (data, err)
    assert [s["key"] for s in data["plan"]["steps"]] == ["frr:meshpath"]
    assert lab.frr_statics("conn") == {"100.64.0.0/12", "198.51.100.0/24"}
    views = {c["view"] for c in verify_ok(lab)["checks"] if c["ok"]}
    assert views == {"frr", "kernel", "round-trip"}
    assert not (fix_root(lab) / "etc").exists()
    assert mp(lab, "fix", "--rollback")[0] == 0
    assert_same(conn_state(lab), before)


@dataclass
class Prober:
    """Calls the Worker in a loop in the background; records every answer."""

    lab: Lab
    results: list[tuple[int, str | None]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    path: str = "/mesh/"

    def run(self) -> None:
        while not self.stop.is_set():
            r = self.lab.worker_call(self.path, timeout=10)
            self.results.append((r.status, r.seen_source))


def test_migration_nat_to_bgp_keeps_every_request_working(lab: Lab) -> None:
    lab.setup("gateway")
    assert mp(lab, "fix", "--mode", "nat", "--apply")[0] == 0
    start_conn_frr(lab)
    after_nat = conn_state(lab)
    p = Prober(lab)
    thread = threading.Thread(target=p.run, daemon=True)
    thread.start()
    try:
        args = ["fix", "--mode", "bgp", *BGP_ARGS, "--replace-nat", "--apply"]
        code, data, err = mp(lab, *args, "--lab-worker", lab.instance)
    finally:
        p.stop.set()
        thread.join(timeout=20)
    assert code == 0 and data["result"]["status"] == "applied", (data, err)
    assert len(p.results) >= 3, "the probe loop barely ran"
    assert [r for r in p.results if r[0] != 200] == [], f"failed requests: {p.results}"
    assert p.results[-1] == (200, WORKER_SOURCE) or lab.worker_call().seen_source == WORKER_SOURCE
    # Exactly the two ranges are advertised; the user's canary static stays unadvertised.
    adv = lab.vtysh_json(
        "conn", f"show ip bgp neighbors {LAN_ADDR['router']} advertised-routes json"
    )
    assert set(adv["advertisedRoutes"]) == {"100.64.0.0/12", "100.96.0.0/12"}
    assert "198.51.100.0/24" in lab.frr_statics("conn")
    # The connector shows them advertised a few ms before the router has them: waited for.
    both = {"100.64.0.0/12", "100.96.0.0/12"}
    wait_for("router learns both", lambda: lab.bgp_learned("router", LAN_ADDR["conn"]) == both, 5.0)
    assert "meshpath" not in lab.exec("conn", ["nft", "list", "tables"]).stdout
    # A static route the user adds later is installed but, filtered, never advertised.
    ns = lab.ns("conn")
    lab.exec("conn", ["vtysh", "-N", ns, "-c", "conf t", "-c", f"ip route {LATE} CloudflareWARP"])
    wait_for("late static in conn's kernel", lambda: LATE in lab.frr_statics("conn"), 5.0)
    query = f"show ip bgp neighbors {LAN_ADDR['router']} advertised-routes json"
    for _ in range(10):  # over the advertisement interval: it never shows up
        assert set(lab.vtysh_json("conn", query)["advertisedRoutes"]) == set(BOTH)
        time.sleep(0.15)
    assert LATE not in lab.bgp_learned("router", LAN_ADDR["conn"])
    checks = verify_ok(lab)["checks"]
    assert {c["view"] for c in checks} == {"frr", "bgp", "kernel", "nft", "round-trip"}
    lab.exec(
        "conn", ["vtysh", "-N", ns, "-c", "conf t", "-c", f"no ip route {LATE} CloudflareWARP"]
    )
    assert mp(lab, "fix", "--rollback")[0] == 0
    assert_same(conn_state(lab), after_nat)


# Issue 18: removing the last nat chain unregisters the NAT hooks, and a masqueraded
# connection still open at that moment loses its translation (the service's answer to
# 10.0.1.2 is no longer de-NATed). Slow answers keep connections open across the change.
SLOW = "/delay/250/migration"
PROBERS = 3
MIGRATIONS = 3


def slow_probers(lab: Lab, n: int) -> tuple[list[Prober], list[threading.Thread]]:
    probers = [Prober(lab, path=SLOW) for _ in range(n)]
    threads = [threading.Thread(target=p.run, daemon=True) for p in probers]
    for t in threads:
        t.start()
    return probers, threads


def test_replace_nat_loses_no_in_flight_request(lab: Lab) -> None:
    lab.setup("gateway")
    start_conn_frr(lab)
    args = ["fix", "--mode", "bgp", *BGP_ARGS, "--replace-nat", "--apply"]
    failed: list[tuple[int, int, str | None]] = []
    calls = 0
    for run in range(MIGRATIONS):
        assert mp(lab, "fix", "--mode", "nat", "--apply")[0] == 0
        probers, threads = slow_probers(lab, PROBERS)
        try:
            code, data, err = mp(lab, *args, "--lab-worker", lab.instance)
        finally:
            for p in probers:
                p.stop.set()
            for t in threads:
                t.join(timeout=20)
        assert code == 0 and data["result"]["status"] == "applied", (data, err)
        assert "meshpath" not in lab.exec("conn", ["nft", "list", "tables"]).stdout
        calls += sum(len(p.results) for p in probers)
        failed += [(run, s, src) for p in probers for s, src in p.results if s != 200]
        assert mp(lab, "fix", "--rollback")[0] == 0  # bgp undone: NAT back, FRR as before
        assert mp(lab, "fix", "--rollback")[0] == 0  # nat undone
    assert calls >= MIGRATIONS * PROBERS * 3, f"the probes barely ran: {calls} calls"
    assert failed == [], f"{len(failed)} of {calls} in-flight requests lost: {failed}"


@dataclass(frozen=True)
class FaultyNft:
    """A Runner that makes the real nft reject the file removing meshpath's NAT."""

    inner: SubprocessRunner

    def run(self, argv: Sequence[str], **kw: Any) -> Completed:
        if argv[:2] == ["nft", "-f"] and "chain" not in Path(argv[2]).read_text():
            with open(argv[2], "a") as fh:
                fh.write("this is not nftables\n")
        return self.inner.run(argv, **kw)

    def has(self, program: str) -> bool:
        return self.inner.has(program)


def test_nft_rejecting_the_nat_removal_leaves_nat_and_frr_as_before(
    lab: Lab, tmp_path: Path
) -> None:
    lab.setup("gateway")
    assert mp(lab, "fix", "--mode", "nat", "--apply")[0] == 0
    start_conn_frr(lab)
    before = conn_state(lab)
    conn = lab.ns("conn")
    opts = FixOptions(peer="10.0.1.1", asn=65001, peer_asn="65000", replace_nat=True)
    plan = plan_fix(collect_snapshot(netns=conn), Settings(), "bgp", opts)
    assert "nft:remove inet meshpath" in [s.key for s in plan.steps]
    applier = Applier(FaultyNft(SubprocessRunner(netns=conn)), tmp_path, netns=conn)
    result = applier.apply(plan)
    assert result.status == "failed" and result.failed_step == "nft:remove inet meshpath"
    assert "nft -f" in (result.error or "") and "failed (exit 1)" in (result.error or "")
    assert_same(conn_state(lab), before)
    assert lab.worker_call().status == 200


def test_frr_reload_failing_mid_apply_is_rolled_back(lab: Lab, tmp_path: Path) -> None:
    lab.setup("gateway")
    start_conn_frr(lab)
    before = conn_state(lab)
    script = tmp_path / "frr-reload-fails.sh"
    # Really reloads (so FRR *is* half-changed), then reports failure.
    script.write_text(
        '#!/bin/sh\n/usr/lib/frr/frr-reload.py "$@"\n'
        'case "$*" in *--reload*) echo "injected failure" >&2; exit 1;; esac\n'
    )
    script.chmod(0o755)
    faults = ["--frr-reload", str(script)]
    code, data, _err = mp(lab, "fix", "--mode", "bgp", *BGP_ARGS, "--apply", faults=faults)
    assert code == 1 and data["result"]["status"] == "failed"
    assert "injected failure" in data["result"]["error"]
    assert_same(conn_state(lab), before)
    last = jr.latest(fix_root(lab) / "var/lib/meshpath")
    assert last is not None and last.status == "rolled-back"


def test_a_wrong_peer_asn_fails_when_the_router_refuses_not_at_the_timeout(lab: Lab) -> None:
    """The router's OPEN carries its AS: with a wrong --peer-asn bgpd refuses it (Bad Peer
    AS) and the session never comes up. The wait sees the NOTIFICATION and rolls back in
    seconds, not after --bgp-timeout."""
    lab.setup("gateway")
    start_conn_frr(lab)
    before = conn_state(lab)
    args = list(BGP_ARGS)
    args[args.index("--peer-asn") + 1] = "65099"
    started = time.monotonic()
    code, data, err = mp(lab, "fix", "--mode", "bgp", *args, "--apply")
    took = time.monotonic() - started
    assert code == 1 and data["result"]["status"] == "failed", (data, err)
    error = data["result"]["error"]
    assert "Bad Peer AS" in error and "NOTIFICATION 2/2" in error, error
    assert took < 15.0, f"{took:.1f}s: the wait ran into its 20 s timeout"
    assert_same(conn_state(lab), before)

    # The same mistake made by hand: the doctor says why the session is down.
    router = LAN_ADDR["router"]
    conf = ["conf t", "router bgp 65001", f"neighbor {router} remote-as 65099"]
    lab.exec("conn", ["vtysh", "-N", lab.ns("conn"), *(a for c in conf for a in ("-c", c))])
    wait_for(
        "the router's OPEN refused",
        lambda: "Bad Peer AS" in lab.vtysh("conn", f"show bgp neighbors {router} json"),
        10.0,
    )
    argv = ["--json", "doctor", "--netns", lab.ns("conn"), "--target", "10.0.1.50:3000"]
    done = subprocess.run(  # noqa: S603 - argv list
        [sys.executable, "-m", "meshpath", *argv], capture_output=True, text=True, check=False
    )
    assert done.returncode == 1, (done.stdout[-2000:], done.stderr)
    report = json.loads(done.stdout)
    assert_schema(report)
    (finding,) = [f for f in report["findings"] if f["id"] == "MP161"]
    assert any("OPEN Message Error/Bad Peer AS (2/2)" in e for e in finding["evidence"]), finding
    assert "cannot come up" in finding["why"], finding
    # The lab starts FRR's daemons itself, as a hand-run FRR would: no watchfrr.
    assert "MP165" in {f["id"] for f in report["findings"]}


def test_sigkill_between_steps_is_reported_then_resumed_or_rolled_back(lab: Lab) -> None:
    lab.setup("gateway")
    before = conn_state(lab)
    kill = ["--kill-after-step", "1"]
    code, _, _ = mp(lab, "fix", "--mode", "nat", "--apply", faults=kill)
    assert code == -9
    code, _, err = mp(lab, "fix", "--mode", "nat", "--apply")
    # nft, the IPv4 route, the IPv6 route (the dual-stack lab's tunnel carries IPv6)
    assert code == 3 and "interrupted after step 1/3" in err and "--resume" in err
    code, data, _ = mp(lab, "fix", "--resume", "--lab-worker", lab.instance)
    assert code == 0 and data["result"]["status"] == "applied"
    verify_ok(lab)
    assert mp(lab, "fix", "--rollback")[0] == 0
    assert_same(conn_state(lab), before)
    assert mp(lab, "fix", "--mode", "nat", "--apply", faults=kill)[0] == -9
    code, data, _ = mp(lab, "fix", "--rollback")
    assert code == 0 and data["result"]["undone"]
    assert_same(conn_state(lab), before)


def test_a_second_concurrent_run_fails_fast_and_changes_nothing(lab: Lab) -> None:
    lab.setup("gateway")
    before = conn_state(lab)
    with locked(fix_root(lab) / "var/lib/meshpath"):
        code, _, err = mp(lab, "fix", "--mode", "nat", "--apply")
    assert code == 3 and "another meshpath fix is running" in err
    assert_same(conn_state(lab), before)


BAD_INPUTS = [
    (["--mode", "nat", "--lan-if", "eth9"], 2, "LAN interface 'eth9' does not exist"),
    (["--mode", "bgp", "--peer", "10.0.1.1", "--asn", "0"], 2, "--asn 0"),
    (["--mode", "bgp", "--peer", "10.0.1.999", "--asn", "65001"], 2, "not an IP address"),
    (["--mode", "bgp", "--peer", "10.0.1.1", "--asn", "65001"], 3, "needs FRR running"),
    (["--mode", "route", "--peer", "10.0.1.1"], 2, "only apply to --mode bgp"),
    (["--range", "source_v4=10.0.0.0/16", "--mode", "route"], 2, "overlaps 10.0.1.0/24 on eth0"),
]


def test_bad_inputs_exit_2_or_3_and_change_nothing(lab: Lab) -> None:
    lab.setup("gateway")  # conn without FRR
    before = conn_state(lab)
    for args, code, message in BAD_INPUTS:
        head = args[:2] if args[0] == "--range" else []
        argv = [*head, "fix", *args[len(head) :], "--apply"]
        done = run_meshpath(lab, argv)
        assert (done.returncode, message in done.stderr) == (code, True), (args, done.stderr)
    assert_same(conn_state(lab), before)
    assert not (fix_root(lab) / "var/lib/meshpath/journals").exists()


def test_golden_renders_pass_the_real_tools(make_netns: Any) -> None:
    golden = Path(__file__).parent.parent / "unit" / "golden"
    ns = make_netns()
    for name in ("nft_nat.nft", "nft_delete.nft"):
        done = subprocess.run(
            ["ip", "netns", "exec", ns, "nft", "-c", "-f", str(golden / name)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    for name in ("frr_bgp_merged.conf", "frr_bgp_fresh.conf"):
        done = subprocess.run(
            ["ip", "netns", "exec", ns, "vtysh", "-C", "-f", str(golden / name)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
