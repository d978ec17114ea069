"""nftables: ``nft -j list ruleset`` kept raw, plus the base chains meshpath reasons about."""

from __future__ import annotations

import json
from typing import Any

from meshpath.runner import Runner
from meshpath.state.model import BaseChain, NftState, nft_priority

NFT_ARGV = ("nft", "-j", "list", "ruleset")


def collect_nft(runner: Runner) -> NftState:
    """The ruleset; nft absent -> available=False; nft failing -> available with the error."""
    if not runner.has("nft"):
        return NftState(available=False)
    done = runner.run(NFT_ARGV, check=False)
    if not done.ok:
        last = done.stderr.strip().splitlines()[-1:] or [f"exit {done.returncode}"]
        return NftState(available=True, error=f"nft -j list ruleset: {last[0]}")
    return parse_nft(done.stdout)


def parse_nft(text: str) -> NftState:
    """NftState from nft's JSON (an empty ruleset may print nothing at all)."""
    if not text.strip():
        return NftState(available=True, ruleset={"nftables": []})
    try:
        ruleset = json.loads(text)
    except json.JSONDecodeError as exc:
        return NftState(available=True, error=f"nft -j list ruleset: not JSON ({exc})")
    if not isinstance(ruleset, dict) or not isinstance(ruleset.get("nftables"), list):
        return NftState(available=True, error="nft -j list ruleset: no 'nftables' list")
    chains = tuple(
        chain
        for item in ruleset["nftables"]
        if isinstance(item, dict) and (chain := base_chain(item.get("chain"))) is not None
    )
    return NftState(available=True, ruleset=ruleset, base_chains=chains)


def base_chain(chain: Any) -> BaseChain | None:
    """A BaseChain from one ``{"chain": {...}}`` object; None for a regular chain."""
    if not isinstance(chain, dict) or "hook" not in chain:
        return None
    return BaseChain(
        family=str(chain.get("family", "")),
        table=str(chain.get("table", "")),
        name=str(chain.get("name", "")),
        type=str(chain.get("type", "filter")),
        hook=str(chain["hook"]),
        priority=nft_priority(chain.get("prio", 0)),
        policy=str(chain.get("policy", "accept")),
        device=_device(chain.get("dev")),
    )


def _device(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)
