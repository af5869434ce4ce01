"""The workflow's fixed tuning, named in one place: retry policies, waits, limits, patch markers.

These are code, not settings: changing one changes the commands a workflow emits, so a change
needs a patch marker (and a committed history) like any other change to workflow code.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

# Patch markers, in the order each run asks for them (see ProjectLifecycle.__init__).
PATCH_REVERB_SNAPSHOT_MIN = "reverb-snapshot-min"
PATCH_RECORD_BYTES = "decision-record-byte-limits"
PATCH_DELIVERY_CHECKED = "decision-delivery-checked"
PATCH_RECEIPTS = "snapshot-receipts"
PATCH_TERMINATED_COMPLETES = "terminated-completes"
PATCH_INBOX_BYTES = "signal-inbox-bytes"
# Asked where it matters, not at the start: when the guard activity has failed for a Signal-path
# proposal. Runs recorded before it failed the whole workflow there, and replay them so.
PATCH_GUARD_CONTAINMENT = "guard-failure-contained"
# Asked as a run continues-as-new: its snapshot then carries the engine rules new projects have
# (`EngineConfig.adopt_rules`), so a project started before them adopts them at its next snapshot.
PATCH_ADOPT_RULES = "engine-rules-adopted"
# Runs recorded before the Update validator scanned for secrets scanned in the Update handler (and
# quarantined from there); later runs never see a secret in the handler, the validator refused it.
PATCH_SECRET_SCAN_IN_VALIDATOR = "secret-scan-in-validator"

# The guard local activity: three quick attempts; facts are cached, so a failure is rarely transient.
GUARD_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=100), maximum_attempts=3, backoff_coefficient=2.0)
# Decision-record delivery: the sink may be down for a while; the pump backs off between rounds.
DELIVER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30), maximum_attempts=5
)
SINK_BACKOFF = timedelta(seconds=30)

# A system quarantine's rationale is built from guard reasons; it lands in the state document.
QUARANTINE_RATIONALE_CHARS = 4096
