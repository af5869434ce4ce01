"""What a guard knows about the proposal being decided, besides its inputs."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class GuardContext(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    project_id: str
    transition: str
    signer: str
    window_id: str | None = None
    window_class: str | None = None
    evidence: tuple[str, ...] = ()
