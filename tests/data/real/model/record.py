"""Re-record the multi-WAN hosts the model tests hold to the kernel (root; ~1 s each).

    sudo .venv/bin/python tests/data/real/model/record.py

Each host is built in a fresh namespace the way a multi-WAN router is: two uplinks with a
weighted multipath default (wan1 weight 1, wan2 weight 3), a LAN, policy rules on uid,
ipproto/dport and tos, and the multipath hash's sysctls as named. The script collects the
snapshot with meshpath's own collector, asks the kernel every query with
``ip -j route get`` and writes ``<host>.json``: {"snapshot": ..., "answers": [[query,
answer or errno], ...]}. The namespace is removed afterwards, also on failure.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[3]))

from meshpath.collect import collect_snapshot  # noqa: E402
from meshpath.state import codec  # noqa: E402

SETUP = [
    "link add wan1 type veth peer name wan1p",
    "link add wan2 type veth peer name wan2p",
    "link add lan type veth peer name lanp",
    "addr add 198.51.100.2/24 dev wan1",
    "addr add 203.0.113.2/24 dev wan2",
    "addr add 192.168.1.1/24 dev lan",
    *[f"link set {d} up" for d in ("wan1", "wan1p", "wan2", "wan2p", "lan", "lanp")],
    "route add default nexthop via 198.51.100.1 dev wan1 weight 1 "
    "nexthop via 203.0.113.1 dev wan2 weight 3",
    "route add default via 203.0.113.1 dev wan2 table 100",
    "route add default via 198.51.100.1 dev wan1 table 101",
    "route add 10.9.0.0/16 via 192.168.1.254 dev lan table 102",
    "rule add pref 100 uidrange 1000-1999 lookup 100",
    "rule add pref 110 ipproto tcp dport 443 lookup 101",
    "rule add pref 120 tos 0x10 lookup 102",
]
# host name -> (fib_multipath_hash_seed, fib_multipath_hash_policy)
HOSTS = {"multiwan-seed": (31337, 0), "multiwan-l4": (271828, 1), "multiwan-random": (0, 0)}


def queries() -> list[str]:
    rng = random.Random(12)
    out = []
    for _ in range(40):
        a, b, c = rng.randrange(11, 200), rng.randrange(256), rng.randrange(256)
        dst = f"{a}.{b}.{c}.{rng.randrange(1, 255)}"
        out.append(f"route get {dst}")
        out.append(f"route get {dst} from 192.168.1.{rng.randrange(2, 250)} iif lan")
        out.append(f"route get {dst} ipproto udp sport {rng.randrange(1024, 65535)} dport 53")
    out += [
        "route get 8.8.8.8 from 203.0.113.2",
        "route get 8.8.8.8 from 198.51.100.2",
        "route get 224.0.0.1 from 192.168.1.7 iif lan",
        "route get 224.0.0.1 iif lan",
        "route get 239.1.2.3 from 192.168.1.7 iif lan",
        "route get 224.0.0.1 from 127.0.0.1 iif lan",
        "route get 224.0.0.1",
        "route get 0.0.0.0",
        "route get 0.0.0.0 from 192.168.1.1",
        "route get 9.9.9.9 uid 1500",
        "route get 9.9.9.9 uid 2500",
        "route get 9.9.9.9 ipproto tcp dport 443",
        "route get 9.9.9.9 ipproto tcp dport 80",
        "route get 10.9.1.1 tos 0x10",
        "route get 10.9.1.1",
        "route get 9.9.9.9 oif wan1",
        "route get 9.9.9.9 oif lan",
    ]
    return out


def sh(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, **kw)  # type: ignore[call-overload]


def record(name: str, seed: int, policy: int) -> None:
    ns = f"mpr-{os.getpid()}"
    sh(["ip", "netns", "add", ns])
    try:
        sh(["ip", "-n", ns, "link", "set", "lo", "up"])
        for line in SETUP:
            done = sh(["ip", "-n", ns, *line.split()])
            assert done.returncode == 0, (line, done.stderr)
        sysctls = ["net.ipv4.ip_forward=1", f"net.ipv4.fib_multipath_hash_seed={seed}",
                   f"net.ipv4.fib_multipath_hash_policy={policy}"]  # fmt: skip
        sh(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", *sysctls])
        snap = collect_snapshot(netns=ns)
        answers = []
        for query in queries():
            done = sh(["ip", "-n", ns, "-j", *query.split()])
            if done.returncode:
                answers.append([query, done.stderr.strip().split(": ")[-1]])
            else:
                answers.append([query, json.loads(done.stdout)[0]])
        doc = {"snapshot": json.loads(codec.dumps(snap)), "answers": answers}
        (HERE / f"{name}.json").write_text(json.dumps(doc, indent=1) + "\n")
    finally:
        sh(["ip", "netns", "del", ns])


if __name__ == "__main__":
    for host, (seed, policy) in HOSTS.items():
        record(host, seed, policy)
