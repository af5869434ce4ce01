"""Check a project's decision-record chain, and each record against its history.

The chain: every `dr_hash` is the hash of its record, every `prev_dr_hash` links to the record
before, indexes are consecutive. Against the history: the record at each index is the one the
workflow produced (same `dr_hash`, which covers hashes, signer, HLC and guards), and it agrees with
the Update answer for that index. Against the identities: each record's signer held a role for its
transition among the identities in force at its index (`Identity_Rotate` changes them). The first
break is reported precisely.
`swoosh audit verify` is the command line over it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHistory

from swoosh.workflows.canonical import content_hash
from swoosh.workflows.decision import verify_chain
from swoosh.workflows.errors import ProposalError
from swoosh.workflows.identities import ROTATE, rotated
from swoosh.workflows.proposal import ProposalRequest
from swoosh.workflows.replay.fold import signer_problem
from swoosh.workflows.replay.history import RunFacts, run_facts

ANSWER_FIELDS = ("state_pre_hash", "state_post_hash", "hlc", "transition", "idem_key")


def read_records(path: Path) -> list[dict[str, Any]]:
    records = []
    with path.open("rb") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise ValueError(f"{path}:{n}: not JSON ({err})") from None
    return records


def audit(records: list[dict[str, Any]], histories: list[WorkflowHistory]) -> list[str]:
    """Problems found, first break first; empty when the chain and history agree."""
    problems: list[str] = []
    chain_break = verify_chain(records)
    if chain_break:
        problems.append(f"chain: {chain_break}")
    seen: dict[int, dict[str, Any]] = {}
    answers: dict[int, Any] = {}
    runs = [run_facts(h) for h in histories]
    for facts in runs:
        seen.update(facts.records)
        for a in facts.answers:
            if not a.duplicate:
                answers[a.index] = a
    for pos, rec in enumerate(records):
        index = rec.get("index")
        if not isinstance(index, int):
            problems.append(f"record {pos}: no integer index")
            break
        hist = seen.get(index)
        if hist is None:
            if answers or seen:
                problems.append(f"record {pos} (index {index}): no accepted transition at this index in the history")
                break
            continue
        if hist.get("dr_hash") != rec.get("dr_hash"):
            diff = sorted(k for k in set(hist) | set(rec) if hist.get(k) != rec.get(k))
            problems.append(f"record {pos} (index {index}): differs from the history in {', '.join(diff)}")
            break
        answer = answers.get(index)
        if answer is not None:
            bad = [f for f in ANSWER_FIELDS if getattr(answer, f) != rec.get(f)]
            if bad or answer.dr_hash != rec.get("dr_hash"):
                problems.append(
                    f"record {pos} (index {index}): disagrees with the Update answer on {', '.join(bad or ['dr_hash'])}"
                )
                break
    problems.extend(f"identities: {p}" for p in check_signers(records, runs))
    return problems


def check_signers(records: list[dict[str, Any]], runs: list[RunFacts]) -> list[str]:
    """Each record against the identities in force at its index; the first record that breaks them.

    The identities start as the earliest run's snapshot holds them and change only by the
    `Identity_Rotate` records, whose inputs are read from the proposals in the histories. Records at
    or before that snapshot cannot be checked here (the fold of older runs does).
    """
    starts = [f.start for f in runs if f.start is not None]
    if not starts:
        return []
    first = min(starts, key=lambda s: int(s.snapshot.document["meta"]["index"]))
    start_index = int(first.snapshot.document["meta"]["index"])
    identities: list[dict[str, Any]] = list(first.snapshot.document["boot"]["identities"])
    proposals: dict[str, list[ProposalRequest]] = {}
    for f in runs:
        for key, reqs in f.proposals.items():
            proposals.setdefault(key, []).extend(reqs)
    for rec in sorted((r for r in records if isinstance(r.get("index"), int)), key=lambda r: int(r["index"])):
        index = int(rec["index"])
        if index <= start_index:
            continue
        problem = signer_problem({"boot": {"identities": identities}}, rec)
        if problem:
            return [f"record at index {index} ({rec.get('transition')}): {problem}"]
        if rec.get("transition") == ROTATE:
            inputs = _signed_inputs(proposals.get(str(rec.get("idem_key")), []), rec)
            if inputs is None:
                return [f"record at index {index} ({ROTATE}): its proposal is not in the history; identities unknown"]
            try:
                identities = rotated(identities, list(inputs.get("add") or []), list(inputs.get("remove") or []))
            except ProposalError as err:
                return [f"record at index {index} ({ROTATE}): {err.reason}"]
    return []


def _signed_inputs(candidates: list[ProposalRequest], rec: dict[str, Any]) -> dict[str, Any] | None:
    """The inputs of the proposal a record applied: same signer, inputs hashing to its inputs_hash."""
    for req in candidates:
        body = req.body if isinstance(req.body, dict) else {}
        inputs = body.get("inputs") or {}
        if body.get("signer") == rec.get("signer") and content_hash(inputs) == rec.get("inputs_hash"):
            return dict(inputs)
    return None
