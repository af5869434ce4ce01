"""Signed receipts: at each snapshot, a Merkle root over the interval's decision records, signed by SWOOSH.

The workflow computes the root (pure) when it continues-as-new and carries the unsigned receipt into
the next run; the decision-record delivery activity signs it with the worker's receipt key (the
private key never enters workflow code or history) and delivers it with the records. Anyone holding
only the public key can then check, offline, that a set of records is the set SWOOSH wrote.

A receipt: `{"kind", "project_id", "from_index", "to_index", "merkle_root", "signer", "signature"}`;
the signature is Ed25519 over the canonical JSON of the first five fields (`receipt_body`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from swoosh.workflows.canonical import content_hash
from swoosh.workflows.crypto import sign_object, signer_id, verify_object
from swoosh.workflows.merkle import merkle_root

RECEIPT_KIND = "swoosh.receipt.v1"
SIGNED_FIELDS = ("kind", "project_id", "from_index", "to_index", "merkle_root")


def unsigned_receipt(project_id: str, from_index: int, dr_hashes: list[str]) -> dict[str, Any]:
    """The receipt of records `from_index`… (one `dr_hash` each, in order), not yet signed."""
    return {
        "kind": RECEIPT_KIND,
        "project_id": project_id,
        "from_index": from_index,
        "to_index": from_index + len(dr_hashes) - 1,
        "merkle_root": merkle_root(dr_hashes),
        "signer": None,
        "signature": None,
    }


def receipt_body(receipt: dict[str, Any]) -> dict[str, Any]:
    """What the signature covers."""
    return {k: receipt[k] for k in SIGNED_FIELDS}


def sign_receipt(key: Ed25519PrivateKey, receipt: dict[str, Any]) -> dict[str, Any]:
    return {**receipt, "signer": signer_id(key.public_key()), "signature": sign_object(key, receipt_body(receipt))}


def check_records(
    records: list[dict[str, Any]], receipts: Iterable[dict[str, Any]], signer: str
) -> tuple[list[str], int]:
    """Problems found checking records against signed receipts with only the public key, and the receipts checked.

    Each record's own `dr_hash` and link are recomputed (a changed record is named); each receipt must
    be signed by `signer` and its root must be the root over the records it covers as they are now
    (a record changed with its hashes recomputed is caught there, named by the receipt's interval).
    """
    problems: list[str] = []
    by_index: dict[int, dict[str, Any]] = {}
    prev: dict[str, Any] | None = None
    for rec in records:
        index = rec.get("index")
        if not isinstance(index, int):
            problems.append("a record has no integer index")
            continue
        body = {k: v for k, v in rec.items() if k != "dr_hash"}
        if content_hash(body) != rec.get("dr_hash"):
            problems.append(f"record {index}: its content differs from what its dr_hash was computed over")
        if prev is not None and rec.get("prev_dr_hash") != prev.get("dr_hash"):
            problems.append(f"record {index}: prev_dr_hash does not link to record {prev.get('index')}")
        by_index[index] = rec
        prev = rec
    checked = 0
    for r in sorted(receipts, key=lambda r: int(r.get("from_index", 0))):
        span = f"receipt {r.get('from_index')}..{r.get('to_index')}"
        if r.get("kind") != RECEIPT_KIND:
            problems.append(f"{span}: not a {RECEIPT_KIND}")
            continue
        if r.get("signer") is None or r.get("signature") is None:
            problems.append(f"{span}: not signed (the worker had no receipt key)")
            continue
        if r["signer"] != signer or not verify_object(signer, receipt_body(r), str(r["signature"])):
            problems.append(f"{span}: signature does not verify with {signer}")
            continue
        span_indexes = range(int(r["from_index"]), int(r["to_index"]) + 1)
        missing = [i for i in span_indexes if i not in by_index]
        if missing:
            problems.append(f"{span}: record(s) {_ranges(missing)} missing")
            continue
        # Each record's hash as recomputed from its content now, so a changed record changes the root.
        hashes = [content_hash({k: v for k, v in by_index[i].items() if k != "dr_hash"}) for i in span_indexes]
        if merkle_root(hashes) != r["merkle_root"]:
            problems.append(f"{span}: merkle root differs: a record in {span[8:]} is not the one SWOOSH signed")
            continue
        checked += 1
    return problems, checked


def _ranges(indexes: list[int]) -> str:
    """`3, 7..9` for [3, 7, 8, 9]."""
    out: list[str] = []
    start: int | None = None
    for k, i in enumerate(indexes):
        start = i if start is None else start
        if k + 1 == len(indexes) or indexes[k + 1] != i + 1:
            out.append(str(start) if start == i else f"{start}..{i}")
            start = None
    return ", ".join(out)
