"""Benchmark: `meshpath fix --mode bgp --apply` until the router has the routes, vs FRR's floor.

    python bench/bgp.py [--runs 10] [--only fix,floor,floor-default]   (root)

Each run builds a fresh lab (`setup("bgp")`, the connector's FRR with no BGP yet) and
times, from its start to the moment the router's `show bgp ipv4 unicast json` holds both
ranges (polled every 50 ms from a thread):

- **fix**: `meshpath fix --mode bgp --apply` (the lab's arguments, as `lab run bgp` runs it),
  then, separately, `meshpath verify` afterwards (its own wall time);
- **floor**: the same FRR change by hand: the config meshpath writes (the connector's running
  config with meshpath's lines merged in) written to a file and `frr-reload.py --reload`ed;
- **floor-default**: the same, without the two timer lines (`bgp route-map delay-timer 1`,
  `coalesce-time 100`): the change as meshpath wrote it before issue 18;
- **fix-before** (with `--before-src DIR`, a checkout of older meshpath): the fix and verify
  run by that tree's package (PYTHONPATH=DIR/src), to compare before/after in one session.

Runs alternate between the kinds (fix, floor, floor-default, fix, ...) so the machine's
load hits them alike. Prints median and worst per kind, and `uptime` before and after.
Every lab is removed also on failure and on Ctrl-C/SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from meshpath.apply.frr import Frr  # noqa: E402
from meshpath.lab import Lab, fixes  # noqa: E402
from meshpath.lab.core import terminate_as_interrupt  # noqa: E402
from meshpath.lab.topology import ASN, DEVICE_RANGE, LAN_ADDR, SOURCE_RANGE, TUN_CONN  # noqa: E402
from meshpath.render import frr as frr_render  # noqa: E402
from meshpath.runner import SubprocessRunner  # noqa: E402

WANT = frozenset({SOURCE_RANGE, DEVICE_RANGE})
KINDS = ("fix", "floor", "floor-default")
TIMEOUT = 30.0


def router_has_routes(lab: Lab) -> bool:
    data = lab.vtysh_json("router", "show bgp ipv4 unicast json")
    return set(data.get("routes", {})) >= WANT


def time_until_routes(lab: Lab, action: Callable[[], None]) -> float:
    """Seconds from calling ``action`` (run in a thread) until the router has both ranges."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            action()
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failure.append(exc)

    t0 = time.monotonic()
    worker = threading.Thread(target=run)
    worker.start()
    try:
        while not router_has_routes(lab):
            if failure:
                raise RuntimeError(f"the change failed: {failure[0]}")
            if time.monotonic() - t0 > TIMEOUT:
                raise RuntimeError(f"the router has no {sorted(WANT)} after {TIMEOUT:g} s")
            time.sleep(0.05)
        return time.monotonic() - t0
    finally:
        worker.join()
        if failure:
            raise RuntimeError(f"the change failed: {failure[0]}")


def meshpath(lab: Lab, *args: str, src: Path | None = None) -> None:
    env = lab.meshpath_env(token=True)
    if src is not None:
        env["PYTHONPATH"] = str(src / "src")
    done = fixes.run_meshpath(lab, list(args), env=env)
    if done.returncode != 0:
        tail = " | ".join((done.stdout + done.stderr).strip().splitlines()[-4:])
        raise RuntimeError(f"meshpath {args[0]} exited {done.returncode}: {tail}")


def fix_args(lab: Lab) -> list[str]:
    return ["fix", "--mode", "bgp", "--apply", "--lab-worker", lab.instance, *fixes.BGP_ARGS]


def intent(default_timers: bool) -> frr_render.FrrIntent:
    """What `fix` plans for the lab's fresh connector (see tests/lab for the same values)."""
    ranges = (SOURCE_RANGE, DEVICE_RANGE)
    return frr_render.FrrIntent(
        tunnel=TUN_CONN,
        statics=ranges,
        advertise=ranges,
        asn=ASN["conn"],
        peer=LAN_ADDR["router"],
        peer_asn=str(ASN["router"]),
        bgp_created=True,
        owned_statics=ranges,
        rmap_delay=not default_timers,
    )


def hand_reload(lab: Lab, default_timers: bool) -> Callable[[], None]:
    """The floor: the merged config written to a file and reloaded with frr-reload.py."""
    ns = lab.ns("conn")
    frr = Frr(SubprocessRunner(netns=ns), ns)
    text = frr_render.render_blocks(frr_render.merge(frr.running_config(), intent(default_timers)))
    if default_timers:
        text = text.replace(f" coalesce-time {frr_render.COALESCE_MS}\n", "")
    conf = lab.run_dir / "bench-bgp-floor.conf"

    def apply() -> None:
        conf.write_text(text)
        frr.reload(conf)

    return apply


def one_run(kind: str, before: Path | None) -> dict[str, float]:
    lab = Lab.create()
    src = before if kind == "fix-before" else None
    try:
        lab.setup("bgp")
        fixes.start_conn_frr(lab)
        if kind.startswith("fix"):
            fix = fix_args(lab)
            out = {"routes": time_until_routes(lab, lambda: meshpath(lab, *fix, src=src))}
            t0 = time.monotonic()
            meshpath(lab, "verify", "--lab-worker", lab.instance, src=src)
            out["verify"] = time.monotonic() - t0
            return out
        return {"routes": time_until_routes(lab, hand_reload(lab, kind == "floor-default"))}
    finally:
        lab.down()


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def summary(name: str, values: list[float]) -> str:
    vals = ", ".join(f"{v:.2f}" for v in values)
    med, worst = statistics.median(values), max(values)
    return f"  {name:22} median {med:5.2f} s  worst {worst:5.2f} s  [{vals}]"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--only", default=",".join(KINDS), help="kinds to run, comma-separated")
    p.add_argument("--before-src", type=Path, help="older meshpath checkout: adds fix-before")
    args = p.parse_args()
    kinds = [k for k in args.only.split(",") if k]
    if unknown := set(kinds) - set(KINDS):
        p.error(f"--only: unknown {sorted(unknown)}; expected {', '.join(KINDS)}")
    if args.before_src is not None:
        if not (args.before_src / "src" / "meshpath").is_dir():
            p.error(f"--before-src {args.before_src}: no src/meshpath in it")
        kinds.insert(0, "fix-before")
    if os.geteuid() != 0:
        p.error("needs root (network namespaces)")
    print(f"before: {uptime()}", flush=True)
    results: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
    for i in range(args.runs):
        for kind in kinds:
            r = one_run(kind, args.before_src)
            results[kind].append(r)
            extra = f", verify {r['verify']:.2f} s" if "verify" in r else ""
            print(f"run {i + 1:2} {kind:14} routes {r['routes']:.2f} s{extra}", flush=True)
    print(f"after:  {uptime()}")
    print(f"bgp bench, {args.runs} runs each: start -> both ranges in the router's BGP table")
    for kind in kinds:
        print(summary(kind, [r["routes"] for r in results[kind]]))
    for kind in ("fix-before", "fix"):
        if kind in results:
            print(summary(f"verify after {kind}", [r["verify"] for r in results[kind]]))


if __name__ == "__main__":
    # Labs tear down in their finally blocks; SIGTERM/SIGINT must become an exception.
    with terminate_as_interrupt():
        main()
