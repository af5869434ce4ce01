"""The API's one gateway to Temporal: admission, timeouts, error translation, metrics and logs.

Routes call `Gateway`; it calls `workflows.lifecycle.client` (the one translation of SWOOSH operations into
Temporal calls) and never lets a Temporal exception escape untranslated.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, runtime_checkable

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from swoosh.api.models import (
    DecisionsAnswer,
    NextWindowed,
    Receipt,
    ReceiptsAnswer,
    RejectionBody,
    WindowClassView,
    WindowsAnswer,
)
from swoosh.api.server import jsonlog
from swoosh.api.server.admission import Admission
from swoosh.api.server.metrics import ApiMetrics
from swoosh.api.server.problems import (
    ClosedProblem,
    ForbiddenProblem,
    HttpProblem,
    NotFoundProblem,
    OverloadedProblem,
    QueryFailed,
    RecordsUnavailableProblem,
    SetupProblem,
    UnavailableProblem,
    translate,
)
from swoosh.api.server.quota import ProjectQuota
from swoosh.api.server.signing import Delegation, LegacyProposal, SigningGateway, is_legacy_body
from swoosh.api.server.tokens import ANONYMOUS, Principal, required_scope
from swoosh.api.server.tracing import annotate
from swoosh.workflows.answers import Accepted, DryRunAnswer, IdemEntry, Rejected
from swoosh.workflows.canonical import canonical_json
from swoosh.workflows.document import projection_sections
from swoosh.workflows.engine import EngineConfig
from swoosh.workflows.errors import ProposalError
from swoosh.workflows.ids import PROJECT_ID_RULE, is_project_id, workflow_id
from swoosh.workflows.keyring import Keyring
from swoosh.workflows.lifecycle.client import (
    ProjectClosed,
    dry_run,
    ensure_project,
    propose,
    read_decisions,
    read_head,
    read_health,
    read_receipts,
    read_seen,
    read_state,
)
from swoosh.workflows.lifecycle.namespace import namespace_problem
from swoosh.workflows.lifecycle.shadow_client import ledger_report
from swoosh.workflows.lifecycle.views import document_view
from swoosh.workflows.messages import HeadView, HealthView, LifecycleSettings, StateView
from swoosh.workflows.proposal import HEADER_FIELDS, ProposalRequest, parse_proposal
from swoosh.workflows.replay.timetravel import PastStates, PastUnavailable
from swoosh.workflows.shadow import ShadowReport
from swoosh.workflows.statechart import default_statechart

CHART = default_statechart()

T = TypeVar("T")
ClientProvider = Callable[[], Awaitable[Client]]
SetupCheck = Callable[[Client], Awaitable[str | None]]  # None = the namespace is ready for SWOOSH

MAX_DEPTH = 32
RETRY_HEADER = "X-Swoosh-Retry"


class DecisionPages(Protocol):
    """The configured decision-record store, read for the records a project's workflow no longer holds.

    The worker composes it from the `[records]` settings (JSONL files, PostgreSQL or BUBBLE); the API
    never reads another process's files on its own.
    """

    kind: str

    async def page(self, project_id: str, after_index: int, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` records of the project with index > `after_index`, in index order."""
        ...

    async def receipts(self, project_id: str) -> list[dict[str, Any]]:
        """Every snapshot receipt the store holds for the project, by `from_index`."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class CheckedStore(Protocol):
    """A decision store that can say whether it is usable now (for `/readyz`)."""

    async def check(self) -> str | None: ...


READY_PROBE_PROJECT = "swoosh-readyz"  # a project id no one uses: a one-record read of it proves the store answers


async def store_problem(store: DecisionPages) -> str | None:
    """Why the decision store cannot be read now (for `/readyz`), or None.

    Its own `check()` when it has one, else a one-record read (which must answer, even if empty).
    """
    try:
        if isinstance(store, CheckedStore):
            return await store.check()
        await store.page(READY_PROBE_PROJECT, 0, 1)
    except Exception as err:  # any failure of the store is the store's, reported as such
        return f"the decision-record store ({store.kind}) cannot be read: {type(err).__name__}"
    return None


def _unreachable(err: BaseException) -> HttpProblem:
    """A failure to connect or to check the namespace: 429 for Temporal's RESOURCE_EXHAUSTED, else 503."""
    mapped = translate(err) if isinstance(err, RPCError) else None
    if isinstance(mapped, OverloadedProblem):
        return mapped
    return UnavailableProblem(f"Temporal cannot be reached: {type(err).__name__}")


class WindowSource(Protocol):
    """BACKBEAT's windows as the workers' facts will show them (the worker composes it from its settings)."""

    async def windows(self) -> dict[str, Any]:
        """`{"now_ms", "source", "window_id", "phase", "classes": {class: {window_id, open, opens_at_ms,
        closes_at_ms}}, "error"}`."""
        ...

    async def aclose(self) -> None: ...


class ClientSource:
    """A Temporal client, given or connected on demand; connection failures become 503.

    With a `setup_check`, the namespace is checked once, before the first use of the client: until
    `swoosh setup` has prepared it, every request is a 503 saying so (instead of failing later, e.g.
    a project start refused for undefined search attributes).
    """

    def __init__(
        self, client: Client | ClientProvider, connect_timeout_s: float = 5.0, setup_check: SetupCheck | None = None
    ) -> None:
        self._client = client if isinstance(client, Client) else None
        self._provider = None if isinstance(client, Client) else client
        self._lock = asyncio.Lock()
        self._timeout = connect_timeout_s
        self._setup_check = setup_check
        self._verified = setup_check is None
        self._last_failure = ""

    async def get(self) -> Client:
        client = self._client if self._client is not None else await self._connect()
        if not self._verified:
            await self._verify(client)
        return client

    async def _connect(self) -> Client:
        assert self._provider is not None
        async with self._lock:
            if self._client is None:
                try:
                    async with asyncio.timeout(self._timeout):
                        self._client = await self._provider()
                except (RuntimeError, OSError, TimeoutError, RPCError) as err:
                    # TemporalUnreachable (a RuntimeError) says where and what to check: logged (once per
                    # distinct failure), while the caller's answer says less.
                    failure = str(err)[:1000] or type(err).__name__
                    if failure != self._last_failure:
                        self._last_failure = failure
                        jsonlog.event(f"cannot connect to Temporal: {failure}", level=30, event="temporal_unreachable")
                    raise _unreachable(err) from None
            return self._client

    async def _verify(self, client: Client) -> None:
        assert self._setup_check is not None
        async with self._lock:
            if self._verified:
                return
            try:
                async with asyncio.timeout(self._timeout):
                    problem = await self._setup_check(client)
            except (RPCError, RuntimeError, OSError, TimeoutError) as err:  # a lazy client connects here
                raise _unreachable(err) from None
            if problem is not None:
                raise SetupProblem(problem)
            self._verified = True


def decode_body(raw: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """The body as a JSON object, or the schema reason it is not one."""
    if not raw.strip():
        return None, "the body is empty; send a JSON object"
    try:
        value = json.loads(raw, parse_constant=_no_constant)
    except RecursionError:
        return None, "the body is nested too deeply"
    except ValueError as err:  # JSONDecodeError, UnicodeDecodeError, int digit limits
        return None, f"the body is not valid JSON: {str(err)[:200]}"
    if not isinstance(value, dict):
        return None, "the body must be a JSON object"
    if _depth(value) > MAX_DEPTH:
        return None, f"the body is nested deeper than {MAX_DEPTH} levels"
    try:
        canonical_json(value)
    except (UnicodeEncodeError, ValueError, TypeError):
        return None, "the body has strings that are not valid Unicode text"
    return value, None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _depth(value: Any, level: int = 1) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level)
    return level


@dataclass
class TransitionOutcome:
    status: int
    answer: Accepted | RejectionBody | DryRunAnswer


@dataclass
class Gateway:
    source: ClientSource
    task_queue: str
    keyring: Keyring | None
    default_project: str
    admission: Admission = field(default_factory=Admission)
    metrics: ApiMetrics = field(default_factory=ApiMetrics)
    engine_config: EngineConfig | None = None
    lifecycle_settings: LifecycleSettings | None = None
    update_timeout_s: float = 60.0
    query_timeout_s: float = 15.0
    exhausted_retries: int = 3
    decision_store: DecisionPages | None = None  # None: only the records the workflow still holds
    windows: WindowSource | None = None  # None: this API cannot tell callers about BACKBEAT windows
    quota: ProjectQuota = field(default_factory=lambda: ProjectQuota(None))
    past: PastStates = field(default_factory=PastStates)
    past_timeout_s: float = 120.0  # rebuilding an old state may read a few megabytes of history
    signing: SigningGateway | None = None  # legacy bodies of tokens bound to a gateway identity

    # ------------------------------------------------------------------ plumbing
    async def _call(self, project_id: str | None, timeout_s: float, fn: Callable[[Client], Awaitable[T]]) -> T:
        client = await self.source.get()
        try:
            async with asyncio.timeout(timeout_s):
                return await fn(client)
        except HttpProblem:
            raise
        except Exception as err:
            mapped = translate(err, project_id)
            if mapped is err:
                raise
            raise mapped from None

    async def head(self, project_id: str) -> HeadView | None:
        """The head for a rejection answer: NotFoundProblem propagates; an unreachable Temporal gives None."""
        try:
            return await self._call(project_id, self.query_timeout_s, lambda c: read_head(c, project_id))
        except NotFoundProblem:
            raise
        except (HttpProblem, QueryFailed):
            return None

    async def schema_rejection(self, project_id: str | None, reason: str) -> RejectionBody:
        head = await self.head(project_id) if project_id is not None and is_project_id(project_id) else None
        if head is None:
            return RejectionBody.schema_error(reason, None)
        return RejectionBody.schema_error(reason, head.hash, quarantined=head.top == "QUARANTINED")

    # ------------------------------------------------------------------ projects
    async def create_project(self, project_id: str) -> bool:
        """Start the project's workflow unless it runs already; True when created now.

        A project whose workflow is closed is never started again (ClosedProblem, 409): a new run would
        start from genesis and fork the project's decision-record chain.
        """
        if self.keyring is None:
            raise UnavailableProblem("no keyring configured: projects cannot be created", retry_after=None)
        keyring = self.keyring

        async def describe(c: Client) -> WorkflowExecutionStatus | None:
            try:
                desc = await c.get_workflow_handle(workflow_id(project_id)).describe()
            except RPCError as err:
                if err.status == RPCStatusCode.NOT_FOUND:
                    return None
                raise
            return desc.status

        status = await self._call(project_id, self.query_timeout_s, describe)
        if status == WorkflowExecutionStatus.RUNNING:
            return False
        if status is not None:
            raise ClosedProblem(str(ProjectClosed(project_id, status.name)))
        # Closed since the describe: the id reuse policy refuses, and that is a ClosedProblem too.
        async with self.quota.lock:  # this replica's creations one at a time: it never passes the quota
            await self._call(project_id, self.query_timeout_s, self.quota.check)
            await self._call(
                project_id,
                self.query_timeout_s,
                lambda c: ensure_project(
                    c, project_id, keyring, self.task_queue, self.engine_config, self.lifecycle_settings
                ),
            )
        return True

    # ------------------------------------------------------------------ transitions
    async def transition(
        self,
        raw: bytes,
        headers: Mapping[str, str],
        path_project: str | None,
        started: float,
        principal: Principal = ANONYMOUS,
        delegation: Delegation | None = None,
        *,
        dry: bool = False,
    ) -> TransitionOutcome:
        """A proposal as sent: 202/400 as the workflow answers; with `dry`, 200 with what it would answer.

        `principal` is the caller's authenticated token: it must hold the scopes the proposal needs. A
        legacy body is completed and signed when `delegation` (the token's gateway identity) allows it.
        """
        header_fields = {name: headers[h] for h, name in HEADER_FIELDS.items() if h in headers}
        body, problem = decode_body(raw)
        # The project: the path; else the body's project_id, X-Project-Id, the default project.
        if path_project is not None:
            project_id, addressed = path_project, path_project
        else:
            header_project = headers.get("X-Project-Id")
            from_body = body.get("project_id") if body is not None else None
            project_id = from_body if isinstance(from_body, str) else header_project or self.default_project
            addressed = header_project or project_id
        if not is_project_id(project_id):
            return self._reject(None, body, header_fields, RejectionBody.schema_error(PROJECT_ID_RULE, None))
        transition = body.get("transition") if body else None
        check_scopes(principal, project_id, transition)
        if body is not None and delegation is not None and is_legacy_body(body):
            try:
                legacy = LegacyProposal.read(body, header_fields, project_id)
            except ProposalError as err:
                return self._reject(
                    project_id, body, header_fields, await self.schema_rejection(project_id, err.reason)
                )
            if dry:
                return await self.dry_run_legacy(legacy, delegation)
            return await self.propose_legacy(legacy, delegation, started, principal)
        request: ProposalRequest | None = None
        if body is not None:
            request = ProposalRequest(body=body, header_fields=header_fields, project_id=addressed)
            try:
                parse_proposal(request)
            except ProposalError as err:
                problem = err.reason
        if problem is not None or request is None:
            rejection = await self.schema_rejection(project_id, problem or "schema")
            if dry:
                return TransitionOutcome(200, DryRunAnswer.would_reject(rejection))
            return self._reject(project_id, body, header_fields, rejection, principal)
        transition = body.get("transition") if body else None
        if dry:
            return await self._dry_run(project_id, request, transition if isinstance(transition, str) else None)
        retry_of = headers.get(RETRY_HEADER, "")
        if retry_of.isdigit() and int(retry_of) > 0:
            self.metrics.retry(transition if isinstance(transition, str) else None)
        answer = await self._propose(project_id, request, transition if isinstance(transition, str) else None)
        return self._finish(project_id, answer, started, body, header_fields, principal)

    def _finish(
        self,
        project_id: str,
        answer: Accepted | Rejected,
        started: float,
        body: dict[str, Any] | None,
        header_fields: dict[str, str],
        principal: Principal = ANONYMOUS,
    ) -> TransitionOutcome:
        self.metrics.answered(project_id, answer, started)
        if isinstance(answer, Rejected):
            return self._reject(project_id, body, header_fields, RejectionBody.of_answer(answer), principal)
        annotate(project_id, answer.transition, answer)
        jsonlog.accepted(answer, _str(body, header_fields, "window_id"), principal.label)
        return TransitionOutcome(202, answer)

    async def propose_signed(
        self, project_id: str, request: ProposalRequest, started: float, principal: Principal = ANONYMOUS
    ) -> TransitionOutcome:
        """A proposal signed by its caller (already parsed once), answered as `transition` answers it."""
        body = request.body if isinstance(request.body, dict) else None
        transition = body.get("transition") if body else None
        answer = await self._propose(project_id, request, transition if isinstance(transition, str) else None)
        return self._finish(project_id, answer, started, body, dict(request.header_fields), principal)

    async def propose_legacy(
        self, legacy: LegacyProposal, delegation: Delegation, started: float, principal: Principal = ANONYMOUS
    ) -> TransitionOutcome:
        """A legacy proposal completed and signed by the signing gateway as `delegation` allows."""
        if self.signing is None:
            raise UnavailableProblem("this API holds no gateway keys", retry_after=None)
        project_id = legacy.project_id

        async def send(request: ProposalRequest) -> Accepted | Rejected:
            return await self._propose(project_id, request, legacy.transition)

        async def head() -> HeadView:
            return await self._call(project_id, self.query_timeout_s, lambda c: read_head(c, project_id))

        answer = await self.signing.propose(legacy, delegation, send, head)
        body = {"transition": legacy.transition, "idem_key": legacy.idem_key, "window_id": legacy.window_id}
        return self._finish(project_id, answer, started, body, {}, principal)

    async def dry_run_legacy(self, legacy: LegacyProposal, delegation: Delegation) -> TransitionOutcome:
        """A legacy proposal completed on the head now and dry-run: what a real send would be answered."""
        if self.signing is None:
            raise UnavailableProblem("this API holds no gateway keys", retry_after=None)
        head = await self.read_head_view(legacy.project_id)
        stamp = self.signing.stamp(head.hlc_last)
        return await self._dry_run(legacy.project_id, legacy.sign(delegation, head.hash, stamp), legacy.transition)

    async def dry_run_signed(self, project_id: str, request: ProposalRequest) -> TransitionOutcome:
        body = request.body if isinstance(request.body, dict) else {}
        transition = body.get("transition")
        return await self._dry_run(project_id, request, transition if isinstance(transition, str) else None)

    async def read_head_view(self, project_id: str) -> HeadView:
        return await self._call(project_id, self.query_timeout_s, lambda c: read_head(c, project_id))

    async def seen(self, project_id: str, idem_key: str) -> IdemEntry | None:
        """What the project's idempotency window holds for `idem_key` (None too when the project does not exist)."""
        try:
            return await self._call(project_id, self.query_timeout_s, lambda c: read_seen(c, project_id, idem_key))
        except NotFoundProblem:
            return None

    async def _propose(self, project_id: str, request: ProposalRequest, transition: str | None) -> Accepted | Rejected:
        attempt = 0
        while True:
            try:
                async with self.admission.slot(project_id):
                    return await self._call(
                        project_id, self.update_timeout_s, lambda c: propose(c, project_id, request)
                    )
            except OverloadedProblem as err:
                # Temporal's own in-flight limit (other API processes): nothing was applied, so retry briefly.
                if "Temporal" not in err.reason or attempt >= self.exhausted_retries:
                    raise
            attempt += 1
            self.metrics.retry(transition)
            await asyncio.sleep(0.05 * 2**attempt)

    async def _dry_run(self, project_id: str, request: ProposalRequest, transition: str | None) -> TransitionOutcome:
        async with self.admission.slot(project_id):  # a dry run may hold an Update slot like a real send
            answer = await self._call(project_id, self.update_timeout_s, lambda c: dry_run(c, project_id, request))
        jsonlog.dry_run(project_id, transition, answer)
        return TransitionOutcome(200, answer)

    def _reject(
        self,
        project_id: str | None,
        body: dict[str, Any] | None,
        header_fields: dict[str, str],
        rejection: RejectionBody,
        principal: Principal = ANONYMOUS,
    ) -> TransitionOutcome:
        transition = body.get("transition") if body else None
        annotate(project_id, transition if isinstance(transition, str) else None, rejection)
        jsonlog.rejected(
            project_id,
            transition if isinstance(transition, str) else None,
            _str(body, header_fields, "idem_key"),
            rejection,
            principal.label,
        )
        return TransitionOutcome(400, rejection)

    # ------------------------------------------------------------------ reads
    async def state(self, project_id: str, projection: str | None, at: int | None = None) -> StateView | RejectionBody:
        """The state now, or after index `at` (rebuilt from history; `at` past the head is a schema error)."""
        try:
            names = projection_sections(projection)
        except ValueError as err:
            return await self.schema_rejection(project_id, str(err))
        if at is not None:
            head = await self._call(project_id, self.query_timeout_s, lambda c: read_head(c, project_id))
            if at > head.index:
                reason = f"at={at} is after the project's last index {head.index}"
                return RejectionBody.schema_error(reason, head.hash)
            if at < head.index:
                return await self._past(project_id, at, names, head.hash)
        try:
            return await self._call(project_id, self.query_timeout_s, lambda c: read_state(c, project_id, names))
        except QueryFailed as err:
            return await self.schema_rejection(project_id, str(err)[:500])

    async def _past(self, project_id: str, at: int, names: list[str] | None, head: str) -> StateView | RejectionBody:
        async def rebuild(c: Client) -> StateView:
            async def more(after_index: int, limit: int) -> list[dict[str, Any]]:
                return (await read_decisions(c, project_id, after_index, min(limit, 1000))).records

            past = await self.past.state_at(c, project_id, at, more_records=more)
            return document_view(past.document, past.hash, names)

        try:
            return await self._call(project_id, self.past_timeout_s, rebuild)
        except PastUnavailable as err:
            return RejectionBody.schema_error(str(err), head)

    async def health(self, project_id: str) -> HealthView:
        return await self._call(project_id, self.query_timeout_s, lambda c: read_health(c, project_id))

    async def decisions(self, project_id: str, after_index: int, limit: int) -> DecisionsAnswer:
        """A page of records `after_index + 1 ..`: the workflow's retained ones, older ones from the store.

        The page has no holes: a record the workflow no longer holds and the store cannot give is an
        error (503, the store may be behind or unreachable), never silently skipped.
        """
        page = await self._call(
            project_id, self.query_timeout_s, lambda c: read_decisions(c, project_id, after_index, limit)
        )
        records = list(page.records)
        first = page.first_retained_index
        wanted_last = min(page.head_index, after_index + limit)
        if wanted_last > after_index and (first is None or first > after_index + 1):
            older_last = wanted_last if first is None else min(wanted_last, first - 1)
            older = await self._older_records(project_id, after_index, older_last)
            records = (older + [r for r in records if int(r["index"]) > older_last])[:limit]
        _check_page(project_id, after_index, records)
        next_after = int(records[-1]["index"]) if records else after_index
        return DecisionsAnswer(
            project_id=project_id,
            records=records,
            head_index=page.head_index,
            first_retained_index=first,
            next_after_index=next_after,
        )

    async def _older_records(self, project_id: str, after_index: int, last: int) -> list[dict[str, Any]]:
        """Records after_index+1 .. last from the decision-record store, all of them or a RecordsUnavailable."""
        store = self.decision_store
        span = f"{after_index + 1}..{last}"
        if store is None:
            raise RecordsUnavailableProblem(
                f"records {span} of project {project_id} are no longer held by its workflow and this API has "
                "no decision-record store configured",
                retry_after=None,
            )
        try:
            async with asyncio.timeout(self.query_timeout_s):
                got = await store.page(project_id, after_index, last - after_index)
        except Exception as err:  # any failure of the store is the store's, reported as such
            jsonlog.event(
                f"decision-record store ({store.kind}) read failed: {type(err).__name__}: {str(err)[:300]}",
                event="records_read_failed",
                project_id=project_id,
            )
            raise RecordsUnavailableProblem(
                f"the decision-record store ({store.kind}) cannot be read for records {span}: {type(err).__name__}"
            ) from None
        older = [r for r in got if int(r["index"]) <= last]
        indexes = [int(r["index"]) for r in older]
        if indexes != list(range(after_index + 1, last + 1)):
            have = next((i for n, i in enumerate(indexes) if i != after_index + 1 + n), None)
            missing = after_index + 1 + len(indexes) if have is None else after_index + 1 + indexes.index(have)
            raise RecordsUnavailableProblem(
                f"the decision-record store ({store.kind}) lacks record {missing} of project {project_id} "
                f"(records {span} are no longer held by the workflow): not delivered yet, or written to "
                "another store; retry later"
            )
        return older

    async def window(self, project_id: str) -> WindowsAnswer:
        """BACKBEAT now, each window class, and the project's next window-gated transition."""
        view = await self._call(project_id, self.query_timeout_s, lambda c: read_state(c, project_id, ["meta"]))
        if self.windows is None:
            raise UnavailableProblem("this API has no BACKBEAT settings to read windows from", retry_after=None)
        table = await self.windows.windows()
        now = int(table["now_ms"])
        classes = {
            name: WindowClassView(
                **c,
                opens_in_ms=None if c["opens_at_ms"] is None else max(0, int(c["opens_at_ms"]) - now),
                closes_in_ms=None if c["closes_at_ms"] is None else max(0, int(c["closes_at_ms"]) - now),
            )
            for name, c in table["classes"].items()
        }
        gates = {t.name: str(t.spec.window) for t in CHART.transitions.values() if t.spec.window is not None}
        nxt = None
        if view.phase["top"] == "EXECUTION":
            for t in CHART.transitions.values():
                s = t.spec
                if s.window is not None and s.machine == "execution" and view.phase["execution"] in t.sources:
                    c = classes.get(s.window)
                    nxt = NextWindowed(
                        transition=s.name,
                        window_class=s.window,
                        window_id=c.window_id if c else None,
                        open=bool(c and c.open),
                        opens_in_ms=c.opens_in_ms if c else None,
                        closes_in_ms=c.closes_in_ms if c else None,
                    )
                    break
        return WindowsAnswer(
            project_id=project_id,
            now_ms=now,
            source=str(table["source"]),
            window_id=table.get("window_id"),
            phase=table.get("phase"),
            classes=classes,
            gates=gates,
            next=nxt,
            error=table.get("error"),
        )

    async def receipts(self, project_id: str) -> ReceiptsAnswer:
        """Every snapshot receipt: those in the store, then those the workflow has not stored yet (unsigned)."""
        held = await self._call(project_id, self.query_timeout_s, lambda c: read_receipts(c, project_id))
        stored: list[dict[str, Any]] = []
        store = self.decision_store
        if store is not None and hasattr(store, "receipts"):  # a store written before receipts keeps none
            try:
                async with asyncio.timeout(self.query_timeout_s):
                    stored = await store.receipts(project_id)
            except Exception as err:  # the store's failure, reported as such
                jsonlog.event(
                    f"decision-record store ({store.kind}) receipts read failed: {type(err).__name__}",
                    event="records_read_failed",
                    project_id=project_id,
                )
                raise RecordsUnavailableProblem(
                    f"the decision-record store ({store.kind}) cannot be read for receipts: {type(err).__name__}"
                ) from None
        by_start = {int(r["from_index"]): r for r in held}
        by_start.update({int(r["from_index"]): r for r in stored})  # the store's copy is the signed one
        return ReceiptsAnswer(
            project_id=project_id, receipts=[Receipt.model_validate(by_start[k]) for k in sorted(by_start)]
        )

    async def shadow_report(self, project_id: str, limit: int) -> ShadowReport:
        """The project's migration ledger report (empty when nothing was ever compared for it)."""
        report = await self._call(project_id, self.query_timeout_s, lambda c: ledger_report(c, project_id, limit))
        if report is None:
            return ShadowReport(
                project_id=project_id,
                compared={},
                diverged={},
                by_kind={},
                claims=0,
                pending=0,
                dropped=0,
                divergences=[],
            )
        return report

    async def readiness(self, timeout_s: float = 5.0) -> str | None:
        """None when this API can serve (Temporal reachable, namespace ready, decision store usable), else why not."""
        try:
            async with asyncio.timeout(timeout_s):
                client = await self.source.get()
                problem = await namespace_problem(client, timeout_s)
                if problem is None and self.decision_store is not None:
                    problem = await store_problem(self.decision_store)
        except HttpProblem as err:
            return err.reason
        except TimeoutError:
            return f"Temporal did not answer within {timeout_s:g} s"
        except (RPCError, RuntimeError, OSError) as err:
            return f"Temporal cannot be reached: {type(err).__name__}"
        return problem

    async def ensure_default_project(
        self, stop: asyncio.Event, every_s: float = 2.0, max_every_s: float = 60.0
    ) -> None:
        """Create the default project, retrying (backing off) while it cannot be yet (a background task).

        Temporal unreachable or the namespace not set up: retried, each distinct reason logged once.
        """
        wait, last = every_s, ""
        while not stop.is_set():
            try:
                created = await self.create_project(self.default_project)
            except ClosedProblem as err:
                jsonlog.event(
                    f"default project not started: {err.reason}; legacy callers get its state and 409s. "
                    "Choose another default project (SWOOSH_DEFAULT_PROJECT) to start a new one",
                    level=40,
                    event="default_project_closed",
                    project_id=self.default_project,
                )
                return
            except HttpProblem as err:
                if err.reason != last:
                    level = 40 if isinstance(err, SetupProblem) else 30
                    jsonlog.event(
                        f"default project not created yet: {err.reason}",
                        level=level,
                        event="default_project_waiting",
                        project_id=self.default_project,
                    )
                    last = err.reason
                if self.keyring is None:
                    return
            else:
                jsonlog.event(
                    f"default project {'created' if created else 'already running'}",
                    event="default_project",
                    project_id=self.default_project,
                )
                return
            try:
                await asyncio.wait_for(stop.wait(), wait)
            except TimeoutError:
                pass
            wait = min(max_every_s, wait * 2)


def _check_page(project_id: str, after_index: int, records: list[dict[str, Any]]) -> None:
    """Consecutive indexes from after_index + 1, each record linked to the one before it."""
    expected = after_index + 1
    for n, rec in enumerate(records):
        if int(rec["index"]) != expected + n:
            raise RecordsUnavailableProblem(f"project {project_id}: record {expected + n} is missing from the page")
        if n and rec.get("prev_dr_hash") != records[n - 1].get("dr_hash"):
            raise RecordsUnavailableProblem(
                f"project {project_id}: record {rec['index']} does not link to record {int(rec['index']) - 1} "
                "(the decision-record store holds a forked chain; see the project's health)",
                retry_after=None,
            )


def check_scopes(principal: Principal, project_id: str, transition: object) -> None:
    """ForbiddenProblem unless `principal` may propose `transition` on the project."""
    for scope in ("propose", required_scope(transition)):
        if not principal.may(scope, project_id):
            raise ForbiddenProblem(
                f"token {principal.label} does not hold the {scope} scope on project {project_id}"
                + (f" (needed for {transition})" if scope == "admin" else "")
            )


def _str(body: dict[str, Any] | None, header_fields: dict[str, str], name: str) -> str | None:
    value = body.get(name) if body else None
    if value is None:
        value = header_fields.get(name)
    return value if isinstance(value, str) else None
