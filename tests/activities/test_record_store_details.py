"""What each decision-record store does beyond the shared chain rule: costs, constraints, outages, auth, TLS."""

from __future__ import annotations

import datetime
import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from temporalio.exceptions import ApplicationError

from swoosh.activities import records_jsonl
from swoosh.activities.records_bubble import BubbleStore
from swoosh.activities.records_jsonl import JsonlSink
from swoosh.activities.records_postgres import TABLE, PostgresStore
from swoosh.workflows.testing.bubble import serve_bubble
from swoosh.workflows.testing.postgres import PostgresServer

from .chains import chain


def project() -> str:
    return f"p-{uuid.uuid4().hex[:10]}"


# ---------------------------------------------------------------------- JSONL
class _CountingJson:
    def __init__(self) -> None:
        self.loads_calls = 0

    def loads(self, text: Any) -> Any:
        self.loads_calls += 1
        return json.loads(text)


async def test_jsonl_page_reads_only_its_own_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sink, pid, records = JsonlSink(tmp_path), project(), chain(3000)
    for k in range(0, 3000, 500):
        await sink.deliver(pid, records[k : k + 500])
    reader = JsonlSink(tmp_path)  # another process: builds its index once
    assert [r["index"] for r in reader.read(pid, 10, 5)] == [11, 12, 13, 14, 15]
    counting = _CountingJson()
    monkeypatch.setattr(records_jsonl, "json", counting)
    page = reader.read(pid, 2900, 20)
    assert [r["index"] for r in page] == list(range(2901, 2921))
    assert counting.loads_calls == 20  # the page itself, nothing before it (the old reader parsed 2,920 lines)


async def test_jsonl_reader_sees_appends_and_rewrites_by_other_processes(tmp_path: Path) -> None:
    writer, reader, pid, records = JsonlSink(tmp_path), JsonlSink(tmp_path), project(), chain(200)
    await writer.deliver(pid, records[:100])
    assert len(reader.read(pid, 0, 1000)) == 100
    await writer.deliver(pid, records[100:])
    assert [r["index"] for r in reader.read(pid, 195, 10)] == [196, 197, 198, 199, 200]
    # An operator moves a forked tail aside and the file is rewritten in place with another chain.
    other = chain(120, "other")
    path = writer.path(pid)
    shutil.move(path, tmp_path / "aside.jsonl")
    await JsonlSink(tmp_path).deliver(pid, other)
    assert reader.read(pid, 110, 5) == other[110:115]


async def test_jsonl_refuses_a_file_that_is_not_a_chain_from_one(tmp_path: Path) -> None:
    sink, pid = JsonlSink(tmp_path), project()
    sink.path(pid).write_bytes(b'{"index": 5, "dr_hash": "x"}\n')
    with pytest.raises(records_jsonl.StoreCorrupt):
        sink.read(pid, 0, 10)


# ---------------------------------------------------------------------- PostgreSQL
async def test_postgres_table_refuses_a_forked_row_even_without_the_rule(swoosh_postgres: PostgresServer) -> None:
    store, pid = PostgresStore(swoosh_postgres.dsn), project()
    try:
        await store.deliver(pid, chain(3))
        stray = chain(1, "raw", start=4, prev="sha256-" + "1" * 64)[0]
        with psycopg.connect(swoosh_postgres.dsn) as conn, pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute(
                f"INSERT INTO {TABLE} (project_id, idx, dr_hash, prev_dr_hash, transition, record) "
                "VALUES (%s, 4, %s, %s, 'x', '{}')",
                (pid, stray["dr_hash"], stray["prev_dr_hash"]),
            )
            conn.commit()  # the link is checked at commit (deferred), so a batch may arrive in any order
        assert await store.count(pid) == 3
    finally:
        await store.aclose()


async def test_postgres_creates_its_schema_on_first_use(tmp_path: Path) -> None:
    with PostgresServer() as server:
        store = PostgresStore(server.dsn)
        try:
            await store.deliver("p", chain(2))
            assert [r["index"] for r in await store.page("p", 0, 10)] == [1, 2]
            assert "already there" in await store.setup()
        finally:
            await store.aclose()


async def test_postgres_outage_is_retryable_and_delivery_resumes(tmp_path: Path) -> None:
    server = PostgresServer()
    server.start()
    store, pid, records = PostgresStore(server.dsn, timeout_s=1.0), project(), chain(4)
    try:
        await store.deliver(pid, records[:2])
        server.stop()
        with pytest.raises(ApplicationError) as info:
            await store.deliver(pid, records[2:])
        assert info.value.type == "SinkUnavailable" and not info.value.non_retryable
        assert server.password not in str(info.value)
        server.start()
        result = await store.deliver(pid, records[1:])
        assert (result.delivered, result.skipped) == (2, 1)
    finally:
        await store.aclose()
        server.remove()


def test_postgres_store_never_shows_its_dsn(swoosh_postgres: PostgresServer) -> None:
    assert swoosh_postgres.password not in repr(PostgresStore(swoosh_postgres.dsn))


# ---------------------------------------------------------------------- BUBBLE
async def test_bubble_refuses_a_wrong_token_without_marking_anything() -> None:
    async with serve_bubble(token="right") as url:
        store = BubbleStore(url, token="wrong")
        try:
            with pytest.raises(ApplicationError) as info:
                await store.deliver(project(), chain(2))
            assert info.value.type == "SinkUnavailable"  # the page read before the post is refused (401)
        finally:
            await store.aclose()


def _tail_only_bubble() -> FastAPI:
    """A BUBBLE server that, like the old sink, only compares its last record and answers success."""
    app = FastAPI()
    chains: dict[str, list[dict[str, Any]]] = {}

    @app.get("/projects/{pid}/decisions")
    async def page(pid: str, after_index: int = 0, limit: int = 100) -> JSONResponse:
        return JSONResponse({"records": chains.get(pid, [])[after_index : after_index + limit]})

    @app.post("/projects/{pid}/decisions")
    async def post(pid: str, request: Request) -> JSONResponse:
        records = (await request.json())["records"]
        held = chains.setdefault(pid, [])
        held.extend(r for r in records if r["index"] > len(held))
        return JSONResponse({"delivered": 0, "skipped": len(records), "last_index": len(held)})

    return app


async def test_bubble_store_finds_a_fork_a_tail_only_server_would_accept() -> None:
    async with serve_bubble(app=_tail_only_bubble()) as url:
        store, pid = BubbleStore(url), project()
        try:
            await store.deliver(pid, chain(10))
            with pytest.raises(ApplicationError) as info:
                await store.deliver(pid, chain(6, "reset"))
            assert info.value.type == "DecisionChainFork"
        finally:
            await store.aclose()


def _tls_files(tmp: Path) -> tuple[Path, Path, Path]:
    """A CA, and a server certificate for 127.0.0.1 signed by it."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bubble")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = tmp / "ca.pem", tmp / "server.pem", tmp / "server.key"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return ca_path, cert_path, key_path


async def test_bubble_over_tls_needs_the_configured_ca(tmp_path: Path) -> None:
    ca, cert, key = _tls_files(tmp_path)
    async with serve_bubble(token="t", certfile=cert, keyfile=key) as url:
        assert url.startswith("https://")
        trusted, untrusted = BubbleStore(url, token="t", ca_file=ca), BubbleStore(url, token="t")
        try:
            assert (await trusted.deliver("p", chain(3))).delivered == 3
            assert [r["index"] for r in await trusted.page("p", 1, 5)] == [2, 3]
            with pytest.raises(ApplicationError) as info:
                await untrusted.deliver("p", chain(4))
            assert info.value.type == "SinkUnavailable"
        finally:
            await trusted.aclose()
            await untrusted.aclose()
