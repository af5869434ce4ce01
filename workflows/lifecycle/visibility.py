"""What the Temporal UI and visibility queries show of a project: search attributes and current details."""

from __future__ import annotations

from typing import Any

from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

from swoosh.workflows.document import phases

SA_TOP = SearchAttributeKey.for_keyword("SwooshTop")
SA_INGESTION = SearchAttributeKey.for_keyword("SwooshIngestion")
SA_COUNCIL = SearchAttributeKey.for_keyword("SwooshCouncil")
SA_ENVIRONMENT = SearchAttributeKey.for_keyword("SwooshEnvironment")
SA_EXECUTION = SearchAttributeKey.for_keyword("SwooshExecution")
SA_QUARANTINED = SearchAttributeKey.for_bool("SwooshQuarantined")
SA_INDEX = SearchAttributeKey.for_int("SwooshIndex")
# The migration control workflow's mode (workflows/lifecycle/migration.py).
SA_MIGRATION_MODE = SearchAttributeKey.for_keyword("SwooshMigrationMode")
SEARCH_ATTRIBUTES = (
    SA_TOP,
    SA_INGESTION,
    SA_COUNCIL,
    SA_ENVIRONMENT,
    SA_EXECUTION,
    SA_QUARANTINED,
    SA_INDEX,
    SA_MIGRATION_MODE,
)


def search_attributes_of(doc: dict[str, Any]) -> TypedSearchAttributes:
    """The typed search attributes describing a document (for start and for upserts)."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(SA_TOP, doc["control"]["top"]),
            SearchAttributePair(SA_INGESTION, doc["ingestion"]["phase"] or "-"),
            SearchAttributePair(SA_COUNCIL, doc["council"]["phase"] or "-"),
            SearchAttributePair(SA_ENVIRONMENT, doc["environment"]["phase"] or "-"),
            SearchAttributePair(SA_EXECUTION, doc["execution"]["phase"] or "-"),
            SearchAttributePair(SA_QUARANTINED, bool(doc["policy"]["quarantined"])),
            SearchAttributePair(SA_INDEX, int(doc["meta"]["index"])),
        ]
    )


def details(
    doc: dict[str, Any], head_hash: str, runs: int, snapshot_index: int, undelivered: int, api_url: str | None = None
) -> str:
    """The workflow's current details (markdown) for the Temporal UI; with the API's URL, links to its pictures.

    Only text for the UI (served by a built-in query, never written to history), so it may change freely.
    """
    ph = phases(doc)
    text = (
        f"**{ph['top']}** · index {doc['meta']['index']} · head `{head_hash[:19]}…`\n\n"
        f"ingestion {ph['ingestion']} · council {ph['council']} · environment {ph['environment']} · "
        f"execution {ph['execution']} · licence {ph['license']}\n\n"
        f"run {runs} (snapshot at index {snapshot_index}) · undelivered records {undelivered}"
    )
    if api_url:
        project = f"{api_url.rstrip('/')}/v1/projects/{doc['meta']['project_id']}"
        text += (
            f"\n\n[statechart]({project}/diagram) · [as Mermaid]({project}/diagram?format=mermaid) · "
            f"[state]({project}/state?projection=meta) · [decisions]({project}/decisions)"
        )
    return text
