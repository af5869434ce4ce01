"""Decision-record stores: where the delivery activity writes records and the API reads old pages.

Three stores, chosen by `[records] store`: `jsonl` (an append-only file per project under
`<data_dir>/decisions`; one host, or hosts sharing a POSIX file system), `postgres` (shared by every
host) and `bubble` (a BUBBLE HTTP endpoint). Each holds a project's records as one chain 1..N and
applies the same rule on delivery (`plan_delivery`): a record the store already holds with the same
`dr_hash` is skipped; a record it holds with another `dr_hash` anywhere in the batch is a fork, and
a new record must link (`prev_dr_hash`) to the store's record before it, else it is a gap. Forks and
gaps are refused loudly (a non-retryable activity failure): the workflow keeps those records,
reports the refusal in its health and never counts them as delivered.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Protocol, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from temporalio import activity
from temporalio.exceptions import ApplicationError

from swoosh.activities.receipts import ReceiptSigner
from swoosh.workflows.errors import ConfigError
from swoosh.workflows.messages import (
    ACTIVITY_DELIVER,
    SINK_FORK_ERROR_TYPE,
    SINK_GAP_ERROR_TYPE,
    DeliveryRequest,
    DeliveryResult,
)

StoreKind = Literal["jsonl", "postgres", "bubble"]


class RecordsSettings(BaseModel):
    """Where decision records go and where the API reads the pages the workflow no longer holds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    store: StoreKind = "jsonl"
    postgres_dsn: SecretStr | None = None  # libpq URI or key=value string; holds the password
    postgres_dsn_file: Path | None = None
    bubble_url: str | None = None  # POST/GET {bubble_url}/projects/{id}/decisions
    bubble_token: SecretStr | None = None
    bubble_token_file: Path | None = None
    bubble_ca: Path | None = None  # PEM CA bundle to verify an https:// BUBBLE endpoint
    timeout_ms: int = Field(default=10_000, ge=100, le=120_000)

    @model_validator(mode="before")
    @classmethod
    def _bubble_by_url(cls, data: Any) -> Any:
        # Before `store` existed a BUBBLE URL alone chose the BUBBLE sink: keep that meaning.
        if isinstance(data, dict) and data.get("bubble_url") and not data.get("store"):
            return {**data, "store": "bubble"}
        return data

    @field_validator("bubble_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not re.match(r"^https?://[^\s/]+(/\S*)?$", value):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        for name in ("postgres_dsn", "bubble_token"):
            if getattr(self, name) is not None and getattr(self, f"{name}_file") is not None:
                raise ValueError(f"give {name} or {name}_file, not both")
        if self.store == "postgres" and self.postgres_dsn is None and self.postgres_dsn_file is None:
            raise ValueError("store 'postgres' needs postgres_dsn or postgres_dsn_file")
        if self.store == "bubble" and self.bubble_url is None:
            raise ValueError("store 'bubble' needs bubble_url")
        if self.bubble_ca is not None and not self.bubble_ca.is_file():
            raise ValueError(f"bubble_ca {self.bubble_ca} is not a readable file")
        return self

    def resolved_postgres_dsn(self) -> str:
        """The DSN from `postgres_dsn` or else `postgres_dsn_file` (a secret: never log it)."""
        return _secret(self.postgres_dsn, self.postgres_dsn_file, "postgres_dsn") or ""

    def resolved_bubble_token(self) -> str | None:
        return _secret(self.bubble_token, self.bubble_token_file, "bubble_token")


def _secret(value: SecretStr | None, path: Path | None, name: str) -> str | None:
    if value is not None:
        return value.get_secret_value()
    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as err:
        raise StoreConfigError(f"records.{name}_file {path}: {err.strerror}") from None
    return text or None


class StoreConfigError(ConfigError):
    """The configured store cannot be used as configured (the message names the setting)."""


class DecisionStore(Protocol):
    """A decision-record store: deliveries from the workflow, pages for the API, schema for `swoosh setup`."""

    kind: str

    async def deliver(self, project_id: str, records: list[dict[str, Any]]) -> DeliveryResult:
        """Store the records (idempotent); an ApplicationError for a fork, a gap or an unavailable store."""
        ...

    async def page(self, project_id: str, after_index: int, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` records of the project with index > `after_index`, in index order, without holes."""
        ...

    async def setup(self) -> str:
        """Create what the store needs (idempotent); says what it did."""
        ...

    async def deliver_receipts(self, project_id: str, receipts: list[dict[str, Any]]) -> None:
        """Store signed snapshot receipts (idempotent by `from_index`; a different one there is refused)."""
        ...

    async def receipts(self, project_id: str) -> list[dict[str, Any]]:
        """Every snapshot receipt of the project, by `from_index`."""
        ...

    async def aclose(self) -> None: ...


# ---------------------------------------------------------------------- the chain rule
def fork_error(project_id: str, index: int, held: str | None, offered: str, why: str) -> ApplicationError:
    return ApplicationError(
        f"project {project_id}: {why} at index {index} (store holds {held}, workflow offers {offered}); "
        "a forked chain is never overwritten: resolve it in the store, see docs/operations.md",
        {"project_id": project_id, "index": index, "held": held, "offered": offered},
        type=SINK_FORK_ERROR_TYPE,
        non_retryable=True,
    )


def gap_error(project_id: str, index: int, store_head: int | None) -> ApplicationError:
    return ApplicationError(
        f"project {project_id}: record {index} does not follow the store, which lacks record {index - 1}"
        + (f" (its last record is {store_head})" if store_head is not None else ""),
        {"project_id": project_id, "index": index, "store_head": store_head},
        type=SINK_GAP_ERROR_TYPE,
        non_retryable=True,
    )


def plan_delivery(
    project_id: str, records: list[dict[str, Any]], held: Mapping[int, str], store_head: int | None = None
) -> tuple[list[dict[str, Any]], int]:
    """The records to write and how many the store already holds.

    `held` maps index -> dr_hash for what the store holds at every index of the batch and the one
    before its first record (missing = not held). Raises the fork or gap ApplicationError.
    """
    known = dict(held)
    fresh: list[dict[str, Any]] = []
    skipped = 0
    for rec in sorted(records, key=lambda r: int(r["index"])):
        index, dr_hash = int(rec["index"]), str(rec["dr_hash"])
        have = known.get(index)
        if have is not None:
            if have != dr_hash:
                raise fork_error(project_id, index, have, dr_hash, "a different record")
            skipped += 1
            continue
        prev = known.get(index - 1) if index > 1 else None
        if index > 1 and prev is None:
            raise gap_error(project_id, index, store_head)
        if rec.get("prev_dr_hash") != prev:
            raise fork_error(project_id, index - 1, prev, str(rec.get("prev_dr_hash")), "a chain that links elsewhere")
        fresh.append(rec)
        known[index] = dr_hash
    return fresh, skipped


def result_of(records: list[dict[str, Any]], fresh: list[dict[str, Any]], skipped: int) -> DeliveryResult:
    return DeliveryResult(
        delivered=len(fresh), skipped=skipped, last_index=max((int(r["index"]) for r in records), default=0)
    )


# ---------------------------------------------------------------------- composition
def decision_store(settings: RecordsSettings, data_dir: Path) -> DecisionStore:
    """The configured store: JSONL files under `<data_dir>/decisions`, PostgreSQL, or BUBBLE."""
    if settings.store == "postgres":
        from swoosh.activities.records_postgres import PostgresStore

        return PostgresStore(settings.resolved_postgres_dsn(), timeout_s=settings.timeout_ms / 1000)
    if settings.store == "bubble":
        from swoosh.activities.records_bubble import BubbleStore

        assert settings.bubble_url is not None  # checked by the settings
        return BubbleStore(
            settings.bubble_url,
            token=settings.resolved_bubble_token(),
            ca_file=settings.bubble_ca,
            timeout_s=settings.timeout_ms / 1000,
        )
    from swoosh.activities.records_jsonl import JsonlSink

    return JsonlSink(Path(data_dir) / "decisions")


READY_PROBE_PROJECT = "swoosh-readyz"  # a project id no one uses: a one-record read of it proves the store answers


async def store_problem(store: DecisionStore) -> str | None:
    """Why the store cannot be used now (for a process's `/readyz`), or None.

    The store's own `check()` when it has one (JSONL: its folder is writable), else a one-record read.
    """
    check = getattr(store, "check", None)
    try:
        if check is not None:
            reason: str | None = await check()
            return reason
        await store.page(READY_PROBE_PROJECT, 0, 1)
    except Exception as err:  # any failure of the store is the store's, reported as such
        return f"the decision-record store ({store.kind}) cannot be used: {type(err).__name__}"
    return None


def receipt_conflict(project_id: str, held: dict[str, Any], offered: dict[str, Any]) -> ApplicationError:
    """A store holds another receipt for the same interval start: never overwritten (like a forked chain)."""
    return ApplicationError(
        f"project {project_id}: the store holds a receipt from index {held.get('from_index')} with root "
        f"{held.get('merkle_root')} to {held.get('to_index')}, the workflow offers {offered.get('merkle_root')} "
        f"to {offered.get('to_index')}",
        {"project_id": project_id, "index": held.get("from_index")},
        type=SINK_FORK_ERROR_TYPE,
        non_retryable=True,
    )


def same_receipt(held: dict[str, Any], offered: dict[str, Any]) -> bool:
    """Equal interval and root: the same receipt (its signature may be another key's)."""
    return all(held.get(k) == offered.get(k) for k in ("from_index", "to_index", "merkle_root"))


class DeliveryActivities:
    """The delivery activity: records first, then the snapshot receipts they complete, signed here."""

    def __init__(self, sink: DecisionStore, signer: ReceiptSigner | None = None) -> None:
        self.sink = sink
        self.signer = signer or ReceiptSigner(None)

    @activity.defn(name=ACTIVITY_DELIVER)
    async def deliver(self, request: DeliveryRequest) -> DeliveryResult:
        result = await self.sink.deliver(request.project_id, request.records)
        if request.receipts:
            signed = self.signer.sign(request.receipts)
            # A store written before receipts existed keeps none: they stay in the history (this result).
            store_receipts = getattr(self.sink, "deliver_receipts", None)
            if store_receipts is not None:
                await store_receipts(request.project_id, signed)
            result = result.model_copy(update={"receipts": signed})
        return result
