"""Re-record the real captures the trace tests classify (root; a few seconds each).

    sudo .venv/bin/python tests/data/trace/record.py [SCENARIO ...]
    sudo .venv/bin/python tests/data/trace/record.py --lab [LAB-SCENARIO ...]

Default: each scenario of :mod:`tests.trace_netlab` gets a fresh three-namespace
connector (veth "tunnel"); tcpdump -i any -y LINUX_SLL2 runs in the connector while one
Worker-like request is made. Writes ``<scenario>.pcap`` here and the connector's
ifindex -> name map in ``names.json``.

``--lab``: the real lab (:mod:`meshpath.lab`: tun tunnel relay, Worker in workerd, FRR)
runs each scenario with its fix step; its own capture on the connector (tcpdump -i any,
Linux cooked v1: direction and hardware type, no interface index) is copied to
``lab-<scenario>.pcap``; a scenario that also calls the service over IPv6 (dual-stack)
has its IPv4 packets there and its IPv6 packets in ``lab-<scenario>6.pcap`` (split by
``tcpdump -r ... ip`` / ``ip6``).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

from tests.trace_netlab import SCENARIOS, NetLab, stop_capture, wait_for  # noqa: E402


def settled(path: Path, quiet: float = 0.3) -> bool:
    """The capture has not grown for ``quiet`` seconds (in-flight packets are in)."""
    size = path.stat().st_size
    start = time.monotonic()
    while time.monotonic() - start < quiet:
        if path.stat().st_size != size:
            return False
        time.sleep(0.05)
    return True


def record(scenario: str, out: Path) -> dict[str, str]:
    with NetLab(scenario, tag=f"rec{scenario[:6]}") as lab:
        proc = lab.start_capture(out)
        lab.request()
        wait_for(lambda: settled(out), "the capture to settle")
        stop_capture(proc)
        return {str(k): v for k, v in lab.link_names().items()}


def record_lab(chosen: list[str], names: dict[str, dict[str, str]]) -> None:
    import shutil
    import subprocess

    from meshpath.lab import SCENARIO_NAMES, Lab, get_scenario, run_scenario

    with Lab.create() as lab:
        for name in chosen or list(SCENARIO_NAMES):
            result = run_scenario(lab, name)
            capture = lab.run_dir / f"capture-{name}.pcap"
            links = _link_names(lab.exec("conn", ["ip", "-o", "link"]).stdout)
            outputs = {f"lab-{name}": "ip"}
            if get_scenario(name).expect6 is not None:
                outputs[f"lab-{name}6"] = "ip6"
            for stem, family in outputs.items():
                target = HERE / f"{stem}.pcap"
                if len(outputs) == 1:
                    shutil.copyfile(capture, target)
                else:
                    argv = ["tcpdump", "-r", str(capture), "-w", str(target), family]
                    subprocess.run(argv, check=True, capture_output=True)  # noqa: S603
                print(f"{stem}: passed={result.passed}, {target.stat().st_size} bytes")
                names[stem] = links


def _link_names(text: str) -> dict[str, str]:
    rows = (line.split(":")[:2] for line in text.splitlines() if ":" in line)
    return {index.strip(): name.strip().split("@")[0] for index, name in rows}


def main(argv: list[str]) -> int:
    names_file = HERE / "names.json"
    names = json.loads(names_file.read_text()) if names_file.exists() else {}
    if argv[:1] == ["--lab"]:
        record_lab(argv[1:], names)
    else:
        for scenario in argv or list(SCENARIOS):
            names[scenario] = record(scenario, HERE / f"{scenario}.pcap")
            print(f"{scenario}: {(HERE / f'{scenario}.pcap').stat().st_size} bytes")
    names_file.write_text(json.dumps(names, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
