"""The OpenAPI document is served and committed (api/server/openapi.json); they must not differ."""

from __future__ import annotations

import json

import httpx

from swoosh.api.server.openapi import OPENAPI_PATH, main, openapi_document, render
from tests.api.conftest import ApiServer


def test_openapi_committed_equals_served(http: httpx.Client, api: ApiServer) -> None:
    served = http.get("/openapi.json")
    assert served.status_code == 200
    committed = json.loads(OPENAPI_PATH.read_text(encoding="utf-8"))
    assert served.json() == committed, (
        "api/server/openapi.json is out of date: run `python -m swoosh.api.server.openapi`"
    )
    assert OPENAPI_PATH.read_text(encoding="utf-8") == render(openapi_document())


def test_openapi_documents_every_endpoint_and_status() -> None:
    doc = openapi_document()
    paths = doc["paths"]
    assert set(paths) == {
        "/transition",
        "/state",
        "/health",
        "/metrics",
        "/livez",
        "/readyz",
        "/v1/projects/{project_id}",
        "/v1/projects/{project_id}/transition",
        "/v1/projects/{project_id}/state",
        "/v1/projects/{project_id}/health",
        "/v1/projects/{project_id}/decisions",
        "/v1/projects/{project_id}/diagram",
        "/v1/projects/{project_id}/receipts",
        "/v1/projects/{project_id}/window",
        "/v1/projects/{project_id}/shadow",
        "/v1/migration",
        "/v1/migration/catch-up",
        "/api/v1/opportunities/council",
        "/api/v1/tasks",
    }
    for path in ("/api/v1/opportunities/council", "/api/v1/tasks"):
        assert {"202", "400", "501"} <= set(paths[path]["post"]["responses"])
    assert set(paths["/v1/migration"]) == {"get", "put"}
    for path in ("/transition", "/v1/projects/{project_id}/transition"):
        responses = paths[path]["post"]["responses"]
        assert {"200", "202", "400", "401", "404", "413", "429", "503"} <= set(responses)
        assert "dry_run" in {p["name"] for p in paths[path]["post"]["parameters"]}
        assert "requestBody" in paths[path]["post"]
    assert "at" in {p["name"] for p in paths["/v1/projects/{project_id}/state"]["get"]["parameters"]}
    diagram = paths["/v1/projects/{project_id}/diagram"]["get"]
    assert {"image/svg+xml", "text/plain"} <= set(diagram["responses"]["200"]["content"])
    headers = {p["name"] for p in paths["/transition"]["post"]["parameters"]}
    assert {"Idempotency-Key", "X-HLC", "X-Window-Id", "X-Project-Id"} <= headers


def test_openapi_check_command(capsys: object) -> None:
    assert main(["--check"]) == 0
