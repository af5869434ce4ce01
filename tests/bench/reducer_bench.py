"""Reducer throughput on this machine: `python -m tests.bench.reducer_bench [--transitions N] [--profile]`.

A benchmark script, not a test (pytest does not collect it). It generates one long valid stream —
the lifecycle, then many EXECUTION loops with pauses, licence grace and quorum recovery mixed in — and
replays it through fresh engines:

(a) `Engine.apply` on pre-admitted proposals with pre-computed guard outcomes: reduction, state hashing,
    sealed decision records and the idempotency window (admission happened before the clock started);
(b) `Engine.admit` + `Engine.apply` from the raw body: envelope parsing, Ed25519 signature verification,
    role and input checks, then the same as (a).

Baselines measured in the same run: canonical JSON + SHA-256 of each document (the least a hashed
transition can cost) and one Ed25519 verification per body. Times are this process's CPU time
(`time.process_time`, best of `--runs`), so other load on a shared machine does not distort them; the
wall-clock rate is printed beside. The last line is machine-readable:
`bench reducer_tps=<n> with_signatures_tps=<n>`.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from collections.abc import Callable, Iterator
from typing import Any

from swoosh.api.client import HLCClock, ProposalFactory, Signers
from swoosh.guards import BeatFrame, Facts, GuardContext, GuardOutcome, LicenseFact, McpFact, evaluate_guards
from swoosh.workflows.answers import Accepted
from swoosh.workflows.canonical import content_hash
from swoosh.workflows.crypto import verify_bytes
from swoosh.workflows.document import genesis
from swoosh.workflows.engine import Admitted, Engine, EngineSnapshot
from swoosh.workflows.proposal import SIGNATURES, ProposalRequest, signing_bytes
from swoosh.workflows.statechart import Statechart, default_statechart

PROJECT = "bench"
NOW = 1_760_000_000_000
TOOLS = {"git": "2.45.0"}
TARGET_TPS = 10_000
TARGET_SIG_TPS = 5_000

Step = tuple[dict[str, Any], Admitted, list[GuardOutcome]]


class Stream:
    """Builds the valid stream once, on a generation engine, keeping bodies, admissions and guard outcomes."""

    def __init__(self, chart: Statechart, signers: Signers) -> None:
        self.chart = chart
        self.signers = signers
        self.factory = ProposalFactory(signers, PROJECT, clock=HLCClock(lambda: NOW))
        self.engine = Engine(chart, EngineSnapshot(document=genesis(chart, PROJECT, signers.keyring())))
        self.steps: list[Step] = []
        self.documents: list[dict[str, Any]] = []
        self.guard_seconds = 0.0
        self.window = "backbeat:W-000000"

    def facts(self, admitted: Admitted) -> Facts:
        spec = admitted.transition.spec
        status = "throttled" if spec.name == "License_Throttled" else "valid"
        return Facts(
            now_ms=NOW,
            license=LicenseFact(status=status, license_id="L-1", fetched_at_ms=NOW, verified=True),
            mcp=McpFact(reachable=True, tools=dict(TOOLS), fetched_at_ms=NOW),
            beat=BeatFrame(
                window_id=self.window,
                phase=spec.window or "plan",
                beat_index=1,
                tempo_bpm=120,
                deadline_at_ms=NOW + 60_000,
                received_at_ms=NOW,
            ),
        )

    def inputs(self, name: str, cycle: int) -> dict[str, Any]:
        doc, f = self.engine.document, self.factory
        table: dict[str, Callable[[], dict[str, Any]]] = {
            "Boot_ConfigOk": lambda: {"config_hash": content_hash("config")},
            "Boot_Licensed": lambda: {"license_id": "L-1"},
            "Ingestion_SourcesResolved": lambda: {"sources": ["git://example/corpus"]},
            "Ingestion_BytesOk": lambda: {"bytes_hash": content_hash("bytes"), "byte_count": 4096},
            "Ingestion_SchemaOk": lambda: {"schema_hash": content_hash("schema")},
            "Ingestion_CorpusBuilt": lambda: {"content_hash": content_hash("corpus"), "version": 1},
            "Council_ProfilesLoaded": lambda: {"roles": ["architect", "reviewer"]},
            "Council_QuorumCert": lambda: f.quorum_inputs(self.window, state=doc),
            "Council_McpGreen": lambda: {"tool_pins": dict(TOOLS)},
            "Environment_CapacityOk": lambda: {"allocations": ["gpu:1"]},
            "Environment_Installed": lambda: {"assets": ["image:swoosh@1"]},
            "Environment_Green": lambda: {},
            "Execution_AllReady": lambda: {"region_hashes": f.region_hashes(doc)},
            "Execution_PlanLocked": lambda: {"plan_hash": content_hash(("plan", cycle))},
            "Execution_BeatReviewGate": lambda: {"work_evidence": [f"ucxl://work/{cycle}"]},
            "Execution_ApprovalsThreshold": lambda: {"approvals": f.approvals(doc, self.window)},
            "Execution_NextWindow": lambda: {},
            "Recovery_QuorumRestored": lambda: {
                **f.quorum_inputs(self.window, state=doc),
                "region_hashes": f.region_hashes(doc),
            },
            "License_Restored": lambda: {},
        }
        return table.get(name, lambda: {"reason": f"bench {name} {cycle}"})()

    def add(self, name: str, cycle: int = 0) -> None:
        body = self.factory.body(name, self.engine.head_hash, self.inputs(name, cycle), window_id=self.window)
        admitted = self.engine.admit(ProposalRequest(body=body), NOW)
        if isinstance(admitted, Accepted):
            raise RuntimeError(f"{name} was answered as a duplicate")
        context = GuardContext(
            project_id=PROJECT,
            transition=name,
            signer=admitted.proposal.signer,
            window_id=admitted.proposal.window_id,
            window_class=admitted.transition.spec.window,
        )
        started = time.perf_counter()
        outcomes = evaluate_guards(
            admitted.transition.spec.guards,
            self.engine.document,
            admitted.proposal.inputs,
            self.facts(admitted),
            context,
        )
        self.guard_seconds += time.perf_counter() - started
        self.engine.apply(admitted, outcomes, NOW)
        self.steps.append((body, admitted, outcomes))
        self.documents.append(self.engine.document)

    def build(self, total: int) -> None:
        for name in lifecycle():
            self.add(name)
        cycle = 0
        while len(self.steps) < total:
            cycle += 1
            self.window = f"backbeat:W-{cycle:06d}"
            for name in execution_loop(cycle):
                self.add(name, cycle)


def lifecycle() -> list[str]:
    return [
        "Boot_ConfigOk", "Boot_Licensed",
        "Ingestion_SourcesResolved", "Ingestion_BytesOk", "Ingestion_SchemaOk", "Ingestion_CorpusBuilt",
        "Council_ProfilesLoaded", "Council_QuorumCert", "Council_McpGreen",
        "Environment_CapacityOk", "Environment_Installed", "Environment_Green",
        "Execution_AllReady",
    ]  # fmt: skip


def execution_loop(cycle: int) -> Iterator[str]:
    yield from (
        "Execution_PlanLocked",
        "Execution_BeatReviewGate",
        "Execution_ApprovalsThreshold",
        "Execution_NextWindow",
    )
    if cycle % 50 == 0:
        yield from ("Control_Pause", "Control_Resume", "License_Throttled", "License_Restored")
    if cycle % 200 == 0:
        yield from ("Execution_QuorumLost", "Recovery_QuorumRestored")


def fresh_engine(chart: Statechart, signers: Signers) -> Engine:
    return Engine(chart, EngineSnapshot(document=genesis(chart, PROJECT, signers.keyring())))


Timing = tuple[float, float]  # (CPU seconds, wall seconds)


def clocks() -> Timing:
    return time.process_time(), time.perf_counter()


def since(start: Timing) -> Timing:
    cpu, wall = clocks()
    return cpu - start[0], wall - start[1]


def run_apply(chart: Statechart, signers: Signers, steps: list[Step]) -> tuple[Timing, str]:
    engine = fresh_engine(chart, signers)
    apply = engine.apply
    start = clocks()
    for _, admitted, outcomes in steps:
        apply(admitted, outcomes, NOW)
    return since(start), engine.head_hash


def run_admit_apply(chart: Statechart, signers: Signers, steps: list[Step]) -> tuple[Timing, str]:
    engine = fresh_engine(chart, signers)
    admit, apply = engine.admit, engine.apply
    SIGNATURES.clear()  # every signature is really verified here (the steps were built through admit)
    start = clocks()
    for body, _, outcomes in steps:
        admitted = admit(ProposalRequest(body=body), NOW)
        assert isinstance(admitted, Admitted)
        apply(admitted, outcomes, NOW)
    return since(start), engine.head_hash


def run_hash_baseline(documents: list[dict[str, Any]]) -> tuple[Timing, str]:
    start = clocks()
    for doc in documents:
        content_hash(doc)
    return since(start), ""


def run_verify_baseline(steps: list[Step]) -> tuple[Timing, str]:
    messages = [(body["signer"], signing_bytes(body), body["signature"]) for body, _, _ in steps]
    start = clocks()
    for signer, message, signature in messages:
        verify_bytes(signer, message, signature)
    return since(start), ""


def best(runs: int, fn: Callable[[], tuple[Timing, str]], expected_head: str | None = None) -> Timing:
    """The fastest of `runs` runs (CPU and wall separately), checking every replay ends on the same head."""
    cpu, wall = [], []
    for _ in range(runs):
        (c, w), head = fn()
        if expected_head is not None and head != expected_head:
            raise RuntimeError("replay diverged from the generated stream: the engine is not deterministic")
        cpu.append(c)
        wall.append(w)
    return min(cpu), min(wall)


def profile(label: str, fn: Callable[[], object], limit: int) -> None:
    prof = cProfile.Profile()
    prof.runcall(fn)
    print(f"\n--- cProfile: {label} (top {limit} by own time) ---")
    pstats.Stats(prof).sort_stats("tottime").print_stats(limit)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--transitions", type=int, default=10_000, help="length of the generated stream")
    parser.add_argument("--runs", type=int, default=3, help="replays per measurement (the best is kept)")
    parser.add_argument("--profile", action="store_true", help="print cProfile tables of (a) and (b)")
    args = parser.parse_args(argv)

    chart, signers = default_statechart(), Signers.generate()
    started = time.perf_counter()
    stream = Stream(chart, signers)
    stream.build(args.transitions)
    generation = time.perf_counter() - started
    n, head = len(stream.steps), stream.engine.head_hash

    apply_s, apply_wall = best(args.runs, lambda: run_apply(chart, signers, stream.steps), head)
    admit_apply_s, admit_apply_wall = best(args.runs, lambda: run_admit_apply(chart, signers, stream.steps), head)
    hash_s, _ = best(args.runs, lambda: run_hash_baseline(stream.documents))
    verify_s, _ = best(args.runs, lambda: run_verify_baseline(stream.steps))

    tps, sig_tps = n / apply_s, n / admit_apply_s
    hash_tps, verify_tps = n / hash_s, n / verify_s
    per = 1e6 / n
    print(f"stream: {n} transitions ({n - len(lifecycle())} after the lifecycle), generated in {generation:.1f} s")
    print(f"guard evaluation while generating (not in (a)/(b)): {stream.guard_seconds * per:.1f} µs/transition")
    print(
        f"(a) apply, pre-admitted:       {tps:>9.0f} transitions/s  "
        f"({apply_s * per:.1f} µs each; wall {n / apply_wall:.0f}/s)"
    )
    print(
        f"(b) admit + apply (Ed25519):   {sig_tps:>9.0f} transitions/s  "
        f"({admit_apply_s * per:.1f} µs each; wall {n / admit_apply_wall:.0f}/s)"
    )
    print(f"    admission alone, (b) - (a): {(admit_apply_s - apply_s) * per:.1f} µs/transition")
    print(f"baseline canonical JSON + SHA-256 of the document: {hash_tps:>9.0f}/s  ({hash_s * per:.1f} µs each)")
    print(f"baseline Ed25519 verify of the body:              {verify_tps:>9.0f}/s  ({verify_s * per:.1f} µs each)")
    print(
        f"ratio (a) / hash baseline: {tps / hash_tps:.3f}   ratio (b) / (hash + verify baseline): "
        f"{sig_tps * (hash_s + verify_s) / n:.3f}"
    )
    verdict_a = "meets" if tps >= TARGET_TPS else "BELOW"
    verdict_b = "meets" if sig_tps >= TARGET_SIG_TPS else "BELOW"
    print(f"target (a) >= {TARGET_TPS}/s: {verdict_a};  target (b) >= {TARGET_SIG_TPS}/s: {verdict_b}")
    if args.profile:
        profile("(a) apply", lambda: run_apply(chart, signers, stream.steps), 25)
        profile("(b) admit + apply", lambda: run_admit_apply(chart, signers, stream.steps), 25)
    print(f"bench reducer_tps={tps:.0f} with_signatures_tps={sig_tps:.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
