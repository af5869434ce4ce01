"""The payload codec: AES-256-GCM with key ids, rotation, clear failures; its settings and the codec server."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from swoosh.api.server.codec_server import create_codec_app
from swoosh.api.server.tokens import ApiToken, TokenSet
from swoosh.worker.settings import Settings
from swoosh.workflows.errors import ConfigError
from swoosh.workflows.lifecycle.codec import (
    ENCODING,
    KEY_ID_METADATA,
    EncryptionCodec,
    EncryptionSettings,
    PayloadKeyError,
    new_key_entry,
    parse_key,
)
from swoosh.workflows.lifecycle.connection import data_converter

K1, K2 = new_key_entry("k1"), new_key_entry("k2")
SECRET = "sk_live_" + "Z" * 24


def _codec(*entries: str, active: str | None = None) -> EncryptionCodec:
    codec = EncryptionSettings.model_validate({"keys": list(entries), "active_key": active}).codec()
    assert codec is not None
    return codec


def _plain(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps({"inputs": text}).encode())


async def test_codec_encrypts_with_the_active_key_and_round_trips() -> None:
    codec = _codec(K1, K2)
    [enc] = await codec.encode([_plain(SECRET)])
    assert enc.metadata["encoding"] == ENCODING and enc.metadata[KEY_ID_METADATA] == b"k1"
    assert SECRET.encode() not in enc.data and b"json/plain" not in enc.SerializeToString()
    [again] = await codec.encode([_plain(SECRET)])
    assert again.data != enc.data  # a fresh nonce per payload
    assert await codec.decode([enc]) == [_plain(SECRET)]


async def test_codec_rotation_new_active_key_still_reads_old_payloads() -> None:
    old = _codec(K1)
    [written_before] = await old.encode([_plain("before")])
    rotated = _codec(K2, K1)  # k2 first: the active key; k1 still listed
    [written_after] = await rotated.encode([_plain("after")])
    assert written_after.metadata[KEY_ID_METADATA] == b"k2"
    assert await rotated.decode([written_before, written_after]) == [_plain("before"), _plain("after")]
    explicit = _codec(K1, K2, active="k2")
    assert (await explicit.encode([_plain("x")]))[0].metadata[KEY_ID_METADATA] == b"k2"


async def test_codec_removed_key_fails_clearly_without_the_key() -> None:
    [enc] = await _codec(K1).encode([_plain("x")])
    with pytest.raises(PayloadKeyError, match=r"key id 'k1', which is not configured \(keys: k2\)") as err:
        await _codec(K2).decode([enc])
    assert K1.split("=", 1)[1] not in str(err.value)


async def test_codec_same_id_other_key_or_tampered_data_fails_clearly() -> None:
    [enc] = await _codec(K1).encode([_plain("x")])
    with pytest.raises(PayloadKeyError, match="does not decrypt"):
        await _codec(new_key_entry("k1")).decode([enc])
    enc.data = enc.data[:-1] + bytes([enc.data[-1] ^ 1])
    with pytest.raises(PayloadKeyError, match="does not decrypt"):
        await _codec(K1).decode([enc])


async def test_codec_passes_plaintext_payloads_through() -> None:
    assert await _codec(K1).decode([_plain("old run")]) == [_plain("old run")]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("k1", "id=<base64"),
        ("bad id=" + base64.b64encode(b"x" * 32).decode(), "id=<base64"),
        ("k1=" + base64.b64encode(b"x" * 16).decode(), "16 bytes, AES-256 needs 32"),
        ("k1=@@@@", "not base64"),
    ],
)
def test_key_entries_are_checked(entry: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_key(entry)


def test_key_entries_accept_standard_and_urlsafe_base64() -> None:
    raw = bytes(range(250, 256)) + bytes(26)
    assert parse_key("a=" + base64.b64encode(raw).decode())[1] == raw
    assert parse_key("a=" + base64.urlsafe_b64encode(raw).decode().rstrip("="))[1] == raw


def test_encryption_settings_from_env_and_file_never_show_keys() -> None:
    s = Settings.load({"SWOOSH_ENCRYPTION_KEYS": f"{K2},{K1}"})
    assert s.encryption.enabled and s.encryption.key_ids() == ["k2", "k1"]
    assert K1.split("=", 1)[1] not in repr(s) and K1.split("=", 1)[1] not in s.model_dump_json()
    with pytest.raises(ConfigError, match="active_key 'k3' is not among the keys") as err:
        Settings.load({"SWOOSH_ENCRYPTION_KEYS": K1, "SWOOSH_ENCRYPTION_ACTIVE_KEY": "k3"})
    assert K1.split("=", 1)[1] not in str(err.value)
    with pytest.raises(ConfigError, match="listed twice"):
        Settings.load({"SWOOSH_ENCRYPTION_KEYS": f"{K1},{K1}"})
    assert not Settings.load({}).encryption.enabled


def test_data_converter_applies_the_codec_only_when_keys_are_set() -> None:
    assert data_converter().payload_codec is None
    assert data_converter(EncryptionSettings()).payload_codec is None
    converter = data_converter(EncryptionSettings.model_validate({"keys": [K1]}))
    assert isinstance(converter.payload_codec, EncryptionCodec)
    assert converter.failure_converter.__class__.__name__ == "DefaultFailureConverterWithEncodedAttributes"


# ---------------------------------------------------------------------- codec server
UI = "http://127.0.0.1:8233"


def _client(tokens: TokenSet | None = None) -> httpx.AsyncClient:
    app = create_codec_app(_codec(K1), tokens=tokens, origins=[UI])
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://codec")


def _body(*payloads: Payload) -> str:
    return json_format.MessageToJson(Payloads(payloads=list(payloads)))


async def test_codec_server_encodes_and_decodes_the_protocol_shape() -> None:
    async with _client() as http:
        enc = await http.post("/encode", content=_body(_plain(SECRET)), headers={"content-type": "application/json"})
        assert enc.status_code == 200 and SECRET not in enc.text
        encoded = json_format.Parse(enc.text, Payloads())
        assert encoded.payloads[0].metadata["encoding"] == ENCODING
        dec = await http.post("/decode", content=enc.text, headers={"content-type": "application/json"})
        assert dec.status_code == 200
        assert list(json_format.Parse(dec.text, Payloads()).payloads) == [_plain(SECRET)]
        bad = await http.post("/decode", content="{not json")
        assert bad.status_code == 400 and bad.json()["error"] == "schema"


async def test_codec_server_answers_cors_for_the_ui_origin_only() -> None:
    async with _client() as http:
        pre = await http.options("/decode", headers={"Origin": UI, "Access-Control-Request-Method": "POST"})
        assert pre.status_code == 204 and pre.headers["access-control-allow-origin"] == UI
        assert "x-namespace" in pre.headers["access-control-allow-headers"]
        other = await http.options("/decode", headers={"Origin": "http://evil.example"})
        assert other.status_code == 403 and "access-control-allow-origin" not in other.headers
        post = await http.post("/decode", content=_body(), headers={"Origin": UI})
        assert post.headers["access-control-allow-origin"] == UI


async def test_codec_server_needs_a_read_everywhere_token_when_tokens_are_set() -> None:
    tokens = TokenSet.of(
        [
            ApiToken(label="ops", secret="ops-secret-1234"),  # type: ignore[arg-type]
            ApiToken(label="team", secret="team-secret-1234", scopes=("read",), projects=("team-*",)),  # type: ignore[arg-type]
            ApiToken(label="writer", secret="writer-secret-1234", scopes=("propose",)),  # type: ignore[arg-type]
        ]
    )
    async with _client(tokens) as http:
        assert (await http.post("/decode", content=_body())).status_code == 401
        for secret, status in (("team-secret-1234", 403), ("writer-secret-1234", 403), ("ops-secret-1234", 200)):
            resp = await http.post("/decode", content=_body(), headers={"Authorization": f"Bearer {secret}"})
            assert resp.status_code == status, (secret, resp.text)


async def test_codec_server_refuses_unknown_keys_with_a_clear_answer() -> None:
    [enc] = await _codec(K2).encode([_plain("x")])
    async with _client() as http:
        resp = await http.post("/decode", content=_body(enc))
        assert resp.status_code == 400 and "key id 'k2', which is not configured" in resp.json()["reason"]


def test_encryption_settings_from_the_environment_alone(tmp_path: Path) -> None:
    """What the chaos and determinism harnesses read (they sit below the process settings)."""
    assert not EncryptionSettings.from_environ({}).enabled
    assert EncryptionSettings.from_environ({"SWOOSH_ENCRYPTION_KEYS": f"{K1},{K2}"}).key_ids() == ["k1", "k2"]
    path = tmp_path / "keys"
    path.write_text(f"{K2}\n{K1}\n")
    env = {"SWOOSH_ENCRYPTION_KEYS_FILE": str(path), "SWOOSH_ENCRYPTION_ACTIVE_KEY": "k1"}
    settings = EncryptionSettings.from_environ(env)
    assert settings.key_ids() == ["k2", "k1"] and settings.active_key == "k1"
