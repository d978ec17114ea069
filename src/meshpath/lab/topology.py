"""The lab's fixed topology: node names, addresses, and the `ip -batch` text that builds it.

Pure: everything here is data or text; :mod:`meshpath.lab.core` runs it. Interface names
live inside the lab's own namespaces, so they never carry the instance id and never collide
with another lab's (only namespace names do, and those are prefixed per instance).

    edge  cfedge 100.64.12.189/32  ══ tunnel emulator ══  conn  CloudflareWARP 100.96.0.5/32
    conn  eth0 10.0.1.2/24  ─┐
    router eth0 10.0.1.1/24 ─┼── lan ns: bridge br0
    svc   eth0 10.0.1.50/24 ─┤
    ts    eth0 10.0.1.3/24  ─┤  (tailnet router, lo 100.64.0.5/32; overlap scenario only)
    connb eth0 10.0.1.4/24  ─┘  (a second connector, ``ha`` scenarios only: lab/ha.py)

Dual-stack: every LAN host also has ``fd00:1::<n>/64`` (a ULA prefix; the service listens
at ``[fd00:1::50]:3000`` too), and edge sends from the Worker's IPv6 source
``2606:4700:cf1:5000::5`` (in Cloudflare's IPv6 source range, as ``meshpath doctor``
simulates it: ``CloudflareRanges.worker_probe_v6``). The tun devices carry both families:
with ``IFF_NO_PI`` the kernel takes a packet's family from its version nibble.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from meshpath.errors import BadInputError

NS_PREFIX: Final = "mplab-"
# A lab instance id is part of every namespace name and the name of its run directory:
# short lowercase letters and digits only, so it can be neither a path nor a '-' split.
INSTANCE: Final = re.compile(r"[a-z0-9]{1,8}")
NODES: Final[tuple[str, ...]] = ("lan", "edge", "conn", "router", "svc", "ts", "connb")
HOSTS: Final[tuple[str, ...]] = ("conn", "router", "svc", "ts", "connb")
CONNECTORS: Final[tuple[str, ...]] = ("conn", "connb")

TUN_EDGE: Final = "cfedge"
TUN_CONN: Final = "CloudflareWARP"
TUN_MTU: Final = 1280
LAN_IF: Final = "eth0"
BRIDGE: Final = "br0"

WORKER_SOURCE: Final = "100.64.12.189"
WORKER_LISTEN: Final = ("127.0.0.1", 8787)  # workerd with the lab's Worker, inside edge
USER_WORKER_LISTEN: Final = ("127.0.0.1", 8788)  # workerd with a user's Worker (--worker)
MESH_EDGE_LISTEN: Final = ("127.0.0.1", 8790)  # the Mesh edge the binding calls, inside edge
CONN_DEVICE_IP: Final = "100.96.0.5"
SERVICE_IP: Final = "10.0.1.50"
SERVICE_PORT: Final = 3000
TAILNET_NODE: Final = "100.64.0.5"
LAN_PREFIX: Final = "10.0.1.0/24"
SOURCE_RANGE: Final = "100.64.0.0/12"
DEVICE_RANGE: Final = "100.96.0.0/12"
CGNAT: Final = "100.64.0.0/10"
# Cloudflare's API as the lab emulates it (lab/cfapi.py): on edge's loopback, at a
# documentation address (TEST-NET-3) the connector reaches through the tunnel.
CF_API_IP: Final = "203.0.113.10"
CF_API_PORT: Final = 8443
LAB_ACCOUNT: Final = "6d1ab0c3e5f74a2b9c8d0e1f2a3b4c5d"

# IPv6. The ranges are the IPv6 rows of Cloudflare's Reserved IPs page ("Cloudflare source
# IPs 2606:4700:0cf1:5000::/64", "Device IPs 2606:4700:0cf1:1000::/64", both "Configurable:
# No"): https://developers.cloudflare.com/cloudflare-one/networks/routes/reserved-ips/
WORKER_SOURCE6: Final = "2606:4700:cf1:5000::5"
SOURCE_RANGE6: Final = "2606:4700:cf1:5000::/64"
DEVICE_RANGE6: Final = "2606:4700:cf1:1000::/64"
CONN_DEVICE_IP6: Final = "2606:4700:cf1:1000::5"
SERVICE_IP6: Final = "fd00:1::50"
CF_RESERVED6: Final = "2606:4700:cf1::/48"  # device, source and Gateway IPv6 ranges
LAN_PREFIX6: Final = "fd00:1::/64"

LAN_ADDR: Final[dict[str, str]] = {
    "router": "10.0.1.1",
    "conn": "10.0.1.2",
    "ts": "10.0.1.3",
    "svc": "10.0.1.50",
    "connb": "10.0.1.4",
}
LAN_ADDR6: Final[dict[str, str]] = {
    "router": "fd00:1::1",
    "conn": "fd00:1::2",
    "ts": "fd00:1::3",
    "svc": SERVICE_IP6,
    "connb": "fd00:1::4",
}
ASN: Final[dict[str, int]] = {"router": 65000, "conn": 65001, "ts": 65002}


def valid_instance(instance: str) -> bool:
    return INSTANCE.fullmatch(instance) is not None


def check_instance(instance: str) -> str:
    """``instance`` if it is a valid lab instance id; BadInputError (exit 2) naming it."""
    if not valid_instance(instance):
        shown = repr(instance[:40]) + ("..." if len(instance) > 40 else "")
        raise BadInputError(f"lab instance {shown} must be 1-8 characters of [a-z0-9]")
    return instance


def ns_name(instance: str, node: str) -> str:
    """The namespace of ``node`` in lab ``instance`` (``mplab-<instance>-<node>``)."""
    return f"{NS_PREFIX}{instance}-{node}"


def instance_of(namespace: str) -> str | None:
    """The instance id of a lab namespace name, or None if it is not one of ours.

    ``mplab-..-conn`` is a valid namespace name anyone can create: only a valid instance
    id counts, so such a name never becomes a path to remove.
    """
    if not namespace.startswith(NS_PREFIX):
        return None
    rest = namespace[len(NS_PREFIX) :]
    instance, sep, node = rest.rpartition("-")
    return instance if sep and valid_instance(instance) and node in NODES else None


def nodes_for(tailnet: bool, ha: bool = False) -> tuple[str, ...]:
    """The namespaces a lab needs: the tailnet router only for the overlap scenario, the
    second connector only for the ``ha`` scenarios."""
    return tuple(n for n in NODES if (tailnet or n != "ts") and (ha or n != "connb"))


def lan_batch(instance: str, hosts: Sequence[str]) -> str:
    """`ip -batch` text run in the lan namespace: the bridge and one veth per host.

    The host end is created directly inside the host's namespace (``peer ... netns``),
    so no interface ever exists in the root namespace, not even for an instant.
    """
    lines = [f"link add {BRIDGE} type bridge", f"link set {BRIDGE} up"]
    for host in hosts:
        peer = ns_name(instance, host)
        lines += [
            f"link add {host} type veth peer name {LAN_IF} netns {peer}",
            f"link set {host} master {BRIDGE}",
            f"link set {host} up",
        ]
    return "\n".join(lines) + "\n"


def host_batch(host: str) -> str:
    """`ip -batch` text for a LAN host: loopback, eth0 addresses, default routes.

    IPv6 addresses are added ``nodad``: duplicate address detection would hold each one
    ``tentative`` (unusable) for a second or more, and the lab assigns them all itself.
    """
    addr, addr6 = LAN_ADDR[host], LAN_ADDR6[host]
    lines = ["link set lo up", f"addr add {addr}/24 dev {LAN_IF}"]
    lines += [f"addr add {addr6}/64 dev {LAN_IF} nodad", f"link set {LAN_IF} up"]
    if host in ("conn", "svc", "connb"):
        lines.append(f"route add default via {LAN_ADDR['router']} dev {LAN_IF}")
        lines.append(f"route add ::/0 via {LAN_ADDR6['router']} dev {LAN_IF}")
    if host == "conn":
        lines.append(f"addr add {CONN_DEVICE_IP}/32 dev {TUN_CONN}")
        lines.append(f"addr add {CONN_DEVICE_IP6}/128 dev {TUN_CONN} nodad")
    if host == "ts":
        lines.append(f"addr add {TAILNET_NODE}/32 dev lo")
    return "\n".join(lines) + "\n"


def edge_batch() -> str:
    """Cloudflare's side: the Worker sources (both families) on the tun, the LAN and the
    device ranges through it."""
    return (
        "link set lo up\n"
        f"addr add {CF_API_IP}/32 dev lo\n"
        f"addr add {WORKER_SOURCE}/32 dev {TUN_EDGE}\n"
        f"addr add {WORKER_SOURCE6}/128 dev {TUN_EDGE} nodad\n"
        f"route add {LAN_PREFIX} dev {TUN_EDGE} src {WORKER_SOURCE}\n"
        f"route add {DEVICE_RANGE} dev {TUN_EDGE} src {WORKER_SOURCE}\n"
        f"route add {LAN_PREFIX6} dev {TUN_EDGE} src {WORKER_SOURCE6}\n"
        f"route add {DEVICE_RANGE6} dev {TUN_EDGE} src {WORKER_SOURCE6}\n"
    )


def sysctls_for(node: str) -> dict[str, str]:
    """Sysctls set in each namespace; explicit so the lab never inherits the host's values.

    conn uses loose rp_filter (2), what Ubuntu (systemd) ships on a real connector host.
    IPv6 forwarding is on where IPv4's is (Cloudflare's Linux connector guide enables both);
    IPv6 has no rp_filter sysctl. ``disable_ipv6=0`` explicitly: a namespace may inherit
    the host's ``default`` values.
    """
    values = {"net.ipv4.conf.all.rp_filter": "0", "net.ipv4.conf.default.rp_filter": "0"}
    values["net.ipv6.conf.all.disable_ipv6"] = "0"
    values["net.ipv6.conf.default.disable_ipv6"] = "0"
    # No duplicate address detection on the lab's links (set before any exists): a
    # link-local address stays tentative ~1 s, and until then neighbour discovery holds
    # the first IPv6 packet to the LAN (a Worker's SYN, forwarded only after 1 s).
    values["net.ipv6.conf.all.accept_dad"] = "0"
    values["net.ipv6.conf.default.accept_dad"] = "0"
    if node in ("conn", "router", "ts", "connb"):
        values["net.ipv4.ip_forward"] = "1"
        values["net.ipv6.conf.all.forwarding"] = "1"
    if node in ("conn", "connb"):
        values["net.ipv4.conf.all.rp_filter"] = "2"
        values["net.ipv4.conf.default.rp_filter"] = "2"
    return values
