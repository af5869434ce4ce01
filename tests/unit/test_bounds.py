"""Bounds on what a caller can make SWOOSH hold or say: envelope field lengths and clipped reasons."""

from __future__ import annotations

import pytest

from swoosh.workflows.answers import GUARD_REASONS_SHOWN, GuardResult, Rejected
from swoosh.workflows.errors import REASON_CHARS, ProposalError
from swoosh.workflows.hlc import HLC, HLCFormatError
from swoosh.workflows.proposal import MAX_HLC_CHARS, MAX_SIGNATURE_CHARS
from tests.unit.helpers import h
from tests.unit.test_crypto_proposal import make_body, parse


@pytest.mark.parametrize(("field", "limit"), [("hlc", MAX_HLC_CHARS), ("signature", MAX_SIGNATURE_CHARS)])
def test_envelope_field_over_its_length_is_schema_with_a_short_reason(field: str, limit: int) -> None:
    body = make_body() | {field: "9" * 500_000}
    with pytest.raises(ProposalError) as err:
        parse(body)
    assert err.value.code == "schema"
    assert field in err.value.reason and len(err.value.reason) < 200
    if field == "signature":  # at the limit it is read (and then fails verification, not the schema)
        assert parse(make_body() | {field: "9" * limit}).signature == "9" * limit


def test_malformed_hlc_is_quoted_only_in_part() -> None:
    with pytest.raises(HLCFormatError) as err:
        HLC.parse("2025-" + "x" * 10_000)
    assert len(str(err.value)) < 200 and "10005 characters" in str(err.value)


def test_proposal_error_reason_is_clipped() -> None:
    err = ProposalError("schema", "Boot_ConfigOk takes no input(s) " + "k" * 500_000)
    assert len(err.reason) == REASON_CHARS and err.reason.endswith("…")
    assert len(str(err)) < REASON_CHARS + 20


def test_rejected_answer_clips_its_reason_and_guard_reasons() -> None:
    many = [f"breach: api-key (high) at inputs.{'k' * 5000}[{i}]" for i in range(300)]
    answer = Rejected(
        error="guard_failed",
        reason="x" * 50_000,
        failing_guard="policy",
        guards=[GuardResult(guard="policy", ok=False, reasons=many)],
        head_hash=h("head"),
    )
    assert len(answer.reason) == REASON_CHARS
    shown = answer.guards[0].reasons
    assert len(shown) == GUARD_REASONS_SHOWN + 1 and shown[-1] == f"… and {300 - GUARD_REASONS_SHOWN} more"
    assert all(len(r) <= REASON_CHARS for r in shown)
    assert len(answer.model_dump_json()) < 40_000
