"""The transition routes are answered before FastAPI's routing, and answer exactly as FastAPI's routes do."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from swoosh.api.client._factory import ProposalFactory
from swoosh.api.server.app import create_app
from tests.api.conftest import ApiServer, Stack

TOKEN = "fast-path-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
COMPARED_HEADERS = ("content-type", "retry-after", "www-authenticate")


@pytest.fixture
def servers(stack: Stack) -> Iterator[tuple[ApiServer, ApiServer, list[str | None]]]:
    """Two APIs over the same Temporal: the usual one, and one whose transitions go through FastAPI's routes."""

    def app() -> Any:
        return create_app(
            stack.connect,
            task_queue=stack.task_queue,
            keyring=stack.signers.keyring(),
            decision_store=stack.decision_store(),
            tokens=(TOKEN,),
            create_default_project=False,
            max_body_bytes=4096,
        )

    fast_app, routed_app = app(), app()
    served: list[str | None] = []
    endpoint = fast_app.transition_endpoint
    assert endpoint is not None

    async def counting(scope: Any, receive: Any, send: Any, project_id: str | None) -> None:
        served.append(project_id)
        await endpoint(scope, receive, send, project_id)

    fast_app.transition_endpoint = counting
    routed_app.transition_endpoint = None
    fast, routed = ApiServer(fast_app).start(), ApiServer(routed_app).start()
    try:
        yield fast, routed, served
    finally:
        fast.stop()
        routed.stop()


def _answer(resp: httpx.Response) -> tuple[int, Any, dict[str, str]]:
    try:
        body: Any = resp.json()
    except ValueError:
        body = resp.text
    return resp.status_code, body, {h: resp.headers[h] for h in COMPARED_HEADERS if h in resp.headers}


def test_fast_transitions_answer_like_the_fastapi_routes(
    stack: Stack, servers: tuple[ApiServer, ApiServer, list[str | None]]
) -> None:
    fast, routed, served = servers
    pid = f"t-{uuid.uuid4().hex[:12]}"
    factory = ProposalFactory(stack.signers, pid)
    with httpx.Client(base_url=fast.url, timeout=30) as a, httpx.Client(base_url=routed.url, timeout=30) as b:
        assert a.put(f"/v1/projects/{pid}", headers=AUTH).status_code == 201
        head = a.get(f"/v1/projects/{pid}/state", headers=AUTH).json()["hash"]
        good = factory.body("Boot_ConfigOk", head)
        forged = {**factory.body("Boot_ConfigOk", head), "signature": "A" * 86}
        v1, legacy = f"/v1/projects/{pid}/transition", "/transition"
        cases: list[tuple[str, str, dict[str, str], bytes]] = [
            ("no token", v1, {}, json.dumps(good).encode()),
            ("wrong token", v1, {"Authorization": "Bearer nope"}, json.dumps(good).encode()),
            ("basic scheme", legacy, {"Authorization": "Basic Zm9v"}, json.dumps(good).encode()),
            ("bearer without token", v1, {"Authorization": "Bearer"}, json.dumps(good).encode()),
            ("body over the limit", v1, AUTH, b"{" + b" " * 5000 + b"}"),
            ("not json", v1, AUTH, b"{nope"),
            ("empty body", legacy, {**AUTH, "X-Project-Id": pid}, b""),
            ("bad project id", "/v1/projects/bad!id/transition", AUTH, json.dumps(good).encode()),
            ("unknown project", "/v1/projects/no-such-project-here/transition", AUTH, json.dumps(good).encode()),
            ("forged signature", legacy, {**AUTH, "X-Project-Id": pid}, json.dumps(forged).encode()),
            ("dry run", v1 + "?dry_run=true", AUTH, json.dumps(good).encode()),
            ("dry run, legacy", legacy + "?dry_run=YES", {**AUTH, "X-Project-Id": pid}, json.dumps(good).encode()),
            ("dry run of a forgery", v1 + "?dry_run=1", AUTH, json.dumps(forged).encode()),
            ("dry run not json", v1 + "?dry_run=on", AUTH, b"{nope"),
            ("dry run false", v1 + "?dry_run=false", AUTH, json.dumps(forged).encode()),
            ("dry run not a boolean", v1 + "?dry_run=maybe", AUTH, json.dumps(good).encode()),
            ("dry run not a boolean, legacy", legacy + "?dry_run=", {**AUTH, "X-Project-Id": pid}, b"{}"),
            ("dry run twice", v1 + "?dry_run=maybe&dry_run=true", AUTH, json.dumps(good).encode()),
        ]
        for name, path, headers, content in cases:
            got, want = (
                _answer(a.post(path, headers=headers, content=content)),
                _answer(b.post(path, headers=headers, content=content)),
            )
            assert got == want, name
            assert got[0] < 500, name
        accepted = a.post(v1, headers=AUTH, json=good)
        assert accepted.status_code == 202 and accepted.json()["accepted"] is True
        # The same proposal again, once through each: the same duplicate answer.
        assert _answer(a.post(legacy, headers={**AUTH, "X-Project-Id": pid}, json=good)) == _answer(
            b.post(legacy, headers={**AUTH, "X-Project-Id": pid}, json=good)
        )
        # Everything else still goes through FastAPI, including a GET on a transition path.
        assert a.get(v1, headers=AUTH).status_code == 405
        assert a.post(f"/v1/projects/{pid}/transition/", headers=AUTH, json=good).status_code in (307, 404)
    assert served.count(pid) >= 4 and None in served and "bad!id" in served
