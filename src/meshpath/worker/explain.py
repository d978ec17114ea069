"""`meshpath explain ERROR`: what an error a Worker sees through Mesh means (pure text).

A Workers developer sees one line in ``wrangler tail`` (``handler failed: Error: handshake
timeout``) and nothing about the network. Each entry here names the layer that failed,
what it means on the wire, and the exact commands to run on the connector. Sources:

* the lab's Mesh (:mod:`meshpath.lab.meshedge` behind the workerd binding), which makes
  ``env.MESH.fetch`` throw when the TCP handshake does not complete, is refused, reset,
  answered with an ICMP error, or no response comes; its messages are held to this
  catalogue by tests (unit, and a lab test that provokes each one);
* Cloudflare's Workers VPC troubleshooting page
  (developers.cloudflare.com/workers-vpc/reference/troubleshooting/): the error codes
  ``connection_refused``, ``connection_terminated``, ``connection_timeout``,
  ``connection_limit_reached``, ``destination_unavailable`` ("Bad Upstream") and the tunnel
  error ``ProxyError: dns_error``;
* Cloudflare Mesh's troubleshooting page: "Online" does not prove the return path; check
  ``warp-cli status``, ``nc -vz`` (not ping), forwarding, the forward firewall, the LAN's
  return route, MTU; ``warp-diag`` collects a support bundle;
* workerd itself: the global ``fetch()`` refuses private addresses.

Lookup is forgiving: the whole pasted line works (``handler failed: Error: ...``), case and
``_`` versus space do not matter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from meshpath.checks.targets import Target
from meshpath.errors import BadInputError

TARGET_PLACEHOLDER: Final = "IP:PORT"
WORKER_SOURCE: Final = "100.64.12.189"  # any address of Cloudflare's source range will do
TROUBLESHOOTING: Final = "https://developers.cloudflare.com/workers-vpc/reference/troubleshooting/"


@dataclass(frozen=True, slots=True)
class Explanation:
    """One error a Worker can see, and what to do about it."""

    key: str  # the canonical text, as `meshpath explain` is called with it
    matches: tuple[str, ...]  # other spellings: Cloudflare's codes, errno names, workerd text
    layer: str
    meaning: str
    commands: tuple[str, ...]  # run on the connector unless the line says otherwise
    source: str

    def as_dict(self, target: Target | None = None) -> dict[str, object]:
        return {
            "error": self.key,
            "matches": list(self.matches),
            "layer": self.layer,
            "meaning": self.meaning,
            "commands": list(commands_for(self, target)),
            "source": self.source,
        }


CATALOGUE: Final[tuple[Explanation, ...]] = (
    Explanation(
        "handshake timeout",
        ("connection_timeout", "connect timeout", "connection timed out"),
        "return path on the connector: LAN -> connector -> back into the tunnel",
        "Mesh delivered the Worker's SYN to the connector, but no SYN-ACK came back through "
        "the tunnel in time. The Mesh session is healthy (the dashboard says so too). Most "
        "often the service answers and the connector sends the reply out of its default route "
        "instead of into CloudflareWARP, because nothing routes Cloudflare's source range "
        "(100.64.0.0/12) to the tunnel; or the LAN has no route for that range back to the "
        "connector; or forwarding, rp_filter or a forward firewall drops the packets.",
        (
            "sudo meshpath doctor --target IP:PORT",
            "sudo meshpath trace --live --duration 10 --target IP:PORT   # call the Worker now",
            f"ip route get {WORKER_SOURCE} from {{ip}} iif eth0   # the reply: CloudflareWARP?",
            "sudo meshpath fix --mode route   # or --mode bgp --peer ROUTER --asn ASN",
        ),
        f"lab binding; Cloudflare: connection_timeout ({TROUBLESHOOTING})",
    ),
    Explanation(
        "connection refused",
        ("connection_refused", "econnrefused"),
        "the private service (the network path works both ways)",
        "The SYN reached the target and a TCP reset came back through Mesh: nothing listens "
        "on that port, or a host firewall rejects it with a reset. The connector and its "
        "return path are fine: the reset travelled back through the tunnel.",
        (
            "nc -vz {ip} {port}   # from the connector",
            "ss -ltn 'sport = :{port}'   # on the service host: is anything listening?",
            "sudo meshpath trace --live --duration 10 --target IP:PORT   # verdict: refused",
        ),
        f"lab binding; Cloudflare: connection_refused ({TROUBLESHOOTING})",
    ),
    Explanation(
        "connection reset",
        ("connection_terminated", "econnreset", "reset by peer", "network connection lost"),
        "the private service, or a middlebox, after the handshake",
        "The TCP connection was established, then closed or reset before a response arrived: "
        "the service crashed or closed it, a proxy or firewall on the LAN cut it, or a large "
        "packet was lost for good (MTU: the tunnel carries 1280 bytes).",
        (
            "sudo meshpath trace --live --duration 10 --target IP:PORT   # who sent the RST",
            "sudo meshpath doctor --target IP:PORT   # MP180: MTU and MSS clamping",
            "journalctl -u <service> --since -10min   # on the service host",
        ),
        f"lab binding; Cloudflare: connection_terminated ({TROUBLESHOOTING})",
    ),
    Explanation(
        "response timeout",
        (),
        "after the handshake: the service, or the path's MTU",
        "The TCP handshake completed through Mesh, the request was sent, and no response "
        "came back in time. Either the service hangs, or small packets pass and large ones "
        "do not: a response bigger than the tunnel's MTU (1280) is dropped when the LAN "
        "side does not clamp TCP's MSS (a black hole for full-size segments).",
        (
            "sudo meshpath doctor --target IP:PORT   # MP180: MTU and MSS clamping",
            "sudo meshpath trace --live --duration 10 --target IP:PORT   # data after the SYN-ACK?",
            "curl -m 5 http://IP:PORT/   # from the connector: does the service answer at all?",
        ),
        "lab binding",
    ),
    Explanation(
        "no route to host",
        (
            "host unreachable",
            "network unreachable",
            "ehostunreach",
            "enetunreach",
            "icmp unreachable",
            "destination unreachable",
        ),
        "the connector's forward path or the LAN (an ICMP error came back)",
        "The connector or a LAN router answered the SYN with ICMP destination unreachable: "
        "the connector has no route to the target, the target host is down (no ARP reply), "
        "or a firewall rejects with an ICMP error. The error did come back through Mesh, so "
        "the return path for ICMP works.",
        (
            f"ip route get {{ip}} from {WORKER_SOURCE} iif CloudflareWARP",
            "ip neigh show {ip}   # FAILED/INCOMPLETE: the host does not answer ARP",
            "sudo meshpath doctor --target IP:PORT   # MP141/MP142: unreachable or no route",
            "sudo meshpath trace --live --duration 10 --target IP:PORT   # icmp-unreachable",
        ),
        "lab binding; meshpath trace's icmp-unreachable verdict",
    ),
    Explanation(
        "destination unavailable",
        ("destination_unavailable",),
        "the tunnel: Cloudflare has no healthy connector for the destination",
        "Cloudflare considers the destination unavailable: the WARP Connector (or cloudflared) "
        "is not connected, or no route in the account covers the address.",
        (
            "warp-cli status   # on the connector: Connected?",
            "sudo meshpath doctor   # MP150: the tunnel is missing, down or without carrier",
            "warp-diag   # support bundle for Cloudflare",
        ),
        f"Cloudflare: destination_unavailable ({TROUBLESHOOTING})",
    ),
    Explanation(
        "connection limit reached",
        ("connection_limit_reached",),
        "the private service's concurrency, as Cloudflare counts it",
        "The maximum number of concurrent connections to the service was reached.",
        ("scale the service, or lower the Worker's connection concurrency",),
        f"Cloudflare: connection_limit_reached ({TROUBLESHOOTING})",
    ),
    Explanation(
        "dns error",
        ("dns_error", "proxyerror: dns error"),
        "name resolution at the tunnel (cloudflared)",
        "The tunnel could not resolve the hostname in the URL. Cloudflare: an outdated "
        "cloudflared (before 2025.7.0) or a tunnel using the http2 transport (Workers VPC "
        "needs QUIC, outbound UDP 7844) causes it. With Mesh, call the service by IP address.",
        (
            "cloudflared --version   # 2025.7.0 or later",
            "env.MESH.fetch('http://IP:PORT/')   # by address, no DNS involved",
        ),
        f"Cloudflare: ProxyError: dns_error ({TROUBLESHOOTING})",
    ),
    Explanation(
        "private address not allowed",
        ("is not allowed",),
        "the Worker's code: the global fetch() does not reach private networks",
        "The Worker called the global fetch() (or connect()) with a private address. Only a "
        "Workers VPC binding reaches a private network; workerd refuses the global call to "
        "private addresses. The request never entered Mesh.",
        (
            "meshpath worker check .   # MP310 names the call; on your machine, not the connector",
            "env.MESH.fetch('http://IP:PORT/')   # call through the binding instead",
        ),
        "workerd; Cloudflare VPC Networks page",
    ),
    Explanation(
        "binding undefined",
        ("reading 'fetch'", "reading 'connect'", "cannot read properties of undefined"),
        "the Worker's configuration: the binding does not exist",
        "env.NAME is undefined: no binding of that name is configured (renamed in wrangler's "
        "config but not in the code, a typo, or missing in this environment's env section: "
        "bindings are not inherited).",
        ("meshpath worker check .   # MP311 / MP306 / MP308",),
        "JavaScript runtime; wrangler configuration",
    ),
)


def normalise(text: str) -> str:
    """Lower case, ``_`` as space, single spaces, no ``Error:`` noise around it."""
    text = text.lower().replace("_", " ")
    return re.sub(r"\s+", " ", text).strip()


def lookup(text: str) -> Explanation | None:
    """The catalogue entry ``text`` names (a whole pasted log line works), or None."""
    wanted = normalise(text)
    if not wanted:
        return None
    for entry in CATALOGUE:
        if any(normalise(m) in wanted for m in (entry.key, *entry.matches)):
            return entry
    return None


def explain(text: str) -> Explanation:
    """Like :func:`lookup`; BadInputError listing the known errors when nothing matches."""
    entry = lookup(text)
    if entry is None:
        known = ", ".join(repr(e.key) for e in CATALOGUE)
        raise BadInputError(f"no explanation for {text!r}; known errors: {known}")
    return entry


def commands_for(entry: Explanation, target: Target | None = None) -> tuple[str, ...]:
    """The entry's commands with ``IP:PORT``, ``{ip}`` and ``{port}`` filled from ``target``
    (left as placeholders without one)."""
    ip, port = (target.address, str(target.port)) if target else ("IP", "PORT")
    whole = str(target) if target else TARGET_PLACEHOLDER
    return tuple(
        c.replace(TARGET_PLACEHOLDER, whole).replace("{ip}", ip).replace("{port}", port)
        for c in entry.commands
    )
