"""Query answers built from the engine and outbox, and the UI's view of a project."""

from __future__ import annotations

import pytest

from swoosh.api.client import Signers
from swoosh.workflows.answers import Rejected
from swoosh.workflows.document import genesis
from swoosh.workflows.engine import Engine, EngineSnapshot
from swoosh.workflows.lifecycle import views
from swoosh.workflows.lifecycle.outbox import Outbox
from swoosh.workflows.lifecycle.visibility import SA_INDEX, SA_TOP, details, search_attributes_of
from swoosh.workflows.messages import LifecycleSettings, SecretQuarantine
from swoosh.workflows.proposal import ProposalRequest
from swoosh.workflows.statechart import default_statechart


@pytest.fixture(scope="module")
def engine() -> Engine:
    doc = genesis(default_statechart(), "views-p", Signers.generate().keyring())
    return Engine(default_statechart(), EngineSnapshot(document=doc))


def test_views_state_projection_is_case_insensitive_and_named(engine: Engine) -> None:
    view = views.state_view(engine, ["Council", " ingestion "])
    assert set(view.projection) == {"council", "ingestion"}
    assert view.hash == engine.head_hash and view.phase["license"] == "OK"  # the licence grace region too


def test_views_state_rejects_unknown_sections(engine: Engine) -> None:
    with pytest.raises(ValueError, match="unknown projection section"):
        views.state_view(engine, ["councill"])


def test_views_state_without_projection_is_the_whole_document(engine: Engine) -> None:
    assert views.state_view(engine, None).projection == engine.document


def test_views_health_degraded_while_the_sink_is_behind(engine: Engine) -> None:
    box = Outbox(LifecycleSettings(dr_batch=1), [], [], engine.index)
    kw = {"consensus": {}, "snapshot_index": 0, "snapshot_hlc": None, "inbox": 0, "runs": 0}
    assert views.health_view(engine, box, **kw).status == "ok"
    for i in range(1, 6):
        box.add({"index": i, "dr_hash": f"h{i}"})
    health = views.health_view(engine, box, **kw)
    assert (health.status, health.undelivered) == ("degraded", 5)


def test_views_rejection_entry_clips_callers_text() -> None:
    req = ProposalRequest(body={"idem_key": "k" * 500, "transition": "T" * 100})
    rejected = Rejected(error="schema", reason="r" * 5000, head_hash="sha256-" + "0" * 64)
    entry = views.rejection_entry(req, rejected, at_index=3)
    assert len(entry.idem_key or "") == 256 and len(entry.transition or "") == 64 and len(entry.reason) == 1000
    assert entry.reason.endswith("…") and entry.at_index == 3


def test_views_rejection_log_keeps_the_newest() -> None:
    log = views.rejection_log([], 2)
    for i in range(3):
        log.append(
            views.rejection_entry(ProposalRequest(body={}), Rejected(error="schema", reason=str(i), head_hash="h"), i)
        )
    assert [e.reason for e in log] == ["1", "2"]


def test_visibility_search_attributes_and_details(engine: Engine) -> None:
    attrs = {pair.key.name: pair.value for pair in search_attributes_of(engine.document).search_attributes}
    assert attrs[SA_TOP.name] == engine.top and attrs[SA_INDEX.name] == 0
    text = details(engine.document, engine.head_hash, runs=2, snapshot_index=0, undelivered=3)
    assert f"**{engine.top}**" in text and "run 2" in text and "undelivered records 3" in text


def test_views_refused_entry_names_rules_and_places_never_text() -> None:
    req = SecretQuarantine(breaches=["api-key (high) at inputs.note"], idem_key="k1", transition="Plan_Commit")
    entry = views.refused_entry(req, at_index=7, reason_chars=80)
    assert entry.error == "guard_failed" and entry.failing_guard == "policy" and entry.at_index == 7
    assert entry.reason.startswith("breach: api-key (high) at inputs.note") and len(entry.reason) <= 80


def test_views_decisions_page_and_answer_from_admission_alone(engine: Engine) -> None:
    box = Outbox(LifecycleSettings(), [], [], engine.index)
    page = views.decisions_page(engine, box, 0, 10)
    assert (page.project_id, page.records, page.head_index) == ("views-p", [], engine.index)
    answer = views.answer_view(engine, ProposalRequest(body={"transition": "Nope"}), now_ms=0)
    assert answer.rejected is not None and answer.rejected.error == "schema" and answer.accepted is None
