"""workerd in the lab: the Worker's own errors through the Mesh binding, from the real runtime.

Each error Mesh can give a Worker is provoked for real (a closed port, ICMP rejects on the
service host, a reset after the handshake, a silent service, the field report's missing
return route) and the text the Worker's code catches is held to `meshpath explain`.
"""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from meshpath.collect.netns import inside_netns
from meshpath.lab import Lab, topology
from meshpath.lab.meshedge import MESSAGES
from meshpath.lab.worker.app import WorkerApp
from meshpath.lab.worker.capnp import WorkerSpec
from meshpath.lab.worker.runtime import find_workerd, serve_argv
from meshpath.worker.explain import explain
from tests.conftest import needs_root

pytestmark = [needs_root, pytest.mark.lab, pytest.mark.root]

PROBE = Path(__file__).resolve().parents[1] / "data" / "lab_worker" / "probe.js"
PROBE_APP = WorkerApp(WorkerSpec(("probe.js",), "2026-01-01"), {"probe.js": PROBE}, "probe")
SVC = topology.SERVICE_IP
# A listener that resets every connection once the request arrived, and one that never answers.
RESETTER = """
import socket, struct
s = socket.create_server(("10.0.1.50", 3004))
while True:
    c, _ = s.accept(); c.recv(100)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)); c.close()
"""
SILENT = """
import socket, time
s = socket.create_server(("10.0.1.50", 3005)); held = []
while True:
    held.append(s.accept()[0])
"""
REJECTS = (
    "table inet lab_test { chain input { type filter hook input priority 0; "
    "tcp dport 3002 reject with icmp type host-unreachable; "
    "tcp dport 3003 reject with icmp type net-unreachable; }; }"
)


def call(lab: Lab, path: str, to: str, timeout: float = 15.0) -> tuple[int, str]:
    r = lab.worker_call(f"{path}?to={quote(to, safe='')}", timeout=timeout, user=True)
    return r.status, r.body


def test_the_lab_worker_in_workerd_throws_handshake_timeout(lab: Lab) -> None:
    lab.user_worker = None
    lab.connect_timeout = 1.5
    lab.setup("broken")
    assert lab.worker_call("/health").body == "ok"  # never touches Mesh
    t0 = time.monotonic()
    r = lab.worker_call("/api/users")
    assert (r.status, r.body) == (500, "handshake timeout")
    assert 1.4 < time.monotonic() - t0 < 5.0  # Mesh's timeout, not TCP's minutes
    assert "handler failed: Error: handshake timeout" in lab.worker_log()
    assert lab.service_log() == []  # the SYN reached the service; nothing came back


def test_each_mesh_error_is_what_explain_knows(lab: Lab) -> None:
    lab.user_worker = PROBE_APP
    lab.connect_timeout, lab.response_timeout = 1.5, 1.0
    lab.setup("broken")
    # the field report's fix by hand, so that resets and ICMP errors come back at all
    lab.ip_batch("conn", f"route add {topology.SOURCE_RANGE} dev {topology.TUN_CONN}\n")
    lab.nft("svc", REJECTS)
    lab._spawn("resetter", "svc", [sys.executable, "-c", RESETTER])
    lab._spawn("silent", "svc", [sys.executable, "-c", SILENT])
    time.sleep(0.3)  # both listeners bind within milliseconds; a missing one shows as refused
    expected = {
        3000: None,
        3001: "connection refused",
        3002: "no route to host",
        3003: "network unreachable",
        3004: "connection reset",
        3005: "response timeout",
    }
    seen = set()
    for port, message in expected.items():
        status, body = call(lab, "/fetch", f"http://{SVC}:{port}/x")
        if message is None:
            assert status == 200 and topology.WORKER_SOURCE in body
            continue
        assert (status, body) == (500, f"Error: {message}"), port
        assert explain(body).key in (message, "no route to host"), body
        seen.add(message)
    lab.exec("conn", ["ip", "route", "del", topology.SOURCE_RANGE])
    status, body = call(lab, "/fetch", f"http://{SVC}:3000/")
    assert (status, body) == (500, "Error: handshake timeout")
    assert explain(body).key == "handshake timeout"
    seen.add("handshake timeout")
    assert seen == set(MESSAGES)  # every message the Mesh edge has was provoked


def test_global_fetch_and_connect(lab: Lab) -> None:
    """Global fetch to a private address is refused by workerd (explain knows its log line);
    env.MESH.connect() opens a socket through the tunnel, or times out like fetch."""
    lab.user_worker = PROBE_APP
    lab.connect_timeout = 1.5
    lab.setup("broken")
    status, _ = call(lab, "/global", f"http://{SVC}:3000/")
    assert status == 500
    line = next(ln for ln in lab.worker_log(user=True) if "is not allowed" in ln)
    assert explain(line).key == "private address not allowed"
    assert call(lab, "/connect", f"{SVC}:3000") == (500, "Error: handshake timeout")
    lab.ip_batch("conn", f"route add {topology.SOURCE_RANGE} dev {topology.TUN_CONN}\n")
    assert call(lab, "/connect", f"{SVC}:3000") == (200, "opened")


def test_workerd_startup_time(lab: Lab) -> None:
    """workerd accepts connections well within a second of being spawned (printed)."""
    lab.user_worker = None
    lab.setup("gateway")
    old = lab._named["worker"]
    old.terminate()
    old.wait(5)
    config = lab.run_dir / "workerd" / "worker" / "config.capnp"
    t0 = time.monotonic()
    lab._spawn("worker", "edge", serve_argv(find_workerd(), config))
    while not _accepts(lab):
        assert time.monotonic() - t0 < 5, "workerd did not start"
        time.sleep(0.005)
    took = time.monotonic() - t0
    print(f"workerd startup (spawn in edge -> accepting): {took * 1000:.0f} ms")
    assert took < 1.0
    assert lab.worker_call("/health").body == "ok"


def _accepts(lab: Lab) -> bool:
    with inside_netns(lab.ns("edge")):
        try:
            socket.create_connection(topology.WORKER_LISTEN, timeout=0.2).close()
        except OSError:
            return False
    return True


def test_mesh_binding_takes_an_ipv6_url_and_connects_from_the_ipv6_source(lab: Lab) -> None:
    """``env.MESH.fetch("http://[fd00:1::50]:3000/...")`` and
    ``env.MESH.connect("[fd00:1::50]:3000")`` in workerd: over IPv6 through the tunnel, from
    the Worker's IPv6 source; on broken (the profile keeps IPv6 out of WARP's table) both
    time out, with the IPv6 route both work."""
    lab.user_worker = PROBE_APP
    lab.connect_timeout = 1.5
    lab.setup("broken")
    url, hostport = f"http://[{topology.SERVICE_IP6}]:3000/six", f"[{topology.SERVICE_IP6}]:3000"
    assert call(lab, "/fetch", url) == (500, "Error: handshake timeout")
    assert call(lab, "/connect", hostport) == (500, "Error: handshake timeout")
    lab.ip_batch("conn", f"route add {topology.SOURCE_RANGE6} dev {topology.TUN_CONN}\n")
    status, body = call(lab, "/fetch", url)
    assert status == 200 and f'"client": "{topology.WORKER_SOURCE6}"' in body, body
    cap = lab.capture("conn", lambda: call(lab, "/connect", hostport), name="connect6")
    assert cap.value == (200, "opened")
    syn = next(p for p in cap.packets if p.flags == "S" and p.iface == topology.TUN_CONN)
    assert (syn.src, syn.dst) == (topology.WORKER_SOURCE6, topology.SERVICE_IP6)
