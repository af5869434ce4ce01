"""The built-in SHHH rules, by version: version 2 catches today's key formats; old projects keep version 1."""

from __future__ import annotations

import pytest

from swoosh.guards.policy import BUILTIN_RULES, BUILTIN_RULES_V1, BUILTIN_RULES_V2, LATEST_RULES_VERSION, redact, scan
from swoosh.worker.settings import Settings
from swoosh.workflows.engine import EngineConfig, EngineSnapshot, new_engine_config

# Shapes only (made up, never real keys), one per issuer format version 2 adds.
MODERN = {
    "openai project": "sk-proj-" + "Ab3_dE5-" * 6,
    "openai service account": "sk-svcacct-" + "Xy9Zq8Wv7Ut6" * 3,
    "anthropic": "sk-ant-api03-" + "Qw3rTy_Ui0-p" * 4,
    "stripe with underscores": "sk_live_" + "51Hx_ab12CD34ef56",
    "github fine-grained": "github_pat_11ABCDEFG0" + "a1B2c3D4e5F6g7H8i9J0k" * 2,
    "gitlab": "glpat-" + "a1B2c3D4e5F6g7H8i9J0",
    "slack": "xoxb-123456789012-1234567890123-AbCdEfGhIjKl",
    "google": "AIza" + "SyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q",
    "aws temporary": "ASIA" + "ABCDEFGHIJKLMNOP",
    "hugging face": "hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYz0123456",
    "npm": "npm_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
}
ORDINARY = [
    "task-runner-for-the-east-region-cluster",
    "sk-learn",
    "skeleton-key-ring-2024-final",
    "risk_assessment_for_the_quarter",
    "ask-the-council-before-merging-anything",
    "hf_model_name",
    "xoxo-party",
    "AIzaleas",
    "ucxl://agent:dev@demo:work/*^/decisions/17",
    "sha256-" + "ab" * 32,
]


@pytest.mark.parametrize("name", sorted(MODERN))
def test_secret_rules_v2_catch_modern_formats_v1_did_not(name: str) -> None:
    text = f"use {MODERN[name]} for the deploy"
    assert scan(BUILTIN_RULES_V2, {"note": text}, []) == ["api-key (high) at inputs.note"]
    redacted = redact(text, BUILTIN_RULES_V2)
    assert "[REDACTED]" in redacted and MODERN[name] not in redacted


def test_secret_rules_v1_missed_an_openai_project_key() -> None:
    """The reported miss, kept as it was for the projects still on version 1."""
    assert scan(BUILTIN_RULES_V1, {"note": MODERN["openai project"]}, []) == []


@pytest.mark.parametrize("text", ORDINARY)
def test_secret_rules_leave_ordinary_text_alone(text: str) -> None:
    assert scan(BUILTIN_RULES_V2, {"note": text}, [text]) == []


def test_secret_rules_versions_are_carried_in_the_engine_config() -> None:
    assert BUILTIN_RULES is BUILTIN_RULES_V2 and LATEST_RULES_VERSION == 2
    old = EngineSnapshot.model_validate({"document": {}, "config": {"max_offset_ms": 1}})
    assert old.config.secret_rules == 1  # a snapshot from before the field: the rules it always had
    assert EngineConfig().secret_rules == 1
    assert new_engine_config(grace_ms=5).secret_rules == LATEST_RULES_VERSION
    assert Settings.load({}).engine.config().secret_rules == LATEST_RULES_VERSION


# Real Ed25519 signatures that the api-key rule matches by chance (`-pk-`, `_pk-`), and a signer id of a
# shape it matches (`-AIza…`): about 1 in 57,000 signatures and 1 in 100,000 signer ids do, under either rule version.
CHANCE_SIGNATURES = [
    "pk-ExAvr8Vu3hv0QJYxFcLFPPWhJ2qxqht0lcdAhtGQrFSqVPiFgH-eZiEhnsSN-F3l0810ofQsxQC-i4-trAQ",
    "Py_ojkSeQRT6vziTrfl7K2ebondIzibpl8KLLi-FdGS0YGVqkNlf63N7Lu-pk_Xs4Y6TMAugemHIsWeSVzLwCQ",
]
CHANCE_SIGNER = "hmmm:pubkey:Q-AIza" + "b" * 35 + "Z0"  # the shape only: not a real key


@pytest.mark.parametrize("sig", CHANCE_SIGNATURES)
def test_signatures_are_not_scanned_as_text(sig: str) -> None:
    vote = {"voter": CHANCE_SIGNER, "members_hash": "sha256-" + "0" * 64, "window_id": None, "signature": sig}
    assert scan(BUILTIN_RULES, {"votes": [vote]}, []) == []
    # Projects recorded before the exemption scanned them, and on replay still do.
    found = scan(BUILTIN_RULES, {"votes": [vote]}, [], signed_exempt=False)
    assert "api-key (high) at inputs.votes[0].signature" in found and "api-key (high) at inputs.votes[0].voter" in found


def test_only_the_exact_signature_shape_is_exempt() -> None:
    sig = CHANCE_SIGNATURES[0]
    assert scan(BUILTIN_RULES, {"note": sig}, []) == ["api-key (high) at inputs.note"]  # not a signature field
    assert scan(BUILTIN_RULES, {"signature": sig + "x"}, []) == ["api-key (high) at inputs.signature"]  # 87 chars
    assert scan(BUILTIN_RULES, {"signature": f"sk-proj-{'a' * 30}"}, []) != []
    assert scan(BUILTIN_RULES, {"x": CHANCE_SIGNER + " and more"}, []) != []


def test_the_exemption_is_carried_in_the_engine_config_and_adopted_at_a_snapshot() -> None:
    old = EngineSnapshot.model_validate({"document": {}, "config": {"max_offset_ms": 1}})
    assert old.config.signed_fields_exempt is False  # recorded before: decides (and replays) as it did
    assert old.config.adopt_rules().signed_fields_exempt is True  # a security fix reaches running projects
    assert new_engine_config().signed_fields_exempt is True
