"""The worker's sandbox runner answers payload serialization contexts directly, as the SDK would."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.converter import ActivitySerializationContext, WorkflowSerializationContext
from temporalio.testing import WorkflowEnvironment

from swoosh.api.client import ProposalFactory, Signers
from swoosh.workflows.lifecycle import sandbox
from swoosh.workflows.lifecycle.client import ensure_project, read_health
from swoosh.workflows.testing.driver import LifecycleDriver
from swoosh.workflows.testing.environment import FakeFacts


async def _lifecycle(env: WorkflowEnvironment, tq: str, signers: Signers, factory: ProposalFactory, facts: FakeFacts):  # type: ignore[no-untyped-def]
    await ensure_project(env.client, factory.project_id, signers.keyring(), tq)
    d = LifecycleDriver.for_client(env.client, factory, open_window=facts.open_window)
    await d.lifecycle()  # 13 transitions, most of them with a guard local activity
    return await read_health(env.client, factory.project_id)


async def test_sandbox_contexts_match_the_stock_runner(
    tsenv: WorkflowEnvironment,
    task_queue: str,
    signers: Signers,
    factory: ProposalFactory,
    facts: FakeFacts,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stock, direct = sandbox._StockInstance, sandbox._DirectContextInstance
    ours_serialization, ours_store = direct.get_serialization_context, direct.get_external_store_context
    pairs: list[tuple[Any, Any]] = []

    def serialization(self: Any, info: Any) -> Any:
        ours = ours_serialization(self, info)
        pairs.append((ours, stock.get_serialization_context(self, info)))  # the SDK's own answer, via exec
        return ours

    def store(self: Any, info: Any) -> Any:
        ours = ours_store(self, info)
        pairs.append((ours, stock.get_external_store_context(self, info)))
        return ours

    monkeypatch.setattr(direct, "get_serialization_context", serialization)
    monkeypatch.setattr(direct, "get_external_store_context", store)

    health = await _lifecycle(tsenv, task_queue, signers, factory, facts)

    assert health.index == 13
    assert len(pairs) > 50
    mismatches = [(ours, theirs) for ours, theirs in pairs if ours != theirs]
    assert mismatches == []
    kinds = {type(ours) for ours, _ in pairs}
    assert {WorkflowSerializationContext, ActivitySerializationContext} <= kinds
    assert any(isinstance(ours, ActivitySerializationContext) and ours.is_local for ours, _ in pairs)


async def test_sandbox_contexts_are_read_without_exec(
    tsenv: WorkflowEnvironment,
    task_queue: str,
    signers: Signers,
    factory: ProposalFactory,
    facts: FakeFacts,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert isinstance(sandbox.workflow_runner(), sandbox.DirectContextSandboxedWorkflowRunner)
    executed: list[str] = []
    run_code = sandbox._StockInstance._run_code

    def counting(self: Any, code: str, **extra: Any) -> None:
        executed.append(code)
        run_code(self, code, **extra)

    monkeypatch.setattr(sandbox._StockInstance, "_run_code", counting)

    await _lifecycle(tsenv, task_queue, signers, factory, facts)

    activations = [c for c in executed if ".activate(" in c]
    context_lookups = [c for c in executed if "_context(" in c]
    assert len(activations) >= 13
    assert context_lookups == []
