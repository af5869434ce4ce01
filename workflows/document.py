"""The state document: ten top-level sections, canonical and hashed, with no floats anywhere.

The reducer works on the plain JSON form (dicts) for speed; these models validate that form at
every boundary (genesis, snapshots, replays) so a malformed document never enters the engine.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from swoosh.workflows.canonical import content_hash
from swoosh.workflows.keyring import Keyring
from swoosh.workflows.statechart import SECTIONS, Statechart


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Meta(_Section):
    machine: StrictStr
    machine_version: StrictInt
    schema_hash: StrictStr
    project_id: StrictStr
    index: StrictInt = 0
    last_signer: StrictStr | None = None
    last_idem_key: StrictStr | None = None


class IdentityDoc(_Section):
    id: StrictStr
    roles: list[StrictStr]


class LicenseDoc(_Section):
    status: Literal["unknown", "valid", "denied", "expired"] = "unknown"
    license_id: StrictStr | None = None


class Boot(_Section):
    phase: StrictStr
    config_hash: StrictStr | None = None
    license: LicenseDoc = Field(default_factory=LicenseDoc)
    identities: list[IdentityDoc]


class PinnedIndex(_Section):
    content_hash: StrictStr
    version: StrictInt


class Ingestion(_Section):
    phase: StrictStr | None = None
    sources: list[StrictStr] = Field(default_factory=list)
    bytes_hash: StrictStr | None = None
    byte_count: StrictInt | None = None
    schema_hash: StrictStr | None = None
    validation: StrictStr | None = None
    pinned: PinnedIndex | None = None
    versions: list[PinnedIndex] = Field(default_factory=list)


class QuorumCertDoc(_Section):
    members_hash: StrictStr
    voters: list[StrictStr]
    window_id: StrictStr | None


class Tooling(_Section):
    status: StrictStr = "unknown"
    pins: dict[str, StrictStr] = Field(default_factory=dict)


class Council(_Section):
    phase: StrictStr | None = None
    roles: list[StrictStr] = Field(default_factory=list)
    members: list[StrictStr] = Field(default_factory=list)
    members_hash: StrictStr | None = None
    quorum_cert: QuorumCertDoc | None = None
    tooling: Tooling = Field(default_factory=Tooling)
    ejected: list[StrictStr] = Field(default_factory=list)


class Environment(_Section):
    phase: StrictStr | None = None
    allocations: list[StrictStr] = Field(default_factory=list)
    assets: list[StrictStr] = Field(default_factory=list)
    health: StrictStr = "unknown"


class Execution(_Section):
    phase: StrictStr
    cycle: StrictInt = 0
    plan_hash: StrictStr | None = None
    window_id: StrictStr | None = None
    work_evidence: list[StrictStr] | None = None
    approvals: list[StrictStr] = Field(default_factory=list)
    readiness: dict[str, StrictStr] | None = None


class LicenseControl(_Section):
    phase: StrictStr
    grace_deadline_ms: StrictInt | None = None
    external_comms: StrictBool = True


class Control(_Section):
    top: StrictStr
    paused_from: StrictStr | None = None
    reason: StrictStr | None = None
    license: LicenseControl


class Policy(_Section):
    quarantined: StrictBool = False
    quarantined_from: StrictStr | None = None
    rationale: StrictStr | None = None
    quarantine_count: StrictInt = 0
    blocked: StrictBool = False
    block_reason: StrictStr | None = None


class StateDocument(_Section):
    """The whole document; `model_dump()` is exactly the JSON the reducer works on and hashes."""

    meta: Meta
    boot: Boot
    ingestion: Ingestion
    council: Council
    environment: Environment
    execution: Execution
    control: Control
    policy: Policy
    epoch: dict[str, StrictInt]
    hlc_last: StrictStr | None


EPOCH_REGIONS = ("boot", "ingestion", "council", "environment", "execution", "control", "policy", "license")


def genesis(chart: Statechart, project_id: str, keyring: Keyring) -> dict[str, Any]:
    """The deterministic first document of a project: same config + keyring → same hash."""
    doc = StateDocument(
        meta=Meta(
            machine=chart.doc.machine,
            machine_version=chart.doc.version,
            schema_hash=chart.schema_hash,
            project_id=project_id,
        ),
        boot=Boot(
            phase=chart.machines["boot"].initial,
            identities=[IdentityDoc.model_validate(i) for i in keyring.identities()],
        ),
        ingestion=Ingestion(),
        council=Council(),
        environment=Environment(),
        execution=Execution(phase=chart.machines["execution"].initial),
        control=Control(top=chart.top.initial, license=LicenseControl(phase=chart.machines["license"].initial)),
        policy=Policy(),
        epoch={r: 0 for r in EPOCH_REGIONS},
        hlc_last=None,
    )
    return doc.model_dump(mode="json")


def validate_document(doc: dict[str, Any]) -> dict[str, Any]:
    """Validate a document's JSON form; returns it unchanged or raises pydantic.ValidationError."""
    StateDocument.model_validate(doc)
    return doc


def state_hash(doc: dict[str, Any]) -> str:
    return content_hash(doc)


def phases(doc: dict[str, Any]) -> dict[str, str | None]:
    """The `phase` object of GET /state."""
    return {
        "top": doc["control"]["top"],
        "boot": doc["boot"]["phase"],
        "ingestion": doc["ingestion"]["phase"],
        "council": doc["council"]["phase"],
        "environment": doc["environment"]["phase"],
        "execution": doc["execution"]["phase"],
        "license": doc["control"]["license"]["phase"],
    }


def projection_sections(names: Iterable[str] | str | None) -> list[str] | None:
    """The sections of a `/state` projection: names or `Council,Ingestion` (case-insensitive).

    None (or no names) means the whole document. Raises ValueError naming unknown sections.
    """
    if names is None:
        return None
    parts = names.split(",") if isinstance(names, str) else list(names)
    wanted = [p.strip().lower() for p in parts if p.strip()]
    unknown = sorted({n for n in wanted if n not in SECTIONS})
    if unknown:
        raise ValueError(f"unknown projection section(s): {', '.join(unknown)}; sections are {', '.join(SECTIONS)}")
    return wanted or None
