"""KACHING: the embedded signed licence file and the HTTP verdict, each failure mode failing closed."""

from __future__ import annotations

import json
import logging
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from swoosh.activities.kaching import EmbeddedLicenceProvider, HttpLicenceProvider, create_dev_license
from swoosh.chaos.simulator import SimHandle
from swoosh.guards.context import GuardContext
from swoosh.guards.facts import Facts
from swoosh.guards.license import license_guard
from swoosh.workflows.crypto import signer_id

from .conftest import TOKEN, FakeClock

OTHER_KEY = signer_id(Ed25519PrivateKey.generate().public_key())
CTX = GuardContext(project_id="p", transition="Boot_Licensed", signer="s")


def embedded(path: Path, key: str | None, clock: FakeClock) -> EmbeddedLicenceProvider:
    return EmbeddedLicenceProvider(path, lambda: key, clock)


@pytest_asyncio.fixture
async def client(sim: SimHandle) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sim.base_url, timeout=0.3, trust_env=False) as c:
        yield c


def http(
    client: httpx.AsyncClient,
    sim: SimHandle,
    *,
    token: str | None = TOKEN,
    key: str | None = None,
    clock: FakeClock | None = None,
    max_skew_ms: int = 5000,
) -> HttpLicenceProvider:
    return HttpLicenceProvider(client, lambda: token, lambda: key or sim.public_key, clock or FakeClock(), max_skew_ms)


def test_dev_licence_files_and_key_permissions(tmp_path: Path) -> None:
    dev = create_dev_license(tmp_path / "d", now_ms=1_000)
    assert dev.license_file.exists() and dev.public_key_file.read_text().strip() == dev.public_key
    assert stat.S_IMODE(dev.key_file.stat().st_mode) == 0o600
    assert json.loads(dev.license_file.read_text())["license"]["kind"] == "kaching.license.v1"


def test_dev_licence_is_idempotent_unless_overwritten(tmp_path: Path) -> None:
    first = create_dev_license(tmp_path, now_ms=1_000)
    assert create_dev_license(tmp_path, now_ms=2_000).public_key == first.public_key
    assert create_dev_license(tmp_path, now_ms=2_000, overwrite=True).public_key != first.public_key


async def test_embedded_licence_valid_and_verified(tmp_path: Path) -> None:
    clock = FakeClock()
    dev = create_dev_license(tmp_path, now_ms=clock(), license_id="LIC-1")
    fact = await embedded(dev.license_file, dev.public_key, clock).license()
    assert (fact.status, fact.verified, fact.license_id, fact.fetched_at_ms) == ("valid", True, "LIC-1", clock())
    assert license_guard({}, {}, Facts(now_ms=clock(), license=fact), CTX).ok


async def test_embedded_licence_signed_by_another_key_is_unverified(tmp_path: Path) -> None:
    clock = FakeClock()
    dev = create_dev_license(tmp_path, now_ms=clock())
    fact = await embedded(dev.license_file, OTHER_KEY, clock).license()
    assert not fact.verified and "other than the configured licence key" in fact.detail
    assert not license_guard({}, {}, Facts(now_ms=clock(), license=fact), CTX).ok


async def test_embedded_licence_tampered_is_unverified(tmp_path: Path) -> None:
    clock = FakeClock()
    dev = create_dev_license(tmp_path, now_ms=clock())
    doc = json.loads(dev.license_file.read_text())
    doc["license"]["expires_at_ms"] += 10**12
    dev.license_file.write_text(json.dumps(doc))
    fact = await embedded(dev.license_file, dev.public_key, clock).license()
    assert not fact.verified and fact.detail == "licence signature invalid"


async def test_embedded_licence_without_public_key_fails_closed(tmp_path: Path) -> None:
    clock = FakeClock()
    dev = create_dev_license(tmp_path, now_ms=clock())
    fact = await embedded(dev.license_file, None, clock).license()
    assert not fact.verified and fact.detail == "no licence public key configured"


async def test_embedded_licence_expired(tmp_path: Path) -> None:
    clock = FakeClock()
    dev = create_dev_license(tmp_path, now_ms=clock(), valid_for_ms=1000)
    clock.advance(1000)
    fact = await embedded(dev.license_file, dev.public_key, clock).license()
    assert (fact.status, fact.verified) == ("expired", True)


@pytest.mark.parametrize("content", [None, "{not json", '{"license": {}}'])
async def test_embedded_licence_missing_or_malformed_is_denied(tmp_path: Path, content: str | None) -> None:
    path = tmp_path / "license.json"
    if content is not None:
        path.write_text(content)
    fact = await embedded(path, OTHER_KEY, FakeClock()).license()
    assert (fact.status, fact.verified) == ("denied", False)


async def test_http_licence_valid_and_verified(sim: SimHandle, client: httpx.AsyncClient) -> None:
    clock = FakeClock()
    fact = await http(client, sim, clock=clock).license()
    assert (fact.status, fact.verified, fact.license_id, fact.detail) == ("valid", True, "sim-license", "")
    assert license_guard({}, {}, Facts(now_ms=clock(), license=fact), CTX).ok


async def test_http_licence_unknown_token_is_a_signed_denial(sim: SimHandle, client: httpx.AsyncClient) -> None:
    fact = await http(client, sim, token="not-a-licence").license()
    assert (fact.status, fact.verified) == ("denied", True)


async def test_http_licence_denial_fault(sim: SimHandle, client: httpx.AsyncClient) -> None:
    await sim.set_faults("license", deny=True)
    fact = await http(client, sim).license()
    assert (fact.status, fact.verified) == ("denied", True)
    assert not license_guard({}, {}, Facts(now_ms=fact.fetched_at_ms, license=fact), CTX).ok


async def test_http_licence_throttled_enters_grace(sim: SimHandle, client: httpx.AsyncClient) -> None:
    await sim.set_faults("license", throttle=True)
    fact = await http(client, sim).license()
    assert fact.status == "throttled" and "retry after 1 s" in fact.detail
    grace = GuardContext(project_id="p", transition="License_Throttled", signer="s")
    assert license_guard({}, {}, Facts(now_ms=fact.fetched_at_ms, license=fact), grace).ok


async def test_http_licence_server_error_is_unreachable(sim: SimHandle, client: httpx.AsyncClient) -> None:
    await sim.set_faults("license", error_status=503)
    fact = await http(client, sim).license()
    assert (fact.status, fact.verified, fact.detail) == ("unreachable", False, "KACHING answered HTTP 503")


async def test_http_licence_timeout_is_unreachable(sim: SimHandle, client: httpx.AsyncClient) -> None:
    await sim.set_faults("license", latency_ms=2000)
    fact = await http(client, sim).license()
    assert (fact.status, fact.detail) == ("unreachable", "KACHING timed out")


async def test_http_licence_connection_refused_is_unreachable() -> None:
    async with httpx.AsyncClient(base_url="http://127.0.0.1:9", timeout=0.3, trust_env=False) as c:
        fact = await HttpLicenceProvider(c, lambda: TOKEN, lambda: OTHER_KEY, FakeClock(), 5000).license()
    assert fact.status == "unreachable" and fact.detail.startswith("KACHING unreachable: ")


async def test_http_licence_wrong_public_key_is_unverified(sim: SimHandle, client: httpx.AsyncClient) -> None:
    fact = await http(client, sim, key=OTHER_KEY).license()
    assert (fact.status, fact.verified) == ("valid", False)
    assert not license_guard({}, {}, Facts(now_ms=fact.fetched_at_ms, license=fact), CTX).ok


async def test_http_licence_clock_skew_beyond_tolerance_is_unverified(
    sim: SimHandle, client: httpx.AsyncClient
) -> None:
    await sim.set_faults("license", skew_ms=120_000)
    fact = await http(client, sim, max_skew_ms=5000).license()
    assert not fact.verified and "KACHING clock is" in fact.detail


async def test_http_licence_clock_skew_within_tolerance_is_verified(sim: SimHandle, client: httpx.AsyncClient) -> None:
    await sim.set_faults("license", skew_ms=2000)
    fact = await http(client, sim, max_skew_ms=5000).license()
    assert fact.verified and fact.status == "valid"


async def test_http_licence_flapping_alternates(sim: SimHandle, client: httpx.AsyncClient) -> None:
    await sim.set_faults("license", flap_every=1)
    provider = http(client, sim)
    statuses = [(await provider.license()).status for _ in range(4)]
    assert statuses == ["valid", "unreachable", "valid", "unreachable"]


async def test_http_licence_without_token_is_denied_without_a_call(sim: SimHandle, client: httpx.AsyncClient) -> None:
    fact = await http(client, sim, token=None).license()
    assert (fact.status, fact.detail) == ("denied", "no licence token configured")
    assert sim.requests("license") == 0


async def test_http_licence_token_never_logged(
    sim: SimHandle, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await sim.set_faults("license", latency_ms=2000)
    fact = await http(client, sim, token="tok-ultra-secret-123").license()
    assert fact.status == "unreachable"
    assert caplog.records and all("ultra-secret" not in r.getMessage() for r in caplog.records)
    assert "ultra-secret" not in fact.model_dump_json()
