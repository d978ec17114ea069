"""`meshpath lab up`'s work: build a lab for a scenario, apply its fix, start watch, detach.

Also what the command shows about the running lab: where its Worker and watch are.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meshpath.lab.core import Lab, terminate_as_interrupt
from meshpath.lab.fixes import FIXES
from meshpath.lab.scenarios import Scenario
from meshpath.lab.worker.app import USER_WORKER_LOG, WORKER_LOG, WorkerApp, worker_address

if TYPE_CHECKING:
    from meshpath.lab.watch import Watch


@dataclass(frozen=True, slots=True)
class UpOptions:
    instance: str | None
    run_root: Path
    user_worker: WorkerApp | None = None
    no_fix: bool = False
    watch: bool = False
    heal: bool = False


def bring_up(scn: Scenario, o: UpOptions) -> dict[str, Any]:
    """Set the lab up for ``scn`` (with its fix unless ``no_fix``), detach, and return its
    status with where its Worker (and watch) are; on any failure the lab is torn down."""
    with terminate_as_interrupt():
        lab = Lab.create(o.instance, run_root=o.run_root)
        lab.user_worker = o.user_worker
        try:
            lab.setup(scn)
            if scn.fix and not o.no_fix:
                FIXES[scn.fix](lab)
                lab.mark_fixed(scn.fix)
            watcher = _start_watch(lab, o.heal) if o.watch else None
        except BaseException:
            lab.down()
            raise
        lab.detach()
    status = lab.status()
    status["worker"] = worker_info(lab)
    if watcher is not None:
        status["watch"] = watch_info(lab, watcher)
    return status


def _start_watch(lab: Lab, heal: bool) -> Watch:
    from meshpath.lab.watch import Watch  # meshpath watch's imports, only when asked for

    return Watch.start(lab, heal=heal)


def watch_info(lab: Lab, watcher: Watch) -> dict[str, str]:
    from meshpath.lab.watch import WATCH_LISTEN
    from meshpath.watch.metrics import TEXTFILE_NAME

    return {
        "namespace": lab.ns("conn"),
        "url": f"http://{WATCH_LISTEN}/metrics",
        "textfile": str(watcher.textfile / TEXTFILE_NAME),
        "log": str(watcher.log),
    }


def worker_info(lab: Lab) -> dict[str, str]:
    user = lab.user_worker is not None
    url = f"http://{worker_address(user)}/"
    return {
        "worker": lab.user_worker.label if lab.user_worker else "the lab's Worker",
        "url": url,
        "call": f"meshpath lab call -i {lab.instance} /",
        "curl": f"meshpath lab exec -i {lab.instance} edge -- curl -s {url}",
        "log": str(lab.run_dir / (USER_WORKER_LOG if user else WORKER_LOG)),
    }
