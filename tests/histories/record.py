"""Record the committed replay histories: `python -m tests.histories.record`.

Runs a few scenarios on the time-skipping server and writes every run of each project workflow
(following continue-as-new) as `tests/histories/<scenario>-run<k>.json`, the format
`temporal workflow show --output json` writes. Re-record only for an intentional, versioned change
of workflow code; the replay test exists to fail on unintentional ones. Histories recorded by older
code stay committed (they prove that versioned changes still replay them): record new scenarios by
name, `python -m tests.histories.record reverb`.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import SecretStr
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowUpdateFailedError

from swoosh.activities.decisions import DecisionStore
from swoosh.activities.records_jsonl import JsonlSink
from swoosh.api.client import ProposalFactory, Signers
from swoosh.workflows.answers import Accepted, Rejected
from swoosh.workflows.canonical import canonical_json, content_hash
from swoosh.workflows.engine import EngineConfig
from swoosh.workflows.ids import workflow_id
from swoosh.workflows.lifecycle.client import (
    dry_run,
    ensure_project,
    propose,
    read_rejections,
    read_state,
    request_snapshot,
    signal_proposal,
)
from swoosh.workflows.lifecycle.codec import EncryptionSettings
from swoosh.workflows.lifecycle.connection import data_converter
from swoosh.workflows.messages import DeliveryResult, LifecycleSettings
from swoosh.workflows.proposal import ProposalRequest
from swoosh.workflows.testing.driver import LOOP, LifecycleDriver
from swoosh.workflows.testing.environment import FakeFacts, lifecycle_worker, start_time_skipping

HERE = Path(__file__).parent
# A fixed documentation key (bytes 1..32, never used for anything real): receipts in recorded histories
# verify with hmmm:pubkey:ebVWLo_mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ (docs/providers.md signs its examples so too).
RECEIPT_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
Scenario = Callable[[LifecycleDriver, FakeFacts, Client], Awaitable[None]]


async def lifecycle(d: LifecycleDriver, facts: FakeFacts, client: Client) -> None:
    await d.lifecycle()
    await d.loop(2)


async def quarantine(d: LifecycleDriver, facts: FakeFacts, client: Client) -> None:
    await d.step("Boot_ConfigOk")
    await d.step("Boot_Licensed")
    await d.try_step("Ingestion_SourcesResolved", {"sources": ["-----BEGIN PRIVATE KEY-----"]})
    await d.state()
    await d.step("Policy_Release", {"reason": "false positive, reviewed"})
    await d.step("Ingestion_SourcesResolved")
    await d.step("Control_Pause", {"reason": "maintenance"})
    await d.step("Control_Resume", {"reason": "maintenance over"})


async def snapshots(d: LifecycleDriver, facts: FakeFacts, client: Client) -> None:
    await d.lifecycle()
    await d.try_step("Execution_PlanLocked", {"plan_hash": "not-a-hash"})
    await d.step("Execution_QuorumLost", {"reason": "council member unreachable"})
    await d.step("Council_Eject", {"member": d.factory.council_members()[0], "reason": "unreachable"})


async def reverb(d: LifecycleDriver, facts: FakeFacts, client: Client) -> None:
    """EXECUTION loops under the REVERB snapshot minimum: the first REVERB snapshots, the next does not."""
    await d.lifecycle()
    await d.loop(3)


async def records(d: LifecycleDriver, facts: FakeFacts, client: Client) -> None:
    """Decision records bounded in bytes: large evidence, so each delivery batch holds a single record."""
    await d.lifecycle()
    for t in LOOP:
        await d.step(t, evidence=[f"ucxl://evidence/{t}/{k}/".ljust(100, "e") for k in range(64)])


class RefusingSink:
    """The JSONL store behind a first answer that acknowledges less than the batch (as a tail-only sink did)."""

    kind = "jsonl"

    def __init__(self, inner: JsonlSink) -> None:
        self.inner, self.short = inner, True

    async def deliver(self, project_id: str, records: list[dict[str, Any]]) -> DeliveryResult:
        if self.short:
            self.short = False
            return DeliveryResult(delivered=0, skipped=len(records) - 1, last_index=0)
        return await self.inner.deliver(project_id, records)

    async def page(self, project_id: str, after_index: int, limit: int) -> list[dict[str, Any]]:
        return await self.inner.page(project_id, after_index, limit)

    async def setup(self) -> str:
        return await self.inner.setup()

    async def aclose(self) -> None:
        return None


def refusing_sink(root: Path, project_id: str) -> RefusingSink:
    """A store holding another chain for the project (an earlier life of it), behind a short acknowledgement."""
    inner = JsonlSink(root)
    prev = None
    lines = []
    for index in (1, 2, 3):
        body = {"index": index, "transition": "Control_Pause", "prev_dr_hash": prev, "tag": "earlier"}
        prev = content_hash(body)
        lines.append(canonical_json({**body, "dr_hash": prev}) + b"\n")
    root.mkdir(parents=True, exist_ok=True)
    inner.path(project_id).write_bytes(b"".join(lines))
    return RefusingSink(inner)


async def refusals(d: LifecycleDriver, facts: FakeFacts, client: Client) -> None:
    """A short acknowledgement, then a forked store: both refused and retried; delivered once resolved."""
    sink: RefusingSink = client._swoosh_sink  # type: ignore[attr-defined]
    env_sleep = client._swoosh_sleep  # type: ignore[attr-defined]
    await d.step("Boot_ConfigOk")
    await d.step("Boot_Licensed")
    await env_sleep(timedelta(seconds=40))  # the short answer's back-off; the retry meets the fork
    await asyncio.sleep(0.5)
    await env_sleep(timedelta(seconds=10))
    sink.inner.path(d.factory.project_id).unlink()  # the operator moves the other chain aside
    await env_sleep(timedelta(seconds=40))
    await asyncio.sleep(0.5)
    await d.step("Ingestion_SourcesResolved")


async def secrets(d: LifecycleDriver, facts: FakeFacts, client: Client) -> None:
    """A secret-bearing proposal refused before it was sent; the quarantine asked for by a secret-free Update."""
    await d.step("Boot_ConfigOk")
    await d.step("Boot_Licensed")
    answer = await d.try_step("Ingestion_SourcesResolved", {"sources": ["-----BEGIN PRIVATE KEY-----"]})
    assert isinstance(answer, Rejected) and answer.quarantined, answer
    await d.state()
    await d.step("Policy_Release", {"reason": "false positive, reviewed"})
    await d.step("Ingestion_SourcesResolved")


async def encrypted(d: LifecycleDriver, facts: FakeFacts, client: Client) -> None:
    """Recorded with payload encryption (the committed test key `encryption-test.key`), across snapshots."""
    await d.lifecycle()
    await d.loop(1)


async def backlinks(d: LifecycleDriver, facts: FakeFacts, client: Client) -> None:
    """A project started after CHORUS-grammar backlinks (EngineConfig.ucxl_backlink = chorus)."""
    await d.lifecycle()
    await d.loop(1)


async def grace(d: LifecycleDriver, facts: FakeFacts, client: Client) -> None:
    await d.lifecycle()
    facts.license_status = "throttled"
    await d.step("License_Throttled", {"reason": "KACHING throttling"})
    env_sleep = client._swoosh_sleep
    await env_sleep(timedelta(minutes=20))
    for _ in range(50):
        state = await read_state(client, d.factory.project_id)
        if state.projection["control"]["license"]["phase"] == "DEGRADED_EXPIRED":
            break
        await asyncio.sleep(0.1)
    facts.license_status = "valid"
    await d.state()
    await d.step("License_Restored", {})


async def dryrun(d: LifecycleDriver, facts: FakeFacts, client: Client) -> None:
    """Dry runs: guarded ones are Updates with a guard marker; the rest are answered by the validator."""
    await d.step("Boot_ConfigOk")
    await d.state()
    assert d.head is not None
    body = d.factory.body("Boot_Licensed", d.head, {"license_id": "LIC-DRY"})
    tried = await dry_run(client, d.factory.project_id, ProposalRequest(body=body))
    assert tried.accepted, tried
    facts.license_status = "denied"
    refused = await dry_run(client, d.factory.project_id, ProposalRequest(body=body))
    assert not refused.accepted and refused.failing_guard == "license", refused
    facts.license_status = "valid"
    answer = await d.send(ProposalRequest(body=body))
    assert isinstance(answer, Accepted) and answer.state_post_hash == tried.state_post_hash, answer
    d.head = answer.state_post_hash
    again = await dry_run(client, d.factory.project_id, ProposalRequest(body=body))
    assert again.duplicate, again


async def containment(d: LifecycleDriver, facts: FakeFacts, client: Client) -> None:
    """Guards that cannot be evaluated: the Update fails "unavailable", the Signal is logged, both apply later."""
    project = d.factory.project_id
    await d.step("Boot_ConfigOk")
    assert d.head is not None
    body = d.factory.body("Boot_Licensed", d.head, {"license_id": "LIC-1"})
    facts.down = True
    try:
        await propose(client, project, ProposalRequest(body=body))
    except WorkflowUpdateFailedError:
        pass
    await signal_proposal(client, project, ProposalRequest(body=body))
    for _ in range(100):
        if await read_rejections(client, project):
            break
        await asyncio.sleep(0.1)
    facts.down = False
    await signal_proposal(client, project, ProposalRequest(body=body))
    for _ in range(100):
        state = await read_state(client, project)
        if state.index == 2:
            break
        await asyncio.sleep(0.1)
    d.head = state.hash
    await d.step("Ingestion_SourcesResolved")


async def receipts(d: LifecycleDriver, facts: FakeFacts, client: Client) -> None:
    """Snapshot receipts: a snapshot every 4 transitions, each interval's receipt signed and stored with the records.

    Receipts travel with the batch that stores their last record, and alone when every record was already
    stored (the operator's snapshot at the end, after the records were delivered).
    """
    sleep = client._swoosh_sleep  # type: ignore[attr-defined]
    await d.lifecycle()
    await sleep(timedelta(seconds=5))  # records 1..13 and the receipts of 1..4, 5..8, 9..12 delivered
    await d.loop(1)
    await sleep(timedelta(seconds=5))
    await request_snapshot(client, d.factory.project_id)  # a receipt of 17..17 alone
    await sleep(timedelta(seconds=5))


async def terminated(d: LifecycleDriver, facts: FakeFacts, client: Client) -> None:
    """TERMINATED is final: the run delivers its last records and completes; queries still answer."""
    await d.step("Boot_ConfigOk")
    await d.step("Boot_LicenseFailed", {"reason": "the licence server refused this deployment"})
    await client._swoosh_sleep(timedelta(seconds=5))  # type: ignore[attr-defined]  # the last record is delivered
    await asyncio.sleep(0.5)
    state = await read_state(client, d.factory.project_id)  # a closed run: a worker replays it to answer
    assert state.phase["top"] == "TERMINATED", state.phase


async def terminated_open(d: LifecycleDriver, facts: FakeFacts, client: Client) -> None:
    """Before PATCH_TERMINATED_COMPLETES: the TERMINATED run stays open after its last delivery, so a
    later signal is taken (and rejected). Today's code must replay that, not complete the run."""
    await d.step("Boot_ConfigOk")
    await d.step("Boot_LicenseFailed", {"reason": "the licence server refused this deployment"})
    await client._swoosh_sleep(timedelta(seconds=5))  # type: ignore[attr-defined]
    await asyncio.sleep(0.5)
    assert d.head is not None
    body = d.factory.body("Boot_ConfigOk", d.head, {})
    await signal_proposal(client, d.factory.project_id, ProposalRequest(body=body))
    await asyncio.sleep(0.5)
    rejections = await read_rejections(client, d.factory.project_id)
    assert [r.error for r in rejections] == ["terminated"], rejections
    await request_snapshot(client, d.factory.project_id)  # a command (continue-as-new) after that point
    await asyncio.sleep(0.5)


async def rotation(d: LifecycleDriver, facts: FakeFacts, client: Client) -> None:
    """The ingestion key rotated out and a new one in; the new key carries the project on."""
    f = d.factory
    await d.step("Boot_ConfigOk")
    await d.step("Boot_Licensed")
    new = Ed25519PrivateKey.generate()
    f.signers.keys["ingestion-2"], f.signers.roles["ingestion-2"] = new, ("ingestion",)
    change = {
        "add": [{"id": f.signers.id("ingestion-2"), "roles": ["ingestion"]}],
        "remove": [f.signers.id("ingestion")],
    }
    await d.step("Identity_Rotate", f.rotation_inputs(await d.state(), **change, reason="ingestion key rotated"))
    await d.try_step("Ingestion_SourcesResolved", signer="ingestion")  # unauthorized_signer: nothing written
    await d.step("Ingestion_SourcesResolved", signer="ingestion-2")


async def adopt(d: LifecycleDriver, facts: FakeFacts, client: Client) -> None:
    """A project started before Identity_Rotate adopts it at its next snapshot (snapshot_every=3)."""
    await d.step("Boot_ConfigOk")
    await d.step("Boot_Licensed")
    await d.try_step("Identity_Rotate")  # unknown_transition before the snapshot
    await d.step("Ingestion_SourcesResolved")  # the third: continue-as-new with the rules adopted
    for _ in range(100):
        if (await read_state(client, d.factory.project_id)).index == 3:
            break
        await asyncio.sleep(0.1)
    await d.step("Identity_Rotate")


async def election(d: LifecycleDriver, facts: FakeFacts, client: Client) -> None:
    """Votes bound to their election: after an ejection the old certificate is refused, a new one elects."""
    for t in ("Boot_ConfigOk", "Boot_Licensed", "Council_ProfilesLoaded"):
        await d.step(t)
    certificate = d.factory.quorum_inputs(d.window_id, state=await d.state())
    await d.step("Council_QuorumCert", certificate)
    await d.step("Council_Eject", {"member": d.factory.council_members()[0], "reason": "key compromised"})
    await d.try_step("Council_QuorumCert", certificate)  # guard_failed (quorum): its guard marker, no change
    await d.step("Council_QuorumCert")


async def inbox(d: LifecycleDriver, facts: FakeFacts, client: Client) -> None:
    """A signal larger than the inbox is refused (rejection log, nothing queued); a small one is applied."""
    project = d.factory.project_id
    await d.step("Boot_ConfigOk")
    assert d.head is not None
    items = [f"git://example/{i}/".ljust(3900, "x") for i in range(34)]  # about 134 KB: over the 128 KiB inbox
    huge = d.factory.body("Ingestion_SourcesResolved", d.head, {"sources": items})
    await signal_proposal(client, project, ProposalRequest(body=huge))
    for _ in range(100):
        if await read_rejections(client, project):
            break
        await asyncio.sleep(0.1)
    await signal_proposal(client, project, ProposalRequest(body=d.factory.body("Boot_Licensed", d.head, {})))
    for _ in range(100):
        if (await read_state(client, project)).index == 2:
            break
        await asyncio.sleep(0.1)


# A real Ed25519 signature (of another message) that the built-in api-key rule matches by chance.
LOOKALIKE_SIGNATURE = "pk-ExAvr8Vu3hv0QJYxFcLFPPWhJ2qxqht0lcdAhtGQrFSqVPiFgH-eZiEhnsSN-F3l0810ofQsxQC-i4-trAQ"


async def lookalike(d: LifecycleDriver, facts: FakeFacts, client: Client) -> None:
    """A vote whose signature looks like a key meets the quorum guard, by Update and by Signal, not SHHH:
    the Signal path's scan in the workflow skips signatures (EngineConfig.signed_fields_exempt)."""
    for t in ("Boot_ConfigOk", "Boot_Licensed", "Council_ProfilesLoaded"):
        await d.step(t)
    certificate = d.factory.quorum_inputs(d.window_id, state=await d.state())
    certificate["votes"][0]["signature"] = LOOKALIKE_SIGNATURE
    answer = await d.try_step("Council_QuorumCert", certificate)
    assert isinstance(answer, Rejected) and answer.failing_guard == "quorum", answer
    assert d.head is not None
    body = d.factory.body("Council_QuorumCert", d.head, certificate, window_id=d.window_id)
    await signal_proposal(client, d.factory.project_id, ProposalRequest(body=body))
    for _ in range(100):
        if await read_rejections(client, d.factory.project_id):
            break
        await asyncio.sleep(0.1)
    await d.step("Council_QuorumCert")


SCENARIOS: dict[str, tuple[Scenario, LifecycleSettings]] = {
    "lifecycle": (lifecycle, LifecycleSettings()),
    "quarantine": (quarantine, LifecycleSettings()),
    "snapshots": (snapshots, LifecycleSettings(snapshot_every=4)),
    "grace": (grace, LifecycleSettings()),
    "reverb": (reverb, LifecycleSettings(reverb_snapshot_min=6)),
    "records": (records, LifecycleSettings(dr_batch_bytes=4096, dr_retain_bytes=16384)),
    "refusals": (refusals, LifecycleSettings(dr_flush_ms=0)),
    "backlinks": (backlinks, LifecycleSettings()),
    "dryrun": (dryrun, LifecycleSettings()),
    "receipts": (receipts, LifecycleSettings(snapshot_every=4)),
    "terminated": (terminated, LifecycleSettings()),
    "terminated-open": (terminated_open, LifecycleSettings()),
    "containment": (containment, LifecycleSettings()),
    "rotation": (rotation, LifecycleSettings()),
    "adopt": (adopt, LifecycleSettings(snapshot_every=3)),
    "election": (election, LifecycleSettings()),
    "inbox": (inbox, LifecycleSettings()),
    "encrypted": (encrypted, LifecycleSettings(snapshot_every=8)),
    "secrets": (secrets, LifecycleSettings()),
    "lookalike": (lookalike, LifecycleSettings()),
}
# Recorded by workflow code from before a change, to prove that runs of that time still replay:
# recording them again with today's code would prove nothing, so only naming one records it.
# terminated-open: before PATCH_TERMINATED_COMPLETES, a TERMINATED project's run stayed open.
FROZEN = {"terminated-open"}
# Scenarios recorded with payload encryption: the key file (committed; a test key, never a real one).
ENCRYPTED: dict[str, Path] = {"encrypted": HERE / "encryption-test.key"}


def encryption_of(key_file: Path) -> EncryptionSettings:
    """The encryption settings of a committed test key file (one `id=<base64>` per line)."""
    lines = [line.strip() for line in key_file.read_text().splitlines() if line.strip()]
    return EncryptionSettings(keys=tuple(SecretStr(line) for line in lines))


# Scenarios that need a store of their own: (sink folder, project id) -> store.
SINKS: dict[str, Callable[[Path, str], DecisionStore]] = {"refusals": refusing_sink}
# Engine configs other than a new project's: "adopt" starts as a project recorded before Identity_Rotate.
CONFIGS: dict[str, EngineConfig] = {"adopt": EngineConfig(identity_rotation=False)}


async def history_chain(client: Client, wf_id: str, first_run_id: str) -> list[dict[str, object]]:
    """Every run's history, first to last, following ContinuedAsNew links."""
    out = []
    run_id: str | None = first_run_id
    while run_id:
        history = await client.get_workflow_handle(wf_id, run_id=run_id).fetch_history()
        out.append(history.to_json_dict())
        last = history.events[-1]
        if last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
            run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
        else:
            run_id = None
    return out


async def record(out_dir: Path = HERE, only: list[str] | None = None) -> dict[str, dict[str, int]]:
    env = await start_time_skipping()
    stats: dict[str, dict[str, int]] = {}
    try:
        plain = env.client
        for name, (scenario, settings) in SCENARIOS.items():
            if (only and name not in only) or (not only and name in FROZEN):
                continue
            client = plain
            if name in ENCRYPTED:  # same server, every payload encrypted by this client and its worker
                converter = data_converter(encryption_of(ENCRYPTED[name]))
                client = Client(plain.service_client, namespace=plain.namespace, data_converter=converter)
            object.__setattr__(client, "_swoosh_sleep", env.sleep)
            signers = Signers.generate()
            factory = ProposalFactory(signers, f"history-{name}")
            facts = FakeFacts()
            with tempfile.TemporaryDirectory() as sink_dir:
                sink = SINKS[name](Path(sink_dir), factory.project_id) if name in SINKS else JsonlSink(Path(sink_dir))
                object.__setattr__(client, "_swoosh_sink", sink)
                # Every scenario's worker signs receipts, as `make run`'s does (runs recorded before the
                # receipts patch make none; later ones make one per snapshot).
                async with lifecycle_worker(client, facts=facts, sink=sink, receipt_key=RECEIPT_KEY) as tq:
                    handle = await ensure_project(
                        client, factory.project_id, signers.keyring(), tq, CONFIGS.get(name, EngineConfig()), settings
                    )
                    driver = LifecycleDriver.for_client(client, factory, open_window=facts.open_window)
                    await scenario(driver, facts, client)
                    await env.sleep(timedelta(seconds=5))  # let decision records flush
                    await asyncio.sleep(0.5)
                    runs = await history_chain(
                        client, workflow_id(factory.project_id), handle.first_execution_run_id or ""
                    )
                    if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                        await handle.terminate("history recorded")
            for old in out_dir.glob(f"{name}-run*.json"):
                old.unlink()
            events = 0
            for k, run in enumerate(runs):
                (out_dir / f"{name}-run{k}.json").write_text(json.dumps(run, indent=1) + "\n")
                events += len(run["events"])  # type: ignore[arg-type]
            stats[name] = {"runs": len(runs), "events": events, "accepted": len(driver.answers)}
    finally:
        await env.shutdown()
    return stats


def main() -> int:
    """`python -m tests.histories.record [SCENARIO ...]`: all scenarios, or only the named ones."""
    unknown = set(sys.argv[1:]) - set(SCENARIOS)
    if unknown:
        print(f"unknown scenario(s) {sorted(unknown)}; known: {', '.join(SCENARIOS)}", file=sys.stderr)
        return 2
    stats = asyncio.run(record(only=sys.argv[1:] or None))
    for name, s in stats.items():
        print(
            f"{name}: {s['runs']} run(s), {s['events']} events, {s['accepted']} accepted by the caller", file=sys.stderr
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
