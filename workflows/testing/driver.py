"""Drive a project through its lifecycle with signed proposals: for tests, benchmarks and soaks.

The driver is a well-behaved caller: it tracks the head hash from answers, re-reads the state
when it needs region hashes or the council, and opens the BACKBEAT window a transition needs
when it is given a controllable facts source.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from temporalio.client import Client

from swoosh.api.client import ProposalFactory
from swoosh.workflows.answers import Accepted, Rejected
from swoosh.workflows.canonical import content_hash
from swoosh.workflows.hlc import HLC
from swoosh.workflows.lifecycle.client import propose, read_state
from swoosh.workflows.proposal import ProposalRequest
from swoosh.workflows.statechart import default_statechart

Sender = Callable[[ProposalRequest], Awaitable[Accepted | Rejected]]
WindowOpener = Callable[[Any, str], None]  # (window class, window id)

LIFECYCLE: tuple[str, ...] = (
    "Boot_ConfigOk",
    "Boot_Licensed",
    "Ingestion_SourcesResolved",
    "Ingestion_BytesOk",
    "Ingestion_SchemaOk",
    "Ingestion_CorpusBuilt",
    "Council_ProfilesLoaded",
    "Council_QuorumCert",
    "Council_McpGreen",
    "Environment_CapacityOk",
    "Environment_Installed",
    "Environment_Green",
    "Execution_AllReady",
)
LOOP: tuple[str, ...] = (
    "Execution_PlanLocked",
    "Execution_BeatReviewGate",
    "Execution_ApprovalsThreshold",
    "Execution_NextWindow",
)


STATE_DEPENDENT = (
    "Council_QuorumCert",
    "Execution_AllReady",
    "Recovery_QuorumRestored",
    "Execution_ApprovalsThreshold",
    "Council_Eject",
    "Identity_Rotate",
)


def valid_inputs(
    f: ProposalFactory, transition: str, doc: dict[str, Any] | None, n: int, version: int, window_id: str
) -> tuple[dict[str, Any], int]:
    """Inputs that satisfy `transition`'s schema and guards in `doc`; returns them and the next index version."""
    simple: dict[str, dict[str, Any]] = {
        "Boot_ConfigOk": {},
        "Boot_Licensed": {"license_id": "LIC-DEV"},
        "Ingestion_SourcesResolved": {"sources": ["git+https://example.invalid/repo.git"]},
        "Ingestion_BytesOk": {"bytes_hash": content_hash(["bytes", n]), "byte_count": 4096},
        "Ingestion_SchemaOk": {"schema_hash": content_hash(["schema", n])},
        "Council_ProfilesLoaded": {"roles": ["architect", "developer", "reviewer"]},
        "Council_McpGreen": {"tool_pins": {"ucxl.resolve": "1.0.0"}},
        "Environment_CapacityOk": {"allocations": ["cpu:2", "mem:4Gi"]},
        "Environment_Installed": {"assets": ["image:swoosh-runner@1"]},
        "Environment_Green": {},
        "Execution_PlanLocked": {"plan_hash": content_hash(["plan", n])},
        "Execution_BeatReviewGate": {"work_evidence": [f"ucxl://agent:dev@{f.project_id}:work/{n}"]},
        "Execution_NextWindow": {},
        "License_Restored": {},
        "License_GraceExpired": {},
    }
    if transition in simple:
        return simple[transition], version
    if transition == "Ingestion_CorpusBuilt":
        return {"content_hash": content_hash(["corpus", version + 1, n]), "version": version + 1}, version + 1
    if transition in STATE_DEPENDENT and doc is None:
        raise ValueError(f"{transition} needs the current state for its inputs")
    assert doc is not None or transition not in STATE_DEPENDENT
    if transition == "Council_QuorumCert":
        return f.quorum_inputs(window_id, state=doc), version
    if transition == "Execution_AllReady":
        return {"region_hashes": f.region_hashes(doc or {})}, version
    if transition == "Recovery_QuorumRestored":
        return {**f.quorum_inputs(window_id, state=doc), "region_hashes": f.region_hashes(doc or {})}, version
    if transition == "Execution_ApprovalsThreshold":
        return {"approvals": f.approvals(doc or {}, window_id)}, version
    if transition == "Council_Eject":
        members = (doc or {})["council"]["members"]
        return {"member": members[0] if members else f.council_members()[0], "reason": "unreachable"}, version
    if transition == "Identity_Rotate":
        return f.rotation_inputs(doc or {}, add=[_role_change(f, doc or {})], reason="roles re-planned"), version
    return {"reason": f"{transition} requested by the test driver"}, version


def _role_change(f: ProposalFactory, doc: dict[str, Any]) -> dict[str, Any]:
    """A rotation that changes something and keeps every operator: `tooling` given to, or taken from, a non-operator."""
    proposer = f.signers.id(f.signer_for("Identity_Rotate"))
    for identity in doc["boot"]["identities"]:
        roles = set(identity["roles"])
        if identity["id"] != proposer and not roles & {"*", "operator"}:
            changed = roles - {"tooling"} if "tooling" in roles and len(roles) > 1 else roles | {"tooling"}
            return {"id": identity["id"], "roles": sorted(changed)}
    raise ValueError("no identity whose roles a test rotation could change")


class TransitionRejected(AssertionError):
    def __init__(self, transition: str, rejected: Rejected) -> None:
        super().__init__(f"{transition} rejected: {rejected.error}: {rejected.reason}")
        self.rejected = rejected


@dataclass
class LifecycleDriver:
    factory: ProposalFactory
    send: Sender
    read: Callable[[], Awaitable[dict[str, Any]]]
    open_window: WindowOpener | None = None
    window_id: str = "backbeat:W-1"
    head: str | None = None
    answers: list[Accepted] = field(default_factory=list)
    version: int = 0

    @classmethod
    def for_client(
        cls, client: Client, factory: ProposalFactory, open_window: WindowOpener | None = None
    ) -> LifecycleDriver:
        project = factory.project_id

        async def send(req: ProposalRequest) -> Accepted | Rejected:
            return await propose(client, project, req)

        async def read() -> dict[str, Any]:
            view = await read_state(client, project)
            return dict(view.projection)

        return cls(factory=factory, send=send, read=read, open_window=open_window)

    async def state(self) -> dict[str, Any]:
        doc = await self.read()
        self.head = content_hash(doc)
        if doc["hlc_last"]:
            self.factory.clock.observe(HLC.parse(doc["hlc_last"]))  # HLC receive rule
        return doc

    async def inputs_for(self, transition: str) -> dict[str, Any]:
        """Valid inputs for `transition`, reading the state only when the inputs depend on it."""
        doc = await self.state() if transition in STATE_DEPENDENT else None
        inputs, self.version = valid_inputs(
            self.factory, transition, doc, len(self.answers), self.version, self.window_id
        )
        return inputs

    async def step(self, transition: str, inputs: dict[str, Any] | None = None, **kw: Any) -> Accepted:
        """Propose `transition` with valid inputs; raise TransitionRejected if it is not accepted."""
        answer = await self.try_step(transition, inputs, **kw)
        if isinstance(answer, Rejected):
            raise TransitionRejected(transition, answer)
        return answer

    async def try_step(self, transition: str, inputs: dict[str, Any] | None = None, **kw: Any) -> Accepted | Rejected:
        if inputs is None:
            inputs = await self.inputs_for(transition)
        if self.head is None:
            await self.state()
        spec = default_statechart().transitions[transition].spec
        if spec.window and self.open_window is not None:
            self.open_window(spec.window, self.window_id)
        assert self.head is not None
        body = self.factory.body(transition, self.head, inputs, window_id=self.window_id, **kw)
        answer = await self.send(ProposalRequest(body=body))
        if isinstance(answer, Accepted):
            self.head = answer.state_post_hash
            if not answer.duplicate:
                self.answers.append(answer)
        return answer

    async def lifecycle(self) -> None:
        for t in LIFECYCLE:
            await self.step(t)

    async def loop(self, times: int = 1) -> None:
        for _ in range(times):
            for t in LOOP:
                await self.step(t)
