"""Settings: defaults, environment, TOML, precedence, and clear errors for invalid values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from swoosh.worker.settings import Settings, env_variables
from swoosh.workflows.errors import ConfigError

DOCS = Path(__file__).resolve().parents[2] / "docs" / "providers.md"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "swoosh.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_settings_defaults_without_env_or_file() -> None:
    s = Settings.load({})
    # unset: Temporal's own client configuration decides, else a local dev server (tests/workflows/lifecycle)
    assert (s.temporal.address, s.temporal.namespace, s.temporal.task_queue) == (None, None, "swoosh")
    assert (s.api.host, s.api.port, s.api.tokens, s.api.default_project) == ("127.0.0.1", 8080, (), "default")
    assert (s.engine.max_offset_ms, s.engine.idem_window, s.engine.grace_ms, s.engine.snapshot_every) == (
        60_000,
        1024,
        900_000,
        500,
    )
    assert s.data_dir == Path.cwd() / ".swoosh" and s.keyring is None
    assert {s.kaching.mode, s.backbeat.mode, s.mcp.mode, s.shhh.mode} == {"embedded"}
    assert s.kaching.license_file == Path.cwd() / ".swoosh" / "license.json"
    assert (s.worker.metrics_bind, s.dev.ui_port) == ("127.0.0.1:9464", 8233)


def test_settings_relative_paths_become_absolute_at_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A process that changes its working directory later still means the folder it was started in."""
    monkeypatch.chdir(tmp_path)
    s = Settings.load({"SWOOSH_DATA_DIR": "state/../data", "SWOOSH_KEYRING": "~/keys.json"})
    assert s.data_dir == tmp_path / "data" and s.data_dir.is_absolute()
    assert s.kaching.license_file == tmp_path / "data" / "license.json"
    assert s.keyring == Path.home() / "keys.json"


def test_settings_every_port_of_make_run_is_a_setting(tmp_path: Path) -> None:
    env = {
        "SWOOSH_TEMPORAL_ADDRESS": "127.0.0.1:17233",
        "SWOOSH_DEV_UI_PORT": "18233",
        "SWOOSH_API_PORT": "18080",
        "SWOOSH_WORKER_METRICS_BIND": "127.0.0.1:19464",
    }
    s = Settings.load(env)
    assert (s.temporal.address, s.dev.ui_port, s.api.port, s.worker.metrics_bind) == (
        "127.0.0.1:17233",
        18233,
        18080,
        "127.0.0.1:19464",
    )
    path = write(tmp_path, '[dev]\nui_port = 28233\n[worker]\nmetrics_bind = "127.0.0.1:29464"\n')
    s = Settings.load({}, config_file=path)
    assert (s.dev.ui_port, s.worker.metrics_bind) == (28233, "127.0.0.1:29464")


def test_settings_env_overrides_scalars_lists_and_pairs() -> None:
    s = Settings.load(
        {
            "SWOOSH_API_PORT": "9090",
            "SWOOSH_API_TOKENS": "alpha, beta,,",
            "SWOOSH_DEFAULT_PROJECT": "legacy",
            "SWOOSH_KEYRING": "/etc/swoosh/keyring.json",
            "SWOOSH_DATA_DIR": "/var/lib/swoosh",
            "SWOOSH_MCP_TOOLS": "git=2.45.0, pytest=8.2.0",
            "SWOOSH_MCP_PROBE": "git",
            "SWOOSH_ENGINE_GRACE_MS": "1000",
            "SWOOSH_SHHH_BUILTIN": "false",
        }
    )
    assert s.api.port == 9090
    assert [(t.label, t.resolved_secret()) for t in s.api.tokens] == [("token-1", "alpha"), ("token-2", "beta")]
    assert s.api.default_project == "legacy"
    assert s.keyring == Path("/etc/swoosh/keyring.json")
    assert s.kaching.license_file == Path("/var/lib/swoosh/license.json")
    assert s.mcp.tools == {"git": "2.45.0", "pytest": "8.2.0"} and s.mcp.probe == ("git",)
    assert s.engine.config().grace_ms == 1000
    assert s.shhh.builtin is False


def test_settings_toml_file_named_by_swoosh_config(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
data_dir = "/srv/swoosh"
[temporal]
task_queue = "tq-from-file"
[backbeat]
tempo_bpm = 120
share_unit = "beats"
beats_per_bar = 8
plan = 1
work = 4
review = 2
reverb = 1
[mcp.tools]
"ucxl.resolve" = "2.0.0"
[[shhh.rules]]
id = "no-internal-host"
pattern = "\\\\binternal\\\\.example\\\\b"
severity = "medium"
""",
    )
    s = Settings.load({"SWOOSH_CONFIG": str(path)})
    assert s.temporal.task_queue == "tq-from-file"
    assert (s.backbeat.tempo_bpm, s.backbeat.work, s.backbeat.share_unit) == (120, 4, "beats")
    assert s.mcp.tools == {"ucxl.resolve": "2.0.0"}
    assert s.shhh.rules[0].id == "no-internal-host" and s.shhh.rules[0].severity == "medium"
    assert s.kaching.public_key_file == Path("/srv/swoosh/license.pub")


def test_settings_env_wins_over_toml(tmp_path: Path) -> None:
    path = write(tmp_path, "[api]\nport = 7000\nhost = '127.0.0.2'\n")
    s = Settings.load({"SWOOSH_API_PORT": "7001"}, config_file=path)
    assert (s.api.host, s.api.port) == ("127.0.0.2", 7001)


def test_settings_rules_from_env_json() -> None:
    rules = [{"id": "ticket", "pattern": "JIRA-[0-9]+", "severity": "low"}]
    s = Settings.load({"SWOOSH_SHHH_RULES": json.dumps(rules)})
    assert s.shhh.rules[0].pattern == "JIRA-[0-9]+"


def test_settings_bad_integer_names_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"api\.port from SWOOSH_API_PORT: .*valid integer.*'eighty'"):
        Settings.load({"SWOOSH_API_PORT": "eighty"})


def test_settings_bad_regex_is_a_clear_config_error(tmp_path: Path) -> None:
    path = write(tmp_path, "[[shhh.rules]]\nid = 'broken'\npattern = 'a(b'\n")
    with pytest.raises(
        ConfigError, match=r"shhh\.rules from .*swoosh\.toml: shhh\.rules: rule 0 \('broken'\): invalid regex"
    ):
        Settings.load({}, config_file=path)


def test_settings_rule_matching_everything_is_refused() -> None:
    with pytest.raises(ConfigError, match="matches the empty string"):
        Settings.load({"SWOOSH_SHHH_RULES": '[{"id": "all", "pattern": ".*"}]'})


def test_settings_rule_id_clashing_with_builtin_is_refused() -> None:
    with pytest.raises(ConfigError, match="used twice or by a built-in rule"):
        Settings.load({"SWOOSH_SHHH_RULES": '[{"id": "api-key", "pattern": "x+"}]'})


def test_settings_rules_env_not_json_is_refused() -> None:
    with pytest.raises(ConfigError, match="SWOOSH_SHHH_RULES: not valid JSON"):
        Settings.load({"SWOOSH_SHHH_RULES": "[{id: x}]"})


def test_settings_http_mode_needs_base_url() -> None:
    with pytest.raises(ConfigError, match=r"kaching from SWOOSH_KACHING_MODE: mode 'http' needs base_url"):
        Settings.load({"SWOOSH_KACHING_MODE": "http"})


def test_settings_unknown_mode_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"mcp\.mode from SWOOSH_MCP_MODE: Input should be 'embedded' or 'http'"):
        Settings.load({"SWOOSH_MCP_MODE": "carrier-pigeon"})


def test_settings_jitter_must_stay_below_refresh() -> None:
    with pytest.raises(ConfigError, match=r"jitter_ms .* must be below refresh_ms"):
        Settings.load({"SWOOSH_MCP_REFRESH_MS": "1000", "SWOOSH_MCP_JITTER_MS": "1000"})


def test_settings_phase_shares_must_sum_to_100() -> None:
    with pytest.raises(ConfigError, match=r"plan \+ work \+ review \+ reverb = 110, must equal 100"):
        Settings.load({"SWOOSH_BACKBEAT_PLAN": "35"})


def test_settings_fractional_milliseconds_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "[mcp]\ntimeout_ms = 1.5\n")
    with pytest.raises(ConfigError, match=r"mcp\.timeout_ms from .*: .*fractional part"):
        Settings.load({}, config_file=path)


def test_settings_unknown_toml_key_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "[api]\nprot = 1\n")
    with pytest.raises(ConfigError, match=r"api\.prot from .*api\.prot: unknown setting"):
        Settings.load({}, config_file=path)


def test_settings_invalid_toml_syntax(tmp_path: Path) -> None:
    path = write(tmp_path, "[api\nport = 1\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        Settings.load({}, config_file=path)


def test_settings_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        Settings.load({"SWOOSH_CONFIG": str(tmp_path / "nope.toml")})


def test_settings_bad_project_id() -> None:
    with pytest.raises(ConfigError, match="SWOOSH_DEFAULT_PROJECT"):
        Settings.load({"SWOOSH_DEFAULT_PROJECT": "no spaces please"})


def test_settings_bad_licence_public_key() -> None:
    with pytest.raises(ConfigError, match=r"kaching\.public_key from SWOOSH_KACHING_PUBLIC_KEY: .*signer id"):
        Settings.load({"SWOOSH_KACHING_PUBLIC_KEY": "hmmm:pubkey:short"})


def test_settings_secrets_stay_out_of_repr_and_errors() -> None:
    s = Settings.load({"SWOOSH_API_TOKENS": "tok-very-secret", "SWOOSH_KACHING_TOKEN": "lic-very-secret"})
    assert "very-secret" not in repr(s) and "very-secret" not in s.model_dump_json()
    assert s.kaching.resolved_token() == "lic-very-secret"
    with pytest.raises(ConfigError) as err:
        Settings.load({"SWOOSH_KACHING_TOKEN": "lic-very-secret", "SWOOSH_KACHING_TIMEOUT_MS": "-1"})
    assert "very-secret" not in str(err.value)


def test_settings_docs_list_every_variable() -> None:
    text = DOCS.read_text(encoding="utf-8")
    missing = [v.name for v in env_variables() if f"`{v.name}`" not in text]
    assert missing == []
    assert "`SWOOSH_CONFIG`" in text
