"""The Ansible collection with the real engine against the ha lab's two connectors.

ansible-core runs playbooks on this host (local connection), each module pointed at a
connector's namespace with its ``netns`` option. The collection is built with
``ansible-galaxy collection build`` and installed into a temporary collections path.
Order matters and is one test: check mode on the fresh lab changes nothing; the first run
changes both connectors and the Worker's calls succeed; the second changes none;
``state: absent`` rolls both back.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from meshpath.lab import Lab, get_scenario, ha
from meshpath.lab.topology import LAN_ADDR, SOURCE_RANGE, WORKER_SOURCE
from tests.conftest import ROOT_OK, ROOT_REASON

REPO = Path(__file__).resolve().parents[2]
COLLECTION = REPO / "ansible_collections" / "meshpath" / "connector"
BIN = Path(sys.executable).parent
pytestmark = [pytest.mark.root, pytest.mark.lab]

PLAYBOOK = """
- hosts: connectors
  gather_facts: false
  tasks:
    - name: fix
      meshpath.connector.meshpath_fix:
        mode: bgp
        state: "{{ fix_state }}"
        peer: 10.0.1.1
        asn: "65001"
        peer_asn: "65000"
        role: "{{ role }}"
        also_device_range: true
        bgp_timeout: 20
        netns: "{{ netns }}"
        root: "{{ fix_root }}"
        executable: "{{ meshpath_bin }}"
      register: fixed
    - name: keep the module's result for the test (never counted as a change)
      ansible.builtin.copy:
        content: "{{ fixed | to_json }}"
        dest: "{{ out_dir }}/{{ inventory_hostname }}.json"
        mode: "0600"
      check_mode: false
      changed_when: false
"""
# The example playbook's last two tasks (playbooks/fleet.yml): every connector's fleet
# facts, then `meshpath fleet check` once, on the controller, over all of them.
FLEET_PLAYBOOK = """
- hosts: connectors
  gather_facts: false
  tasks:
    - name: facts
      meshpath.connector.meshpath_facts:
        fleet_name: "{{ inventory_hostname }}"
        netns: "{{ netns }}"
        executable: "{{ meshpath_bin }}"
    - name: fleet check, once, on the controller
      ansible.builtin.command:
        argv: ["{{ meshpath_bin }}", --json, fleet, check, "-"]
        stdin: >-
          {{ ansible_play_hosts | map('extract', hostvars, ['ansible_facts', 'meshpath', 'fleet'])
             | list | to_json }}
      delegate_to: localhost
      run_once: true
      changed_when: false
      register: fleet
    - name: keep the check's result for the test
      ansible.builtin.copy:
        content: "{{ fleet.stdout }}"
        dest: "{{ out_dir }}/fleet.json"
        mode: "0600"
      delegate_to: localhost
      run_once: true
      changed_when: false
"""
RECAP = re.compile(
    r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M
)


def _need_ansible() -> None:
    for tool in ("ansible-playbook", "ansible-galaxy"):
        if not (BIN / tool).exists():
            pytest.skip(f"{tool} not in the venv: pip install ansible-core (dev extras)")


@pytest.fixture(scope="module")
def collections(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The collection built from the repository and installed into a temporary path."""
    _need_ansible()
    build = tmp_path_factory.mktemp("build")
    done = _run([str(BIN / "ansible-galaxy"), "collection", "build", str(COLLECTION),
                 "--output-path", str(build)])  # fmt: skip
    tarball = next(build.glob("meshpath-connector-*.tar.gz"))
    path = tmp_path_factory.mktemp("collections")
    _run([str(BIN / "ansible-galaxy"), "collection", "install", str(tarball), "-p", str(path)])
    assert (
        path / "ansible_collections/meshpath/connector/plugins/modules/meshpath_fix.py"
    ).exists()
    assert done.returncode == 0
    return path


@pytest.fixture(scope="module")
def ha_lab() -> Iterator[Lab]:
    if not ROOT_OK:
        pytest.skip(ROOT_REASON)
    _need_ansible()
    with Lab.create() as lab:
        lab.setup(get_scenario("ha"))
        ha.start_replica(lab)  # both connectors with their sessions and bare FRR, no fix
        yield lab


def _run(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=180, check=False)
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    return done


def _inventory(lab: Lab, tmp: Path) -> Path:
    hosts = {}
    for node, role in ha.ROLES.items():
        hosts[node] = {
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
            "netns": lab.ns(node),
            "role": role,
            "fix_root": str(tmp / f"{node}-root"),
            "meshpath_bin": str(BIN / "meshpath"),
        }
    path = tmp / "inventory.json"
    path.write_text(json.dumps({"connectors": {"hosts": hosts}}))
    return path


def _playbook(
    lab: Lab,
    collections: Path,
    tmp: Path,
    *extra: str,
    state: str = "present",
    text: str = PLAYBOOK,
) -> dict[str, int]:
    """Run the playbook; host -> changed tasks, from the play recap (no host failed).
    Each host's module result is left in ``tmp/out/<host>.json``."""
    book = tmp / "fix.yml"
    book.write_text(text)
    out = tmp / "out"
    out.mkdir(exist_ok=True)
    env = dict(lab.meshpath_env())
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(collections),
        ANSIBLE_LOCAL_TEMP=str(tmp / "ansible-tmp"),
        ANSIBLE_HOME=str(tmp / "ansible-home"),
        ANSIBLE_NOCOLOR="1",
        PATH=f"{BIN}:{env['PATH']}",
    )
    argv = [str(BIN / "ansible-playbook"), "-i", str(_inventory(lab, tmp)), str(book)]
    argv += ["-e", f"fix_state={state}", "-e", f"out_dir={out}", *extra]
    done = _run(argv, env)
    recap = {m[1]: (int(m[3]), int(m[4]) + int(m[5])) for m in RECAP.finditer(done.stdout)}
    assert recap and all(bad == 0 for _c, bad in recap.values()), done.stdout[-3000:]
    return {host: changed for host, (changed, _bad) in recap.items()}


def _result(tmp: Path, host: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((tmp / "out" / f"{host}.json").read_text())
    return data


def _meshpath_frr(lab: Lab, node: str) -> bool:
    return "MESHPATH-OUT" in lab.vtysh(node, "show running-config")


def test_playbook_check_apply_idempotent_and_absent(
    ha_lab: Lab, collections: Path, tmp_path: Path
) -> None:
    lab = ha_lab
    # check mode on the fresh lab: would change both, changes nothing; --diff shows FRR's
    stats = _playbook(lab, collections, tmp_path, "--check", "--diff")
    assert stats == {"conn": 1, "connb": 1}
    assert not any(_meshpath_frr(lab, n) for n in ha.ROLES)
    assert SOURCE_RANGE not in lab.bgp_routes("router")
    standby, primary = _result(tmp_path, "connb"), _result(tmp_path, "conn")
    assert "set as-path prepend 65001 65001 65001" in standby["diff"]["prepared"]
    assert "route-map MESHPATH-OUT permit 10" in primary["diff"]["prepared"]
    assert "set as-path prepend" not in primary["diff"]["prepared"]
    assert standby["plan"]["mode"] == "bgp" and "frr:meshpath" in standby["steps_changed"]

    # first run: both changed, the router prefers the primary, the Worker's calls succeed
    stats = _playbook(lab, collections, tmp_path)
    assert stats == {"conn": 1, "connb": 1}
    ha.wait_router(lab, LAN_ADDR["conn"])
    paths = ha.router_paths(lab)
    assert paths[LAN_ADDR["connb"]] > paths[LAN_ADDR["conn"]]
    for _ in range(3):
        call = lab.worker_call()
        assert (call.status, call.seen_source) == (200, WORKER_SOURCE), call

    # the ha scenario's drill on what the playbook configured: the primary's session
    # killed (calls move to connb), then restored (back to conn)
    checks = ha.drill(lab)
    assert all(c.ok for c in checks), checks

    # the fleet check over both connectors' facts, on the controller: primary and standby
    # advertise with different preference
    stats = _playbook(lab, collections, tmp_path, text=FLEET_PLAYBOOK)
    assert stats == {"conn": 0, "connb": 0}
    fleet = json.loads((tmp_path / "out" / "fleet.json").read_text())
    assert fleet["schema"] == "meshpath/fleet-check/1" and fleet["ok"], fleet
    lengths = {c["host"]: c["advertisements"][0]["as_path_length"] for c in fleet["connectors"]}
    assert lengths == {"conn": 1, "connb": 7}

    # second run: nothing to do anywhere
    stats = _playbook(lab, collections, tmp_path)
    assert stats == {"conn": 0, "connb": 0}

    # state: absent rolls both back
    stats = _playbook(lab, collections, tmp_path, state="absent")
    assert stats == {"conn": 1, "connb": 1}
    assert not any(_meshpath_frr(lab, n) for n in ha.ROLES)
    stats = _playbook(lab, collections, tmp_path, state="absent")
    assert stats == {"conn": 0, "connb": 0}
