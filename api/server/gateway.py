"""The API's one gateway to Temporal: admission, timeouts, error translation, metrics and logs.

Routes call `Gateway`; it calls `workflows.lifecycle.client` (the one translation of SWOOSH operations into
Temporal calls) and never lets a Temporal exception escape untranslated. This module holds what changes
things — projects, transitions (signed by their caller, signed by the signing gateway, dry runs) — and
the process's readiness; the reads are `gateway_reads.py`, the settings and the one call `gateway_core.py`,
the Temporal client and the other sources it reads (decision store, BACKBEAT's windows) `sources.py`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from swoosh.api.models import RejectionBody
from swoosh.api.server import jsonlog
from swoosh.api.server.body import decode_body
from swoosh.api.server.gateway_reads import GatewayReads
from swoosh.api.server.problems import (
    ClosedProblem,
    ForbiddenProblem,
    HttpProblem,
    OverloadedProblem,
    SetupProblem,
    UnavailableProblem,
)
from swoosh.api.server.signing import Delegation, LegacyProposal, is_legacy_body
from swoosh.api.server.sources import store_problem
from swoosh.api.server.tokens import ANONYMOUS, Principal, required_scope
from swoosh.api.server.tracing import annotate
from swoosh.workflows.answers import Accepted, DryRunAnswer, Rejected
from swoosh.workflows.errors import ProposalError
from swoosh.workflows.ids import PROJECT_ID_RULE, is_project_id, workflow_id
from swoosh.workflows.lifecycle.client import ProjectClosed, dry_run, ensure_project, propose, read_head
from swoosh.workflows.lifecycle.namespace import namespace_problem
from swoosh.workflows.messages import HeadView
from swoosh.workflows.proposal import HEADER_FIELDS, ProposalRequest, parse_proposal

RETRY_HEADER = "X-Swoosh-Retry"


@dataclass
class TransitionOutcome:
    status: int
    answer: Accepted | RejectionBody | DryRunAnswer


class Gateway(GatewayReads):
    """The API's one way to Temporal: projects, transitions (signed, gateway-signed, dry runs), reads, readiness."""

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
            counted = await self._call(project_id, self.query_timeout_s, self.quota.check)
            await self._call(
                project_id,
                self.query_timeout_s,
                lambda c: ensure_project(
                    c, project_id, keyring, self.task_queue, self.engine_config, self.lifecycle_settings
                ),
            )
            # Visibility may not count it yet: the next creation waits until it does (quota.py).
            await self._call(project_id, self.query_timeout_s, lambda c: self.quota.settled(c, counted))
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
