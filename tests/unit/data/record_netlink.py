"""Re-record the rtnetlink dumps the unit tests parse (run as root: `python record_netlink.py`).

Builds a throw-away namespace shaped like a WARP connector (tun ``CloudflareWARP``, veth,
table 65743 with throw/blackhole/unreachable/prohibit, multipath, onlink, mtu, IPv6) and
rules with every selector, then stores per dump the raw kernel bytes
(``netlink_<name>.bin``) and what ``ip -j`` says about the same state (``ip_<name>.json``)
so the tests check the parser against iproute2 without a kernel.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from meshpath.collect.netlink import RTM_GETADDR, RTM_GETLINK, RTM_GETROUTE, RTM_GETRULE, RtnlSocket
from meshpath.collect.netns import inside_netns

HERE = Path(__file__).parent
NS = f"mprec-{os.getpid()}"
PEER = f"{NS}-peer"

SETUP = """
link set lo up
tuntap add dev CloudflareWARP mode tun
link set CloudflareWARP up mtu 1280
addr add 100.96.0.5/32 dev CloudflareWARP
link add eth0 type veth peer name lan0 netns {peer}
link set eth0 up
addr add 10.0.1.2/24 dev eth0
addr add 192.0.2.9/32 peer 192.0.2.10 dev eth0
addr add 2001:db8:1::2/64 dev eth0 nodad
route add default via 10.0.1.1 dev eth0
route add 100.96.0.0/12 dev CloudflareWARP
route add 10.9.0.0/16 via 10.0.1.1 dev eth0 mtu 1280 metric 50 proto static
route add 192.168.50.0/24 via 192.0.2.1 dev eth0 onlink
route add 172.16.0.0/16 table 100 nexthop via 10.0.1.1 dev eth0 weight 2 nexthop via 10.0.1.3 dev eth0
route add 0.0.0.0/1 dev CloudflareWARP table 65743
route add 128.0.0.0/1 dev CloudflareWARP table 65743
route add throw 10.0.0.0/8 table 65743
route add blackhole 100.64.0.0/10 table 65743
route add unreachable 198.51.100.0/24 table 65743
route add prohibit 203.0.113.0/24 table 65743 metric 7
route add 2001:db8:2::/48 via 2001:db8:1::1 dev eth0 table 65743
route add blackhole 2001:db8:3::/48
route add 10.50.0.0/16 via inet6 2001:db8:1::1 dev eth0
rule add not fwmark 0x100cf lookup 65743 pref 32765
rule add from 10.0.0.0/8 to 192.168.0.0/16 iif eth0 fwmark 0x10/0xff ipproto tcp sport 1000-2000 dport 443 uidrange 100-200 tos 0x10 lookup 100 pref 100 proto 99
rule add oif CloudflareWARP lookup main suppress_prefixlength 0 pref 101
rule add suppress_ifgroup 5 lookup main pref 102
rule add pref 200 goto 300
rule add pref 201 to 198.18.0.0/15 blackhole
rule add pref 202 to 198.19.0.0/16 unreachable
rule add pref 203 to 198.20.0.0/16 prohibit
rule add pref 300 nop
rule add pref 1000 l3mdev
-6 rule add not from 2001:db8::/32 lookup 200 pref 500
-6 rule add to 2001:db8:5::/48 ipproto udp dport 53-54 lookup 65743 pref 501
"""  # noqa: E501 - one ip command per line reads best

NFT_SETUP = (
    "add table inet t; "
    "add chain inet t post { type nat hook postrouting priority srcnat; policy accept; }; "
    'add rule inet t post oifname "eth0" ip saddr 100.64.0.0/12 masquerade; '
    "add chain inet t filt { type filter hook forward priority filter - 5; policy drop; }; "
    "add chain inet t plain; "
    "add table netdev n; "
    "add chain netdev n ing { type filter hook ingress device eth0 priority -500; }"
)

DUMPS = {
    "links": (RTM_GETLINK, 0, ["link", "show"]),
    "addrs4": (RTM_GETADDR, 2, ["-4", "addr", "show"]),
    "addrs6": (RTM_GETADDR, 10, ["-6", "addr", "show"]),
    "routes4": (RTM_GETROUTE, 2, ["-4", "route", "show", "table", "all"]),
    "routes6": (RTM_GETROUTE, 10, ["-6", "route", "show", "table", "all"]),
    "rules4": (RTM_GETRULE, 2, ["-4", "rule", "show"]),
    "rules6": (RTM_GETRULE, 10, ["-6", "rule", "show"]),
}


def ip(*args: str) -> str:
    argv = ["ip", "-n", NS, *args]
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def record() -> None:
    for name, (msg_type, family, show) in DUMPS.items():
        with inside_netns(NS), RtnlSocket() as sock:
            raw = b"".join(sock.dump_raw(msg_type, family))
        (HERE / f"netlink_{name}.bin").write_bytes(raw)
        (HERE / f"ip_{name}.json").write_text(ip("-j", *show))
        print(f"{name}: {len(raw)} bytes")


def main() -> int:
    subprocess.run(["ip", "netns", "add", NS], check=True)
    subprocess.run(["ip", "netns", "add", PEER], check=True)
    try:
        lines = SETUP.format(peer=PEER).strip().splitlines()
        batch = "".join(f"{line}\n" for line in lines if not line.startswith("-6 "))
        subprocess.run(["ip", "-n", NS, "-batch", "-"], input=batch, text=True, check=True)
        # The peer end up: eth0 gets carrier, so only the tun's routes say linkdown.
        subprocess.run(["ip", "-n", PEER, "link", "set", "lan0", "up"], check=True)
        for line in lines:
            if line.startswith("-6 "):  # ip -batch takes no per-line options
                ip("-6", *line[3:].split())
        nft = ["ip", "netns", "exec", NS, "nft"]
        subprocess.run([*nft, NFT_SETUP], check=True)
        ruleset = subprocess.run([*nft, "-j", "list", "ruleset"], check=True, capture_output=True)
        (HERE / "nft_ruleset.json").write_bytes(ruleset.stdout)
        record()
    finally:
        subprocess.run(["ip", "netns", "del", NS], check=False)
        subprocess.run(["ip", "netns", "del", PEER], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
