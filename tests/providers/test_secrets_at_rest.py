"""Secrets at rest: `_FILE` forms of every secret setting, scoped token entries, an age-encrypted config."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyrage
import pytest

from swoosh.worker.api_server import is_loopback, refuse_open_bind
from swoosh.worker.settings import _SECRET, Settings, env_variables, load_settings
from swoosh.workflows.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_every_secret_setting_has_a_file_form() -> None:
    names = {v.name for v in env_variables()}
    for section, key in _SECRET:
        assert f"SWOOSH_{section.upper()}_{key.upper()}_FILE" in names, (section, key)


def test_tokens_file_form_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text("alpha-secret\nbeta-secret\n")
    loaded = load_settings({"SWOOSH_API_TOKENS_FILE": str(path)})
    tokens = loaded.settings.api.tokens
    assert [(t.label, t.resolved_secret(), t.scopes, t.projects) for t in tokens] == [
        ("token-1", "alpha-secret", ("read", "propose", "admin"), ("*",)),
        ("token-2", "beta-secret", ("read", "propose", "admin"), ("*",)),
    ]
    assert loaded.files == (path,)
    assert "alpha-secret" not in repr(loaded.settings)


def test_both_forms_of_one_secret_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text("x-secret")
    with pytest.raises(ConfigError, match="give one of SWOOSH_API_TOKENS and SWOOSH_API_TOKENS_FILE"):
        load_settings({"SWOOSH_API_TOKENS": "y-secret", "SWOOSH_API_TOKENS_FILE": str(path)})


def test_missing_or_empty_secret_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"SWOOSH_API_TOKENS_FILE: cannot read .*nope"):
        load_settings({"SWOOSH_API_TOKENS_FILE": str(tmp_path / "nope")})
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match="is empty"):
        load_settings({"SWOOSH_API_TOKENS_FILE": str(tmp_path / "empty")})


def test_scoped_token_entries_in_toml_with_secret_files(tmp_path: Path) -> None:
    (tmp_path / "ci.token").write_text("ci-very-secret\n")
    config = tmp_path / "swoosh.toml"
    config.write_text(
        f"""
[[api.tokens]]
label = "ci"
secret_file = "{tmp_path / "ci.token"}"
scopes = ["propose", "read"]
projects = ["team-*", "demo"]

[[api.tokens]]
label = "ops"
secret = "ops-very-secret"
"""
    )
    loaded = load_settings({}, config_file=config)
    ci, ops = loaded.settings.api.tokens
    assert (ci.label, ci.resolved_secret(), ci.scopes, ci.projects) == (
        "ci",
        "ci-very-secret",
        ("read", "propose"),
        ("team-*", "demo"),
    )
    assert ci.principal().may("propose", "team-a") and not ci.principal().may("propose", "other")
    assert not ci.principal().may("admin", "team-a")
    assert ops.principal().may("admin", "anything")
    assert loaded.files == (config, tmp_path / "ci.token")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"label": "a b", "secret": "s"}, "label must be"),
        ({"label": "a", "secret": "s", "scopes": ["write"]}, "scopes"),
        ({"label": "a", "secret": "s", "scopes": []}, "at least one of read"),
        ({"label": "a", "secret": "s", "projects": ["a/b"]}, "project pattern"),
        ({"label": "a"}, "exactly one of secret and secret_file"),
        ({"label": "a", "secret": "s", "secret_file": "/x"}, "exactly one of secret and secret_file"),
    ],
)
def test_bad_token_entries_are_refused(entry: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        Settings.load({"SWOOSH_API_TOKENS": json.dumps([entry])})
    assert '"s"' not in str(err.value) and "'s'" not in str(err.value)


def test_duplicate_token_labels_are_refused() -> None:
    entries = [{"label": "a", "secret": "s1"}, {"label": "a", "secret": "s2"}]
    with pytest.raises(ConfigError, match="labels must be unique"):
        Settings.load({"SWOOSH_API_TOKENS": json.dumps(entries)})


def _age_config(tmp_path: Path, text: str, armored: bool = False) -> tuple[Path, Path]:
    identity = pyrage.x25519.Identity.generate()
    key = tmp_path / "age.key"
    key.write_text(f"# created for a test\n{identity}\n")
    config = tmp_path / "swoosh.toml.age"
    config.write_bytes(pyrage.encrypt(text.encode(), [identity.to_public()], armored=armored))
    return config, key


@pytest.mark.parametrize("armored", [False, True])
def test_age_encrypted_config_is_decrypted_in_memory(tmp_path: Path, armored: bool) -> None:
    config, key = _age_config(tmp_path, '[api]\nport = 9191\ntokens = ["age-very-secret"]\n', armored)
    s = Settings.load({"SWOOSH_CONFIG": str(config), "SWOOSH_AGE_IDENTITY": str(key)})
    assert s.api.port == 9191 and s.api.tokens[0].resolved_secret() == "age-very-secret"
    assert b"age-very-secret" not in config.read_bytes()


def test_age_encrypted_config_without_identity_is_a_clear_error(tmp_path: Path) -> None:
    config, _ = _age_config(tmp_path, "[api]\nport = 9191\n")
    with pytest.raises(ConfigError, match="is age-encrypted: set SWOOSH_AGE_IDENTITY"):
        Settings.load({"SWOOSH_CONFIG": str(config)})


def test_age_encrypted_config_with_the_wrong_identity_is_a_clear_error(tmp_path: Path) -> None:
    config, _ = _age_config(tmp_path, "[api]\nport = 9191\n")
    other = tmp_path / "other.key"
    other.write_text(f"{pyrage.x25519.Identity.generate()}\n")
    with pytest.raises(ConfigError, match="cannot decrypt config file"):
        Settings.load({"SWOOSH_CONFIG": str(config), "SWOOSH_AGE_IDENTITY": str(other)})
    other.write_text("not an identity\n")
    with pytest.raises(ConfigError, match=r"line 1 of .* is not an age identity"):
        Settings.load({"SWOOSH_CONFIG": str(config), "SWOOSH_AGE_IDENTITY": str(other)})


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.8.9.1", True), ("::1", True), ("[::1]", True), ("localhost", True),
     ("0.0.0.0", False), ("::", False), ("10.1.2.3", False), ("api.example", False)],
)  # fmt: skip
def test_loopback_detection(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_non_loopback_bind_without_tokens_is_refused_unless_insecure() -> None:
    with pytest.raises(ConfigError, match=r"refusing to serve the API on 0\.0\.0\.0 without API tokens"):
        refuse_open_bind("0.0.0.0", (), insecure=False)
    refuse_open_bind("0.0.0.0", (), insecure=True)
    refuse_open_bind("0.0.0.0", Settings.load({"SWOOSH_API_TOKENS": "t-secret"}).api.tokens, insecure=False)
    refuse_open_bind("127.0.0.1", (), insecure=False)


def test_swoosh_api_refuses_an_open_bind_before_starting(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "SWOOSH_API_HOST": "0.0.0.0", "SWOOSH_DATA_DIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "swoosh.worker.cli", "api"], cwd=ROOT, env=env, capture_output=True, timeout=60
    )
    assert proc.returncode == 2
    assert b"refusing to serve the API on 0.0.0.0 without API tokens" in proc.stderr
