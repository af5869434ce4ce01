"""Check a project's decision-record chain, and each record against its history.

The chain: every `dr_hash` is the hash of its record, every `prev_dr_hash` links to the record
before, indexes are consecutive. Against the history: the record at each index is the one the
workflow produced (same `dr_hash`, which covers hashes, signer, HLC and guards), and it agrees with
the Update answer for that index. The first break is reported precisely.
`swoosh audit verify` is the command line over it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHistory

from swoosh.workflows.decision import verify_chain
from swoosh.workflows.replay.history import run_facts

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
    for h in histories:
        facts = run_facts(h)
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
    return problems
