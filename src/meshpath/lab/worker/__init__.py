"""The lab's Worker runtime: Cloudflare's workerd, pinned, running JavaScript Workers.

* ``worker.js`` is the lab's own Worker, written like the field report's;
* ``mesh-binding.js`` is the Mesh binding (a workerd wrapped binding) every
  ``vpc_networks`` binding becomes; it reaches the lab's Mesh edge
  (:mod:`meshpath.lab.meshedge`) and throws what Mesh reports (``handshake timeout``...);
* ``package.json`` / ``package-lock.json`` pin workerd; ``make setup`` installs it;
* :mod:`~meshpath.lab.worker.capnp` renders workerd's config (pure),
  :mod:`~meshpath.lab.worker.runtime` finds the binary and lays the files out,
  :mod:`~meshpath.lab.worker.user` turns a user's wrangler project into a WorkerSpec.
"""

from __future__ import annotations

from meshpath.lab.worker.capnp import WorkerSpec, render_config
from meshpath.lab.worker.runtime import LAB_WORKER, find_workerd, pinned_version, stage

__all__ = ["LAB_WORKER", "WorkerSpec", "find_workerd", "pinned_version", "render_config", "stage"]
