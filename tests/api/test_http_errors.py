"""Non-contract statuses: 401, 404, 413, 429, 503; and bad input of any kind is a 400, never a 5xx."""

from __future__ import annotations

import concurrent.futures
import socket
import uuid
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from swoosh.api.client._factory import ProposalFactory
from swoosh.api.server.admission import Admission
from tests.api.conftest import ApiServer, ServerFactory, Stack
from tests.api.helpers import head, post


# ---------------------------------------------------------------------- 401
def test_tokens_required_when_configured_and_rotation_accepts_each(stack: Stack, start_api: ServerFactory) -> None:
    server = start_api(tokens=("old-token", SecretStr("new-token")))
    pid = f"t-{uuid.uuid4().hex[:12]}"
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.put(f"/v1/projects/{pid}").status_code == 401
        bad = http.put(f"/v1/projects/{pid}", headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401 and bad.json()["error"] == "unauthorized"
        assert bad.headers["WWW-Authenticate"] == "Bearer"
        assert http.put(f"/v1/projects/{pid}", headers={"Authorization": "Basic b2xkLXRva2Vu"}).status_code == 401
        assert http.put(f"/v1/projects/{pid}", headers={"Authorization": "Bearer old-token"}).status_code == 201
        assert http.put(f"/v1/projects/{pid}", headers={"Authorization": "Bearer new-token"}).status_code == 200
        for path in (f"/v1/projects/{pid}/state", f"/v1/projects/{pid}/decisions", f"/state?project_id={pid}"):
            assert http.get(path).status_code == 401, path
            assert http.get(path, headers={"Authorization": "Bearer new-token"}).status_code == 200, path
        assert http.post("/transition", content=b"{}").status_code == 401
        assert http.post(f"/v1/projects/{pid}/transition", content=b"{}").status_code == 401
        # health and metrics stay open
        assert http.get("/metrics").status_code == 200
        assert http.get(f"/v1/projects/{pid}/health").status_code == 200
        assert http.get("/health", params={"project_id": pid}).status_code == 200


def test_tokens_not_configured_means_no_auth(http: httpx.Client, project: str) -> None:
    assert http.get(f"/v1/projects/{project}/state", headers={"Authorization": "Bearer anything"}).status_code == 200


# ---------------------------------------------------------------------- 404
def test_unknown_project_is_404_everywhere(http: httpx.Client, factory: ProposalFactory, project: str) -> None:
    missing = f"t-missing-{uuid.uuid4().hex[:8]}"
    for path in ("/state", "/health", "/decisions"):
        resp = http.get(f"/v1/projects/{missing}{path}")
        assert resp.status_code == 404, (path, resp.text)
        assert resp.json()["error"] == "not_found"
    assert http.get("/state", params={"project_id": missing}).status_code == 404
    body = factory.body("Boot_ConfigOk", head(http, project), {})
    assert post(http, missing, body).status_code == 404
    assert post(http, missing, {"x": 1}).status_code == 404  # bad input to a missing project: 404
    assert http.get("/no/such/route").status_code == 404


# ---------------------------------------------------------------------- 413
def test_body_over_one_mib_is_413(http: httpx.Client, project: str) -> None:
    big = b'{"inputs": {"pad": "' + b"x" * (1024 * 1024) + b'"}}'
    resp = http.post(f"/v1/projects/{project}/transition", content=big, headers={"Content-Type": "application/json"})
    assert resp.status_code == 413 and resp.json()["error"] == "payload_too_large"

    def chunks() -> Any:  # no Content-Length: the bytes actually read are counted
        for _ in range(20):
            yield b"x" * 65536

    resp = http.post(f"/v1/projects/{project}/transition", content=chunks())
    assert resp.status_code == 413
    assert http.post("/transition", content=big, headers={"X-Project-Id": project}).status_code == 413


def test_body_just_under_one_mib_is_read(http: httpx.Client, factory: ProposalFactory) -> None:
    body = factory.body("Boot_ConfigOk", head(http, factory.project_id), {})
    raw = httpx.Request("POST", "/", json=body).content
    padded = raw[:-1] + b" " * (1024 * 1024 - len(raw)) + b"}"
    assert len(padded) == 1024 * 1024
    resp = http.post(f"/v1/projects/{factory.project_id}/transition", content=padded)
    assert resp.status_code == 202, resp.text


# ---------------------------------------------------------------------- 429
def test_admission_queue_full_is_429_with_retry_after(stack: Stack, start_api: ServerFactory) -> None:
    server = start_api(admission=Admission(max_in_flight=1, max_waiting=1, retry_after_s=2))
    pid = f"t-{uuid.uuid4().hex[:12]}"
    factory = ProposalFactory(stack.signers, pid)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.put(f"/v1/projects/{pid}").status_code == 201
        booted = post(http, pid, factory.body("Boot_ConfigOk", head(http, pid), {}))
        assert booted.status_code == 202
        stack.facts.delay_s = 0.6  # Boot_Licensed's licence guard now holds its slot
        h = booted.json()["state_post_hash"]
        bodies = [factory.body("Boot_Licensed", h, {"license_id": f"LIC-{i}"}) for i in range(5)]
        with concurrent.futures.ThreadPoolExecutor(5) as pool:
            statuses = list(pool.map(lambda b: post(http, pid, b), bodies))
    codes = sorted(r.status_code for r in statuses)
    assert codes.count(429) == 3, codes  # one in flight, one queued, three turned away
    assert 202 in codes
    for r in statuses:
        if r.status_code == 429:
            assert r.headers["Retry-After"] == "2" and r.json()["error"] == "overloaded"


# ---------------------------------------------------------------------- 503
def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_temporal_unreachable_is_503_with_retry_after_never_500(stack: Stack, start_api: ServerFactory) -> None:
    port = _closed_port()

    async def lazy() -> Client:
        return await Client.connect(f"127.0.0.1:{port}", data_converter=pydantic_data_converter, lazy=True)

    async def eager() -> Client:
        return await Client.connect(f"127.0.0.1:{port}", data_converter=pydantic_data_converter)

    for provider in (lazy, eager):
        server = start_api(provider)
        with httpx.Client(base_url=server.url, timeout=30) as http:
            body = ProposalFactory(stack.signers, "p1").body("Boot_ConfigOk", "sha256-" + "0" * 64, {})
            calls = [
                http.put("/v1/projects/p1"),
                http.post("/v1/projects/p1/transition", json=body),
                http.post("/transition", json=body, headers={"X-Project-Id": "p1"}),
                http.get("/v1/projects/p1/state"),
                http.get("/state"),
                http.get("/v1/projects/p1/decisions"),
            ]
            for resp in calls:
                assert resp.status_code == 503, resp.text
                assert resp.headers["Retry-After"].isdigit() and resp.json()["error"] == "unavailable"
            for path in ("/health", "/v1/projects/p1/health"):
                down = http.get(path)
                assert down.status_code == 503 and down.json()["status"] == "down"
            # bad input is still a 400 (without a head: the project cannot be asked)
            bad = http.post("/v1/projects/p1/transition", content=b"{nope")
            assert bad.status_code == 400 and bad.json()["error"] == "schema" and bad.json()["head_hash"] is None
            assert http.get("/metrics").status_code == 200


def test_temporal_stopped_after_start_is_503(stack: Stack, start_api: ServerFactory) -> None:
    from temporalio.testing import WorkflowEnvironment

    from swoosh.workflows.testing.environment import binary, search_attribute_flags

    async def start() -> WorkflowEnvironment:
        return await WorkflowEnvironment.start_local(
            dev_server_existing_path=binary("temporal"),
            dev_server_extra_args=search_attribute_flags(),
            data_converter=pydantic_data_converter,
            ui=False,
        )

    env = stack.bg.run(start())
    target = env.client.service_client.config.target_host
    stopped = False
    try:

        async def connect() -> Client:
            return await Client.connect(target, data_converter=pydantic_data_converter)

        server = start_api(connect, query_timeout_s=2.0, update_timeout_s=2.0)
        with httpx.Client(base_url=server.url, timeout=30) as http:
            assert http.put("/v1/projects/p1").status_code == 201  # no worker polls here: only the start
            stack.bg.run(env.shutdown())
            stopped = True
            resp = http.get("/v1/projects/p1/state")
            assert resp.status_code == 503 and "Retry-After" in resp.headers
    finally:
        if not stopped:
            stack.bg.run(env.shutdown())


def test_guards_that_cannot_be_evaluated_are_503_with_retry_after(
    stack: Stack, http: httpx.Client, factory: ProposalFactory
) -> None:
    """The guard activity failing after its retries once answered 500; nothing is applied, resend later."""
    pid = factory.project_id
    assert post(http, pid, factory.body("Boot_ConfigOk", head(http, pid), {})).status_code == 202
    before = head(http, pid)
    body = factory.body("Boot_Licensed", before, {"license_id": "LIC-1"})
    stack.facts.down = True
    resp = post(http, pid, body)
    assert resp.status_code == 503, resp.text
    assert resp.json()["error"] == "guards_unavailable" and "could not be evaluated" in resp.json()["reason"]
    assert resp.headers["Retry-After"] == "5"
    assert head(http, pid) == before
    stack.facts.down = False
    resent = post(http, pid, body)
    assert resent.status_code == 202 and resent.json()["duplicate"] is False


# ---------------------------------------------------------------------- bad input
MALFORMED: list[tuple[str, bytes]] = [
    ("empty", b""),
    ("whitespace", b"   \n"),
    ("not json", b"{nope"),
    ("truncated", b'{"transition": "Boot_'),
    ("array", b"[1, 2, 3]"),
    ("string", b'"Boot_ConfigOk"'),
    ("number", b"42"),
    ("null", b"null"),
    ("float", b'{"transition": "Boot_ConfigOk", "inputs": {"x": 1.5}}'),
    ("nan", b'{"transition": "Boot_ConfigOk", "inputs": {"x": NaN}}'),
    ("infinity", b'{"inputs": {"x": -Infinity}}'),
    ("huge int", b'{"inputs": {"x": ' + b"9" * 5000 + b"}}"),
    ("unknown field", b'{"transition": "Boot_ConfigOk", "colour": "blue"}'),
    ("wrong type", b'{"transition": 7, "inputs": [], "hlc": false}'),
    ("inputs not object", b'{"transition": "Boot_ConfigOk", "inputs": "x"}'),
    ("missing fields", b"{}"),
    ("bad hash", b'{"current_state_hash": "sha1-abc", "transition": "Boot_ConfigOk"}'),
    ("latin-1", '{"transition": "Boot_ConfigOk", "reason": "caf\xe9"}'.encode("latin-1")),
    ("lone surrogate", b'{"transition": "\\ud800"}'),
    ("deep nesting", b'{"inputs": ' + b'{"a": ' * 100 + b"1" + b"}" * 100 + b"}"),
    ("very deep nesting", b"[" * 200_000 + b"]" * 200_000),
    ("nul bytes", b"\x00\x00\x00"),
    ("bom", b'\xef\xbb\xbf{"transition": "Boot_ConfigOk"}'),
    ("project_id wrong type", b'{"project_id": 5, "transition": "Boot_ConfigOk"}'),
    ("evidence wrong", b'{"evidence": [1, 2], "transition": "Boot_ConfigOk"}'),
]


@pytest.mark.parametrize("raw", [m[1] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_body_is_400_schema_with_head(http: httpx.Client, project: str, raw: bytes) -> None:
    current = head(http, project)
    resp = http.post(f"/v1/projects/{project}/transition", content=raw, headers={"Content-Type": "application/json"})
    assert resp.status_code == 400, resp.text
    answer = resp.json()
    assert answer["error"] == "schema" and answer["accepted"] is False
    assert answer["head_hash"] == current
    legacy = http.post("/transition", content=raw, headers={"X-Project-Id": project})
    assert legacy.status_code == 400 and legacy.json()["error"] == "schema"


@pytest.mark.parametrize("pid", ["bad id", "x" * 65, "semi;colon", "%00", "ünï"])
def test_bad_project_id_is_400_schema(http: httpx.Client, pid: str) -> None:
    for resp in (
        http.put(f"/v1/projects/{pid}"),
        http.post(f"/v1/projects/{pid}/transition", json={}),
        http.get(f"/v1/projects/{pid}/state"),
        http.get("/state", params={"project_id": pid}),
        http.post("/transition", json={}, headers={"X-Project-Id": pid.encode("utf-8")}),
        http.post("/transition", json={"project_id": pid}),
    ):
        assert resp.status_code == 400, (resp.request.url, resp.text)
        assert resp.json()["error"] == "schema" and resp.json()["head_hash"] is None


@pytest.mark.parametrize("query", ["after_index=-1", "after_index=abc", "limit=0", "limit=100000", "limit=1.5"])
def test_bad_decisions_query_is_400_schema(http: httpx.Client, project: str, query: str) -> None:
    resp = http.get(f"/v1/projects/{project}/decisions?{query}")
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"] == "schema" and resp.json()["head_hash"] == head(http, project)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
FIELDS = st.sampled_from(
    ["project_id", "current_state_hash", "transition", "inputs", "inputs_hash", "signer", "idem_key", "hlc",
     "window_id", "evidence", "signature", "other"]
)  # fmt: skip


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    payload=st.one_of(
        st.binary(max_size=200),
        JSON.map(lambda v: httpx.Request("POST", "/", json=v).content),
        st.dictionaries(FIELDS, JSON, max_size=8).map(lambda v: httpx.Request("POST", "/", json=v).content),
    ),
    headers=st.dictionaries(
        st.sampled_from(["Idempotency-Key", "X-HLC", "X-Window-Id"]),
        st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=0, max_size=30),
        max_size=3,
    ),
)
def test_random_input_is_never_a_5xx(http: httpx.Client, project: str, payload: bytes, headers: dict[str, str]) -> None:
    resp = http.post(f"/v1/projects/{project}/transition", content=payload, headers=headers)
    assert resp.status_code == 400, (payload, resp.text)
    assert resp.json()["error"] in ("schema", "bad_signature", "unknown_transition", "inputs_hash_mismatch")


def test_server_fixture_is_loopback(api: ApiServer) -> None:
    assert api.url.startswith("http://127.0.0.1:")
