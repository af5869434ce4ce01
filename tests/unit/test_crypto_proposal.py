"""Ed25519 identities, the proposal envelope (schema, headers, signatures) and keyring loading."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from swoosh.worker.keyring_file import KEYRING_ENV, load_keyring
from swoosh.workflows.crypto import (
    SIGNER_RE,
    b64url,
    b64url_decode,
    private_key_from_text,
    private_key_to_text,
    public_key_of,
    sign_bytes,
    sign_object,
    signer_id,
    verify_bytes,
    verify_object,
)
from swoosh.workflows.errors import KeyringError, ProposalError
from swoosh.workflows.hlc import HLC
from swoosh.workflows.keyring import Identity, Keyring
from swoosh.workflows.proposal import (
    ProposalRequest,
    build_body,
    inputs_hash_matches,
    parse_proposal,
    signing_bytes,
    verify_signature,
)
from tests.unit.helpers import NOW, h

KEY = Ed25519PrivateKey.generate()
OTHER = Ed25519PrivateKey.generate()
HLC_TEXT = HLC(NOW, 3).format()


def make_body(**overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "transition": "Council_ProfilesLoaded",
        "current_state_hash": h("head"),
        "idem_key": "goal:1:Council_ProfilesLoaded:demo",
        "hlc": HLC_TEXT,
        "inputs": {"roles": ["architect"]},
        "project_id": "demo",
        "window_id": "backbeat:W-1",
        "evidence": ["ucxl://agent:role@demo:task/seg/path"],
    }
    kwargs.update(overrides)
    return build_body(KEY, **kwargs)


def parse(body: dict[str, Any], **request: Any) -> Any:
    return parse_proposal(ProposalRequest(body=body, **request))


def signature_ok(body: dict[str, Any], **request: Any) -> bool:
    req = ProposalRequest(body=body, **request)
    return verify_signature(req, parse_proposal(req))


# ---------------------------------------------------------------------- crypto


def test_signer_id_has_contract_form() -> None:
    sid = signer_id(KEY.public_key())
    assert sid.startswith("hmmm:pubkey:")
    assert SIGNER_RE.match(sid)
    assert len(b64url_decode(sid.removeprefix("hmmm:pubkey:"))) == 32


def test_signer_id_is_unpadded_base64url() -> None:
    assert "=" not in signer_id(KEY.public_key())


def test_public_key_of_round_trips_signer_id() -> None:
    sid = signer_id(KEY.public_key())
    key = public_key_of(sid)
    assert key is not None and signer_id(key) == sid


@pytest.mark.parametrize("bad", ["hmmm:pubkey:short", "pubkey:" + "A" * 43, "hmmm:pubkey:" + "!" * 43, ""])
def test_public_key_of_malformed_is_none(bad: str) -> None:
    assert public_key_of(bad) is None


def test_sign_bytes_verifies() -> None:
    sig = sign_bytes(KEY, b"message")
    assert verify_bytes(signer_id(KEY.public_key()), b"message", sig)


def test_verify_bytes_rejects_other_message() -> None:
    sig = sign_bytes(KEY, b"message")
    assert not verify_bytes(signer_id(KEY.public_key()), b"messagf", sig)


def test_verify_bytes_rejects_other_signer() -> None:
    sig = sign_bytes(KEY, b"message")
    assert not verify_bytes(signer_id(OTHER.public_key()), b"message", sig)


@pytest.mark.parametrize("sig", ["", "A" * 85, "A" * 86 + "=", "+" * 86, "A" * 86])
def test_verify_bytes_rejects_malformed_signature(sig: str) -> None:
    assert not verify_bytes(signer_id(KEY.public_key()), b"message", sig)


def test_verify_bytes_rejects_malformed_signer() -> None:
    assert not verify_bytes("hmmm:pubkey:nope", b"message", sign_bytes(KEY, b"message"))


def test_sign_object_signs_canonical_json() -> None:
    sig = sign_object(KEY, {"b": 1, "a": 2})
    assert verify_object(signer_id(KEY.public_key()), {"a": 2, "b": 1}, sig)
    assert verify_bytes(signer_id(KEY.public_key()), b'{"a":2,"b":1}', sig)


def test_private_key_text_round_trip() -> None:
    again = private_key_from_text(private_key_to_text(KEY) + "\n")
    assert signer_id(again.public_key()) == signer_id(KEY.public_key())


def test_private_key_from_text_rejects_wrong_length() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        private_key_from_text(b64url(b"x" * 31))


def test_b64url_decode_rejects_non_base64url() -> None:
    with pytest.raises(ValueError, match="not base64url"):
        b64url_decode("ab+/")


def test_b64url_round_trip_without_padding() -> None:
    assert b64url(b"\xff\xfe") == "__4"
    assert b64url_decode("__4") == b"\xff\xfe"


# ---------------------------------------------------------------------- envelope and signature


def test_build_body_signature_verifies() -> None:
    assert signature_ok(make_body())


def test_signing_bytes_exclude_signature() -> None:
    body = make_body()
    assert signing_bytes(body) == signing_bytes({k: v for k, v in body.items() if k != "signature"})
    assert b'"signature"' not in signing_bytes(body)


TAMPERED = [
    ("transition", "Council_QuorumCert"),
    ("inputs", {"roles": ["intruder"]}),
    ("inputs_hash", h("other inputs")),
    ("hlc", HLC(NOW, 4).format()),
    ("idem_key", "goal:2:Council_ProfilesLoaded:demo"),
    ("current_state_hash", h("other head")),
    ("signer", signer_id(OTHER.public_key())),
    ("window_id", "backbeat:W-2"),
    ("evidence", ["ucxl://forged"]),
    ("project_id", "other"),
]


@pytest.mark.parametrize(("field", "value"), TAMPERED, ids=[f for f, _ in TAMPERED])
def test_verify_signature_detects_tampered_field(field: str, value: Any) -> None:
    body = make_body()
    body[field] = value
    assert not signature_ok(body)


def test_verify_signature_detects_removed_optional_field() -> None:
    body = make_body()
    del body["evidence"]
    assert not signature_ok(body)


def test_verify_signature_detects_added_optional_field() -> None:
    body = make_body(window_id=None)
    body["window_id"] = "backbeat:W-1"
    assert not signature_ok(body)


def test_verify_signature_rejects_signature_of_another_key() -> None:
    body = make_body()
    body["signature"] = sign_bytes(OTHER, signing_bytes(body))
    assert not signature_ok(body)


def test_inputs_hash_matches_hash_of_inputs() -> None:
    assert inputs_hash_matches(parse(make_body()))


def test_inputs_hash_matches_detects_mismatch() -> None:
    body = make_body()
    body["inputs_hash"] = h("something else")
    assert not inputs_hash_matches(parse(body))


def test_parse_proposal_defaults_inputs_and_evidence() -> None:
    body = build_body(KEY, transition="Environment_Green", current_state_hash=h(1), idem_key="k", hlc=HLC_TEXT)
    del body["inputs"]
    proposal = parse(body)
    assert proposal.inputs == {} and proposal.evidence == [] and proposal.window_id is None


HEADERS = [("idem_key", "goal:9:x:demo"), ("hlc", HLC(NOW, 9).format()), ("window_id", "backbeat:W-9")]


@pytest.mark.parametrize(("field", "value"), HEADERS, ids=[f for f, _ in HEADERS])
def test_parse_proposal_header_fills_absent_field(field: str, value: str) -> None:
    body = make_body()
    del body[field]
    body = {k: v for k, v in body.items() if k != "signature"}
    body["signature"] = sign_bytes(KEY, signing_bytes(body))
    proposal = parse(body, header_fields={field: value})
    assert getattr(proposal, field) == value


@pytest.mark.parametrize(("field", "value"), HEADERS, ids=[f for f, _ in HEADERS])
def test_verify_signature_covers_body_as_sent_not_header_fields(field: str, value: str) -> None:
    body = {k: v for k, v in make_body().items() if k not in (field, "signature")}
    body["signature"] = sign_bytes(KEY, signing_bytes(body))
    assert signature_ok(body, header_fields={field: value})


@pytest.mark.parametrize(("field", "value"), HEADERS, ids=[f for f, _ in HEADERS])
def test_parse_proposal_header_agreeing_with_body_is_fine(field: str, value: str) -> None:
    body = make_body(**{field: value})
    assert getattr(parse(body, header_fields={field: value}), field) == value


@pytest.mark.parametrize(("field", "value"), HEADERS, ids=[f for f, _ in HEADERS])
def test_parse_proposal_header_conflicting_with_body_is_schema(field: str, value: str) -> None:
    with pytest.raises(ProposalError) as err:
        parse(make_body(), header_fields={field: value})
    assert err.value.code == "schema"
    assert "different values" in err.value.reason


def test_parse_proposal_unknown_header_field_is_schema() -> None:
    with pytest.raises(ProposalError) as err:
        parse(make_body(), header_fields={"signer": "x"})
    assert err.value.code == "schema"


def test_parse_proposal_fills_project_from_request() -> None:
    body = make_body(project_id=None)
    assert parse(body, project_id="demo").project_id == "demo"


def test_parse_proposal_project_mismatch_is_schema() -> None:
    with pytest.raises(ProposalError) as err:
        parse(make_body(), project_id="elsewhere")
    assert err.value.code == "schema"


def test_parse_proposal_unknown_field_is_schema() -> None:
    body = make_body()
    body["priority"] = "high"
    with pytest.raises(ProposalError) as err:
        parse(body)
    assert err.value.code == "schema"
    assert "priority" in err.value.reason


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b["inputs"].update(weight=0.5),
        lambda b: b.update(evidence=[1.5]),
        lambda b: b.update(inputs={"nested": {"deep": [1, 2.0]}}),
    ],
    ids=["input", "evidence", "nested"],
)
def test_parse_proposal_float_anywhere_is_schema(mutate: Any) -> None:
    body = make_body()
    mutate(body)
    with pytest.raises(ProposalError) as err:
        parse(body)
    assert err.value.code == "schema"
    assert "float" in err.value.reason


@pytest.mark.parametrize(
    "field", ["current_state_hash", "transition", "inputs_hash", "signer", "idem_key", "hlc", "signature"]
)
def test_parse_proposal_missing_required_field_is_schema(field: str) -> None:
    body = make_body()
    del body[field]
    with pytest.raises(ProposalError) as err:
        parse(body)
    assert err.value.code == "schema"
    assert field in err.value.reason


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("current_state_hash", "sha256-XYZ"),
        ("inputs_hash", "md5-00"),
        ("signer", "hmmm:pubkey:tooshort"),
        ("idem_key", "has space"),
        ("idem_key", ""),
        ("hlc", "2025-10-19T01:23:45.678+00:00"),
        ("window_id", "w" * 129),
        ("project_id", "bad/project"),
        ("project_id", "p" * 65),
        ("evidence", [""]),
        ("evidence", ["e"] * 65),
        ("inputs", ["not", "an", "object"]),
        ("transition", ""),
    ],
)
def test_parse_proposal_malformed_field_is_schema(field: str, value: Any) -> None:
    body = make_body()
    body[field] = value
    with pytest.raises(ProposalError) as err:
        parse(body)
    assert err.value.code == "schema"


@pytest.mark.parametrize(
    ("field", "value"), [("project_id", "demo\n"), ("idem_key", "goal:1\n"), ("window_id", "W-1\n")]
)
def test_parse_proposal_trailing_newline_is_schema(field: str, value: str) -> None:
    body = make_body()
    body[field] = value
    with pytest.raises(ProposalError):
        parse(body)


# ---------------------------------------------------------------------- keyring


def write(tmp_path: Path, content: str) -> Path:
    path = tmp_path / "keyring.json"
    path.write_text(content, encoding="utf-8")
    return path


def keyring_json(*entries: tuple[str, list[str]]) -> str:
    return json.dumps({"signers": [{"id": sid, "roles": roles} for sid, roles in entries]})


A = signer_id(KEY.public_key())
B = signer_id(OTHER.public_key())


def test_load_keyring_reads_valid_file(tmp_path: Path) -> None:
    ring = load_keyring(write(tmp_path, keyring_json((A, ["*"]), (B, ["council"]))))
    assert {s.id for s in ring.signers} == {A, B}


def test_keyring_identities_are_sorted_and_canonical() -> None:
    ring = Keyring(signers=(Identity(id=B, roles=("policy", "operator", "policy")), Identity(id=A, roles=("*",))))
    assert ring.identities() == sorted(
        [{"id": A, "roles": ["*"]}, {"id": B, "roles": ["operator", "policy"]}], key=lambda i: str(i["id"])
    )


def test_identity_star_has_every_role() -> None:
    assert Identity(id=A, roles=("*",)).has_role("operator")
    assert not Identity(id=A, roles=("council",)).has_role("operator")


def test_load_keyring_missing_file(tmp_path: Path) -> None:
    with pytest.raises(KeyringError, match="cannot read"):
        load_keyring(tmp_path / "absent.json")


def test_load_keyring_bad_json(tmp_path: Path) -> None:
    with pytest.raises(KeyringError, match="not JSON"):
        load_keyring(write(tmp_path, "{signers: ["))


def test_load_keyring_bad_signer_id(tmp_path: Path) -> None:
    with pytest.raises(KeyringError, match="malformed"):
        load_keyring(write(tmp_path, keyring_json(("hmmm:pubkey:nope", ["*"]))))


def test_load_keyring_duplicate_signer(tmp_path: Path) -> None:
    with pytest.raises(KeyringError, match="listed twice"):
        load_keyring(write(tmp_path, keyring_json((A, ["*"]), (A, ["council"]))))


def test_load_keyring_empty_roles(tmp_path: Path) -> None:
    with pytest.raises(KeyringError, match="malformed"):
        load_keyring(write(tmp_path, keyring_json((A, []))))


def test_load_keyring_unknown_key(tmp_path: Path) -> None:
    with pytest.raises(KeyringError, match="malformed"):
        load_keyring(write(tmp_path, json.dumps({"signers": [], "admins": []})))


def test_load_keyring_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEYRING_ENV, str(write(tmp_path, keyring_json((B, ["operator"])))))
    assert [s.id for s in load_keyring().signers] == [B]


def test_load_keyring_explicit_path_beats_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEYRING_ENV, str(tmp_path / "absent.json"))
    assert [s.id for s in load_keyring(write(tmp_path, keyring_json((A, ["*"])))).signers] == [A]


def test_load_keyring_without_path_or_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEYRING_ENV, raising=False)
    with pytest.raises(KeyringError, match=KEYRING_ENV):
        load_keyring()
