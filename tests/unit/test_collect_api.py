"""Pin the collector's public API and keep its parsing modules free of process I/O."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import meshpath.collect as collect
from meshpath.collect import rtnl_parse


def test_exported_members() -> None:
    assert sorted(collect.__all__) == ["NetlinkError", "collect_kernel", "collect_snapshot"]
    params = inspect.signature(collect.collect_snapshot).parameters
    assert list(params) == ["netns", "runner", "frr_vty_dir"]
    assert all(p.default is None for p in params.values())


def test_parsers_do_no_process_or_socket_io() -> None:
    # rtnl_parse may use socket.inet_ntop (pure formatting) but never opens anything.
    for module in (rtnl_parse,):
        tree = ast.parse(Path(inspect.getfile(module)).read_text())
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not names & {"subprocess", "meshpath.runner", "meshpath.collect.netlink"}
        calls = {
            n.func.attr
            for n in ast.walk(tree)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
        }
        assert not calls & {"socket", "recv", "send", "open", "setns"}
