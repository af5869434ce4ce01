"""`GET /v1/projects/{id}/diagram`, end to end on the real dev server, and its link in the Temporal UI.

A project is driven into EXECUTION; the SVG the API serves is parsed (xml.etree) and the states
marked active must be exactly where the project is — the top level, the EXECUTION loop, the licence
region — with the parallel regions' READY states held. The workflow's current details (what the
Temporal UI shows) link to the picture.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET

import httpx
import pytest
import temporalio.api.sdk.v1

from swoosh.api.client._factory import ProposalFactory
from swoosh.workflows.ids import workflow_id
from swoosh.workflows.messages import LifecycleSettings
from swoosh.workflows.testing.driver import LIFECYCLE
from tests.api.conftest import ServerFactory, Stack
from tests.api.helpers import HttpDriver, state

pytestmark = [pytest.mark.temporal, pytest.mark.timeout(180)]
SVG = "{http://www.w3.org/2000/svg}"


def marks(picture: bytes) -> dict[str, set[tuple[str, str]]]:
    out: dict[str, set[tuple[str, str]]] = {"active": set(), "held": set()}
    for g in ET.fromstring(picture).iter(f"{SVG}g"):
        classes = g.get("class", "").split()
        for mark in out:
            if "state" in classes and mark in classes:
                out[mark].add((g.get("data-machine", ""), g.get("data-state", "")))
    return out


def test_diagram_marks_where_the_project_is(stack: Stack, start_api: ServerFactory) -> None:
    server = start_api(lifecycle_settings=LifecycleSettings())
    project = f"dg-{uuid.uuid4().hex[:10]}"
    with httpx.Client(base_url=server.url, timeout=60) as http:
        assert http.put(f"/v1/projects/{project}").status_code == 201
        d = HttpDriver(http, ProposalFactory(stack.signers, project), stack.facts)
        d.run(LIFECYCLE[:3])  # licensed; ingestion FETCH, the other two regions at their start
        resp = http.get(f"/v1/projects/{project}/diagram")
        assert resp.status_code == 200 and resp.headers["content-type"] == "image/svg+xml"
        lifecycle = marks(resp.content)
        assert lifecycle["active"] == {
            ("top", "PROJECT_LIFECYCLE"),
            ("ingestion", "FETCH"),
            ("council", "PLAN_ROLES"),
            ("environment", "ALLOCATE"),
            ("license", "OK"),
        }
        d.run(LIFECYCLE[3:])
        now = state(http, project)
        assert now["phase"]["top"] == "EXECUTION"
        picture = marks(http.get(f"/v1/projects/{project}/diagram", params={"format": "svg"}).content)
        assert picture["active"] == {("top", "EXECUTION"), ("execution", "PLAN"), ("license", "OK")}
        assert {("ingestion", "READY"), ("council", "READY"), ("environment", "READY"), ("boot", "LICENSED")} <= (
            picture["held"]
        )
        # A past state, too: where it was right after licensing.
        past = marks(http.get(f"/v1/projects/{project}/diagram", params={"at": 2}).content)
        assert ("top", "PROJECT_LIFECYCLE") in past["active"] and ("ingestion", "DISCOVER") in past["active"]
        text = http.get(f"/v1/projects/{project}/diagram", params={"format": "mermaid"})
        assert text.status_code == 200 and text.headers["content-type"].startswith("text/plain")
        assert text.text.startswith("stateDiagram-v2\n")
        assert {"  class EXECUTION active", "  class execution_PLAN active"} <= set(text.text.splitlines())
        bad = http.get(f"/v1/projects/{project}/diagram", params={"format": "png"})
        assert bad.status_code == 400 and bad.json()["error"] == "schema" and bad.json()["head_hash"] == now["hash"]
        assert http.get(f"/v1/projects/{project}/diagram", params={"at": 999}).json()["error"] == "schema"
        assert http.get("/v1/projects/no-such-project/diagram").status_code == 404


def test_diagram_is_linked_from_the_workflow_details_in_the_ui(stack: Stack, start_api: ServerFactory) -> None:
    public = "https://swoosh.example.test:8443/api"
    server = start_api(lifecycle_settings=LifecycleSettings(api_url=public))
    project = f"ui-{uuid.uuid4().hex[:10]}"
    with httpx.Client(base_url=server.url, timeout=60) as http:
        assert http.put(f"/v1/projects/{project}").status_code == 201
        HttpDriver(http, ProposalFactory(stack.signers, project), stack.facts).step("Boot_ConfigOk")

    async def details() -> tuple[str, str]:
        client = await stack.connect()
        handle = client.get_workflow_handle(workflow_id(project))
        meta = await handle.query("__temporal_workflow_metadata", result_type=temporalio.api.sdk.v1.WorkflowMetadata)
        desc = await handle.describe()
        return meta.current_details, (await desc.static_details()) or ""

    current, static = stack.bg.run(details())
    link = f"{public}/v1/projects/{project}/diagram"
    assert f"[statechart]({link})" in current and "**LICENSE_CHECK** · index 1" in current
    assert link in static
