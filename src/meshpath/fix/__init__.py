"""Fix plans (pure): nat / route / bgp, their inverses; see :func:`plan_fix`."""

from __future__ import annotations

from meshpath.fix.model import (
    METRIC_MESHPATH,
    MODES,
    PROTO_MESHPATH,
    Action,
    Expect,
    FixOptions,
    FrrReload,
    Mode,
    NftFile,
    Plan,
    PostCheck,
    RemoveFile,
    Run,
    Step,
    WaitBgp,
    WriteFile,
)
from meshpath.fix.plan import fix_ranges, plan_fix

__all__ = [
    "METRIC_MESHPATH",
    "MODES",
    "PROTO_MESHPATH",
    "Action",
    "Expect",
    "FixOptions",
    "FrrReload",
    "Mode",
    "NftFile",
    "Plan",
    "PostCheck",
    "RemoveFile",
    "Run",
    "Step",
    "WaitBgp",
    "WriteFile",
    "fix_ranges",
    "plan_fix",
]
