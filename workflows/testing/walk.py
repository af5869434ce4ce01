"""A seeded random walk of proposals for one project: valid transitions and deliberate mistakes.

Each walker keeps a *mirror*: its own pure engine, to which it applies its accepted answers (with the
guard outcomes the answer returns). The mirror chooses valid transitions, predicts the code of each
deliberate mistake, and must reach every `state_post_hash` the server answers — a live replica.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from swoosh.activities.backbeat import Schedule
from swoosh.api.client import ProposalFactory
from swoosh.guards.context import GuardContext
from swoosh.guards.evaluate import evaluate_guards
from swoosh.guards.outcome import GuardOutcome
from swoosh.workflows.canonical import content_hash
from swoosh.workflows.crypto import sign_bytes
from swoosh.workflows.engine import ESCAPES_QUARANTINE, Admitted, Engine, EngineSnapshot, new_engine_config
from swoosh.workflows.errors import ProposalError
from swoosh.workflows.hlc import HLC
from swoosh.workflows.proposal import ProposalRequest, build_body, signing_bytes
from swoosh.workflows.reducer import check_source, clone
from swoosh.workflows.statechart import default_statechart
from swoosh.workflows.testing.coverage import permissive_facts
from swoosh.workflows.testing.driver import valid_inputs

# Transitions a walker never proposes: terminal ones would end the walk early, and the licence
# transitions need a throttled licence the embedded KACHING never reports.
EXCLUDED = {"Boot_LicenseFailed", "Policy_ConfirmedBlock", "License_Throttled", "License_Restored"}
# Relative weights; anything not listed weighs 10.
WEIGHTS = {
    "Control_Pause": 2, "Control_Resume": 30, "Policy_Quarantine": 1, "Policy_Release": 30,
    "Ingestion_PolicyViolation": 1, "Ingestion_RollbackIndex": 2, "Council_Eject": 1,
    "Environment_Deprovision": 1, "Environment_Amber": 2, "Execution_QuorumLost": 1, "Identity_Rotate": 1,
    "Execution_PlanLocked": 40, "Execution_BeatReviewGate": 40, "Execution_ApprovalsThreshold": 40,
    "Execution_NextWindow": 40, "Execution_AllReady": 40, "Recovery_QuorumRestored": 40,
}  # fmt: skip
MISTAKES = (
    "stale_state_hash", "bad_signature", "hlc_regression", "duplicate", "unknown_transition",
    "invalid_transition", "inputs_hash_mismatch", "unauthorized_signer",
)  # fmt: skip


@dataclass
class Proposal:
    kind: str  # "valid" or one of MISTAKES
    transition: str
    body: dict[str, Any]
    expect: str  # "accepted", "duplicate" or a rejection code


@dataclass
class Walker:
    factory: ProposalFactory
    rng: random.Random
    schedule: Schedule | None
    mistake_rate: float = 0.25
    mirror: Engine = field(init=False)
    accepted_bodies: list[dict[str, Any]] = field(default_factory=list)
    version: int = 0
    n: int = 0
    stranger: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    def __post_init__(self) -> None:
        from swoosh.workflows.document import genesis

        doc = genesis(default_statechart(), self.factory.project_id, self.factory.signers.keyring())
        self.mirror = Engine(
            default_statechart(), EngineSnapshot(document=doc, config=new_engine_config(max_offset_ms=10**12))
        )

    def resync(self, document: dict[str, Any]) -> None:
        """Adopt the server's document (after a transition the walker did not make, e.g. a system one)."""
        self.mirror = Engine(default_statechart(), EngineSnapshot(document=clone(document), config=self.mirror.config))
        if document["hlc_last"]:
            self.factory.clock.observe(HLC.parse(document["hlc_last"]))

    # ------------------------------------------------------------------ choosing
    def enabled(self, now_ms: int) -> list[str]:
        doc = self.mirror.document
        top = doc["control"]["top"]
        out = []
        for name, t in self.mirror.chart.transitions.items():
            if t.spec.system or name in EXCLUDED:
                continue
            if top == "QUARANTINED" and name not in ESCAPES_QUARANTINE:
                continue
            try:
                check_source(self.mirror.chart, doc, t)
            except ProposalError:
                continue
            if t.spec.window and self.schedule is not None and not self.schedule.is_open(t.spec.window, now_ms):
                continue
            out.append(name)
        return out

    def window_id(self, now_ms: int) -> str:
        return self.schedule.frame(now_ms).window_id if self.schedule else "backbeat:W-1"

    def next(self, now_ms: int) -> Proposal | None:
        """The next proposal, or None when nothing valid is possible right now (wait for a window)."""
        self.n += 1
        if self.accepted_bodies and self.rng.random() < self.mistake_rate:
            return self._mistake(now_ms)
        choices = self.enabled(now_ms)
        self.rng.shuffle(choices)
        choices.sort(key=lambda c: -WEIGHTS.get(c, 10) * self.rng.random())
        for name in choices:
            prop = self._valid(name, now_ms)
            if prop is not None:
                return prop
        return None

    def _inputs(self, name: str, window: str) -> dict[str, Any]:
        return valid_inputs(self.factory, name, self.mirror.document, self.n, self.version, window)[0]

    def _not_enabled_now(self, head: str, window: str) -> Proposal | None:
        """A well-formed proposal of a transition the current state does not allow."""
        doc = self.mirror.document
        if doc["control"]["top"] in ("QUARANTINED", "TERMINATED"):
            return None
        names = [
            n for n, t in self.mirror.chart.transitions.items() if not t.spec.system and n not in ESCAPES_QUARANTINE
        ]
        for name in self.rng.sample(names, k=len(names)):
            try:
                check_source(self.mirror.chart, doc, self.mirror.chart.transitions[name])
                continue  # enabled: not a mistake
            except ProposalError:
                pass
            try:
                body = self.factory.body(name, head, self._inputs(name, window), window_id=window)
            except (ValueError, KeyError, IndexError):
                continue
            return Proposal("invalid_transition", name, body, "invalid_transition")
        return None

    def _valid(self, name: str, now_ms: int) -> Proposal | None:
        window = self.window_id(now_ms)
        try:
            inputs = self._inputs(name, window)
        except (ValueError, KeyError, IndexError):
            return None
        body = self.factory.body(name, self.mirror.head_hash, inputs, window_id=window)
        if not self._would_apply(body, now_ms):
            return None
        return Proposal("valid", name, body, "accepted")

    def _would_apply(self, body: dict[str, Any], now_ms: int) -> bool:
        """Whether the mirror accepts it: state-only guards evaluated for real, fact guards assumed open."""
        probe = Engine(
            self.mirror.chart, EngineSnapshot(document=clone(self.mirror.document), config=self.mirror.config)
        )
        try:
            admitted = probe.admit(ProposalRequest(body=body), now_ms)
            if not isinstance(admitted, Admitted):
                return False
            spec = admitted.transition.spec
            p = admitted.proposal
            ctx = GuardContext(project_id=probe.project_id, transition=spec.name, signer=p.signer,
                               window_id=p.window_id, window_class=spec.window)  # fmt: skip
            facts = permissive_facts(now_ms, spec.window)
            outcomes = evaluate_guards(spec.guards, probe.document, p.inputs, facts, ctx)
            probe.apply(admitted, outcomes, now_ms)
        except ProposalError:
            return False
        return True

    def _enabled_body(self, now_ms: int, head: str, **kw: Any) -> tuple[str, dict[str, Any]] | None:
        """A body for some transition enabled now (so admission reaches the head and HLC checks)."""
        window = self.window_id(now_ms)
        enabled = self.enabled(now_ms)
        for name in self.rng.sample(enabled, k=len(enabled)):
            try:
                return name, self.factory.body(name, head, self._inputs(name, window), window_id=window, **kw)
            except (ValueError, KeyError, IndexError):
                continue
        return None

    def _mistake(self, now_ms: int) -> Proposal:
        kind = self.rng.choice(MISTAKES)
        head = self.mirror.head_hash
        window = self.window_id(now_ms)
        if kind == "duplicate":
            body = self.rng.choice(self.accepted_bodies[-50:])
            return Proposal(kind, body["transition"], body, "duplicate")
        if kind == "unknown_transition":
            return Proposal(
                kind, "Boot_Rebooted", self.factory.body("Boot_Rebooted", head, {}, signer="operator"), kind
            )
        if kind == "invalid_transition":
            prop = self._not_enabled_now(head, window)
            if prop is not None:
                return prop
            kind = "stale_state_hash"
        if kind in ("stale_state_hash", "hlc_regression"):
            last = HLC.parse(self.mirror.document["hlc_last"]) if self.mirror.document["hlc_last"] else None
            if kind == "hlc_regression" and last is not None:
                made = self._enabled_body(now_ms, head, hlc=HLC(max(0, last.wall_ms - 60_000), 0).format())
            else:
                kind = "stale_state_hash"
                made = self._enabled_body(now_ms, content_hash(["stale", self.n]))
            if made is not None:
                return Proposal(kind, made[0], made[1], kind)
            kind = "bad_signature"
        if kind == "bad_signature":
            body = self.factory.body("Control_Pause", head, {"reason": "tampered"})
            return Proposal(kind, "Control_Pause", {**body, "window_id": "backbeat:tampered"}, kind)
        if kind == "inputs_hash_mismatch":
            body = self.factory.body("Control_Pause", head, {"reason": "original"})
            key = self.factory.signers.keys[self.factory.signer_for("Control_Pause")]
            body["inputs"] = {"reason": "swapped"}
            body["signature"] = sign_bytes(key, signing_bytes(body))
            return Proposal(kind, "Control_Pause", body, kind)
        # unauthorized_signer: a key that is not in the project's keyring
        body = build_body(self.stranger, transition="Control_Pause", current_state_hash=head,
                          idem_key=self.factory.idem_key("Control_Pause"), hlc=self.factory.clock.now().format(),
                          inputs={"reason": "stranger"}, project_id=self.factory.project_id)  # fmt: skip
        return Proposal("unauthorized_signer", "Control_Pause", body, "unauthorized_signer")

    # ------------------------------------------------------------------ learning from answers
    def accepted(self, prop: Proposal, answer: dict[str, Any], now_ms: int) -> str | None:
        """Apply an accepted answer to the mirror; returns a problem if the mirror disagrees.

        A duplicate answer usually repeats one the mirror already applied. But when the first
        answer was lost (a timeout, a 503 while a worker died) the resend is the first answer the
        caller sees: the mirror then applies it like a fresh one.
        """
        req = ProposalRequest(body=prop.body)
        try:
            admitted = self.mirror.admit(req, 10**15)
            if not isinstance(admitted, Admitted):
                if answer.get("duplicate"):
                    return None  # already applied here
                return f"mirror saw {prop.transition} as a duplicate"
            if answer.get("duplicate"):
                # A duplicate answer carries no guard outcomes; it was accepted, so every guard passed.
                outcomes = [GuardOutcome(guard=g, ok=True) for g in admitted.transition.spec.guards]
            else:
                outcomes = [
                    GuardOutcome(guard=g["guard"], ok=g["ok"], reasons=tuple(g["reasons"])) for g in answer["guards"]
                ]
            mine, _ = self.mirror.apply(admitted, outcomes, 10**15)
        except ProposalError as err:
            return f"mirror rejected accepted {prop.transition}: {err.code}: {err.reason}"
        self.accepted_bodies.append(prop.body)
        if prop.transition == "Ingestion_CorpusBuilt":
            self.version = int(prop.body["inputs"]["version"])
        if mine.state_post_hash != answer["state_post_hash"]:
            return f"mirror hash {mine.state_post_hash} ≠ server {answer['state_post_hash']} at index {answer['index']}"
        return None
