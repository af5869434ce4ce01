"""Names of a running project: the project-id rule and the workflow id derived from it."""

from __future__ import annotations

import re

PROJECT_ID_PATTERN = r"[A-Za-z0-9_.-]{1,64}"
PROJECT_ID_RE = re.compile(PROJECT_ID_PATTERN)  # always used with fullmatch
PROJECT_ID_RULE = "project_id must be 1-64 of [A-Za-z0-9_.-]"
WORKFLOW_ID_PREFIX = "swoosh-project-"


def is_project_id(value: object) -> bool:
    return isinstance(value, str) and PROJECT_ID_RE.fullmatch(value) is not None


def workflow_id(project_id: str) -> str:
    """The Temporal workflow id of a project (docs/contract.md: `swoosh-project-<project_id>`)."""
    return f"{WORKFLOW_ID_PREFIX}{project_id}"
