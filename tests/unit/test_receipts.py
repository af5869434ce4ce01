"""Merkle roots over decision records and signed receipts: made, verified, and tampering caught and named."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from swoosh.workflows.crypto import signer_id
from swoosh.workflows.decision import seal
from swoosh.workflows.lifecycle.receipts import KEEP, ReceiptBook
from swoosh.workflows.merkle import EMPTY_ROOT, inclusion_proof, leaf, merkle_root, node, verify_inclusion
from swoosh.workflows.receipts import check_records, sign_receipt, unsigned_receipt
from tests.unit.helpers import Driver

KEY = Ed25519PrivateKey.generate()
SIGNER = signer_id(KEY.public_key())
hashes = st.lists(st.text(alphabet="0123456789abcdef", min_size=64, max_size=64).map("sha256-".__add__), max_size=40)


def test_merkle_root_shapes() -> None:
    a, b, c = "sha256-" + "a" * 64, "sha256-" + "b" * 64, "sha256-" + "c" * 64
    assert merkle_root([]) == EMPTY_ROOT
    assert merkle_root([a]) == "sha256-" + leaf(a).hex()
    assert merkle_root([a, b]) == "sha256-" + node(leaf(a), leaf(b)).hex()
    # Three leaves split after the largest power of two below three: ((a, b), c).
    assert merkle_root([a, b, c]) == "sha256-" + node(node(leaf(a), leaf(b)), leaf(c)).hex()
    assert merkle_root([a, b]) != merkle_root([b, a])


@given(hashes, st.data())
def test_merkle_inclusion_proofs_verify_and_only_for_their_leaf(values: list[str], data: st.DataObject) -> None:
    if not values:
        return
    root = merkle_root(values)
    i = data.draw(st.integers(0, len(values) - 1))
    proof = inclusion_proof(values, i)
    assert verify_inclusion(values[i], proof, root)
    other = "sha256-" + ("0" if values[i][-1] != "0" else "1") * 64
    assert not verify_inclusion(other, proof, root)


def records(n: int = 12) -> list[dict[str, Any]]:
    d = Driver()
    d.lifecycle()
    return list(d.records)[:n]


def receipts_of(recs: list[dict[str, Any]], cuts: list[int]) -> list[dict[str, Any]]:
    """Signed receipts over consecutive intervals ending at each cut (record indexes)."""
    out, start = [], 1
    for cut in cuts:
        interval = [r["dr_hash"] for r in recs if start <= r["index"] <= cut]
        out.append(sign_receipt(KEY, unsigned_receipt(str(recs[0]["project_id"]), start, interval)))
        start = cut + 1
    return out


def test_receipts_verify_offline_with_the_public_key_only() -> None:
    recs = records()
    signed = receipts_of(recs, [4, 9, 12])
    assert [(r["from_index"], r["to_index"]) for r in signed] == [(1, 4), (5, 9), (10, 12)]
    assert check_records(recs, signed, SIGNER) == ([], 3)


def test_receipts_a_changed_record_is_named() -> None:
    recs = records()
    signed = receipts_of(recs, [6, 12])
    recs[6]["justification"] = "nothing to see here"  # index 7, in the second receipt
    problems, checked = check_records(recs, signed, SIGNER)
    assert "record 7: its content differs from what its dr_hash was computed over" in problems
    assert any(p.startswith("receipt 7..12: merkle root differs") for p in problems) and checked == 1


def test_receipts_a_rewritten_chain_is_caught_by_the_receipt_of_its_interval() -> None:
    """Record 8 changed and every hash after it recomputed: the chain checks, the signed root does not."""
    recs = records()
    signed = receipts_of(recs, [6, 12])
    forged = copy.deepcopy(recs)
    forged[7]["signer"] = "hmmm:pubkey:" + "A" * 43
    prev = forged[6]["dr_hash"]
    for r in forged[7:]:
        r.pop("dr_hash")
        r["prev_dr_hash"] = prev
        r.update(seal(r))
        prev = r["dr_hash"]
    problems, _ = check_records(forged, signed, SIGNER)
    assert problems == ["receipt 7..12: merkle root differs: a record in 7..12 is not the one SWOOSH signed"]


def test_receipts_signature_problems_are_reported() -> None:
    recs = records()
    signed = receipts_of(recs, [12])
    other = Ed25519PrivateKey.generate()
    assert check_records(recs, signed, signer_id(other.public_key()))[0] == [
        f"receipt 1..12: signature does not verify with {signer_id(other.public_key())}"
    ]
    bent = [{**signed[0], "to_index": 11}]
    assert "signature does not verify" in check_records(recs, bent, SIGNER)[0][0]
    unsigned = [unsigned_receipt("p", 1, [r["dr_hash"] for r in recs])]
    assert "not signed" in check_records(recs, unsigned, SIGNER)[0][0]
    assert check_records(recs[:5] + recs[8:], signed, SIGNER)[0][-1] == "receipt 1..12: record(s) 6..8 missing"


def test_receipt_book_interval_delivery_and_bounds() -> None:
    book = ReceiptBook([], [], enabled=True)
    recs = records(6)
    for r in recs[:4]:
        book.note(r)
    book.close_interval("p")
    assert [(r["from_index"], r["to_index"], r["signer"]) for r in book.pending] == [(1, 4, None)]
    assert book.deliverable(3) == [] and book.deliverable(4) == book.pending
    book.delivered([sign_receipt(KEY, book.pending[0])])
    assert book.pending == [] and book.stored[0]["signer"] == SIGNER
    book.close_interval("p")  # nothing accepted since: no receipt
    assert book.pending == []
    off = ReceiptBook([], [], enabled=False)
    off.note(recs[0])
    off.close_interval("p")
    assert off.pending == []  # runs recorded before receipts make none
    many = ReceiptBook([], [{"from_index": i, "to_index": i} for i in range(1, 40)], enabled=True)
    assert len(many.stored) == KEEP and many.stored[-1]["from_index"] == 39


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13])
def test_unsigned_receipt_covers_the_interval(n: int) -> None:
    values = [f"sha256-{i:064x}" for i in range(n)]
    r = unsigned_receipt("p", 7, values)
    assert (r["from_index"], r["to_index"], r["merkle_root"]) == (7, 6 + n, merkle_root(values))
