"""Re-derive the tcpdump text forms in text/ from the public captures in captures/.

    python tests/data/real/derive.py        (needs tcpdump; writes text/*.txt)

Each derived file is what a user pastes: tcpdump's own output with the flags in its name,
then, where named, re-encoded (UTF-16 as a Windows shell writes it) or quoted ("> ") as a
mail reply quotes it. The files are committed; the tests never run tcpdump.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
DCE = "zeek--testing_btest_Traces_dce-rpc_bind-ack-no-inband-null.pcap"
TLS = "sv--tests_bug-1450-04_tls_DER-incomplete-header.pcap"
PPPOE = "sv--tests_bug-4810_pppoe-session-http.pcap"

# name: (capture, tcpdump flags, post-processing)
DERIVED = {
    "dce-rpc.q.txt": (DCE, ["-n", "-q"], "plain"),
    "dce-rpc.hash.txt": (DCE, ["-n", "-#"], "plain"),
    "dce-rpc.vv.txt": (DCE, ["-n", "-vv"], "plain"),
    "dce-rpc.n.quoted.txt": (DCE, ["-n"], "quoted"),
    "dce-rpc.n.utf16.txt": (DCE, ["-n"], "utf16"),
    "tls-1450.ttt.txt": (TLS, ["-n", "-ttt"], "plain"),
    "pppoe.n.txt": (PPPOE, ["-n"], "plain"),
}


def derive(capture: str, flags: list[str], post: str) -> bytes:
    out = subprocess.run(  # noqa: S603 - argv list
        ["tcpdump", *flags, "-r", str(HERE / "captures" / capture)],  # noqa: S607
        capture_output=True,
        check=False,  # tcpdump exits 1 on a capture cut off mid-record, after printing it
    ).stdout.decode()
    if post == "quoted":
        out = "".join(f"> {line}\n" for line in out.splitlines())
    if post == "utf16":
        return "\ufeff".encode("utf-16-le") + out.replace("\n", "\r\n").encode("utf-16-le")
    return out.encode()


def main() -> None:
    for name, (capture, flags, post) in DERIVED.items():
        (HERE / "text" / name).write_bytes(derive(capture, flags, post))


if __name__ == "__main__":
    main()
