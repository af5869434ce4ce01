"""Decision-record delivery: an append-only JSONL file per project (default) or a BUBBLE HTTP sink.

Delivery is idempotent on `(index, dr_hash)`: a batch re-sent after a crash or a continue-as-new
skips what the sink already holds, and a different record at an index already written is refused
loudly (that would be a forked chain, never something to paper over).
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import re
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import httpx
from pydantic import BaseModel, ConfigDict, field_validator
from temporalio import activity
from temporalio.exceptions import ApplicationError

from swoosh.workflows.canonical import canonical_json
from swoosh.workflows.ids import PROJECT_ID_RE
from swoosh.workflows.messages import ACTIVITY_DELIVER, DeliveryRequest, DeliveryResult


class RecordsSettings(BaseModel):
    """Where decision records go: local JSONL files (`<data_dir>/decisions`) unless a BUBBLE URL is set."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bubble_url: str | None = None  # POST {bubble_url}/projects/{id}/decisions

    @field_validator("bubble_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not re.match(r"^https?://[^\s/]+(/\S*)?$", value):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")


class DecisionSink(Protocol):
    async def deliver(self, project_id: str, records: list[dict[str, Any]]) -> DeliveryResult: ...


class JsonlSink:
    """`<root>/<project_id>.jsonl`, one canonical record per line, fsync'd per batch."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._locks: dict[str, asyncio.Lock] = {}

    def path(self, project_id: str) -> Path:
        if not PROJECT_ID_RE.fullmatch(project_id):
            raise ValueError(f"bad project id {project_id!r}")
        return self.root / f"{project_id}.jsonl"

    @staticmethod
    def _tail(fh: BinaryIO) -> tuple[int, str | None]:
        """The index and dr_hash of the file's last record (reads backwards from the end)."""
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        block = 65536
        data = b""
        pos = size
        while pos > 0:
            step = min(block, pos)
            pos -= step
            fh.seek(pos)
            data = fh.read(step) + data
            lines = [ln for ln in data.split(b"\n") if ln.strip()]
            if len(lines) >= 2 or (lines and pos == 0):
                rec = json.loads(lines[-1])
                return int(rec["index"]), str(rec["dr_hash"])
        return 0, None

    def read(self, project_id: str, after_index: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        path = self.path(project_id)
        out: list[dict[str, Any]] = []
        if not path.exists():
            return out
        with path.open("rb") as fh:
            for line in fh:
                if not line.strip():
                    continue
                rec = json.loads(line)
                if int(rec["index"]) > after_index:
                    out.append(rec)
                    if len(out) >= limit:
                        break
        return out

    async def deliver(self, project_id: str, records: list[dict[str, Any]]) -> DeliveryResult:
        lock = self._locks.setdefault(project_id, asyncio.Lock())
        async with lock:
            return await asyncio.to_thread(self._deliver_sync, project_id, records)

    def _deliver_sync(self, project_id: str, records: list[dict[str, Any]]) -> DeliveryResult:
        self.root.mkdir(parents=True, exist_ok=True)
        # Several worker processes may deliver for one project (after a crash, a retry may land on
        # another worker): the file's own tail, read under an exclusive lock, is the only truth.
        with self.path(project_id).open("a+b") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                last_index, last_hash = self._tail(fh)
                fresh = []
                skipped = 0
                for rec in sorted(records, key=lambda r: int(r["index"])):
                    index = int(rec["index"])
                    if index <= last_index:
                        if index == last_index and rec["dr_hash"] != last_hash:
                            raise ApplicationError(
                                f"sink holds a different record at index {index}",
                                type="DecisionChainFork",
                                non_retryable=True,
                            )
                        skipped += 1
                        continue
                    if index != last_index + 1 or rec["prev_dr_hash"] != last_hash:
                        raise ApplicationError(
                            f"record {index} does not follow the sink's head {last_index}",
                            type="DecisionChainGap",
                            non_retryable=True,
                        )
                    fresh.append(rec)
                    last_index, last_hash = index, str(rec["dr_hash"])
                if fresh:
                    fh.seek(0, os.SEEK_END)
                    fh.write(b"".join(canonical_json(r) + b"\n" for r in fresh))
                    fh.flush()
                    os.fsync(fh.fileno())
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        return DeliveryResult(delivered=len(fresh), skipped=skipped, last_index=last_index)


class HttpSink:
    """POST each batch to a BUBBLE endpoint (`{base}/projects/{id}/decisions`); the server dedupes on dr_hash."""

    def __init__(self, base_url: str, timeout_s: float = 10.0, token: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.AsyncClient(base_url=base_url, timeout=timeout_s, headers=headers)

    async def deliver(self, project_id: str, records: list[dict[str, Any]]) -> DeliveryResult:
        try:
            resp = await self._client.post(f"/projects/{project_id}/decisions", json={"records": records})
        except httpx.HTTPError as err:
            raise ApplicationError(f"BUBBLE sink unreachable: {type(err).__name__}", type="SinkUnavailable") from None
        if resp.status_code >= 500:
            raise ApplicationError(f"BUBBLE sink answered {resp.status_code}", type="SinkUnavailable")
        if resp.status_code >= 400:
            raise ApplicationError(
                f"BUBBLE sink refused the batch: {resp.status_code}", type="SinkRefused", non_retryable=True
            )
        return DeliveryResult(delivered=len(records), skipped=0, last_index=max(int(r["index"]) for r in records))

    async def aclose(self) -> None:
        await self._client.aclose()


def decision_sink(settings: RecordsSettings, data_dir: Path) -> DecisionSink:
    """The BUBBLE sink when a URL is configured, else the local JSONL files under `data_dir`."""
    if settings.bubble_url:
        return HttpSink(settings.bubble_url)
    return JsonlSink(data_dir / "decisions")


class DeliveryActivities:
    def __init__(self, sink: DecisionSink) -> None:
        self.sink = sink

    @activity.defn(name=ACTIVITY_DELIVER)
    async def deliver(self, request: DeliveryRequest) -> DeliveryResult:
        return await self.sink.deliver(request.project_id, request.records)
