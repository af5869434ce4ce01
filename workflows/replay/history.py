"""Read SWOOSH facts out of Temporal histories: snapshots, proposals, answers and decision records.

Used by `swoosh replay` (fold the WAL through the pure reducer) and `swoosh audit verify`.
A history is one run; a project's WAL is the chain of its runs linked by continue-as-new.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import PayloadCodec
from temporalio.service import RPCError

from swoosh.workflows.answers import Accepted
from swoosh.workflows.lifecycle.codec import PayloadKeyError
from swoosh.workflows.messages import (
    ACTIVITY_DELIVER,
    SIGNAL_PROPOSE,
    UPDATE_TRANSITION,
    WORKFLOW_NAME,
    DeliveryRequest,
    LifecycleInput,
)
from swoosh.workflows.proposal import ProposalRequest

CONVERTER = pydantic_data_converter.payload_converter
ET = EventType


@dataclass
class RunFacts:
    """What one run's history says about the project."""

    workflow_id: str
    run_id: str
    start: LifecycleInput | None = None
    next_input: LifecycleInput | None = None  # set when the run continued-as-new
    proposals: dict[str, list[ProposalRequest]] = field(default_factory=dict)  # by idem_key, in arrival order
    answers: list[Accepted] = field(default_factory=list)  # successful Update answers, in order
    records: dict[int, dict[str, Any]] = field(default_factory=dict)  # decision records seen, by index
    events: int = 0
    update_failures: int = 0

    def add_record(self, record: dict[str, Any]) -> None:
        self.records.setdefault(int(record["index"]), record)


def _decode(payloads: Any, type_hint: type) -> Any:
    if any(p.metadata.get("encoding") == b"binary/encrypted" for p in payloads):
        raise PayloadKeyError(
            "the history's payloads are encrypted: read it with the encryption keys (SWOOSH_ENCRYPTION_KEYS or "
            "SWOOSH_ENCRYPTION_KEYS_FILE)"
        )
    return CONVERTER.from_payloads(list(payloads), [type_hint])[0]


def _payloads_in(message: Message, out: list[Payload]) -> None:
    for field_desc, value in message.ListFields():
        if field_desc.type != FieldDescriptor.TYPE_MESSAGE:
            continue
        values: list[Any]
        if isinstance(value, Message):
            values = [value]
        elif hasattr(value, "values") and callable(value.values):  # a map field
            values = list(value.values())
        else:  # a repeated field
            values = list(value)
        for item in values:
            if not isinstance(item, Message):
                continue
            if isinstance(item, Payload):
                out.append(item)
            else:
                _payloads_in(item, out)


async def decode_histories(histories: list[WorkflowHistory], codec: PayloadCodec | None) -> list[WorkflowHistory]:
    """Decrypt every payload of these histories in place (encrypted runs; plaintext ones are left as they are).

    Temporal's Replayer decodes by itself; `run_facts` and the other readers here need plain payloads.
    """
    if codec is None:
        return histories
    for history in histories:
        found: list[Payload] = []
        for event in history.events:
            _payloads_in(event, found)
        encrypted = [p for p in found if p.metadata.get("encoding") == b"binary/encrypted"]
        if encrypted:
            for old, new in zip(encrypted, await codec.decode(encrypted), strict=True):
                old.CopyFrom(new)
    return histories


def _idem_key(req: ProposalRequest) -> str | None:
    body = req.body if isinstance(req.body, dict) else {}
    key = body.get("idem_key") or req.header_fields.get("idem_key")
    return key if isinstance(key, str) else None


def run_facts(history: WorkflowHistory) -> RunFacts:
    facts = RunFacts(workflow_id=history.workflow_id, run_id=history.run_id)
    events: list[HistoryEvent] = list(history.events)
    facts.events = len(events)
    # Update id -> Update name (transition, dry_run). By id, not by accepted event id: the
    # time-skipping server leaves `accepted_event_id` of a completion unset.
    names: dict[str, str] = {}
    for e in events:
        t = e.event_type
        if t == ET.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            facts.start = _decode(e.workflow_execution_started_event_attributes.input.payloads, LifecycleInput)
            for r in facts.start.undelivered + facts.start.retained:
                facts.add_record(r)
        elif t == ET.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            req = e.workflow_execution_update_accepted_event_attributes.accepted_request
            names[req.meta.update_id] = req.input.name
            if req.input.name == UPDATE_TRANSITION:
                proposal = _decode(req.input.args.payloads, ProposalRequest)
                key = _idem_key(proposal)
                if key:
                    facts.proposals.setdefault(key, []).append(proposal)
        elif t == ET.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
            completed = e.workflow_execution_update_completed_event_attributes
            if names.get(completed.meta.update_id) != UPDATE_TRANSITION:
                continue  # a dry run's answer: nothing was applied
            outcome = completed.outcome
            if outcome.HasField("success"):
                answer = _decode(outcome.success.payloads, Accepted)
                facts.answers.append(answer)
                if answer.decision_record:
                    facts.add_record(answer.decision_record)
            else:
                facts.update_failures += 1
        elif t == ET.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            signaled = e.workflow_execution_signaled_event_attributes
            if signaled.signal_name == SIGNAL_PROPOSE:
                proposal = _decode(signaled.input.payloads, ProposalRequest)
                key = _idem_key(proposal)
                if key:
                    facts.proposals.setdefault(key, []).append(proposal)
        elif t == ET.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled = e.activity_task_scheduled_event_attributes
            if scheduled.activity_type.name == ACTIVITY_DELIVER:
                delivery = _decode(scheduled.input.payloads, DeliveryRequest)
                for r in delivery.records:
                    facts.add_record(r)
        elif t == ET.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
            continued = e.workflow_execution_continued_as_new_event_attributes
            facts.next_input = _decode(continued.input.payloads, LifecycleInput)
            for r in facts.next_input.undelivered + facts.next_input.retained:
                facts.add_record(r)
    return facts


def load_history_file(path: Path) -> list[WorkflowHistory]:
    """One history per file, or a JSON list of them; the `temporal workflow show --output json` format.

    Only project histories: those of SWOOSH's other workflows (the migration control workflow and
    ledgers) are skipped, so a folder holding them all can be replayed and audited as projects.
    """
    data = json.loads(path.read_text(encoding="utf-8"))
    items = data if isinstance(data, list) else [data]
    return [
        WorkflowHistory.from_json(f"file:{path.name}#{i}", item)
        for i, item in enumerate(items)
        if _workflow_type(item) in (None, WORKFLOW_NAME)
    ]


def _workflow_type(item: Any) -> str | None:
    try:
        first = item["events"][0]
        return str(first["workflowExecutionStartedEventAttributes"]["workflowType"]["name"])
    except (KeyError, IndexError, TypeError):
        return None


def history_files(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(sorted(p.rglob("*.json")))
        else:
            out.append(p)
    return out


async def fetch_project_runs(client: Client, workflow_id: str) -> list[WorkflowHistory]:
    """Every run of a workflow id, oldest first (via visibility, falling back to the continue-as-new chain).

    Payloads come back decrypted with the client's codec (its encryption keys), ready for `run_facts`.
    """
    return await decode_histories(await _fetch_runs(client, workflow_id), client.data_converter.payload_codec)


async def _fetch_runs(client: Client, workflow_id: str) -> list[WorkflowHistory]:
    runs: list[tuple[Any, str]] = []
    try:
        async for wf in client.list_workflows(f"WorkflowId = '{workflow_id}'"):
            runs.append((wf.start_time, wf.run_id))
    except RPCError:  # servers without visibility (the time-skipping one): take the current run
        runs = []
    if runs:
        runs.sort()
        return [await client.get_workflow_handle(workflow_id, run_id=r).fetch_history() for _, r in runs]
    desc = await client.get_workflow_handle(workflow_id).describe()
    return [await client.get_workflow_handle(workflow_id, run_id=desc.run_id).fetch_history()]
