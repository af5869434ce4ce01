"""Against the real dev server, encryption off and on: a secret-bearing proposal sent through the API (Update
path) or the Signal path leaves no byte of the secret in `temporal workflow show --output json`, and the
project is quarantined with a rationale naming the rule. With encryption on, every payload is
`binary/encrypted`, and the codec server lets the `temporal` CLI read them."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from google.protobuf.duration_pb2 import Duration
from pydantic import SecretStr
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError

from swoosh.api.client._factory import ProposalFactory
from swoosh.api.server.codec_server import create_codec_app
from swoosh.workflows.answers import Rejected
from swoosh.workflows.ids import workflow_id
from swoosh.workflows.lifecycle.client import read_state, register_search_attributes, signal_proposal
from swoosh.workflows.lifecycle.codec import EncryptionSettings, new_key_entry
from swoosh.workflows.lifecycle.connection import data_converter
from swoosh.workflows.proposal import ProposalRequest
from swoosh.workflows.testing.environment import binary, lifecycle_worker
from tests.api.conftest import ApiServer, ServerFactory, Stack
from tests.api.helpers import head, post, step

SECRET = "sk_live_" + uuid.uuid4().hex[:24]
PEM = "-----BEGIN RSA PRIVATE KEY-----"


@dataclass
class Mode:
    name: str
    task_queue: str
    encryption: EncryptionSettings | None
    connect: Callable[[], Any]
    namespace: str = "default"


async def _new_namespace(stack: Stack, name: str) -> None:
    """A namespace of its own: every process of a namespace shares its keys (e.g. the migration control workflow)."""
    await stack.env.client.workflow_service.register_namespace(
        RegisterNamespaceRequest(namespace=name, workflow_execution_retention_period=Duration(seconds=86400))
    )
    client = await Client.connect(stack.target, namespace=name)
    for _ in range(150):  # the frontend's namespace cache learns it within seconds
        try:
            await register_search_attributes(client)
            await client.count_workflows()
            return
        except RPCError:
            await asyncio.sleep(0.2)
    raise RuntimeError(f"namespace {name} did not become usable")


@pytest.fixture(scope="module")
def encrypted_worker(stack: Stack) -> Iterator[Mode]:
    """A second worker on the session's dev server whose client encrypts (its own namespace and task queue)."""
    encryption = EncryptionSettings(keys=(SecretStr(new_key_entry("e2e")),))
    tq = f"swoosh-enc-{uuid.uuid4().hex[:8]}"
    namespace = f"swoosh-enc-{uuid.uuid4().hex[:8]}"
    stack.bg.run(_new_namespace(stack, namespace))
    stop = asyncio.Event()
    ready: Future[None] = Future()

    async def connect() -> Client:
        return await Client.connect(stack.target, namespace=namespace, data_converter=data_converter(encryption))

    async def run() -> None:
        client = await connect()
        try:
            async with lifecycle_worker(client, facts=stack.facts, sink_dir=stack.data_dir / "enc", task_queue=tq):
                ready.set_result(None)
                await stop.wait()
        except BaseException as err:
            if not ready.done():
                ready.set_exception(err)
            raise

    task = asyncio.run_coroutine_threadsafe(run(), stack.bg.loop)
    ready.result(60)
    try:
        yield Mode("encrypted", tq, encryption, connect, namespace)
    finally:
        stack.bg.loop.call_soon_threadsafe(stop.set)
        task.result(30)


@pytest.fixture(params=["plain", "encrypted"])
def mode(request: pytest.FixtureRequest, stack: Stack) -> Mode:
    if request.param == "plain":
        return Mode("plain", stack.task_queue, None, stack.connect)
    enc: Mode = request.getfixturevalue("encrypted_worker")
    return enc


def _show(stack: Stack, project: str, *extra: str, namespace: str = "default") -> str:
    out = subprocess.run(
        [binary("temporal"), "workflow", "show", "-w", workflow_id(project), "--output", "json",
         "--address", stack.target, "--namespace", namespace, *extra],
        capture_output=True, timeout=60, check=True,
    )  # fmt: skip
    return out.stdout.decode()


def _assert_no_byte_of(secret: str, text: str) -> None:
    raw = secret.encode()
    assert secret not in text
    for shift in range(3):
        assert base64.b64encode(b"x" * shift + raw).decode()[4:-4] not in text
    for blob in _data_fields(json.loads(text)):
        assert raw not in blob and secret[8:].encode() not in blob


def _data_fields(o: Any) -> Iterator[bytes]:
    if isinstance(o, dict):
        for k, v in o.items():
            if k == "data" and isinstance(v, str):
                try:
                    yield base64.b64decode(v)
                except ValueError:
                    pass
            else:
                yield from _data_fields(v)
    elif isinstance(o, list):
        for v in o:
            yield from _data_fields(v)


def _encodings(o: Any) -> set[str]:
    out: set[str] = set()
    if isinstance(o, dict):
        meta = o.get("metadata")
        if isinstance(meta, dict) and isinstance(meta.get("encoding"), str):
            out.add(base64.b64decode(meta["encoding"]).decode())
        for k, v in o.items():
            if k not in ("indexedFields", "searchAttributes", "details"):  # indexed; SDK marker bookkeeping
                out |= _encodings(v)
    elif isinstance(o, list):
        for v in o:
            out |= _encodings(v)
    return out


def _ready(http: httpx.Client, factory: ProposalFactory) -> None:
    assert http.put(f"/v1/projects/{factory.project_id}").status_code == 201
    step(http, factory, "Boot_ConfigOk")
    step(http, factory, "Boot_Licensed")


def test_secret_through_both_paths_never_reaches_history(stack: Stack, start_api: ServerFactory, mode: Mode) -> None:
    server = start_api(client=mode.connect, task_queue=mode.task_queue)
    update_pid, signal_pid = (f"t-{mode.name[:3]}-{uuid.uuid4().hex[:10]}" for _ in range(2))
    with httpx.Client(base_url=server.url, timeout=60) as http:
        # the Update path, through the HTTP API
        f = ProposalFactory(stack.signers, update_pid)
        _ready(http, f)
        body = f.body("Ingestion_SourcesResolved", head(http, update_pid), {"sources": [f"api_key={SECRET}"]})
        resp = post(http, update_pid, body)
        assert resp.status_code == 400, resp.text
        answer = resp.json()
        assert (answer["error"], answer["failing_guard"], answer["quarantined"]) == ("guard_failed", "policy", True)
        assert "api-key (high) at inputs.sources[0]" in answer["reason"] and SECRET not in resp.text
        # the Signal path (fire-and-forget), through the client operations the API uses
        g = ProposalFactory(stack.signers, signal_pid)
        _ready(http, g)
        secret_body = g.body("Ingestion_SourcesResolved", head(http, signal_pid), {"sources": [PEM + SECRET]})

        async def signal() -> Rejected | None:
            return await signal_proposal(await mode.connect(), signal_pid, ProposalRequest(body=secret_body))

        refused = stack.bg.run(signal())
        assert isinstance(refused, Rejected) and refused.failing_guard == "policy" and refused.quarantined

        for pid, rule in ((update_pid, "api-key"), (signal_pid, "pem-private-key")):
            state = stack.bg.run(_state(mode, pid))
            assert state.phase["top"] == "QUARANTINED"
            assert f"SHHH policy breach: breach: {rule}" in state.projection["policy"]["rationale"]
            text = _show(stack, pid, namespace=mode.namespace)
            _assert_no_byte_of(SECRET, text)
            _assert_no_byte_of("BEGIN RSA PRIVATE KEY", text)
            if mode.encryption is not None:
                assert _encodings(json.loads(text)) == {"binary/encrypted"}, pid
            else:
                assert "json/plain" in _encodings(json.loads(text))


async def _state(mode: Mode, pid: str) -> Any:
    return await read_state(await mode.connect(), pid)


def test_codec_server_lets_the_temporal_cli_read_encrypted_payloads(
    stack: Stack, start_api: ServerFactory, encrypted_worker: Mode
) -> None:
    mode = encrypted_worker
    server = start_api(client=mode.connect, task_queue=mode.task_queue)
    assert mode.encryption is not None
    codec = mode.encryption.codec()
    assert codec is not None
    codec_server = ApiServer(create_codec_app(codec, origins=["http://127.0.0.1:8233"])).start()
    try:
        pid = f"t-cod-{uuid.uuid4().hex[:10]}"
        with httpx.Client(base_url=server.url, timeout=60) as http:
            _ready(http, ProposalFactory(stack.signers, pid))
        sealed = _show(stack, pid, namespace=mode.namespace)
        assert "Boot_ConfigOk" not in "".join(b.decode("latin-1") for b in _data_fields(json.loads(sealed)))
        readable = _show(stack, pid, "--codec-endpoint", codec_server.url, namespace=mode.namespace)
        decoded = b"".join(_data_fields(json.loads(readable)))
        assert b"Boot_ConfigOk" in decoded and b"Boot_Licensed" in decoded
        assert _encodings(json.loads(readable)) <= {"json/plain", "binary/null"}
    finally:
        codec_server.stop()
