"""Stateful property test: the engine against a small independent model of the contract and the statechart.

The model below is written from docs/contract.md's catalogue and the statechart's documented semantics; it never
calls the reducer. Hypothesis throws valid and invalid proposals (and the system grace timer) at both, compares
the answer and the resulting state after every step, and checks the contract's invariants.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from swoosh.api.client import HLCClock, Signers
from swoosh.guards import Facts, PolicyFact
from swoosh.guards.council import members_hash, sign_approval, sign_vote
from swoosh.guards.readiness import region_hashes
from swoosh.workflows.canonical import content_hash, reject_floats
from swoosh.workflows.crypto import signer_id
from swoosh.workflows.document import validate_document
from swoosh.workflows.errors import ProposalError
from swoosh.workflows.hlc import HLC
from swoosh.workflows.proposal import build_body
from tests.unit.helpers import NOW, PROJECT, STRANGER, WINDOW, Driver, good_facts, h, resign

# ---------------------------------------------------------------------- the model's world

SIGNER_ROLES: dict[str, tuple[str, ...]] = {
    "operator": ("operator", "boot", "policy"),
    "ingestion": ("ingestion",),
    "environment": ("environment",),
    "execution": ("execution",),
    "council-1": ("council", "tooling"),
    "council-2": ("council",),
    "council-3": ("council",),
}
COUNCIL = ("council-1", "council-2", "council-3")
SIGNERS = Signers.generate(SIGNER_ROLES)
ID = {name: SIGNERS.id(name) for name in SIGNER_ROLES}
MAX_OFFSET_MS = 60_000  # EngineConfig's defaults
GRACE_MS = 900_000

LIVE = ("UNINITIALIZED", "LICENSE_CHECK", "PROJECT_LIFECYCLE", "EXECUTION", "RECOVERY")
LIFECYCLE = ("PROJECT_LIFECYCLE", "RECOVERY")
ACTIVE_IN = {
    "ingestion": LIFECYCLE,
    "council": LIFECYCLE,
    "environment": LIFECYCLE,
    "execution": ("EXECUTION",),
    "license": ("PROJECT_LIFECYCLE", "EXECUTION", "RECOVERY"),
}
REGIONS = ("ingestion", "council", "environment")
RETURN = "<return>"


@dataclass(frozen=True)
class Spec:
    """One catalogue row as the model understands it."""

    machine: str
    sources: tuple[str, ...]
    target: str
    epoch: str
    roles: tuple[str, ...]
    guards: tuple[str, ...] = ()
    window: str | None = None


CATALOGUE: dict[str, Spec] = {
    "Boot_ConfigOk": Spec("top", ("UNINITIALIZED",), "LICENSE_CHECK", "boot", ("operator", "boot")),
    "Boot_Licensed": Spec("top", ("LICENSE_CHECK",), "PROJECT_LIFECYCLE", "boot", ("operator", "boot"), ("license",)),
    "Boot_LicenseFailed": Spec("top", ("LICENSE_CHECK",), "TERMINATED", "boot", ("operator", "boot")),
    "Ingestion_SourcesResolved": Spec(
        "ingestion", ("DISCOVER", "READY"), "FETCH", "ingestion", ("ingestion",), ("policy",)
    ),
    "Ingestion_BytesOk": Spec("ingestion", ("FETCH",), "VALIDATE", "ingestion", ("ingestion",)),
    "Ingestion_SchemaOk": Spec("ingestion", ("VALIDATE",), "INDEX", "ingestion", ("ingestion",), ("policy",)),
    "Ingestion_PolicyViolation": Spec("ingestion", ("VALIDATE",), "VALIDATE", "ingestion", ("ingestion", "policy")),
    "Ingestion_CorpusBuilt": Spec("ingestion", ("INDEX",), "READY", "ingestion", ("ingestion",)),
    "Ingestion_RollbackIndex": Spec(
        "ingestion", ("FETCH", "VALIDATE", "INDEX", "READY"), "READY", "ingestion", ("ingestion", "operator")
    ),
    "Council_ProfilesLoaded": Spec("council", ("PLAN_ROLES",), "ELECT", "council", ("council",)),
    "Council_QuorumCert": Spec("council", ("ELECT",), "TOOLING_SYNC", "council", ("council",), ("quorum",)),
    "Council_McpGreen": Spec("council", ("TOOLING_SYNC",), "READY", "council", ("council", "tooling"), ("mcp",)),
    "Council_Eject": Spec("council", ("ELECT", "TOOLING_SYNC", "READY"), "ELECT", "council", ("council", "operator")),
    "Environment_CapacityOk": Spec("environment", ("ALLOCATE",), "PROVISION", "environment", ("environment",)),
    "Environment_Installed": Spec("environment", ("PROVISION",), "HEALTHCHECK", "environment", ("environment",)),
    "Environment_Green": Spec("environment", ("HEALTHCHECK", "DEGRADED"), "READY", "environment", ("environment",)),
    "Environment_Amber": Spec("environment", ("HEALTHCHECK",), "DEGRADED", "environment", ("environment",)),
    "Environment_Deprovision": Spec(
        "environment",
        ("PROVISION", "HEALTHCHECK", "READY", "DEGRADED"),
        "ALLOCATE",
        "environment",
        ("environment", "operator"),
    ),
    "Execution_AllReady": Spec(
        "top", ("PROJECT_LIFECYCLE",), "EXECUTION", "execution", ("operator", "execution"), ("readiness",)
    ),
    "Execution_PlanLocked": Spec("execution", ("PLAN",), "WORK", "execution", ("execution",), ("window",), "work"),
    "Execution_BeatReviewGate": Spec(
        "execution", ("WORK",), "REVIEW", "execution", ("execution",), ("window",), "review"
    ),
    "Execution_ApprovalsThreshold": Spec(
        "execution", ("REVIEW",), "REVERB", "execution", ("execution", "council"), ("window", "approvals"), "reverb"
    ),
    "Execution_NextWindow": Spec("execution", ("REVERB",), "PLAN", "execution", ("execution",), ("window",), "plan"),
    "Execution_QuorumLost": Spec("top", ("EXECUTION",), "RECOVERY", "execution", ("execution", "council", "operator")),
    "Recovery_QuorumRestored": Spec(
        "top", ("RECOVERY",), "EXECUTION", "execution", ("council", "operator"), ("quorum", "readiness")
    ),
    "Control_Pause": Spec("top", LIVE, "PAUSED", "control", ("operator",)),
    "Control_Resume": Spec("top", ("PAUSED",), RETURN, "control", ("operator",)),
    "Policy_Quarantine": Spec("top", (*LIVE, "PAUSED"), "QUARANTINED", "policy", ("policy", "operator")),
    "Policy_Release": Spec("top", ("QUARANTINED",), RETURN, "policy", ("operator",)),
    "Policy_ConfirmedBlock": Spec("top", ("QUARANTINED",), "TERMINATED", "policy", ("operator",)),
    "License_Throttled": Spec("license", ("OK",), "DEGRADED_GRACE", "license", ("operator", "boot"), ("license",)),
    "License_Restored": Spec(
        "license", ("DEGRADED_GRACE", "DEGRADED_EXPIRED"), "OK", "license", ("operator", "boot"), ("license",)
    ),
}
GRACE_EXPIRED = Spec("license", ("DEGRADED_GRACE",), "DEGRADED_EXPIRED", "license", ("system",))
NAMES = sorted(CATALOGUE)
ESCAPES = ("Policy_Release", "Policy_ConfirmedBlock")
TERMINAL = ("Boot_LicenseFailed", "Policy_ConfirmedBlock")  # `progress` avoids these; `propose` still sends them
FORWARD = (  # the lifecycle's main road, which `advance` prefers so that runs get deep into EXECUTION
    "Boot_ConfigOk", "Boot_Licensed", "Ingestion_SourcesResolved", "Ingestion_BytesOk", "Ingestion_SchemaOk",
    "Ingestion_CorpusBuilt", "Council_ProfilesLoaded", "Council_QuorumCert", "Council_McpGreen",
    "Environment_CapacityOk", "Environment_Installed", "Environment_Green", "Execution_AllReady",
    "Execution_PlanLocked", "Execution_BeatReviewGate", "Execution_ApprovalsThreshold", "Execution_NextWindow",
    "Recovery_QuorumRestored", "Control_Resume", "Policy_Release", "Environment_Amber", "Ingestion_PolicyViolation",
)  # fmt: skip

FAULTS = (
    "none",
    "envelope",
    "unknown",
    "system",
    "bad_signature",
    "stranger",
    "wrong_role",
    "bad_input",
    "inputs_hash",
    "stale",
    "hlc_past",
    "hlc_equal",
    "hlc_ahead",
    "guards",
)


def signer_for(spec: Spec, *, wrong: bool = False) -> str:
    for name, roles in SIGNER_ROLES.items():
        if bool(set(roles) & set(spec.roles)) != wrong:
            return name
    raise AssertionError("no such signer")


@dataclass
class Attempt:
    """What the test is about to send, as the model needs to know it."""

    name: str
    fault: str
    signer: str | None  # None = a key no keyring lists
    inputs: dict[str, Any]
    idem_key: str
    hlc: HLC

    @property
    def signer_id(self) -> str:
        return ID[self.signer] if self.signer else signer_id(STRANGER.public_key())


@dataclass
class Model:
    """The project as the contract describes it, reduced to what decides acceptance."""

    top: str = "UNINITIALIZED"
    phase: dict[str, str | None] = field(
        default_factory=lambda: {
            "boot": "UNINITIALIZED",
            "ingestion": None,
            "council": None,
            "environment": None,
            "execution": "IDLE",
            "license": "OK",
        }
    )
    paused_from: str | None = None
    quarantined_from: str | None = None
    quarantines: int = 0
    epoch: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("boot", "ingestion", "council", "environment", "execution", "control", "policy", "license"), 0
        )
    )
    index: int = 0
    last: tuple[int, int, str, str] | None = None
    applied: dict[str, tuple[str, str, str, int, str]] = field(default_factory=dict)
    versions: list[int] = field(default_factory=list)
    pinned: int | None = None
    members: tuple[str, ...] = ()
    ejected: set[str] = field(default_factory=set)  # ineligible for the council until roles are planned again
    cert: bool = False
    cycle: int = 0
    grace_deadline_ms: int | None = None
    external_comms: bool = True

    # -------------------------------------------------------------- deciding
    def source_ok(self, spec: Spec) -> bool:
        if spec.machine == "top":
            if self.top not in spec.sources:
                return False
            return spec.target != RETURN or self.return_target(spec) is not None
        return self.top in ACTIVE_IN[spec.machine] and self.phase[spec.machine] in spec.sources

    def return_target(self, spec: Spec) -> str | None:
        return self.paused_from if spec.epoch == "control" else self.quarantined_from

    def guard_fails(self, name: str, spec: Spec, injected: bool, inputs: dict[str, Any]) -> str | None:
        for guard in spec.guards:
            if injected:
                return guard
            if guard == "quorum":
                named = set(inputs["members"]) | {v["voter"] for v in inputs["votes"]}
                if named & self.ejected:
                    return guard
            if guard == "readiness" and any(self.phase[r] != "READY" for r in REGIONS):
                return guard
            if guard == "approvals" and not self.members:
                return guard
        return None

    def effect_ok(self, name: str, inputs: dict[str, Any]) -> bool:
        if name == "Ingestion_CorpusBuilt":
            return bool(inputs["version"] > max(self.versions, default=0))
        if name == "Ingestion_RollbackIndex":
            if self.pinned is None:
                return False
            return self.phase["ingestion"] != "READY" or any(v < self.pinned for v in self.versions)
        if name == "Council_Eject":
            return inputs["member"] in self.members
        return True

    def predict(self, a: Attempt, now_ms: int) -> tuple[str, str | None]:
        """('accept' | 'duplicate' | rejection code, failing guard) in the engine's admission order."""
        if a.fault == "envelope":
            return ("schema", None)
        if a.name not in CATALOGUE:
            return ("unauthorized_signer", None) if a.name == "License_GraceExpired" else ("unknown_transition", None)
        spec = CATALOGUE[a.name]
        if a.fault == "bad_signature":
            return ("bad_signature", None)
        if a.signer is None or not set(SIGNER_ROLES[a.signer]) & set(spec.roles):
            return ("unauthorized_signer", None)
        if a.fault == "bad_input":
            return ("schema", None)
        if a.fault == "inputs_hash":
            return ("inputs_hash_mismatch", None)
        if a.idem_key in self.applied:
            signer, name, inputs_hash, _, _ = self.applied[a.idem_key]
            same = (signer, name, inputs_hash) == (a.signer_id, a.name, content_hash(a.inputs))
            return ("duplicate", None) if same else ("invalid_transition", None)
        if self.top == "TERMINATED":
            return ("terminated", None)
        if self.top == "QUARANTINED" and a.name not in ESCAPES:
            return ("quarantined", None)
        if not self.source_ok(spec):
            return ("invalid_transition", None)
        if a.fault == "stale":
            return ("stale_state_hash", None)
        if self.last is not None and (a.hlc.wall_ms, a.hlc.counter, a.signer_id, a.idem_key) <= self.last:
            return ("hlc_regression", None)
        if a.hlc.wall_ms - now_ms > MAX_OFFSET_MS:
            return ("hlc_too_far_ahead", None)
        failing = self.guard_fails(a.name, spec, a.fault == "guards", a.inputs)
        if failing is not None:
            return ("guard_failed", failing)
        if not self.effect_ok(a.name, a.inputs):
            return ("invalid_transition", None)
        return ("accept", None)

    # -------------------------------------------------------------- applying
    def apply(
        self, name: str, spec: Spec, inputs: dict[str, Any], key: tuple[int, int, str, str], post_hash: str
    ) -> None:
        pre_top, pre_ingestion = self.top, self.phase["ingestion"]
        if spec.machine == "top":
            self.top = self.return_target(spec) if spec.target == RETURN else spec.target  # type: ignore[assignment]
        else:
            self.phase[spec.machine] = spec.target
        if name == "Boot_ConfigOk":
            self.phase["boot"] = "LICENSE_CHECK"
        elif name == "Boot_Licensed":
            self.phase.update(boot="LICENSED", ingestion="DISCOVER", council="PLAN_ROLES", environment="ALLOCATE")
        elif name == "Boot_LicenseFailed":
            self.phase["boot"] = "FAILED"
        elif name in ("Execution_AllReady", "Recovery_QuorumRestored"):
            self.phase["execution"] = "PLAN"
        elif name == "Execution_QuorumLost":
            self.phase["execution"] = "IDLE"
            self.cert = False
        elif name == "Control_Pause":
            self.paused_from = pre_top
        elif name == "Control_Resume":
            self.paused_from = None
        elif name in ("Policy_Quarantine", "Ingestion_PolicyViolation"):
            self.top, self.quarantined_from = "QUARANTINED", pre_top
            self.quarantines += 1
        elif name == "Policy_Release":
            self.quarantined_from = None
        elif name == "Ingestion_CorpusBuilt":
            self.versions.append(inputs["version"])
            self.pinned = inputs["version"]
        elif name == "Ingestion_RollbackIndex" and self.pinned is not None and pre_ingestion == "READY":
            self.pinned = max(v for v in self.versions if v < self.pinned)  # mid re-ingestion keeps the pinned one
        elif name == "Council_Eject":
            self.members = tuple(m for m in self.members if m != inputs["member"])
            self.ejected.add(inputs["member"])
            self.cert = False
        elif name == "Council_ProfilesLoaded":
            self.ejected.clear()
        elif name == "Execution_NextWindow":
            self.cycle += 1
        elif name == "License_Throttled":
            self.grace_deadline_ms = key[0] + GRACE_MS
        elif name == "License_Restored":
            self.grace_deadline_ms, self.external_comms = None, True
        elif name == "License_GraceExpired":
            self.external_comms = False
        if name in ("Council_QuorumCert", "Recovery_QuorumRestored"):
            self.members = tuple(sorted(set(inputs["members"])))
            self.cert = True
        self.epoch[spec.epoch] += 1
        self.index += 1
        self.last = key
        self.applied[key[3]] = (key[2], name, content_hash(inputs), self.index, post_hash)


# ---------------------------------------------------------------------- the machine


@dataclass
class StepInfo:
    name: str
    outcome: str
    pre_doc: dict[str, Any]
    pre_hash: str
    pre_records: int


class ReducerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.driver = Driver(signers=SIGNERS, project_id=PROJECT)
        self.now = NOW
        self.clock = HLCClock(lambda: self.now)
        self.model = Model()
        self.seq = itertools.count(1)
        self.keys: list[tuple[int, int, str, str]] = []
        self.accepted: list[tuple[dict[str, Any], int, str]] = []  # body, index, post hash
        self.step: StepInfo | None = None

    @property
    def doc(self) -> dict[str, Any]:
        return self.driver.doc

    # -------------------------------------------------------------- building proposals
    def inputs_for(self, name: str, fault: str, data: st.DataObject | None) -> dict[str, Any]:
        m = self.model
        injected = fault == "guards"
        if name in ("Council_QuorumCert", "Recovery_QuorumRestored"):
            chosen = list(COUNCIL) if data is None else data.draw(st.sets(st.sampled_from(COUNCIL), min_size=1))
            members = sorted(ID[n] for n in chosen)
            eligible = [n for n in COUNCIL if ID[n] not in m.ejected] or COUNCIL[:1]  # (an ejected voter fails)
            election = m.epoch["council"] + m.epoch["execution"]
            # Injected: one vote signed for another project, never a valid certificate.
            project = "another-project" if injected else PROJECT
            voters = eligible[:1] if injected else eligible
            votes = [sign_vote(SIGNERS.keys[n], project, members_hash(members), WINDOW, election) for n in voters]
            inputs: dict[str, Any] = {"members": members, "members_hash": members_hash(members), "votes": votes}
            if name == "Recovery_QuorumRestored":
                inputs["region_hashes"] = self.region_hashes(injected)
            return inputs
        if name == "Execution_AllReady":
            return {"region_hashes": self.region_hashes(injected)}
        if name == "Execution_ApprovalsThreshold":
            names = [n for n in COUNCIL if ID[n] in m.members] or ["council-1"]
            window = "backbeat:W-stale" if injected else WINDOW
            council_hash = content_hash(list(m.members))
            return {"approvals": [sign_approval(SIGNERS.keys[n], PROJECT, council_hash, window) for n in names]}
        if name == "Ingestion_CorpusBuilt":
            version = max(m.versions, default=0) + 1 if data is None else data.draw(st.integers(1, 6))
            return {"content_hash": h(("corpus", version)), "version": version}
        if name == "Council_Eject":
            pick = "council-1" if data is None else data.draw(st.sampled_from([*COUNCIL, "operator"]))
            return {"member": ID[pick], "reason": "ejected by the test"}
        fixed: dict[str, dict[str, Any]] = {
            "Boot_ConfigOk": {"config_hash": h("config")},
            "Boot_Licensed": {"license_id": "L-1"},
            "Ingestion_SourcesResolved": {"sources": ["git://example/corpus"]},
            "Ingestion_BytesOk": {"bytes_hash": h("bytes"), "byte_count": 10},
            "Ingestion_SchemaOk": {"schema_hash": h("schema")},
            "Council_ProfilesLoaded": {"roles": ["architect"]},
            "Council_McpGreen": {"tool_pins": {"git": "2.45.0"}},
            "Environment_CapacityOk": {"allocations": ["gpu:1"]},
            "Environment_Installed": {"assets": ["image:1"]},
            "Environment_Green": {},
            "Execution_PlanLocked": {"plan_hash": h(("plan", m.cycle))},
            "Execution_BeatReviewGate": {},
            "Execution_NextWindow": {},
            "License_Restored": {},
            "Bogus_Transition": {},
            "License_GraceExpired": {},
        }
        return fixed.get(name, {"reason": f"model test: {name}"})

    def region_hashes(self, wrong: bool) -> dict[str, str]:
        return {r: h(("wrong", r)) for r in REGIONS} if wrong else region_hashes(self.doc)

    def facts(self, name: str, fault: str) -> Facts:
        if fault == "guards":
            return Facts(now_ms=self.now, policy=PolicyFact(external_breaches=("injected breach",)))
        spec = CATALOGUE.get(name)
        status = "throttled" if name == "License_Throttled" else "valid"
        return good_facts(self.now, window_class=spec.window if spec else None, license_status=status)

    def hlc_for(self, fault: str, data: st.DataObject | None) -> tuple[HLC, str]:
        idem = f"goal:{next(self.seq)}"
        last = self.model.last
        if fault == "hlc_past":
            return HLC(max(0, (last[0] if last else self.now) - 5), 0), idem
        if fault == "hlc_equal" and last is not None:
            prefix = "a" if data is None else data.draw(st.sampled_from(["a", "z"]))
            return HLC(last[0], last[1]), f"{prefix}:{next(self.seq)}"
        if fault == "hlc_ahead":
            extra = 1 if data is None else data.draw(st.integers(1, 10_000))
            return HLC(self.now + MAX_OFFSET_MS + extra, 0), idem
        return self.clock.now(), idem

    def attempt(self, name: str, fault: str, data: st.DataObject | None, idem_key: str | None = None) -> None:
        if fault == "unknown":
            name = "Bogus_Transition"
        elif fault == "system":
            name = "License_GraceExpired"
        spec = CATALOGUE.get(name, GRACE_EXPIRED)
        signer: str | None = signer_for(spec) if name in CATALOGUE else "operator"
        if fault == "stranger":
            signer = None
        elif fault == "wrong_role":
            signer = signer_for(spec, wrong=True)
        inputs = self.inputs_for(name, fault, data)
        if fault == "bad_input":
            inputs = {**inputs, "bogus": "x"}
        hlc, idem = self.hlc_for(fault, data)
        a = Attempt(name, fault, signer, inputs, idem_key or idem, hlc)
        key: Ed25519PrivateKey = SIGNERS.keys[signer] if signer else STRANGER
        body = build_body(
            key,
            transition=name,
            current_state_hash=self.driver.engine.head_hash,
            idem_key=a.idem_key,
            hlc=hlc.format(),
            inputs=inputs,
            project_id=PROJECT,
            window_id=WINDOW,
        )
        if fault == "envelope":
            body["priority"] = "high"
        elif fault == "bad_signature":
            body["evidence"] = ["ucxl://added-after-signing"]
        elif fault == "inputs_hash":
            body = resign(key, {**body, "inputs_hash": h("not the inputs")})
        elif fault == "stale":
            body = resign(key, {**body, "current_state_hash": h(("stale", self.model.index))})
        self.send(a, body)

    # -------------------------------------------------------------- sending and comparing
    def begin(self, name: str) -> StepInfo:
        return StepInfo(name, "?", self.doc, self.driver.engine.head_hash, len(self.driver.records))

    def send(self, a: Attempt, body: dict[str, Any]) -> None:
        expected, guard = self.model.predict(a, self.now)
        info = self.begin(a.name)
        try:
            answer = self.driver.send(body, facts=self.facts(a.name, a.fault))
        except ProposalError as err:
            assert (err.code, err.failing_guard) == (expected, guard), (a.name, a.fault, err.code, err.reason)
            info.outcome = "rejected"
        else:
            if answer.duplicate:
                assert expected == "duplicate", (a.name, a.fault, expected)
                _, _, _, index, post = self.model.applied[a.idem_key]
                assert (answer.index, answer.state_post_hash) == (index, post)
                info.outcome = "duplicate"
            else:
                assert expected == "accept", (a.name, a.fault, expected)
                key = (a.hlc.wall_ms, a.hlc.counter, a.signer_id, a.idem_key)
                self.model.apply(a.name, CATALOGUE[a.name], a.inputs, key, answer.state_post_hash)
                assert answer.index == self.model.index
                self.keys.append(key)
                self.accepted.append((body, answer.index, answer.state_post_hash))
                self.clock.observe(HLC.parse(answer.hlc))
                info.outcome = "accepted"
        self.step = info

    # -------------------------------------------------------------- rules
    @initialize(stage=st.sampled_from(["genesis", "lifecycle", "execution"]))
    def start(self, stage: str) -> None:
        path: list[str] = []
        if stage in ("lifecycle", "execution"):
            path += ["Boot_ConfigOk", "Boot_Licensed", "Ingestion_SourcesResolved", "Ingestion_BytesOk"]
            path += ["Ingestion_SchemaOk", "Ingestion_CorpusBuilt", "Council_ProfilesLoaded", "Council_QuorumCert"]
            path += ["Council_McpGreen", "Environment_CapacityOk", "Environment_Installed", "Environment_Green"]
        if stage == "execution":
            path += ["Execution_AllReady"]
        for name in path:
            self.attempt(name, "none", None)
            assert self.step is not None and self.step.outcome == "accepted", name
            self.check_all()

    @rule(data=st.data(), name=st.sampled_from(NAMES), fault=st.sampled_from(FAULTS))
    def propose(self, data: st.DataObject, name: str, fault: str) -> None:
        self.attempt(name, fault, data)

    def enabled(self, among: tuple[str, ...] | list[str]) -> list[str]:
        m = self.model
        if m.top == "TERMINATED":
            return []
        names = [n for n in among if m.source_ok(CATALOGUE[n])]
        return [n for n in names if n in ESCAPES] if m.top == "QUARANTINED" else names

    @rule(data=st.data())
    def progress(self, data: st.DataObject) -> None:
        """A valid proposal of any transition the model thinks may fire now (compensations, pauses, …)."""
        enabled = self.enabled([n for n in NAMES if n not in TERMINAL])
        if enabled:
            self.attempt(data.draw(st.sampled_from(enabled)), "none", data)

    @rule(data=st.data())
    def finish(self, data: st.DataObject) -> None:
        """A valid Boot_LicenseFailed or Policy_ConfirmedBlock, when one may fire: the way into TERMINATED."""
        enabled = self.enabled(TERMINAL)
        if enabled:
            self.attempt(data.draw(st.sampled_from(enabled)), "none", data)

    @rule(data=st.data())
    def advance(self, data: st.DataObject) -> None:
        """A valid proposal along the main road, so runs reach the EXECUTION loop and RECOVERY."""
        enabled = self.enabled(FORWARD)
        if enabled:
            self.attempt(data.draw(st.sampled_from(enabled)), "none", data)

    @rule(data=st.data())
    def resubmit(self, data: st.DataObject) -> None:
        """Exactly-once: an applied body sent again gets its original answer and changes nothing."""
        if not self.accepted:
            return
        body, index, post = data.draw(st.sampled_from(self.accepted))
        info = self.begin(body["transition"])
        answer = self.driver.send(body)
        assert answer.duplicate and (answer.index, answer.state_post_hash) == (index, post)
        info.outcome = "duplicate"
        self.step = info

    @rule(data=st.data(), name=st.sampled_from(NAMES))
    def reuse_idem_key(self, data: st.DataObject, name: str) -> None:
        """An applied idem_key on a different proposal is refused (invalid_transition), never applied."""
        if not self.accepted:
            return
        body, _, _ = data.draw(st.sampled_from(self.accepted))
        if body["transition"] == name:
            return
        self.attempt(name, "none", data, idem_key=body["idem_key"])

    @rule()
    def grace_timer(self) -> None:
        """SWOOSH's own License_GraceExpired, decided by the workflow's timer."""
        m = self.model
        info = self.begin("License_GraceExpired")
        try:
            answer = self.driver.system("License_GraceExpired")
        except ProposalError as err:
            expected = "terminated" if m.top == "TERMINATED" else "invalid_transition"
            assert err.code == expected
            assert not (m.top in ACTIVE_IN["license"] and m.phase["license"] == "DEGRADED_GRACE")
            info.outcome = "rejected"
        else:
            assert m.top in ACTIVE_IN["license"] and m.phase["license"] == "DEGRADED_GRACE"
            hlc = HLC.parse(answer.hlc)
            key = (hlc.wall_ms, hlc.counter, "swoosh:system", answer.idem_key)
            m.apply("License_GraceExpired", GRACE_EXPIRED, {}, key, answer.state_post_hash)
            self.keys.append(key)
            self.clock.observe(hlc)
            info.outcome = "accepted"
        self.step = info

    @rule(ms=st.integers(0, 3))
    def tick(self, ms: int) -> None:
        self.now += ms
        self.driver.now_ms = self.now
        self.step = None

    # -------------------------------------------------------------- invariants
    def check_all(self) -> None:
        self.model_agrees()
        self.hlc_strictly_increasing()
        self.epochs_advance_once()
        self.execution_entered_only_when_ready()
        self.quorum_cert_matches_elected_set()
        self.quarantine_left_only_by_release_or_block()
        self.rejection_changes_nothing()
        self.document_is_valid()

    @invariant()
    def model_agrees(self) -> None:
        m, doc = self.model, self.doc
        assert doc["control"]["top"] == m.top
        actual = {
            "boot": doc["boot"]["phase"],
            "ingestion": doc["ingestion"]["phase"],
            "council": doc["council"]["phase"],
            "environment": doc["environment"]["phase"],
            "execution": doc["execution"]["phase"],
            "license": doc["control"]["license"]["phase"],
        }
        assert actual == m.phase
        assert doc["control"]["paused_from"] == m.paused_from
        assert doc["policy"]["quarantined_from"] == m.quarantined_from
        assert doc["policy"]["quarantine_count"] == m.quarantines
        assert doc["epoch"] == m.epoch
        assert doc["meta"]["index"] == m.index == self.driver.engine.index
        last = None if doc["hlc_last"] is None else HLC.parse(doc["hlc_last"])
        expected_last = None if m.last is None else HLC(m.last[0], m.last[1])
        assert last == expected_last
        if m.last is not None:
            assert (doc["meta"]["last_signer"], doc["meta"]["last_idem_key"]) == m.last[2:]
        assert [v["version"] for v in doc["ingestion"]["versions"]] == m.versions
        pinned = doc["ingestion"]["pinned"]
        assert (pinned["version"] if pinned else None) == m.pinned
        assert tuple(doc["council"]["members"]) == m.members
        assert (doc["council"]["quorum_cert"] is not None) == m.cert
        assert doc["execution"]["cycle"] == m.cycle
        assert doc["control"]["license"]["grace_deadline_ms"] == m.grace_deadline_ms
        assert doc["control"]["license"]["external_comms"] is m.external_comms

    @invariant()
    def hlc_strictly_increasing(self) -> None:
        assert all(a < b for a, b in itertools.pairwise(self.keys))

    @invariant()
    def epochs_advance_once(self) -> None:
        s = self.step
        if s is None:
            return
        before, after = s.pre_doc["epoch"], self.doc["epoch"]
        if s.outcome != "accepted":
            assert after == before
            return
        region = (CATALOGUE.get(s.name) or GRACE_EXPIRED).epoch
        assert after == {**before, region: before[region] + 1}

    @invariant()
    def execution_entered_only_when_ready(self) -> None:
        s = self.step
        if s is None or s.outcome != "accepted":
            return
        pre_top, post_top = s.pre_doc["control"]["top"], self.doc["control"]["top"]
        if post_top != "EXECUTION" or pre_top == "EXECUTION":
            return
        if s.name in ("Execution_AllReady", "Recovery_QuorumRestored"):
            assert all(s.pre_doc[r]["phase"] == "READY" for r in REGIONS)
            assert self.doc["execution"]["readiness"] == region_hashes(s.pre_doc)
        else:  # a return to where the project was, which was EXECUTION
            assert s.name in ("Control_Resume", "Policy_Release")
            came_from = (
                s.pre_doc["control"]["paused_from"]
                if s.name == "Control_Resume"
                else s.pre_doc["policy"]["quarantined_from"]
            )
            assert came_from == "EXECUTION"

    @invariant()
    def quorum_cert_matches_elected_set(self) -> None:
        council = self.doc["council"]
        cert = council["quorum_cert"]
        if cert is not None:
            assert cert["members_hash"] == council["members_hash"] == content_hash(sorted(council["members"]))
            assert cert["members_hash"] == content_hash(sorted(self.model.members))

    @invariant()
    def quarantine_left_only_by_release_or_block(self) -> None:
        s = self.step
        if s is None:
            return
        if s.pre_doc["control"]["top"] == "QUARANTINED" and self.doc["control"]["top"] != "QUARANTINED":
            assert s.outcome == "accepted" and s.name in ESCAPES

    @invariant()
    def rejection_changes_nothing(self) -> None:
        s = self.step
        if s is None or s.outcome == "accepted":
            return
        assert self.driver.engine.head_hash == s.pre_hash == content_hash(self.doc)
        assert self.doc is s.pre_doc
        assert len(self.driver.records) == s.pre_records

    @invariant()
    def document_is_valid(self) -> None:
        validate_document(self.doc)
        reject_floats(self.doc)


def test_reducer_matches_model_under_valid_and_invalid_proposals() -> None:
    run_state_machine_as_test(
        ReducerMachine,
        settings=settings(
            max_examples=250,
            stateful_step_count=50,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        ),
    )
