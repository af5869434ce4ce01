"""The signature memo keeps digests, never bodies, and at most its byte budget of them."""

from __future__ import annotations

import tracemalloc

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from swoosh.workflows.crypto import sign_bytes, signer_id
from swoosh.workflows.proposal import SignatureMemo

JUNK_SIGNATURE = "A" * 86
SIGNER = signer_id(Ed25519PrivateKey.generate().public_key())


def _retained(fn: object) -> int:
    """Bytes still allocated after `fn()` returns (what it left behind)."""
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        fn()  # type: ignore[operator]
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    return sum(s.size_diff for s in after.compare_to(before, "filename"))


def test_signature_memo_keeps_no_body() -> None:
    memo = SignatureMemo()

    def flood() -> None:
        for i in range(32):
            body = i.to_bytes(4, "big") + b"x" * (1 << 20)  # 32 distinct 1 MiB bodies, junk-signed
            assert memo.verify(SIGNER, body, JUNK_SIGNATURE) is False

    retained = _retained(flood)
    assert len(memo) == 32
    assert retained < 64 * 1024, f"{retained} bytes retained for 32 rejected 1 MiB bodies"


def test_signature_memo_stays_within_its_byte_budget() -> None:
    budget = 500 * SignatureMemo.ENTRY_BYTES
    memo = SignatureMemo(max_bytes=budget)

    def flood(n: int) -> None:
        for i in range(n):
            memo.verify(SIGNER, b"body %d" % i, JUNK_SIGNATURE)

    tracemalloc.start()
    try:
        empty = tracemalloc.take_snapshot()
        flood(2_000)
        full = tracemalloc.take_snapshot()
        flood(10_000)
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    first = sum(s.size_diff for s in full.compare_to(empty, "filename"))
    more = sum(s.size_diff for s in after.compare_to(full, "filename"))
    assert len(memo) == memo.max_entries == 500
    assert first <= budget + 16 * 1024  # the dict's own table besides the entries
    assert more <= 16 * 1024, f"five times the flood grew the memo by {more} bytes"


def test_signature_memo_entry_cost_is_within_its_estimate() -> None:
    memo = SignatureMemo(max_bytes=10**9)

    def fill() -> None:
        for i in range(10_000):
            memo.verify(SIGNER, b"%d" % i, JUNK_SIGNATURE)

    assert _retained(fill) / 10_000 <= SignatureMemo.ENTRY_BYTES


def test_signature_memo_answers_as_verification_does() -> None:
    key = Ed25519PrivateKey.generate()
    signer = signer_id(key.public_key())
    memo = SignatureMemo()
    signature = sign_bytes(key, b"the body")
    assert memo.verify(signer, b"the body", signature) is True
    assert memo.verify(signer, b"the body", signature) is True  # remembered
    assert memo.verify(signer, b"another body", signature) is False
    assert memo.verify(SIGNER, b"the body", signature) is False  # another signer, same bytes
