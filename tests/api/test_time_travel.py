"""`GET /v1/projects/{id}/state?at=N` and `swoosh state --at N`, end to end on the real dev server.

A project that snapshots every 4 transitions (so its history spans several continue-as-new runs)
goes through its lifecycle, a quarantine by SWOOSH itself and one EXECUTION loop; every state it was
in is then read back by index and must be exactly the state that was live at that index.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import httpx
import pytest

from swoosh.api.client._factory import ProposalFactory
from swoosh.api.server.app import create_app
from swoosh.worker.cli import main as swoosh
from swoosh.workflows.lifecycle.client import read_health
from swoosh.workflows.messages import LifecycleSettings
from swoosh.workflows.testing.driver import LIFECYCLE, LOOP
from tests.api.conftest import ApiServer, Stack
from tests.api.helpers import HttpDriver, post, state

pytestmark = [pytest.mark.temporal, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def travelled(stack: Stack) -> Iterator[tuple[str, HttpDriver]]:
    """One project driven through 19 transitions over several runs; its API serves the tests below."""
    app = create_app(
        stack.connect,
        task_queue=stack.task_queue,
        keyring=stack.signers.keyring(),
        decision_store=stack.decision_store(),
        create_default_project=False,
        lifecycle_settings=LifecycleSettings(snapshot_every=4),
    )
    server = ApiServer(app).start()
    http = httpx.Client(base_url=server.url, timeout=60)
    project = f"tt-{uuid.uuid4().hex[:10]}"
    assert http.put(f"/v1/projects/{project}").status_code == 201
    d = HttpDriver(http, ProposalFactory(stack.signers, project), stack.facts)
    d.remember()  # genesis
    d.run(LIFECYCLE[:2])
    # A secret in the inputs: rejected, and SWOOSH quarantines the project with a system transition.
    resp = post(http, project, d.body("Ingestion_SourcesResolved", {"sources": ["-----BEGIN PRIVATE KEY-----"]}))
    assert resp.status_code == 400 and resp.json()["failing_guard"] == "policy", resp.text
    d.remember()
    d.step("Policy_Release", {"reason": "false positive"})
    d.run(LIFECYCLE[2:])
    d.run(LOOP)
    stack.facts.reset()
    yield server.url, d
    http.close()
    server.stop()


def test_time_travel_every_index_is_the_state_that_was_live(stack: Stack, travelled: tuple[str, HttpDriver]) -> None:
    url, d = travelled
    head = d.seen[max(d.seen)]
    assert head["index"] == 19 and sorted(d.seen) == list(range(20))
    runs = stack.bg.run(_runs(stack, d.project))
    assert runs >= 4, runs  # the states below come from several snapshots
    with httpx.Client(base_url=url, timeout=60) as http:
        records = http.get(f"/v1/projects/{d.project}/decisions", params={"limit": 100}).json()["records"]
        post_hash = {r["index"]: r["state_post_hash"] for r in records}
        assert records[0]["state_pre_hash"] == d.seen[0]["hash"]
        for n in range(0, 20):
            past = state(http, d.project, at=n)
            assert past == d.seen[n], f"index {n}"
            if n:
                assert past["hash"] == post_hash[n]
        system = [r["index"] for r in records if r["signer"] == "swoosh:system"]
        assert system == [3]  # the quarantine SWOOSH applied itself is folded like any other record


def test_time_travel_projection_works_as_for_state(travelled: tuple[str, HttpDriver]) -> None:
    url, d = travelled
    with httpx.Client(base_url=url, timeout=60) as http:
        past = state(http, d.project, at=9, projection="Council,meta")
        assert set(past["projection"]) == {"council", "meta"}
        assert past["hash"] == d.seen[9]["hash"] and past["index"] == 9
        assert past["projection"]["council"] == d.seen[9]["projection"]["council"]
        assert past["phase"] == d.seen[9]["phase"]


@pytest.mark.parametrize("at", ["20", "-1", "three", "1.5", ""])
def test_time_travel_bad_index_is_a_schema_rejection(travelled: tuple[str, HttpDriver], at: str) -> None:
    url, d = travelled
    with httpx.Client(base_url=url, timeout=60) as http:
        resp = http.get(f"/v1/projects/{d.project}/state", params={"at": at})
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert body["error"] == "schema" and body["head_hash"] == d.seen[19]["hash"]
    if at == "20":
        assert "after the project's last index 19" in body["reason"]


def test_time_travel_of_an_unknown_project_is_404(travelled: tuple[str, HttpDriver]) -> None:
    url, _ = travelled
    resp = httpx.get(f"{url}/v1/projects/nobody-{uuid.uuid4().hex[:6]}/state", params={"at": 1})
    assert resp.status_code == 404, resp.text


def test_time_travel_cli_state_at(travelled: tuple[str, HttpDriver], capsys: pytest.CaptureFixture[str]) -> None:
    url, d = travelled
    assert swoosh(["state", "--api", url, "--project", d.project, "--at", "13", "--projection", "ingestion"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["index"], out["hash"]) == (13, d.seen[13]["hash"])
    assert out["projection"] == {"ingestion": d.seen[13]["projection"]["ingestion"]}
    assert swoosh(["state", "--api", url, "--project", d.project, "--at", "99"]) == 1
    assert "after the project's last index" in capsys.readouterr().out


async def _runs(stack: Stack, project: str) -> int:
    client = await stack.connect()
    return (await read_health(client, project)).runs
