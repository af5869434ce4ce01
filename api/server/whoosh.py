"""WHOOSH-compatible requests mapped onto exactly one catalogued transition, or `not_mappable` (501).

`POST /api/v1/opportunities/council` takes CHORUS's council opportunity (as WHOOSH sends it) and
`POST /api/v1/tasks` WHOOSH's older task request. A request maps deterministically — the same request
always to the same transition and inputs — or it is answered 501 with a reason that says what would
map. docs/migration.md tabulates every mapping.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from swoosh.workflows.canonical import canonical_json
from swoosh.workflows.ids import PROJECT_ID_RULE, is_project_id
from swoosh.workflows.inputs import MAX_ITEMS, MAX_TEXT
from swoosh.workflows.statechart import default_statechart

COUNCIL_TRANSITION = "Council_ProfilesLoaded"
COUNCIL_PATH = "/api/v1/opportunities/council"
TASKS_PATH = "/api/v1/tasks"


class NotMappable(Exception):
    """A request that maps to no single transition; `reason` says what would."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BadRequest(Exception):
    """A request that is not the documented shape (a 400 `schema`)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CouncilRole(BaseModel):
    """One role of a council opportunity, as CHORUS describes it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    role_name: str = Field(min_length=1, max_length=MAX_TEXT)
    agent_name: str | None = None
    required: bool = False
    required_skills: list[str] = Field(default_factory=list)
    description: str = ""


class CouncilOpportunity(BaseModel):
    """CHORUS's council opportunity (from WHOOSH)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    council_id: str
    project_name: str = ""
    repository: str = ""
    project_brief: str = ""
    core_roles: list[CouncilRole] = Field(default_factory=list, max_length=MAX_ITEMS)
    optional_roles: list[CouncilRole] = Field(default_factory=list, max_length=MAX_ITEMS)
    ucxl_address: str | None = None
    formation_deadline: str | None = None
    created_at: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class WhooshTask(BaseModel):
    """WHOOSH's older task request."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str = Field(min_length=1, max_length=128)
    priority: int = Field(default=3, ge=1, le=5)
    context: dict[str, Any] = Field(default_factory=dict)
    preferred_agent: str | None = Field(default=None, max_length=256)
    timeout: int | None = Field(default=None, ge=0)


class Mapped(BaseModel):
    """What a request maps to: one transition of one project, with inputs and evidence."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    project_id: str
    transition: str
    inputs: dict[str, Any]
    evidence: list[str] | None = None
    derived_idem_key: str | None = None  # used when the caller sent no Idempotency-Key


def _first(err: ValidationError) -> str:
    e = err.errors()[0]
    loc = ".".join(str(x) for x in e["loc"]) or "body"
    return f"{loc}: {'field required' if e['type'] == 'missing' else e['msg']}"


def map_council(body: Any) -> Mapped:
    """A council opportunity → `Council_ProfilesLoaded` of project `council_id` with the roles it names."""
    try:
        op = CouncilOpportunity.model_validate(body)
    except ValidationError as err:
        raise BadRequest(f"not a council opportunity: {_first(err)}") from None
    if not is_project_id(op.council_id):
        raise BadRequest(f"council_id is the project id: {PROJECT_ID_RULE}")
    roles: list[str] = []
    for role in (*op.core_roles, *op.optional_roles):
        if role.role_name not in roles:
            roles.append(role.role_name)
    if not roles:
        raise NotMappable(
            f"a council opportunity without roles maps to no transition: {COUNCIL_TRANSITION} needs at least "
            "one role (core_roles or optional_roles with a role_name)"
        )
    evidence = [op.ucxl_address] if op.ucxl_address and 1 <= len(op.ucxl_address) <= 512 else None
    digest = hashlib.sha256(canonical_json(op.model_dump(mode="json"))).hexdigest()[:24]
    return Mapped(
        project_id=op.council_id,
        transition=COUNCIL_TRANSITION,
        inputs={"roles": roles},
        evidence=evidence,
        derived_idem_key=f"council-opportunity:{op.council_id}:{digest}",
    )


def council_not_active(project_id: str, phase: dict[str, str | None]) -> NotMappable:
    """The 501 for an opportunity whose project's council region is not where it maps."""
    top, council = phase.get("top"), phase.get("council")
    if top in ("UNINITIALIZED", "LICENSE_CHECK"):
        what = "boot it first: Boot_ConfigOk, then Boot_Licensed (POST /transition), then resend the opportunity"
    elif council in ("ELECT", "TOOLING_SYNC", "READY"):
        what = (
            "its council was formed already; the next council step is a transition of its own "
            "(Council_QuorumCert, Council_McpGreen, Council_Eject) sent with POST /transition"
        )
    else:
        what = f"it is {top}; nothing a council opportunity maps to applies there"
    return NotMappable(
        f"a council opportunity maps to {COUNCIL_TRANSITION}, which applies while project {project_id}'s council "
        f"region is PLAN_ROLES (top PROJECT_LIFECYCLE or RECOVERY); it is top {top}, council {council or '-'}: {what}"
    )


def caller_transitions() -> list[str]:
    chart = default_statechart()
    return [name for name, t in chart.transitions.items() if not t.spec.system]


def map_task(body: Any, project_id: str) -> Mapped:
    """A task whose `type` names a caller's transition → that transition, with `context` as its inputs."""
    try:
        task = WhooshTask.model_validate(body)
    except ValidationError as err:
        raise BadRequest(f"not a task: {_first(err)}") from None
    names = caller_transitions()
    by_lower = {n.lower(): n for n in names}
    name = by_lower.get(task.type.lower())
    if name is None:
        region = [n for n in names if n.split("_", 1)[0].lower() == task.type.lower()]
        if region:
            raise NotMappable(
                f"task type {task.type!r} names a region with {len(region)} transitions ({', '.join(region)}): "
                "a task maps when its type names exactly one of them"
            )
        raise NotMappable(
            f"task type {task.type[:64]!r} maps to no transition: a task maps when its type names a transition "
            f"(its context is that transition's inputs), one of {', '.join(names)}"
        )
    return Mapped(project_id=project_id, transition=name, inputs=dict(task.context))
