"""The SRE kit: read project histories, replay them, fold them through the pure reducer, audit records.

    from swoosh.workflows.replay import fetch_project_runs, replay_projects, audit

`swoosh replay` and `swoosh audit verify` are the command lines over it; the chaos and determinism
harnesses use it to check their runs.
"""

from swoosh.workflows.replay.audit import audit, read_records
from swoosh.workflows.replay.fold import FoldResult, fold
from swoosh.workflows.replay.history import (
    RunFacts,
    decode_histories,
    fetch_project_runs,
    history_files,
    load_history_file,
    run_facts,
)
from swoosh.workflows.replay.replayer import ProjectReport, group_by_project, replay_projects
from swoosh.workflows.replay.replicas import Replica, replica_pass

__all__ = [
    "FoldResult",
    "ProjectReport",
    "Replica",
    "RunFacts",
    "audit",
    "decode_histories",
    "fetch_project_runs",
    "fold",
    "group_by_project",
    "history_files",
    "load_history_file",
    "read_records",
    "replay_projects",
    "replica_pass",
    "run_facts",
]
