"""How large a project's state may grow: the document's byte budget and the caps on what callers copy into it.

The state document rides in every snapshot (a continue-as-new payload) beside the idempotency window
(up to ~0.9 MB), undelivered and retained decision records (~0.4 MB), the rejection log (~0.14 MB)
and the signal inbox (at most `INBOX_BYTES`); Temporal fails every task of a run whose payload
passes 2 MB, and the project is stuck for good. So, for projects with `EngineConfig.state_limits`:

- every list or object input a transition copies into the document is at most `COPIED_BYTES` of
  canonical JSON, a project has at most `MAX_IDENTITIES` identities, `ingestion.versions` keeps the
  newest `INDEX_VERSIONS_KEPT` pins, and rotated-out identities leave `council.ejected`: every field
  a caller fills is bounded, so the document is (about 290 KB at the very worst);
- a transition that would take the document past `DOCUMENT_BUDGET` while growing it by more than
  `GROWTH_ALLOWANCE` is refused (`invalid_transition`, nothing changes). One that keeps its size,
  shrinks it or adds at most the allowance (a plan hash, a window id, a counter's next digit) is
  never refused, so the budget cannot leave a project stuck; SWOOSH's own transitions are exempt.
"""

from __future__ import annotations

DOCUMENT_BUDGET = 192 * 1024
GROWTH_ALLOWANCE = 1024
COPIED_BYTES = 16 * 1024
MAX_IDENTITIES = 256
INDEX_VERSIONS_KEPT = 64
# What a caller's transition may add besides its inputs: proposal fields (hlc, idem_key, window_id,
# signer), phases, counters. Under budget by more than inputs + this, no trial reduction is needed.
FIELDS_SLACK = 4096
# Proposals waiting in the workflow's signal inbox (they ride in every snapshot too).
INBOX_BYTES = 128 * 1024


def budget_problem(new_size: int, old_size: int) -> str | None:
    """Why a document of `new_size` bytes may not follow one of `old_size`, or None when it may."""
    if new_size <= DOCUMENT_BUDGET or new_size <= old_size + GROWTH_ALLOWANCE:
        return None
    return (
        f"the state document would grow from {old_size} to {new_size} bytes, over its budget of "
        f"{DOCUMENT_BUDGET}: send smaller inputs, or first replace the lists it holds with shorter ones"
    )


def needs_trial(old_size: int, inputs_size: int) -> bool:
    """Whether a proposal could take the document past the budget (then admission tries it out)."""
    return old_size + inputs_size + FIELDS_SLACK > DOCUMENT_BUDGET
