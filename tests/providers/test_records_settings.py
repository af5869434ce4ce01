"""The `[records]` settings: which decision-record store, its DSN or endpoint, secrets and their files."""

from __future__ import annotations

from pathlib import Path

import pytest

from swoosh.activities.decisions import StoreConfigError, decision_store
from swoosh.activities.records_bubble import BubbleStore
from swoosh.activities.records_jsonl import JsonlSink
from swoosh.activities.records_postgres import PostgresStore
from swoosh.worker.settings import Settings
from swoosh.workflows.errors import ConfigError

DSN = "postgresql://swoosh:pw-very-secret@db.internal:5432/swoosh"


async def test_records_default_is_the_jsonl_files_under_the_data_dir(tmp_path: Path) -> None:
    s = Settings.load({"SWOOSH_DATA_DIR": str(tmp_path)})
    store = decision_store(s.records, s.data_dir)
    assert s.records.store == "jsonl" and isinstance(store, JsonlSink) and store.root == tmp_path / "decisions"


async def test_records_postgres_from_toml_with_the_dsn_in_a_file(tmp_path: Path) -> None:
    (tmp_path / "dsn").write_text(DSN + "\n")
    (tmp_path / "swoosh.toml").write_text(f'[records]\nstore = "postgres"\npostgres_dsn_file = "{tmp_path / "dsn"}"\n')
    s = Settings.load({}, config_file=tmp_path / "swoosh.toml")
    assert s.records.resolved_postgres_dsn() == DSN
    store = decision_store(s.records, s.data_dir)
    assert isinstance(store, PostgresStore) and "very-secret" not in repr(store)


def test_records_postgres_needs_a_dsn() -> None:
    with pytest.raises(ConfigError, match=r"records from SWOOSH_RECORDS_STORE: .*needs postgres_dsn"):
        Settings.load({"SWOOSH_RECORDS_STORE": "postgres"})


def test_records_unknown_store_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"records\.store from SWOOSH_RECORDS_STORE"):
        Settings.load({"SWOOSH_RECORDS_STORE": "sqlite"})


def test_records_secret_and_its_file_together_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="postgres_dsn or postgres_dsn_file, not both") as err:
        Settings.load(
            {
                "SWOOSH_RECORDS_STORE": "postgres",
                "SWOOSH_RECORDS_POSTGRES_DSN": DSN,
                "SWOOSH_RECORDS_POSTGRES_DSN_FILE": str(tmp_path / "dsn"),
            }
        )
    assert "very-secret" not in str(err.value)


def test_records_secrets_stay_out_of_repr_and_errors() -> None:
    s = Settings.load({"SWOOSH_RECORDS_STORE": "postgres", "SWOOSH_RECORDS_POSTGRES_DSN": DSN})
    assert "very-secret" not in repr(s) and "very-secret" not in s.model_dump_json()
    with pytest.raises(ConfigError) as err:
        Settings.load({"SWOOSH_RECORDS_POSTGRES_DSN": DSN, "SWOOSH_RECORDS_TIMEOUT_MS": "-1"})
    assert "very-secret" not in str(err.value)


async def test_records_bubble_with_token_file_and_ca(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("bubble-very-secret\n")
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    s = Settings.load(
        {
            "SWOOSH_RECORDS_BUBBLE_URL": "https://bubble.internal/v1/",
            "SWOOSH_RECORDS_BUBBLE_TOKEN_FILE": str(tmp_path / "token"),
            "SWOOSH_RECORDS_BUBBLE_CA": str(tmp_path / "ca.pem"),
        }
    )
    assert s.records.store == "bubble"  # a URL alone selects BUBBLE, as before the store setting existed
    assert s.records.bubble_url == "https://bubble.internal/v1"
    assert s.records.resolved_bubble_token() == "bubble-very-secret"


def test_records_bubble_ca_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"bubble_ca .* is not a readable file"):
        Settings.load({"SWOOSH_RECORDS_BUBBLE_URL": "https://b", "SWOOSH_RECORDS_BUBBLE_CA": str(tmp_path / "no")})


async def test_records_bubble_store_from_settings() -> None:
    s = Settings.load({"SWOOSH_RECORDS_STORE": "bubble", "SWOOSH_RECORDS_BUBBLE_URL": "http://127.0.0.1:9"})
    store = decision_store(s.records, s.data_dir)
    try:
        assert isinstance(store, BubbleStore)
    finally:
        await store.aclose()


def test_records_unreadable_secret_file_names_the_setting(tmp_path: Path) -> None:
    s = Settings.load({"SWOOSH_RECORDS_STORE": "postgres", "SWOOSH_RECORDS_POSTGRES_DSN_FILE": str(tmp_path / "no")})
    with pytest.raises(StoreConfigError, match=r"records\.postgres_dsn_file .*: No such file"):
        decision_store(s.records, s.data_dir)
