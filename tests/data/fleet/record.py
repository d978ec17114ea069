"""Record the fleet facts of both connectors in the ha and ha-equal scenarios (root).

python -m tests.data.fleet.record     # writes tests/data/fleet/<scenario>-<node>.json
"""

from __future__ import annotations

import json
from pathlib import Path

from meshpath.lab import Lab, get_scenario, ha
from meshpath.lab.topology import LAN_ADDR

HERE = Path(__file__).parent


def main() -> None:
    for name, fix in (("ha", ha.fix_ha), ("ha-equal", ha.fix_ha_equal)):
        with Lab.create() as lab:
            lab.setup(get_scenario(name))
            fix(lab)
            for node in ha.ROLES:
                facts = ha.fleet_facts(lab, node)
                (HERE / f"{name}-{node}.json").write_text(json.dumps(facts, indent=2) + "\n")
            paths = ha.router_paths(lab)
            print(name, {n: paths.get(LAN_ADDR[n]) for n in ha.ROLES})


if __name__ == "__main__":
    main()
