"""The workflow registers its handlers under the names histories are parsed by."""

from __future__ import annotations

from temporalio.workflow import _Definition

from swoosh.workflows import messages
from swoosh.workflows.lifecycle import ProjectLifecycle


def test_workflow_handler_names_are_the_message_names() -> None:
    defn = _Definition.must_from_class(ProjectLifecycle)
    assert defn.name == messages.WORKFLOW_NAME
    assert set(defn.updates) == {messages.UPDATE_TRANSITION, messages.UPDATE_DRY_RUN, messages.UPDATE_QUARANTINE}
    assert set(defn.signals) == {messages.SIGNAL_PROPOSE, messages.SIGNAL_SNAPSHOT}
    assert set(defn.queries) == {
        messages.QUERY_STATE,
        messages.QUERY_HEAD,
        messages.QUERY_HEALTH,
        messages.QUERY_DECISIONS,
        messages.QUERY_REJECTIONS,
        messages.QUERY_RECEIPTS,
        messages.QUERY_ANSWER,
        messages.QUERY_SEEN,
    }
