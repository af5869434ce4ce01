"""When a run continues as new: the snapshot policy's rules, decided without a workflow."""

from __future__ import annotations

import pytest

from swoosh.api.client import Signers
from swoosh.workflows.document import genesis
from swoosh.workflows.engine import Engine, EngineSnapshot
from swoosh.workflows.lifecycle.snapshots import SnapshotPolicy
from swoosh.workflows.messages import LifecycleSettings
from swoosh.workflows.statechart import default_statechart


@pytest.fixture()
def engine() -> Engine:
    doc = genesis(default_statechart(), "snap-p", Signers.generate().keyring())
    return Engine(default_statechart(), EngineSnapshot(document=doc))


def test_snapshot_due_every_n_accepted_transitions(engine: Engine) -> None:
    policy = SnapshotPolicy(LifecycleSettings(snapshot_every=5), engine.index - 5, None, reverb_min=10)
    assert policy.due(engine) and not policy.wanted  # five accepted since the run began


def test_snapshot_wanted_by_an_operator_even_with_nothing_accepted(engine: Engine) -> None:
    policy = SnapshotPolicy(LifecycleSettings(), engine.index, None, reverb_min=1)
    policy.wanted = True
    assert policy.due(engine)


def test_snapshot_point_counts_only_after_the_reverb_minimum(engine: Engine) -> None:
    policy = SnapshotPolicy(LifecycleSettings(), engine.index - 2, None, reverb_min=3)
    policy.accepted(engine, snapshot_point=True)
    assert not policy.wanted  # two since the run began: below the minimum
    policy.accepted(engine, snapshot_point=False)
    assert not policy.wanted
    third = SnapshotPolicy(LifecycleSettings(), engine.index - 3, None, reverb_min=3)
    third.accepted(engine, snapshot_point=True)
    assert third.wanted and third.due(engine)


def test_terminated_project_snapshots_only_when_asked(engine: Engine) -> None:
    engine.document["control"]["top"] = "TERMINATED"
    policy = SnapshotPolicy(LifecycleSettings(snapshot_every=1), engine.index - 5, None, reverb_min=1)
    assert not policy.due(engine)
    policy.wanted = True
    assert policy.due(engine)
