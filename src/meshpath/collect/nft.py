"""nftables: ``nft -j list ruleset`` decoded here, walked by :mod:`meshpath.state.nft`."""

from __future__ import annotations

import json

from meshpath.runner import Runner
from meshpath.state.model import NftState
from meshpath.state.nft import base_chain, parse_ruleset

__all__ = ["NFT_ARGV", "base_chain", "collect_nft", "parse_nft"]

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
    # the base chains are kept in the snapshot file too (older meshpath versions read them)
    chains = parse_ruleset(ruleset).base_chains
    return NftState(available=True, ruleset=ruleset, base_chains=chains)
