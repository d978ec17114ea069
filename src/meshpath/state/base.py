"""The base of every snapshot part (kept apart so state/nft.py and state/frr.py can define
parts without importing the Snapshot that holds them)."""

from __future__ import annotations

import msgspec


class Frozen(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every snapshot part: immutable, keyword-only, unknown fields rejected."""
