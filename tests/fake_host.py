"""A Runner standing in for a connector's kernel, for the applier and CLI tests.

It keeps the state meshpath's nat/route plans touch (kernel routes, whether the nft table
``inet meshpath`` exists) and answers the argv meshpath builds the way ``ip`` and ``nft``
do, including ``RTNETLINK answers: No such process`` for a route that is not there.
``die_after`` raises :class:`Killed` (a BaseException, like SIGKILL it is caught by no
``except Exception``) right after a matching command took effect.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from meshpath.errors import CommandError
from meshpath.runner import Completed
from meshpath.state import NftState, Snapshot
from tests.builders import broken_connector
from tests.fix_builders import nat_ruleset, with_routes

RouteKey = tuple[str, str, int, int]  # dst, dev, proto, metric


class Killed(BaseException):
    """The process died here (what SIGKILL does to a run)."""


@dataclass
class FakeHost:
    routes: set[RouteKey] = field(default_factory=set)
    nft_table: bool = False
    calls: list[tuple[str, ...]] = field(default_factory=list)
    die_after: Callable[[tuple[str, ...]], bool] | None = None

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        input_text: str | None = None,
        timeout: float | None = 60.0,
    ) -> Completed:
        args = tuple(argv)
        self.calls.append(args)
        done = self._answer(args, input_text)
        if check and not done.ok:
            raise CommandError(args, done.returncode, done.stderr)
        if done.ok and self.die_after is not None and self.die_after(args):
            self.die_after = None
            raise Killed(" ".join(args))
        return done

    def has(self, program: str) -> bool:
        return True

    def snapshot(self) -> Snapshot:
        """What collect_snapshot would see: the broken connector plus meshpath's state."""
        from meshpath.state import TABLE_MAIN, Route

        snap = broken_connector(
            nft=NftState(available=True, ruleset=nat_ruleset() if self.nft_table else {})
        )
        extra = [
            Route(table=TABLE_MAIN, family=4, dst=d, dev=dev, protocol=p, metric=m)
            for d, dev, p, m in sorted(self.routes)
        ]
        return with_routes(snap, *extra)

    # -- answers ---------------------------------------------------------------------------
    def _answer(self, argv: tuple[str, ...], input_text: str | None) -> Completed:
        if len(argv) == 13 and argv[:3] in (("ip", "-4", "route"), ("ip", "-6", "route")):
            key = (argv[4], argv[6], int(argv[8]), int(argv[10]))
            return self._route(argv, argv[3], key)
        if argv[:2] == ("ip", "-N") and "show" in argv:
            dst = argv[argv.index("show") + 1]
            shown = [
                {"dst": d, "dev": dev, "protocol": str(p), "metric": m}
                for d, dev, p, m in self.routes
                if d == dst
            ]
            return Completed(argv, 0, json.dumps(shown), "")
        if argv[0] == "nft":
            return self._nft(argv, input_text)
        if argv[:2] == ("ip", "route") or argv[:2] == ("ip", "-4"):
            return Completed(argv, 0, "", "")
        return Completed(argv, 127, "", f"{argv[0]}: not faked")

    def _route(self, argv: tuple[str, ...], verb: str, key: RouteKey) -> Completed:
        if verb == "replace":
            self.routes.add(key)
        elif key in self.routes:
            self.routes.discard(key)
        else:
            return Completed(argv, 2, "", "RTNETLINK answers: No such process\n")
        return Completed(argv, 0, "", "")

    def _nft(self, argv: tuple[str, ...], input_text: str | None) -> Completed:
        if argv[1] == "list":
            return Completed(argv, 0 if self.nft_table else 1, "table inet meshpath {}\n", "")
        text = input_text if argv[-1] == "-" else Path(argv[-1]).read_text()
        if "-c" in argv:
            return Completed(argv, 0, "", "")
        self.nft_table = "chain" in (text or "")
        return Completed(argv, 0, "", "")
