"""The BUBBLE decision-record store: a BUBBLE HTTP endpoint, with a bearer token and an optional CA.

The endpoint (documented in docs/production.md, served for tests by `swoosh.workflows.testing.bubble`):
- `GET  {url}/projects/{id}/decisions?after_index=N&limit=M` → `{"records": [...]}`, index order, no holes;
- `POST {url}/projects/{id}/decisions` `{"records": [...]}` → `{"delivered", "skipped", "last_index"}`, or
  `409 {"error": "fork"|"gap", "index", "reason"}` when a record differs from one it holds or does not link;
- `GET  {url}/projects/{id}/receipts` → `{"receipts": [...]}` and `POST {url}/projects/{id}/receipts`
  `{"receipts": [...]}` → 200, or `409 {"error": "fork", "index", "reason"}` for a different receipt at a
  `from_index` it holds (signed snapshot receipts, docs/api.md). An endpoint without them (404) keeps none.

A delivery first reads what the endpoint holds at the batch's indexes (and the one before), applies
the chain rule itself (`plan_delivery`), then posts only the new records and checks the answer
covers them: a BUBBLE server that only compares its tail cannot make a fork look delivered.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import httpx
from temporalio.exceptions import ApplicationError

from swoosh.activities.decisions import fork_error, gap_error, plan_delivery, receipt_conflict, result_of
from swoosh.workflows.messages import SINK_REFUSED_ERROR_TYPE, DeliveryResult

MAX_PAGE = 1000


class BubbleUnavailable(RuntimeError):
    """The endpoint could not be reached or answered 5xx (retryable)."""


class BubbleStore:
    """Decision records at a BUBBLE endpoint (`kind = "bubble"`)."""

    kind = "bubble"

    def __init__(
        self, base_url: str, *, token: str | None = None, ca_file: Path | None = None, timeout_s: float = 10.0
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=str(ca_file)) if ca_file else True
        self.base_url = base_url
        self._client = httpx.AsyncClient(
            base_url=base_url, timeout=timeout_s, headers=headers, verify=verify, trust_env=False
        )

    def __repr__(self) -> str:
        return f"BubbleStore({self.base_url!r})"

    async def aclose(self) -> None:
        await self._client.aclose()

    async def setup(self) -> str:
        return f"decision records: BUBBLE endpoint {self.base_url} (its schema is its own)"

    async def _get(self, project_id: str, after_index: int, limit: int) -> list[dict[str, Any]]:
        try:
            resp = await self._client.get(
                f"/projects/{project_id}/decisions", params={"after_index": after_index, "limit": limit}
            )
        except httpx.HTTPError as err:
            raise BubbleUnavailable(f"BUBBLE unreachable: {type(err).__name__}") from None
        if resp.status_code == 404:
            return []
        if resp.status_code >= 400:
            raise BubbleUnavailable(f"BUBBLE answered {resp.status_code} to a page read")
        records = resp.json().get("records")
        if not isinstance(records, list):
            raise BubbleUnavailable("BUBBLE answered a page without a records list")
        return [r for r in records if isinstance(r, dict)]

    async def page(self, project_id: str, after_index: int, limit: int) -> list[dict[str, Any]]:
        return await self._get(project_id, after_index, max(0, min(limit, MAX_PAGE)))

    async def deliver(self, project_id: str, records: list[dict[str, Any]]) -> DeliveryResult:
        if not records:
            return DeliveryResult(delivered=0, skipped=0, last_index=0)
        first = min(int(r["index"]) for r in records)
        last = max(int(r["index"]) for r in records)
        start = max(1, first - 1)
        try:
            stored = await self._get(project_id, start - 1, last - start + 1)
        except BubbleUnavailable as err:
            raise ApplicationError(str(err), type="SinkUnavailable") from None
        held = {int(r["index"]): str(r.get("dr_hash")) for r in stored if start <= int(r["index"]) <= last}
        fresh, skipped = plan_delivery(project_id, records, held)
        if not fresh:
            return result_of(records, fresh, skipped)
        try:
            resp = await self._client.post(f"/projects/{project_id}/decisions", json={"records": fresh})
        except httpx.HTTPError as err:
            raise ApplicationError(f"BUBBLE unreachable: {type(err).__name__}", type="SinkUnavailable") from None
        if resp.status_code >= 500:
            raise ApplicationError(f"BUBBLE answered {resp.status_code}", type="SinkUnavailable")
        if resp.status_code == 409:
            body = _json(resp)
            index = int(body.get("index") or first)
            if body.get("error") == "gap":
                raise gap_error(project_id, index, None)
            raise fork_error(project_id, index, None, "?", f"BUBBLE refused: {str(body.get('reason'))[:200]}")
        if resp.status_code >= 400:
            raise ApplicationError(
                f"BUBBLE refused the batch: {resp.status_code}", type=SINK_REFUSED_ERROR_TYPE, non_retryable=True
            )
        got = _json(resp)
        acknowledged = got.get("last_index")
        if not isinstance(acknowledged, int) or acknowledged < last:
            raise ApplicationError(
                f"BUBBLE acknowledged up to {acknowledged}, not the batch up to {last}",
                type=SINK_REFUSED_ERROR_TYPE,
                non_retryable=True,
            )
        return result_of(records, fresh, skipped)

    async def receipts(self, project_id: str) -> list[dict[str, Any]]:
        try:
            resp = await self._client.get(f"/projects/{project_id}/receipts")
        except httpx.HTTPError as err:
            raise BubbleUnavailable(f"BUBBLE unreachable: {type(err).__name__}") from None
        if resp.status_code == 404:
            return []
        if resp.status_code >= 400:
            raise BubbleUnavailable(f"BUBBLE answered {resp.status_code} to a receipts read")
        found = _json(resp).get("receipts")
        if not isinstance(found, list):
            return []
        return sorted((r for r in found if isinstance(r, dict)), key=lambda r: int(r.get("from_index", 0)))

    async def deliver_receipts(self, project_id: str, receipts: list[dict[str, Any]]) -> None:
        try:
            resp = await self._client.post(f"/projects/{project_id}/receipts", json={"receipts": receipts})
        except httpx.HTTPError as err:
            raise ApplicationError(f"BUBBLE unreachable: {type(err).__name__}", type="SinkUnavailable") from None
        if resp.status_code == 404:
            return  # an endpoint that keeps no receipts: they stay in the workflow's history
        if resp.status_code >= 500:
            raise ApplicationError(f"BUBBLE answered {resp.status_code}", type="SinkUnavailable")
        if resp.status_code == 409:
            body = _json(resp)
            held = {"from_index": body.get("index"), "merkle_root": "?", "to_index": "?"}
            raise receipt_conflict(project_id, held, receipts[0])
        if resp.status_code >= 400:
            raise ApplicationError(
                f"BUBBLE refused the receipts: {resp.status_code}", type=SINK_REFUSED_ERROR_TYPE, non_retryable=True
            )


def _json(resp: httpx.Response) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
