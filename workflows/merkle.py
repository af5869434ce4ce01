"""Merkle trees over decision records (RFC 6962's shape), for signed snapshot receipts.

A leaf is SHA-256 of 0x00 followed by a record's `dr_hash` (its UTF-8 text); an inner node is SHA-256
of 0x01 followed by its two children; a tree over n > 1 leaves splits them after the largest power of
two below n. Roots are written like every other hash here: `sha256-` and 64 lowercase hex digits.
An inclusion proof is the list of sibling hashes from the leaf up, each with the side it is on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

EMPTY_ROOT = "sha256-" + hashlib.sha256(b"").hexdigest()


def leaf(dr_hash: str) -> bytes:
    return hashlib.sha256(b"\x00" + dr_hash.encode("utf-8")).digest()


def node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _root(leaves: Sequence[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return node(_root(leaves[:k]), _root(leaves[k:]))


def merkle_root(dr_hashes: Sequence[str]) -> str:
    """The root over the records with these `dr_hash`es, in index order."""
    if not dr_hashes:
        return EMPTY_ROOT
    return "sha256-" + _root([leaf(h) for h in dr_hashes]).hex()


def inclusion_proof(dr_hashes: Sequence[str], position: int) -> list[tuple[str, str]]:
    """The siblings proving that record `position` is in the tree: [(side "L"|"R", hex), …], leaf upwards."""
    if not 0 <= position < len(dr_hashes):
        raise IndexError(f"position {position} is outside 0..{len(dr_hashes) - 1}")
    leaves = [leaf(h) for h in dr_hashes]
    path: list[tuple[str, str]] = []
    lo, hi = 0, len(leaves)
    # Walk down from the root to the leaf, noting the sibling subtree at each split; reverse at the end.
    while hi - lo > 1:
        k = _split(hi - lo)
        if position < lo + k:
            path.append(("R", _root(leaves[lo + k : hi]).hex()))
            hi = lo + k
        else:
            path.append(("L", _root(leaves[lo : lo + k]).hex()))
            lo = lo + k
    return list(reversed(path))


def verify_inclusion(dr_hash: str, proof: Sequence[tuple[str, str]], root: str) -> bool:
    """True when `proof` leads from the record's leaf to `root`."""
    h = leaf(dr_hash)
    for side, sibling in proof:
        other = bytes.fromhex(sibling)
        h = node(other, h) if side == "L" else node(h, other)
    return "sha256-" + h.hex() == root
