"""Benchmark: `meshpath trace` against `tcpdump -r FILE -n > /dev/null` on the same file.

Generates SLL2 (`tcpdump -i any`) captures of mixed TCP traffic in a temporary directory
(deleted afterwards), then times, in one run:

* ``tcpdump -r FILE -n`` to /dev/null (and with ``-S``, which skips tcpdump's
  relative-sequence bookkeeping),
* ``meshpath --json trace FILE`` (read + decode + classify + report) in a subprocess,
  with its peak RSS from ``wait4``.

Variants:
* ``mixed``: ~200 MB / ~2.3M packets; 1 flow in 8 comes from the Cloudflare source range
  through the connector (tun in, eth0 out, and back), the rest is LAN traffic between
  unrelated addresses;
* ``same-prefix``: every packet is 100.64/12 <-> 10.0.1.0/24 (a connector's real traffic;
  FACTS.md saw tcpdump slow ~30x on it; ``--same-mb``, default 100 MB);
* ``mixed-half``: half the size of ``mixed``, to show that RSS does not grow with the file.

Run: ``.venv/bin/python -u bench/trace.py [--mb 200] [--same-mb 100] [--only VARIANT]``.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

SLL2_HEAD = struct.Struct("!HHIHBB8s")
IP_TCP = struct.Struct("!BBHHHBBH4s4sHHIIBBHHH")
REC = struct.Struct("<IIII")
TUN, ETH0 = 2, 3
IN, OUT = 0, 4
SYN, ACK, FIN, PSH = 0x02, 0x10, 0x01, 0x08


def frame(
    ifindex: int,
    pkttype: int,
    src: bytes,
    dst: bytes,
    sp: int,
    dp: int,
    flags: int,
    seq: int,
    ack: int,
    payload: int,
) -> bytes:
    hatype = 65534 if ifindex == TUN else 1
    head = SLL2_HEAD.pack(0x0800, 0, ifindex, hatype, pkttype, 0 if ifindex == TUN else 6, b"")
    total = 40 + payload
    ip_tcp = IP_TCP.pack(
        0x45, 0, total, 0, 0x4000, 64, 6, 0, src, dst, sp, dp, seq, ack, 0x50, flags, 64240, 0, 0
    )
    return head + ip_tcp + bytes(payload)


def flow_packets(
    rng: random.Random, src: bytes, dst: bytes, sp: int, via_tunnel: bool, data: int
) -> list[bytes]:
    """One connection: handshake, ``data`` segments each way-ish, FIN/FIN; legs per path."""
    dp, c, s = 3000, rng.getrandbits(32), rng.getrandbits(32)
    fwd = [(TUN, IN), (ETH0, OUT)] if via_tunnel else [(ETH0, IN)]
    rev = [(ETH0, IN), (TUN, OUT)] if via_tunnel else [(ETH0, OUT)]
    out: list[bytes] = []

    def send(forward: bool, flags: int, seq: int, ack: int, size: int) -> None:
        for ifindex, ptype in fwd if forward else rev:
            if forward:
                out.append(frame(ifindex, ptype, src, dst, sp, dp, flags, seq, ack, size))
            else:
                out.append(frame(ifindex, ptype, dst, src, dp, sp, flags, seq, ack, size))

    send(True, SYN, c, 0, 0)
    send(False, SYN | ACK, s, c + 1, 0)
    send(True, ACK, c + 1, s + 1, 0)
    c, s = c + 1, s + 1
    for i in range(data):
        size = rng.choice((0, 0, 0, 16, 40))
        if i % 2:
            send(True, PSH | ACK, c & 0xFFFFFFFF, s & 0xFFFFFFFF, size)
            c += size
        else:
            send(False, PSH | ACK, s & 0xFFFFFFFF, c & 0xFFFFFFFF, size)
            s += size
    send(True, FIN | ACK, c & 0xFFFFFFFF, s & 0xFFFFFFFF, 0)
    send(False, FIN | ACK, s & 0xFFFFFFFF, (c + 1) & 0xFFFFFFFF, 0)
    return out


def addresses(rng: random.Random, same_prefix: bool, via_tunnel: bool) -> tuple[bytes, bytes]:
    if same_prefix or via_tunnel:
        src = bytes([100, 64 + rng.randrange(16), rng.randrange(256), rng.randrange(1, 255)])
        return src, bytes([10, 0, 1, rng.randrange(2, 250)])
    return rng.randbytes(4), bytes([10, rng.randrange(256), rng.randrange(256), 7])


def generate(path: Path, target_bytes: int, same_prefix: bool, seed: int = 7) -> int:
    """Write the capture; return the packet count."""
    rng = random.Random(seed)
    count, written, ts = 0, 24, 1_780_000_000_000_000
    with path.open("wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 276))
        while written < target_bytes:
            batch: list[bytes] = []
            for packets in _interleaved(rng, same_prefix, 64):
                batch.append(packets)
            chunk = bytearray()
            for pkt in batch:
                ts += rng.randrange(1, 400)
                sec, usec = divmod(ts, 1_000_000)
                chunk += REC.pack(sec, usec, len(pkt), len(pkt))
                chunk += pkt
            fh.write(chunk)
            written += len(chunk)
            count += len(batch)
    return count


def _interleaved(rng: random.Random, same_prefix: bool, concurrent: int) -> Iterator[bytes]:
    """``concurrent`` flows' packets, interleaved the way parallel connections are."""
    flows = []
    for _ in range(concurrent):
        via_tunnel = same_prefix or rng.random() < 0.125
        src, dst = addresses(rng, same_prefix, via_tunnel)
        flows.append(
            flow_packets(
                rng, src, dst, rng.randrange(1024, 65535), via_tunnel, rng.randrange(4, 40)
            )
        )
    cursors = [0] * len(flows)
    live = list(range(len(flows)))
    while live:
        pick = rng.randrange(len(live))
        i = live[pick]
        yield flows[i][cursors[i]]
        cursors[i] += 1
        if cursors[i] == len(flows[i]):
            live[pick] = live[-1]
            live.pop()


def timed(argv: list[str], ok_codes: tuple[int, ...] = (0,)) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one child process, output to /dev/null."""
    start = time.perf_counter()
    with open(os.devnull, "wb") as null:
        proc = subprocess.Popen(argv, stdout=null, stderr=subprocess.PIPE)  # noqa: S603
        _pid, status, usage = os.wait4(proc.pid, 0)
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        if proc.stderr:
            proc.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code not in ok_codes:
        raise SystemExit(f"{argv[0]} failed (exit {code}): {err.strip()[-300:]}")
    return time.perf_counter() - start, usage.ru_maxrss


def run_variant(name: str, path: Path, mb: float, same_prefix: bool) -> dict[str, float]:
    t0 = time.perf_counter()
    packets = generate(path, int(mb * 1e6), same_prefix)
    size = path.stat().st_size
    print(
        f"\n[{name}] {size / 1e6:.1f} MB, {packets} packets (generated in "
        f"{time.perf_counter() - t0:.1f} s)",
        flush=True,
    )
    meshpath = [str(Path(sys.executable).with_name("meshpath")), "--json", "trace", str(path)]
    mp_s, mp_rss = timed(meshpath, ok_codes=(0, 1))  # 1 = broken flows found
    print(
        f"  meshpath trace : {mp_s:7.2f} s  {size / 1e6 / mp_s:7.1f} MB/s  "
        f"{packets / mp_s / 1e3:7.0f} kpkt/s  peak RSS {mp_rss / 1024:.0f} MiB",
        flush=True,
    )
    td_s, _ = timed(["tcpdump", "-r", str(path), "-n"])
    tdS_s, _ = timed(["tcpdump", "-r", str(path), "-n", "-S"])
    print(
        f"  tcpdump -r -n  : {td_s:7.2f} s  {size / 1e6 / td_s:7.1f} MB/s  "
        f"{packets / td_s / 1e3:7.0f} kpkt/s"
    )
    print(f"  tcpdump -r -n -S: {tdS_s:6.2f} s  {size / 1e6 / tdS_s:7.1f} MB/s")
    print(f"  ratio: meshpath is {td_s / mp_s:.2f}x tcpdump -n, {tdS_s / mp_s:.2f}x tcpdump -n -S")
    path.unlink()
    return {
        "mb": size / 1e6,
        "packets": packets,
        "meshpath_s": mp_s,
        "rss_mib": mp_rss / 1024,
        "tcpdump_s": td_s,
        "tcpdump_S_s": tdS_s,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=200.0)
    parser.add_argument("--same-mb", type=float, default=100.0)
    parser.add_argument("--only", choices=("mixed", "same-prefix", "mixed-half"))
    args = parser.parse_args()
    if shutil.which("tcpdump") is None:
        print("tcpdump is not installed", file=sys.stderr)
        return 3
    workdir = Path(tempfile.mkdtemp(prefix="meshpath-bench-trace-"))
    variants = [
        ("mixed", args.mb, False),
        ("mixed-half", args.mb / 2, False),
        ("same-prefix", args.same_mb, True),
    ]
    try:
        for name, mb, same in variants:
            if args.only in (None, name):
                run_variant(name, workdir / f"{name}.pcap", mb, same)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    own_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"\npython {sys.version.split()[0]}, {os.cpu_count()} cpus, bench RSS {own_rss} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
