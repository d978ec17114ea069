"""The nft rules checks search for patterns ("is there a masquerade, and for which source
prefix?"): the snapshot's typed rules (:mod:`meshpath.state.nft`), which also say what
they match and how they read as evidence."""

from __future__ import annotations

from collections.abc import Iterator

from meshpath.state import Snapshot
from meshpath.state.nft import NftRule

__all__ = ["NftRule", "rules"]


def rules(snapshot: Snapshot) -> Iterator[NftRule]:
    return iter(snapshot.nft.view.rules)
