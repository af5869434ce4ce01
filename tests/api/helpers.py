"""Small helpers for the end-to-end API tests."""

from __future__ import annotations

from typing import Any

import httpx

from swoosh.api.client._factory import ProposalFactory


def head(http: httpx.Client, project: str) -> str:
    resp = http.get(f"/v1/projects/{project}/state", params={"projection": "meta"})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["hash"])


def post(http: httpx.Client, project: str, body: Any, **headers: str) -> httpx.Response:
    return http.post(f"/v1/projects/{project}/transition", json=body, headers=headers)


def step(
    http: httpx.Client, factory: ProposalFactory, transition: str, inputs: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Propose `transition` with the right signer on the current head; assert it is accepted."""
    body = factory.body(transition, head(http, factory.project_id), inputs or {})
    resp = post(http, factory.project_id, body)
    assert resp.status_code == 202, resp.text
    data: dict[str, Any] = resp.json()
    return data
