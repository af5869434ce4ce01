"""Replay every committed history with the current workflow code: a non-deterministic change fails here."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.worker import Replayer

from swoosh.workflows.canonical import canonical_json
from swoosh.workflows.lifecycle import ProjectLifecycle
from swoosh.workflows.lifecycle.connection import data_converter
from swoosh.workflows.lifecycle.sandbox import workflow_runner
from swoosh.workflows.lifecycle.tuning import (
    PATCH_ADOPT_RULES,
    PATCH_DELIVERY_CHECKED,
    PATCH_GUARD_CONTAINMENT,
    PATCH_INBOX_BYTES,
    PATCH_RECEIPTS,
    PATCH_RECORD_BYTES,
    PATCH_REVERB_SNAPSHOT_MIN,
    PATCH_SECRET_SCAN_IN_VALIDATOR,
    PATCH_TERMINATED_COMPLETES,
)
from swoosh.workflows.messages import UNAVAILABLE_ERROR_TYPE
from swoosh.workflows.receipts import check_records
from swoosh.workflows.replay.history import load_history_file, run_facts
from tests.histories.record import ENCRYPTED, encryption_of

# Recorded histories sign receipts with the documentation key (bytes 1..32): tests/histories/record.py.
DOC_RECEIPT_SIGNER = "hmmm:pubkey:ebVWLo_mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ"
HISTORIES = sorted(Path(__file__).parent.glob("*-run*.json"))
# Scenarios recorded once every patch marker below existed (each run asks for all of them).
RECORDED_WITH_EVERY_PATCH = ("lookalike",)


def test_replay_histories_are_committed() -> None:
    names = {p.name.split("-run")[0] for p in HISTORIES}
    assert {"lifecycle", "quarantine", "snapshots", "grace", "reverb", "records", "refusals", "backlinks"} <= names
    assert {"terminated", "terminated-open"} <= names
    assert {"containment", "guard-failure-legacy", "rotation", "adopt", "election", "inbox"} <= names
    assert {"encrypted", "secrets"} <= names


def _shape(name: str) -> list[tuple[int, bool, str]]:
    """Per run of a committed scenario: (answered Updates, REVERB-minimum patch marker?, last event)."""
    out = []
    for path in sorted(Path(__file__).parent.glob(f"{name}-run*.json")):
        events = json.loads(path.read_text())["events"]
        updates = sum(e["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED" for e in events)
        patched = PATCH_REVERB_SNAPSHOT_MIN in {
            json.loads(base64.b64decode(p["data"]))["id"]
            for e in events
            if e.get("markerRecordedEventAttributes", {}).get("markerName") == "core_patch"
            for p in e["markerRecordedEventAttributes"]["details"]["patch-data"]["payloads"]
        }
        out.append((updates, patched, events[-1]["eventType"].removeprefix("EVENT_TYPE_")))
    return out


def test_histories_from_before_the_reverb_minimum_snapshot_at_every_reverb() -> None:
    """Recorded before the patch: one EXECUTION loop (4 transitions) per run; they must keep replaying."""
    assert _shape("lifecycle") == [
        (17, False, "WORKFLOW_EXECUTION_CONTINUED_AS_NEW"),
        (4, False, "WORKFLOW_EXECUTION_CONTINUED_AS_NEW"),
        (0, False, "WORKFLOW_TASK_COMPLETED"),
    ]


def test_reverb_snapshots_wait_for_the_minimum() -> None:
    """reverb_snapshot_min=6: the REVERB at index 17 snapshots, the one at 21 (4 later) does not, 25 does."""
    assert _shape("reverb") == [
        (17, True, "WORKFLOW_EXECUTION_CONTINUED_AS_NEW"),
        (8, True, "WORKFLOW_EXECUTION_CONTINUED_AS_NEW"),
        (0, True, "WORKFLOW_TASK_COMPLETED"),
    ]


def _patches(events: list[dict]) -> set[str]:  # type: ignore[type-arg]
    return {
        json.loads(base64.b64decode(p["data"]))["id"]
        for e in events
        if e.get("markerRecordedEventAttributes", {}).get("markerName") == "core_patch"
        for p in e["markerRecordedEventAttributes"]["details"]["patch-data"]["payloads"]
    }


# Recorded before delivery batches were limited in bytes: they must keep replaying without the marker.
BEFORE_BYTE_LIMITS = ("lifecycle", "reverb", "snapshots", "quarantine", "grace")


def test_histories_from_before_the_byte_limits_deliver_by_count() -> None:
    old = [p for p in Path(__file__).parent.glob("*-run*.json") if p.name.split("-run")[0] in BEFORE_BYTE_LIMITS]
    assert len(old) >= len(BEFORE_BYTE_LIMITS)
    for path in old:
        assert PATCH_RECORD_BYTES not in _patches(json.loads(path.read_text())["events"]), path.name


def test_records_are_delivered_in_batches_limited_in_bytes() -> None:
    """dr_batch_bytes=4096: three ~1.1 KB lifecycle records per delivery, each ~8 KB record alone."""
    events = json.loads((Path(__file__).parent / "records-run0.json").read_text())["events"]
    assert PATCH_RECORD_BYTES in _patches(events)
    batches = []
    for e in events:
        scheduled = e.get("activityTaskScheduledEventAttributes")
        if scheduled and scheduled["activityType"]["name"] == "swoosh.deliver_decisions":
            request = json.loads(base64.b64decode(scheduled["input"]["payloads"][0]["data"]))
            batches.append([(r["index"], len(canonical_json(r))) for r in request["records"]])
    assert [[i for i, _ in b] for b in batches] == [
        [1, 2, 3],
        [4, 5, 6],
        [7, 8, 9],
        [10, 11, 12],
        [13],
        [14],
        [15],
        [16],
        [17],
    ]
    assert all(len(b) == 1 or sum(size for _, size in b) <= 4096 for b in batches)


# Recorded before the store's acknowledgement was checked: they must keep replaying without the marker.
BEFORE_CHECKED_ACKS = (*BEFORE_BYTE_LIMITS, "records")


def test_histories_from_before_checked_acknowledgements_have_no_marker() -> None:
    old = [p for p in Path(__file__).parent.glob("*-run*.json") if p.name.split("-run")[0] in BEFORE_CHECKED_ACKS]
    assert len(old) >= len(BEFORE_CHECKED_ACKS)
    for path in old:
        assert PATCH_DELIVERY_CHECKED not in _patches(json.loads(path.read_text())["events"]), path.name


def test_refused_deliveries_back_off_and_are_delivered_once_resolved() -> None:
    """A short acknowledgement (completed, yet a back-off timer follows), a fork (failed), then delivered."""
    events = json.loads((Path(__file__).parent / "refusals-run0.json").read_text())["events"]
    assert PATCH_DELIVERY_CHECKED in _patches(events)
    seen = []
    for e in events:
        kind = e["eventType"].removeprefix("EVENT_TYPE_")
        if kind == "ACTIVITY_TASK_COMPLETED":
            seen.append("delivered")
        elif kind == "ACTIVITY_TASK_FAILED":
            seen.append(e["activityTaskFailedEventAttributes"]["failure"]["applicationFailureInfo"]["type"])
        elif kind == "TIMER_STARTED":
            seen.append("back-off")
    assert seen == ["delivered", "back-off", "DecisionChainFork", "back-off", "delivered", "delivered"]


def _payload(p: dict) -> dict:  # type: ignore[type-arg]
    return json.loads(base64.b64decode(p["data"]))  # type: ignore[no-any-return]


def test_receipts_are_made_at_snapshots_signed_and_delivered_with_their_records() -> None:
    """Receipts ride with the batch that stores their last record, or alone; signatures verify offline."""
    deliveries, signed = [], []
    for path in sorted(Path(__file__).parent.glob("receipts-run*.json")):
        events = json.loads(path.read_text())["events"]
        assert PATCH_RECEIPTS in _patches(events)
        for e in events:
            scheduled = e.get("activityTaskScheduledEventAttributes")
            if scheduled and scheduled["activityType"]["name"] == "swoosh.deliver_decisions":
                request = _payload(scheduled["input"]["payloads"][0])
                deliveries.append(([r["index"] for r in request["records"]], request["receipts"], request["records"]))
            completed = e.get("activityTaskCompletedEventAttributes")
            if completed:
                signed += _payload(completed["result"]["payloads"][0]).get("receipts", [])
    spans = [([i for i in idx], [(r["from_index"], r["to_index"]) for r in rs]) for idx, rs, _ in deliveries if rs]
    assert spans == [
        (list(range(1, 14)), [(1, 4), (5, 8), (9, 12)]),
        ([14, 15, 16, 17], [(13, 16)]),
        ([], [(17, 17)]),
    ]
    records = [r for _, _, recs in deliveries for r in recs]
    assert all(r["signature"] is None for _, rs, _ in deliveries for r in rs)  # unsigned in the workflow
    assert check_records(records, signed, DOC_RECEIPT_SIGNER) == ([], 5)


def test_histories_from_before_receipts_make_none() -> None:
    for path in Path(__file__).parent.glob("*-run*.json"):
        if path.name.split("-run")[0] in ("receipts", "terminated", *RECORDED_WITH_EVERY_PATCH):
            continue
        events = json.loads(path.read_text())["events"]
        assert PATCH_RECEIPTS not in _patches(events), path.name


def _file_events(name: str) -> list[dict]:  # type: ignore[type-arg]
    return json.loads((Path(__file__).parent / name).read_text())["events"]  # type: ignore[no-any-return]


def test_history_from_before_containment_failed_the_workflow_on_a_guard_failure() -> None:
    """Recorded by the code before the patch (a Signal whose guard activity failed): it must replay as it was."""
    events = _file_events("guard-failure-legacy-run0.json")
    assert PATCH_GUARD_CONTAINMENT not in _patches(events)
    assert events[-1]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_FAILED"


def test_guard_failures_are_contained_in_histories_after_the_patch() -> None:
    """The Update fails "unavailable", the Signal is logged, the run goes on to apply both later."""
    events = _file_events("containment-run0.json")
    assert PATCH_GUARD_CONTAINMENT in _patches(events)
    failures = [
        e["workflowExecutionUpdateCompletedEventAttributes"]["outcome"]["failure"]
        for e in events
        if "failure" in e.get("workflowExecutionUpdateCompletedEventAttributes", {}).get("outcome", {})
    ]
    assert [f["applicationFailureInfo"]["type"] for f in failures] == [UNAVAILABLE_ERROR_TYPE]
    assert events[-1]["eventType"] == "EVENT_TYPE_WORKFLOW_TASK_COMPLETED"


def _accepted(name: str) -> list[str]:
    return [a.transition for h in load_history_file(Path(__file__).parent / name) for a in run_facts(h).answers]


def test_a_rotation_is_an_accepted_transition_of_a_new_project() -> None:
    assert _accepted("rotation-run0.json") == [
        "Boot_ConfigOk",
        "Boot_Licensed",
        "Identity_Rotate",
        "Ingestion_SourcesResolved",
    ]


def test_a_project_from_before_the_rule_adopts_it_at_its_next_snapshot() -> None:
    [run0] = load_history_file(Path(__file__).parent / "adopt-run0.json")
    facts = run_facts(run0)
    assert facts.start is not None and facts.next_input is not None
    assert facts.start.snapshot.config.identity_rotation is False
    assert facts.next_input.snapshot.config.identity_rotation is True
    assert PATCH_ADOPT_RULES in _patches(_file_events("adopt-run0.json"))
    assert "Identity_Rotate" not in [a.transition for a in facts.answers]
    assert _accepted("adopt-run1.json") == ["Identity_Rotate"]


def test_an_old_certificate_after_an_ejection_is_refused_in_the_committed_history() -> None:
    """Council_QuorumCert accepted, Council_Eject, the old certificate refused (guard), a new one accepted."""
    [run] = load_history_file(Path(__file__).parent / "election-run0.json")
    facts = run_facts(run)
    assert [a.transition for a in facts.answers][-3:] == ["Council_QuorumCert", "Council_Eject", "Council_QuorumCert"]
    assert facts.update_failures == 1
    votes = [v for reqs in facts.proposals.values() for r in reqs for v in r.body.get("inputs", {}).get("votes", [])]
    assert votes and all("epoch" in v for v in votes)


def test_a_signal_larger_than_the_inbox_was_refused_and_the_next_one_applied() -> None:
    [run] = load_history_file(Path(__file__).parent / "inbox-run0.json")
    facts = run_facts(run)
    assert PATCH_INBOX_BYTES in _patches(_file_events("inbox-run0.json"))
    assert sorted((i, r["transition"]) for i, r in facts.records.items()) == [
        (1, "Boot_ConfigOk"),
        (2, "Boot_Licensed"),
    ]


def test_histories_from_before_the_inbox_bound_have_no_marker() -> None:
    for path in HISTORIES:
        if path.name.split("-run")[0] in (*BEFORE_CHECKED_ACKS, "refusals", "backlinks", "dryrun"):
            assert PATCH_INBOX_BYTES not in _patches(json.loads(path.read_text())["events"]), path.name


def test_histories_from_before_adoption_continue_as_new_without_it() -> None:
    for name in ("lifecycle", "snapshots", "reverb"):
        for path in Path(__file__).parent.glob(f"{name}-run*.json"):
            assert PATCH_ADOPT_RULES not in _patches(json.loads(path.read_text())["events"]), path.name


def _converter(path: Path) -> DataConverter:
    """Plaintext histories replay with the plain converter; encrypted ones with their committed test key."""
    scenario = path.name.split("-run")[0]
    return data_converter(encryption_of(ENCRYPTED[scenario])) if scenario in ENCRYPTED else pydantic_data_converter


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_replay_history_is_deterministic(path: Path) -> None:
    history = WorkflowHistory.from_json("replay-" + path.stem, json.loads(path.read_text()))
    replayer = Replayer(
        workflows=[ProjectLifecycle], data_converter=_converter(path), workflow_runner=workflow_runner()
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"


async def test_replay_detects_a_changed_history(tmp_path: Path) -> None:
    """A history whose recorded command no longer matches the code is reported, not silently accepted."""
    source = Path(__file__).parent / "quarantine-run0.json"
    data = json.loads(source.read_text())
    for event in data["events"]:
        attrs = event.get("markerRecordedEventAttributes")
        if attrs:
            attrs["markerName"] = "not-a-local-activity"
            break
    else:
        pytest.fail("quarantine history has no local-activity marker to tamper with")
    history = WorkflowHistory.from_json("tampered", data)
    replayer = Replayer(
        workflows=[ProjectLifecycle], data_converter=pydantic_data_converter, workflow_runner=workflow_runner()
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is not None


def _events(name: str) -> list[list[dict]]:  # type: ignore[type-arg]
    return [json.loads(p.read_text())["events"] for p in sorted(Path(__file__).parent.glob(f"{name}-run*.json"))]


def test_a_terminated_project_completes_once_its_records_are_delivered() -> None:
    """After PATCH_TERMINATED_COMPLETES: the run delivers the TERMINATED transition's record, then completes."""
    (events,) = _events("terminated")
    assert PATCH_TERMINATED_COMPLETES in _patches(events)
    kinds = [e["eventType"].removeprefix("EVENT_TYPE_") for e in events]
    assert kinds[-1] == "WORKFLOW_EXECUTION_COMPLETED" and kinds.count("WORKFLOW_EXECUTION_COMPLETED") == 1
    delivered, receipts = [], []
    for e in events:
        scheduled = e.get("activityTaskScheduledEventAttributes")
        if scheduled and scheduled["activityType"]["name"] == "swoosh.deliver_decisions":
            request = json.loads(base64.b64decode(scheduled["input"]["payloads"][0]["data"]))
            delivered += [r["index"] for r in request["records"]]
            receipts += [(r["from_index"], r["to_index"]) for r in request.get("receipts", [])]
    assert delivered == [1, 2]  # Boot_ConfigOk, Boot_LicenseFailed (into TERMINATED): nothing left behind
    assert receipts == [(1, 2)]  # the last interval's receipt, as a snapshot would have made it
    assert kinds.index("WORKFLOW_EXECUTION_COMPLETED") > max(
        i for i, k in enumerate(kinds) if k == "ACTIVITY_TASK_COMPLETED"
    )


def test_terminated_runs_recorded_before_the_patch_stay_open() -> None:
    """Recorded by the code before the patch (tests/histories/record.py FROZEN): the TERMINATED run stayed
    open, took a signal and continued as new when asked. Replaying it (test_replay_history_is_deterministic)
    fails if the completion is not gated: the replayed run would complete where this one continued."""
    runs = _events("terminated-open")
    assert len(runs) == 2 and all(PATCH_TERMINATED_COMPLETES not in _patches(events) for events in runs)
    kinds = [e["eventType"].removeprefix("EVENT_TYPE_") for e in runs[0]]
    assert "WORKFLOW_EXECUTION_SIGNALED" in kinds and kinds[-1] == "WORKFLOW_EXECUTION_CONTINUED_AS_NEW"
    for path in Path(__file__).parent.glob("*-run*.json"):
        if not path.name.startswith(("terminated-run", *RECORDED_WITH_EVERY_PATCH)):
            assert PATCH_TERMINATED_COMPLETES not in _patches(json.loads(path.read_text())["events"]), path.name


def test_secret_proposals_never_reach_the_recorded_history() -> None:
    """Recorded with the scan in the Update validator: the secret is nowhere, the quarantine was asked for by
    a secret-free Update; runs recorded before keep scanning (and quarantining) in the handler on replay."""
    path = Path(__file__).parent / "secrets-run0.json"
    text = path.read_text()
    events = json.loads(text)["events"]
    assert PATCH_SECRET_SCAN_IN_VALIDATOR in _patches(events)
    assert "BEGIN PRIVATE KEY" not in text and base64.b64encode(b"-----BEGIN PRIVATE KEY").decode()[:20] not in text
    names = [
        e["workflowExecutionUpdateAcceptedEventAttributes"]["acceptedRequest"]["input"]["name"]
        for e in events
        if "workflowExecutionUpdateAcceptedEventAttributes" in e
    ]
    assert names.count("quarantine_for_secret") == 1
    old = json.loads((Path(__file__).parent / "quarantine-run0.json").read_text())["events"]
    assert PATCH_SECRET_SCAN_IN_VALIDATOR not in _patches(old)


def test_a_signature_that_looks_like_a_key_met_the_quorum_guard_in_the_committed_history() -> None:
    """By Update and by Signal: refused by the quorum guard, no quarantine; the genuine certificate elects."""
    [run] = load_history_file(Path(__file__).parent / "lookalike-run0.json")
    facts = run_facts(run)
    assert facts.start is not None and facts.start.snapshot.config.signed_fields_exempt is True
    assert [r["transition"] for _, r in sorted(facts.records.items())][-1] == "Council_QuorumCert"
    assert "Policy_Quarantine" not in [r["transition"] for r in facts.records.values()]
    assert facts.update_failures == 1


async def test_the_signature_exemption_is_what_the_replay_decides_by(tmp_path: Path) -> None:
    """The same history with the project's config saying "scan signatures" (as projects recorded before the
    exemption do) no longer replays: the Signal path would have quarantined. So the gate is the config field."""
    data = json.loads((Path(__file__).parent / "lookalike-run0.json").read_text())
    payload = data["events"][0]["workflowExecutionStartedEventAttributes"]["input"]["payloads"][0]
    start = json.loads(base64.b64decode(payload["data"]))
    start["snapshot"]["config"]["signed_fields_exempt"] = False
    payload["data"] = base64.b64encode(json.dumps(start).encode()).decode()
    replayer = Replayer(
        workflows=[ProjectLifecycle], data_converter=pydantic_data_converter, workflow_runner=workflow_runner()
    )
    result = await replayer.replay_workflow(WorkflowHistory.from_json("scanned", data), raise_on_replay_failure=False)
    assert result.replay_failure is not None
