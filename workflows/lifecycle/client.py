"""Client-side operations on project workflows: create (idempotent), propose, read.

Everything that talks to Temporal for a project goes through here, so the HTTP API, the CLI, the
benchmarks and the tests share one translation of SWOOSH operations into Temporal calls.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from swoosh.workflows.answers import Accepted, DryRunAnswer, IdemEntry, Rejected
from swoosh.workflows.canonical import content_hash
from swoosh.workflows.document import genesis
from swoosh.workflows.engine import Admitted, Engine, EngineConfig, EngineSnapshot, new_engine_config
from swoosh.workflows.errors import ProposalError, SwooshError
from swoosh.workflows.ids import workflow_id
from swoosh.workflows.keyring import Keyring
from swoosh.workflows.lifecycle.visibility import SEARCH_ATTRIBUTES, search_attributes_of
from swoosh.workflows.lifecycle.workflow import ProjectLifecycle
from swoosh.workflows.messages import (
    DRY_RUN_ANSWER_TYPE,
    REJECTION_ERROR_TYPE,
    RETRY_LATER_ERROR_TYPE,
    UNAVAILABLE_ERROR_TYPE,
    DecisionsPage,
    HeadView,
    HealthView,
    LifecycleInput,
    LifecycleSettings,
    RejectionLogEntry,
    SecretQuarantine,
    StateView,
)
from swoosh.workflows.proposal import Proposal, ProposalRequest, parse_proposal
from swoosh.workflows.secrets import breach_rejection, raw_breaches, secret_breaches
from swoosh.workflows.statechart import default_statechart


def initial_input(
    project_id: str, keyring: Keyring, config: EngineConfig | None = None, settings: LifecycleSettings | None = None
) -> LifecycleInput:
    """The first snapshot of a project: its genesis document (deterministic from project id + keyring)."""
    doc = genesis(default_statechart(), project_id, keyring)
    return LifecycleInput(
        snapshot=EngineSnapshot(document=doc, config=config or new_engine_config()),
        settings=settings or LifecycleSettings(),
    )


async def ensure_project(
    client: Client,
    project_id: str,
    keyring: Keyring,
    task_queue: str,
    config: EngineConfig | None = None,
    settings: LifecycleSettings | None = None,
) -> WorkflowHandle[ProjectLifecycle, None]:
    """Start the project's workflow, or return the running one (idempotent)."""
    inp = initial_input(project_id, keyring, config, settings)
    return await client.start_workflow(
        ProjectLifecycle.run,
        inp,
        **_start_options(project_id, inp, task_queue),
        static_details=_static_details(project_id, inp.settings),
    )


def _static_details(project_id: str, settings: LifecycleSettings) -> str:
    text = f"Lifecycle of project `{project_id}`; statechart {default_statechart().schema_hash[:19]}…"
    if settings.api_url:
        text += f"\n\n[live statechart]({settings.api_url.rstrip('/')}/v1/projects/{project_id}/diagram)"
    return text


def _start_options(project_id: str, inp: LifecycleInput, task_queue: str) -> dict[str, Any]:
    """How a project's workflow is started, alone or with its first Update."""
    return {
        "id": workflow_id(project_id),
        "task_queue": task_queue,
        "id_conflict_policy": WorkflowIDConflictPolicy.USE_EXISTING,
        # A closed project (its workflow completed at TERMINATED, failed or was terminated) is never
        # started again from genesis under the same id: that would fork its decision-record chain.
        "id_reuse_policy": WorkflowIDReusePolicy.REJECT_DUPLICATE,
        "search_attributes": search_attributes_of(inp.snapshot.document),
        "static_summary": f"SWOOSH project {project_id}",
    }


class ProjectClosed(SwooshError):
    """The project's workflow is closed: it takes no transition and is never started again."""

    def __init__(self, project_id: str, status: str | None = None) -> None:
        how = f" (its workflow {status.lower()})" if status else ""
        super().__init__(
            f"project {project_id} is closed{how}: it takes no transitions and is not started again; "
            "its state and decision records stay readable"
        )
        self.project_id = project_id
        self.status = status


def is_closed(err: BaseException) -> bool:
    """Temporal's answer to an Update or Signal sent to a workflow that has completed."""
    return isinstance(err, RPCError) and err.status == RPCStatusCode.NOT_FOUND and "completed" in err.message.lower()


async def closed_status(client: Client, project_id: str) -> str | None:
    """The status name of the project's closed workflow, None while it runs or when there is none."""
    try:
        desc = await client.get_workflow_handle(workflow_id(project_id)).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    return None if desc.status in (None, WorkflowExecutionStatus.RUNNING) else desc.status.name


def update_id(request: ProposalRequest, client: Client | None = None) -> str:
    """A fresh Temporal update id per call.

    The SDK reuses it for its own RPC retries of this call; a caller's resend is a new call and is
    answered by SWOOSH's idem_key dedupe (`duplicate: true`), which, unlike Temporal's update-id
    dedupe, also survives continue-as-new. The idem key prefixes it for reading the UI, except when
    payloads are encrypted: an update id is written to history in clear.
    """
    if client is not None and client.data_converter.payload_codec is not None:
        return uuid.uuid4().hex
    body = request.body if isinstance(request.body, dict) else {}
    idem = str(body.get("idem_key") or request.header_fields.get("idem_key") or "")[:64]
    return f"{idem}/{uuid.uuid4().hex}"


def rejected_from(err: WorkflowUpdateFailedError) -> Rejected | None:
    """The contract rejection carried by a failed Update, or None for any other failure."""
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.type == REJECTION_ERROR_TYPE and cause.details:
        return Rejected.model_validate(cause.details[0])
    return None


def turned_away(err: BaseException) -> str | None:
    """The workflow's reason when it turned an Update away unseen (nothing written: resending is safe)."""
    cause = err.cause if isinstance(err, WorkflowUpdateFailedError) else None
    if isinstance(cause, ApplicationError) and cause.type == RETRY_LATER_ERROR_TYPE:
        return cause.message
    return None


# Temporal's own failure for an Update it accepted but lost before the workflow processed it (the server
# restarted, or the workflow task carrying it was lost): nothing was applied, so a resend is safe.
UNPROCESSED_UPDATE = "UnprocessedUpdate"


def unprocessed(err: BaseException) -> bool:
    """Whether Temporal dropped the Update unprocessed (seen while the server restarts under load)."""
    cause = err.cause if isinstance(err, WorkflowUpdateFailedError) else None
    if not isinstance(cause, ApplicationError):
        return False
    return cause.type == UNPROCESSED_UPDATE or (cause.message or "").startswith(UNPROCESSED_UPDATE)


def resendable(err: BaseException) -> bool:
    """Turned away by the workflow ("retry later") or dropped unprocessed by Temporal: resend the same Update."""
    return turned_away(err) is not None or unprocessed(err)


def unavailable(err: BaseException) -> str | None:
    """The workflow's reason when it could not decide an Update (its guards could not be evaluated)."""
    cause = err.cause if isinstance(err, WorkflowUpdateFailedError) else None
    if isinstance(cause, ApplicationError) and cause.type == UNAVAILABLE_ERROR_TYPE:
        return cause.message
    return None


# Waits between resends of an Update turned away with "retry later" (rare: only in a workflow task
# retried after a worker died, see ProjectLifecycle._resumed). The last failure propagates and the
# HTTP API answers it with 503 + Retry-After.
TURNED_AWAY_WAITS_S = (0.0, 0.05, 0.2, 0.5)


async def _update(send: Callable[[], Awaitable[Accepted]]) -> Accepted | Rejected:
    for wait in (*TURNED_AWAY_WAITS_S, None):
        try:
            return await send()
        except WorkflowUpdateFailedError as err:
            rejected = rejected_from(err)
            if rejected is not None:
                return rejected
            if wait is None or not resendable(err):
                raise
            await asyncio.sleep(wait)
    raise AssertionError("unreachable")


def handle(client: Client, project_id: str) -> WorkflowHandle[ProjectLifecycle, None]:
    """The typed handle of a project's workflow: Updates, Signals and queries by method reference."""
    return client.get_workflow_handle_for(ProjectLifecycle.run, workflow_id(project_id))


# ------------------------------------------------------------------ secrets never sent
async def refuse_secret(
    client: Client, project_id: str, request: ProposalRequest, *, quarantine: bool = True
) -> Rejected | None:
    """None when `request` carries no secret (a built-in SHHH rule); else its answer, the request never sent.

    A Temporal call writes what it carries to history (a Signal at once, an Update once accepted), so a
    secret-bearing proposal is never sent. Instead: the project's document is read (a query, nothing
    written) and the proposal is admitted against it by the pure engine, as the workflow would. If it
    would be admitted (signed by an identity of the project, for a transition it may propose now), a
    secret-free `quarantine_for_secret` Update quarantines the project before the answer is returned:
    `guard_failed` by `policy`, naming rules and places. Otherwise the admission's own rejection, and
    nothing happens (so no one can quarantine a project with an unsigned body). A resend meets a
    QUARANTINED project and is answered `quarantined`; a crash before the Update was sent loses
    nothing the caller's resend does not redo.
    """
    try:
        proposal: Proposal | None = parse_proposal(request)
    except ProposalError:
        proposal = None
    breaches = secret_breaches(proposal) if proposal is not None else raw_breaches(request.body, request.header_fields)
    if not breaches:
        return None
    view = await read_state(client, project_id)
    engine = Engine(default_statechart(), EngineSnapshot(document=view.projection))
    quarantined = engine.top == "QUARANTINED"
    try:
        admitted = engine.admit(request, int(time.time() * 1000))
    except ProposalError as err:
        return Rejected.of(err, view.hash, quarantined=quarantined)
    if not quarantine or not isinstance(admitted, Admitted):
        return breach_rejection(breaches, view.hash, quarantined)
    assert proposal is not None  # admitted, so well formed
    ask = SecretQuarantine(
        breaches=breaches, transition=proposal.transition, signer=proposal.signer,
        idem_key=None if any(" at idem_key" in b for b in breaches) else proposal.idem_key,
    )  # fmt: skip
    wf = handle(client, project_id)
    for wait in (*TURNED_AWAY_WAITS_S, None):
        try:
            head = await wf.execute_update(ProjectLifecycle.quarantine_for_secret, ask, id=uuid.uuid4().hex)
            break
        except WorkflowUpdateFailedError as err:
            if wait is None or not resendable(err):
                raise
            await asyncio.sleep(wait)
    return breach_rejection(breaches, head.hash, head.top == "QUARANTINED")


async def propose(client: Client, project_id: str, request: ProposalRequest) -> Accepted | Rejected:
    """Send a proposal as an Update and return the contract answer (accepted, duplicate or rejected).

    A proposal carrying a secret is never sent (`refuse_secret`).
    """
    refused = await refuse_secret(client, project_id, request)
    if refused is not None:
        return refused
    wf = handle(client, project_id)

    async def send() -> Accepted:
        return await wf.execute_update(ProjectLifecycle.transition, request, id=update_id(request, client))

    try:
        return await _update(send)
    except RPCError as err:
        if not is_closed(err):
            raise
    # A closed run takes no Update, but its state still answers: a resend of an accepted proposal is
    # its duplicate, anything else sent to a TERMINATED project the contract's `terminated` rejection.
    view = await wf.query(ProjectLifecycle.answer, request)
    if view.accepted is not None:
        return view.accepted
    if view.rejected is not None:
        return view.rejected
    raise ProjectClosed(project_id, await closed_status(client, project_id))


async def dry_run(client: Client, project_id: str, request: ProposalRequest) -> DryRunAnswer:
    """What sending `request` would be answered now; the project is left exactly as it was."""
    refused = await refuse_secret(client, project_id, request, quarantine=False)
    if refused is not None:
        if refused.error == "guard_failed":
            reason = refused.reason + " (a real send would also quarantine the project)"
            refused = refused.model_copy(update={"reason": reason})
        return DryRunAnswer.would_reject(refused)
    wf = handle(client, project_id)
    for wait in (*TURNED_AWAY_WAITS_S, None):
        try:
            return await wf.execute_update(ProjectLifecycle.dry_run, request, id=update_id(request, client))
        except WorkflowUpdateFailedError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError) and cause.type == DRY_RUN_ANSWER_TYPE and cause.details:
                return DryRunAnswer.model_validate(cause.details[0])  # answered by the validator
            if wait is None or not resendable(err):
                raise
            await asyncio.sleep(wait)
    raise AssertionError("unreachable")


async def propose_with_start(
    client: Client, project_id: str, request: ProposalRequest, keyring: Keyring, task_queue: str
) -> Accepted | Rejected:
    """Create the project if needed and send the proposal, in one round trip (a secret is never sent)."""
    try:
        refused = await refuse_secret(client, project_id, request)
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        genesis_hash = content_hash(initial_input(project_id, keyring).snapshot.document)
        refused = _unsent(request, genesis_hash) if _carries_secret(request) else None
    if refused is not None:
        return refused
    inp = initial_input(project_id, keyring)

    async def send() -> Accepted:
        op = WithStartWorkflowOperation(ProjectLifecycle.run, inp, **_start_options(project_id, inp, task_queue))
        return await client.execute_update_with_start_workflow(
            ProjectLifecycle.transition, request, id=update_id(request, client), start_workflow_operation=op
        )

    return await _update(send)


async def signal_proposal(client: Client, project_id: str, request: ProposalRequest) -> Rejected | None:
    """Fire-and-forget: queue the proposal (its rejection goes to the rejection log), None.

    A Signal's payload is written to history as it arrives, so a proposal carrying a secret is never
    signalled: it is answered here, and the project quarantined, as `refuse_secret` says.
    """
    refused = await refuse_secret(client, project_id, request)
    if refused is not None:
        return refused
    await handle(client, project_id).signal(ProjectLifecycle.propose, request)
    return None


def _carries_secret(request: ProposalRequest) -> bool:
    try:
        return bool(secret_breaches(parse_proposal(request)))
    except ProposalError:
        return bool(raw_breaches(request.body, request.header_fields))


def _unsent(request: ProposalRequest, head_hash: str) -> Rejected:
    """A project that does not exist yet: refuse the secret-bearing proposal without creating it."""
    try:
        breaches = secret_breaches(parse_proposal(request))
    except ProposalError:
        breaches = raw_breaches(request.body, request.header_fields)
    return breach_rejection(breaches, head_hash)


async def request_snapshot(client: Client, project_id: str) -> None:
    await handle(client, project_id).signal(ProjectLifecycle.request_snapshot)


async def read_state(client: Client, project_id: str, projection: list[str] | None = None) -> StateView:
    return await handle(client, project_id).query(ProjectLifecycle.state, projection)


async def read_head(client: Client, project_id: str) -> HeadView:
    return await handle(client, project_id).query(ProjectLifecycle.head)


async def read_health(client: Client, project_id: str) -> HealthView:
    return await handle(client, project_id).query(ProjectLifecycle.health)


async def read_decisions(client: Client, project_id: str, after_index: int = 0, limit: int = 100) -> DecisionsPage:
    return await handle(client, project_id).query(ProjectLifecycle.decisions, args=[after_index, limit])


async def read_receipts(client: Client, project_id: str) -> list[dict[str, Any]]:
    """The receipts the workflow holds: the newest stored ones and those still to be signed and stored."""
    return await handle(client, project_id).query(ProjectLifecycle.receipt_log)


async def read_rejections(client: Client, project_id: str) -> list[RejectionLogEntry]:
    return await handle(client, project_id).query(ProjectLifecycle.rejection_log)


async def read_seen(client: Client, project_id: str, idem_key: str) -> IdemEntry | None:
    return await handle(client, project_id).query(ProjectLifecycle.seen, idem_key)


# ------------------------------------------------------------------ namespace setup
SA_TYPES = {
    "KEYWORD": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "BOOL": IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
    "INT": IndexedValueType.INDEXED_VALUE_TYPE_INT,
}


def search_attribute_flags() -> list[str]:
    """`temporal server start-dev` flags registering SWOOSH's search attributes."""
    flags = []
    for key in SEARCH_ATTRIBUTES:
        flags += ["--search-attribute", f"{key.name}={key.indexed_value_type.name.title()}"]
    return flags


async def register_search_attributes(client: Client) -> None:
    """Register SWOOSH's typed search attributes (needed before any workflow upserts them)."""
    # The time-skipping server implements only AddSearchAttributes, so add each one and accept
    # "already exists" rather than listing first.
    for key in SEARCH_ATTRIBUTES:
        try:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(
                    namespace=client.namespace,
                    search_attributes={key.name: SA_TYPES[key.indexed_value_type.name]},
                )
            )
        except RPCError as err:
            if err.status != RPCStatusCode.ALREADY_EXISTS:
                raise
