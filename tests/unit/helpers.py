"""Shared test kit: a fixed fake clock, good facts, and a driver that walks the engine through the lifecycle."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from swoosh.api.client import HLCClock, ProposalFactory, Signers
from swoosh.guards import BeatFrame, Facts, GuardContext, GuardOutcome, LicenseFact, McpFact, evaluate_guards
from swoosh.workflows.answers import Accepted
from swoosh.workflows.canonical import content_hash, reject_floats
from swoosh.workflows.crypto import sign_bytes
from swoosh.workflows.document import genesis, validate_document
from swoosh.workflows.engine import Admitted, Engine, EngineConfig, EngineSnapshot
from swoosh.workflows.errors import ProposalError
from swoosh.workflows.hlc import HLC
from swoosh.workflows.proposal import ProposalRequest, signing_bytes
from swoosh.workflows.statechart import Statechart, default_statechart

NOW = 1_760_000_000_000  # 2025-10-09T08:53:20.000Z: the fixed fake clock of the unit tests
PROJECT = "demo"
WINDOW = "backbeat:W-2025-10-09-01"
TOOLS = {"git": "2.45.0", "pytest": "8.2.0"}

# One set of keys for the whole run: Ed25519 keys are cheap, but signatures stay comparable across tests.
SIGNERS = Signers.generate()
STRANGER = Ed25519PrivateKey.generate()  # a well-formed key that no keyring lists


def h(label: object) -> str:
    """A well-formed content hash for test inputs."""
    return content_hash(label)


def good_facts(
    now_ms: int = NOW,
    *,
    window_class: str | None = None,
    window_id: str = WINDOW,
    license_status: str = "valid",
    **overrides: Any,
) -> Facts:
    """Facts under which every guard passes for a well-formed proposal."""
    fields: dict[str, Any] = {
        "now_ms": now_ms,
        "license": LicenseFact(status=license_status, license_id="L-1", fetched_at_ms=now_ms, verified=True),  # type: ignore[arg-type]
        "mcp": McpFact(reachable=True, tools=dict(TOOLS), fetched_at_ms=now_ms),
        "beat": BeatFrame(
            window_id=window_id,
            phase=window_class or "plan",  # type: ignore[arg-type]
            beat_index=1,
            tempo_bpm=120,
            deadline_at_ms=now_ms + 10_000,
            received_at_ms=now_ms,
        ),
    }
    fields.update(overrides)
    return Facts(**fields)


def resign(key: Ed25519PrivateKey, body: dict[str, Any]) -> dict[str, Any]:
    """Re-sign a body after a test changed it, so only the intended defect remains."""
    body = {k: v for k, v in body.items() if k != "signature"}
    body["signature"] = sign_bytes(key, signing_bytes(body))
    return body


class Driver:
    """One project's engine, driven the way the workflow drives it: admit, evaluate guards, apply."""

    def __init__(
        self,
        *,
        signers: Signers = SIGNERS,
        project_id: str = PROJECT,
        config: EngineConfig | None = None,
        now_ms: int = NOW,
        chart: Statechart | None = None,
    ) -> None:
        self.chart = chart or default_statechart()
        self.signers = signers
        self.now_ms = now_ms
        self.factory = ProposalFactory(signers, project_id, clock=HLCClock(lambda: self.now_ms))
        document = genesis(self.chart, project_id, signers.keyring())
        self.engine = Engine(self.chart, EngineSnapshot(document=document, config=config or EngineConfig()))
        self.records: list[dict[str, Any]] = []
        self.bodies: list[dict[str, Any]] = []  # bodies of accepted proposals, in order

    # ------------------------------------------------------------------ building
    @property
    def doc(self) -> dict[str, Any]:
        return self.engine.document

    def key(self, name: str) -> Ed25519PrivateKey:
        return self.signers.keys[name]

    def body(self, transition: str, inputs: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        """A signed body for `transition` on the current head (inputs default to valid ones)."""
        kw.setdefault("window_id", WINDOW)
        if inputs is None:
            inputs = self.inputs_for(transition, kw["window_id"])
        return self.factory.body(transition, self.engine.head_hash, inputs, **kw)

    def inputs_for(self, transition: str, window_id: str | None = WINDOW) -> dict[str, Any]:
        """Valid inputs for each transition, given the current document."""
        doc = self.doc
        simple: dict[str, dict[str, Any]] = {
            "Boot_ConfigOk": {"config_hash": h("config")},
            "Boot_Licensed": {"license_id": "L-1"},
            "Ingestion_SourcesResolved": {"sources": ["git://example/corpus"]},
            "Ingestion_BytesOk": {"bytes_hash": h("bytes"), "byte_count": 1024},
            "Ingestion_SchemaOk": {"schema_hash": h("schema")},
            "Ingestion_CorpusBuilt": {"content_hash": h("corpus"), "version": self._next_version()},
            "Council_ProfilesLoaded": {"roles": ["architect", "reviewer"]},
            "Council_McpGreen": {"tool_pins": dict(TOOLS)},
            "Environment_CapacityOk": {"allocations": ["gpu:1"]},
            "Environment_Installed": {"assets": ["image:swoosh@1"]},
            "Environment_Green": {},
            "Execution_PlanLocked": {"plan_hash": h(("plan", doc["execution"]["cycle"]))},
            "Execution_BeatReviewGate": {"work_evidence": ["ucxl://work/1"]},
            "Execution_NextWindow": {},
            "License_Restored": {},
        }
        if transition in simple:
            return simple[transition]
        if transition in ("Council_QuorumCert",):
            return self.factory.quorum_inputs(window_id, state=doc)
        if transition == "Execution_AllReady":
            return {"region_hashes": self.factory.region_hashes(doc)}
        if transition == "Recovery_QuorumRestored":
            return {
                **self.factory.quorum_inputs(window_id, state=doc),
                "region_hashes": self.factory.region_hashes(doc),
            }
        if transition == "Execution_ApprovalsThreshold":
            return {"approvals": self.factory.approvals(doc, window_id)}
        if transition == "Council_Eject":
            return {"member": doc["council"]["members"][0], "reason": "unresponsive"}
        return {"reason": f"test: {transition}"}

    def _next_version(self) -> int:
        return max((v["version"] for v in self.doc["ingestion"]["versions"]), default=0) + 1

    # ------------------------------------------------------------------ deciding
    def context(self, admitted: Admitted) -> GuardContext:
        p = admitted.proposal
        return GuardContext(
            project_id=self.engine.project_id,
            transition=p.transition,
            signer=p.signer,
            window_id=p.window_id,
            window_class=admitted.transition.spec.window,
            evidence=tuple(p.evidence),
        )

    def facts_for(self, admitted: Admitted) -> Facts:
        spec = admitted.transition.spec
        status = "throttled" if spec.name == "License_Throttled" else "valid"
        return good_facts(
            self.now_ms,
            window_class=spec.window,
            window_id=admitted.proposal.window_id or WINDOW,
            license_status=status,
        )

    def outcomes(self, admitted: Admitted, facts: Facts | None = None) -> list[GuardOutcome]:
        facts = facts if facts is not None else self.facts_for(admitted)
        return evaluate_guards(
            admitted.transition.spec.guards, self.doc, admitted.proposal.inputs, facts, self.context(admitted)
        )

    def send(
        self, body: dict[str, Any], *, facts: Facts | None = None, header_fields: dict[str, str] | None = None
    ) -> Accepted:
        """Admit, run the guards and apply; raises ProposalError on rejection."""
        request = ProposalRequest(body=body, header_fields=header_fields or {})
        admitted = self.engine.admit(request, self.now_ms)
        if isinstance(admitted, Accepted):
            return admitted
        answer, record = self.engine.apply(admitted, self.outcomes(admitted, facts), self.now_ms)
        if record:
            self.records.append(record)
            self.bodies.append(body)
            self.factory.clock.observe(HLC.parse(answer.hlc))
        return answer

    def submit(
        self, transition: str, inputs: dict[str, Any] | None = None, *, facts: Facts | None = None, **kw: Any
    ) -> Accepted:
        return self.send(self.body(transition, inputs, **kw), facts=facts)

    def system(self, name: str, inputs: dict[str, Any] | None = None) -> Accepted:
        answer, record = self.engine.apply_system(name, inputs or {}, self.now_ms)
        self.records.append(record)
        self.factory.clock.observe(HLC.parse(answer.hlc))
        return answer

    def reject(self, body: dict[str, Any], code: str, **kw: Any) -> ProposalError:
        """Send `body`, expect rejection `code`, and check that nothing changed."""
        before_hash, before_doc = self.engine.head_hash, self.doc
        before_index, before_records = self.engine.index, len(self.records)
        try:
            self.send(body, **kw)
        except ProposalError as err:
            if err.code != code:
                raise AssertionError(f"expected {code}, got {err.code}: {err.reason}") from err
            assert self.engine.head_hash == before_hash
            assert self.doc is before_doc and content_hash(self.doc) == before_hash
            assert self.engine.index == before_index and len(self.records) == before_records
            return err
        raise AssertionError(f"expected rejection {code}, the proposal was accepted")

    # ------------------------------------------------------------------ stages
    def run(self, *transitions: str) -> list[Accepted]:
        return [self.submit(t) for t in transitions]

    def boot(self) -> Driver:
        self.run("Boot_ConfigOk", "Boot_Licensed")
        return self

    def ingest(self) -> Driver:
        self.run("Ingestion_SourcesResolved", "Ingestion_BytesOk", "Ingestion_SchemaOk", "Ingestion_CorpusBuilt")
        return self

    def elect(self) -> Driver:
        self.run("Council_ProfilesLoaded", "Council_QuorumCert", "Council_McpGreen")
        return self

    def provision(self) -> Driver:
        self.run("Environment_CapacityOk", "Environment_Installed", "Environment_Green")
        return self

    def lifecycle(self) -> Driver:
        """Boot, then every region to READY (still in PROJECT_LIFECYCLE)."""
        return self.boot().ingest().elect().provision()

    def execution(self) -> Driver:
        self.lifecycle()
        self.submit("Execution_AllReady")
        return self

    def cycle(self) -> Driver:
        self.run(
            "Execution_PlanLocked", "Execution_BeatReviewGate", "Execution_ApprovalsThreshold", "Execution_NextWindow"
        )
        return self

    def check_document(self) -> None:
        """The document validates and holds no float."""
        validate_document(self.doc)
        reject_floats(self.doc)
