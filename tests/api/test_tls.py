"""TLS and mutual TLS end to end: a worker and the API reach the dev server through a TLS proxy.

The dev server serves plain gRPC; `tls.TlsProxy` terminates TLS in front of it with certificates
from a CA generated here. A transition is accepted with every hop to Temporal encrypted; a wrong CA
or a missing client certificate fails with an error that says what to check.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client

from swoosh.api.client._factory import ProposalFactory
from swoosh.workflows.errors import TemporalUnreachable
from swoosh.workflows.lifecycle.connection import TemporalSettings, connect
from swoosh.workflows.testing.environment import lifecycle_worker
from tests.api.conftest import ServerFactory, Stack
from tests.api.helpers import head, post
from tests.api.tls import Pki, TlsProxy, make_pki

pytestmark = pytest.mark.temporal


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def other_pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("other-pki"), "stranger")


@pytest.fixture(scope="module")
def proxies(stack: Stack, pki: Pki) -> Iterator[dict[str, TlsProxy]]:
    """Two TLS fronts for the session's dev server: server-authenticated only, and mutual."""
    started = {
        "tls": stack.bg.run(TlsProxy(pki, stack.target).start()),
        "mtls": stack.bg.run(TlsProxy(pki, stack.target, mutual=True).start()),
    }
    try:
        yield started
    finally:
        for proxy in started.values():
            stack.bg.run(proxy.stop())


def _settings(proxy: TlsProxy, pki: Pki, task_queue: str, *, client_cert: bool) -> TemporalSettings:
    return TemporalSettings(
        address=proxy.address,
        task_queue=task_queue,
        tls_server_ca_cert_path=pki.ca,
        tls_client_cert_path=pki.client_cert if client_cert else None,
        tls_client_key_path=pki.client_key if client_cert else None,
    )


@asynccontextmanager
async def _worker(stack: Stack, settings: TemporalSettings, sink: Path) -> AsyncIterator[Client]:
    client = await connect(settings, environ={}, encryption=None)
    async with lifecycle_worker(client, facts=stack.facts, sink_dir=sink, task_queue=settings.task_queue):
        yield client


def _accepts_a_transition(
    stack: Stack, start_api: ServerFactory, settings: TemporalSettings, tmp_path: Path, proxy: TlsProxy
) -> None:
    stop = asyncio.Event()
    ready: asyncio.Future[None] = stack.bg.loop.create_future()

    async def run_worker() -> None:
        async with _worker(stack, settings, tmp_path / "decisions"):
            ready.set_result(None)
            await stop.wait()

    task = asyncio.run_coroutine_threadsafe(run_worker(), stack.bg.loop)

    async def ready_wait() -> None:
        await asyncio.wait_for(asyncio.shield(ready), 60)

    stack.bg.run(ready_wait())
    relayed_by_worker = proxy.relayed
    try:

        async def connect_api() -> Client:
            return await connect(settings, environ={}, encryption=None)

        server = start_api(connect_api, task_queue=settings.task_queue)
        factory = ProposalFactory(stack.signers, f"tls-{uuid.uuid4().hex[:10]}")
        with httpx.Client(base_url=server.url, timeout=60) as http:
            assert http.get("/readyz").json() == {"status": "ready"}
            assert http.put(f"/v1/projects/{factory.project_id}").status_code == 201
            resp = post(http, factory.project_id, factory.body("Boot_ConfigOk", head(http, factory.project_id)))
            assert resp.status_code == 202, resp.text
            assert resp.json()["accepted"] is True and resp.json()["index"] == 1
        assert relayed_by_worker >= 1 and proxy.relayed > relayed_by_worker  # the API's own connection too
    finally:
        stack.bg.loop.call_soon_threadsafe(stop.set)
        task.result(30)


def test_tls_worker_and_api_accept_a_transition(
    stack: Stack, start_api: ServerFactory, proxies: dict[str, TlsProxy], pki: Pki, tmp_path: Path
) -> None:
    proxy = proxies["tls"]
    settings = _settings(proxy, pki, f"swoosh-tls-{uuid.uuid4().hex[:8]}", client_cert=False)
    _accepts_a_transition(stack, start_api, settings, tmp_path, proxy)


def test_mutual_tls_worker_and_api_accept_a_transition(
    stack: Stack, start_api: ServerFactory, proxies: dict[str, TlsProxy], pki: Pki, tmp_path: Path
) -> None:
    proxy = proxies["mtls"]
    settings = _settings(proxy, pki, f"swoosh-mtls-{uuid.uuid4().hex[:8]}", client_cert=True)
    _accepts_a_transition(stack, start_api, settings, tmp_path, proxy)


def test_tls_with_the_wrong_ca_fails_naming_the_ca_setting(
    stack: Stack, proxies: dict[str, TlsProxy], other_pki: Pki
) -> None:
    settings = TemporalSettings(address=proxies["tls"].address, tls_server_ca_cert_path=other_pki.ca)
    with pytest.raises(TemporalUnreachable) as err:
        stack.bg.run(connect(settings, environ={}, encryption=None))
    message = str(err.value)
    assert proxies["tls"].address in message and "TLS on" in message
    assert "not signed by a trusted CA" in message and "tls_server_ca_cert_path" in message


def test_mutual_tls_without_a_client_certificate_fails_naming_it(
    stack: Stack, proxies: dict[str, TlsProxy], pki: Pki
) -> None:
    settings = _settings(proxies["mtls"], pki, "unused", client_cert=False)
    with pytest.raises(TemporalUnreachable) as err:
        stack.bg.run(connect(settings, environ={}, encryption=None))
    assert "client certificate" in str(err.value) and "tls_client_cert_path" in str(err.value)


def test_mutual_tls_with_a_certificate_of_another_ca_is_refused(
    stack: Stack, proxies: dict[str, TlsProxy], pki: Pki, other_pki: Pki
) -> None:
    settings = TemporalSettings(
        address=proxies["mtls"].address,
        tls_server_ca_cert_path=pki.ca,
        tls_client_cert_path=other_pki.client_cert,
        tls_client_key_path=other_pki.client_key,
    )
    with pytest.raises(TemporalUnreachable) as err:
        stack.bg.run(connect(settings, environ={}, encryption=None))
    assert "TLS mutual" in str(err.value) and "may not accept this client certificate" in str(err.value)


def test_api_behind_a_wrong_ca_is_unready_and_answers_503(
    stack: Stack, start_api: ServerFactory, proxies: dict[str, TlsProxy], other_pki: Pki
) -> None:
    settings = TemporalSettings(address=proxies["tls"].address, tls_server_ca_cert_path=other_pki.ca)

    async def connect_api() -> Client:
        return await connect(settings, environ={}, encryption=None)

    server = start_api(connect_api)
    with httpx.Client(base_url=server.url, timeout=60) as http:
        assert http.get("/livez").status_code == 200
        ready = http.get("/readyz")
        assert ready.status_code == 503 and ready.headers["Retry-After"].isdigit()
        assert ready.json()["status"] == "unready" and "TemporalUnreachable" in ready.json()["reason"]
        state = http.get("/v1/projects/any/state")
        assert state.status_code == 503 and state.json()["error"] == "unavailable"
