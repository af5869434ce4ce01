"""How `connect()` decides where and how to reach Temporal: Temporal's client configuration, SWOOSH's over it."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError
from temporalio.service import TLSConfig

from swoosh.worker.settings import Settings
from swoosh.workflows.errors import ConfigError
from swoosh.workflows.lifecycle.connection import TemporalSettings, explain_failure, resolve

PROFILES = """
[profile.default]
address = "default.example:7233"

[profile.cloud]
address = "swoosh.abc12.tmprl.cloud:7233"
namespace = "swoosh.abc12"
api_key = "from-profile-key"

[profile.cloud.grpc_meta]
x-team = "orchestration"

[profile.mtls]
address = "mtls.example:7233"
[profile.mtls.tls]
server_name = "temporal.internal"
server_ca_cert_data = "CA-FROM-PROFILE"
client_cert_data = "CERT-FROM-PROFILE"
client_key_data = "KEY-FROM-PROFILE"
"""


@pytest.fixture
def profiles(tmp_path: Path) -> Path:
    path = tmp_path / "temporal.toml"
    path.write_text(PROFILES, encoding="utf-8")
    return path


def test_connection_defaults_to_a_local_dev_server_without_tls() -> None:
    target = resolve(TemporalSettings(), {})
    assert (target.address, target.namespace, target.tls, target.api_key) == ("127.0.0.1:7233", "default", False, None)


def test_connection_honours_temporals_own_environment() -> None:
    env = {
        "TEMPORAL_ADDRESS": "temporal.example:7233",
        "TEMPORAL_NAMESPACE": "orchestration",
        "TEMPORAL_API_KEY": "env-key",
        "TEMPORAL_GRPC_META_X_TEAM": "swoosh",
    }
    target = resolve(TemporalSettings(), env)
    assert (target.address, target.namespace, target.api_key) == ("temporal.example:7233", "orchestration", "env-key")
    assert isinstance(target.tls, TLSConfig)  # an API key implies TLS, as in Temporal's own tools
    assert dict(target.rpc_metadata) == {"x-team": "swoosh"}


def test_connection_swoosh_settings_win_over_temporals_environment() -> None:
    env = {"TEMPORAL_ADDRESS": "temporal.example:7233", "TEMPORAL_NAMESPACE": "theirs", "TEMPORAL_API_KEY": "theirs"}
    settings = Settings.load(
        {
            "SWOOSH_TEMPORAL_ADDRESS": "swoosh.example:7233",
            "SWOOSH_TEMPORAL_NAMESPACE": "ours",
            "SWOOSH_TEMPORAL_API_KEY": "ours",
            "SWOOSH_TEMPORAL_TLS": "false",
        }
    ).temporal
    target = resolve(settings, env)
    assert (target.address, target.namespace, target.api_key, target.tls) == (
        "swoosh.example:7233",
        "ours",
        "ours",
        False,
    )


def test_connection_profile_from_the_config_file(profiles: Path) -> None:
    target = resolve(TemporalSettings(), {"TEMPORAL_CONFIG_FILE": str(profiles), "TEMPORAL_PROFILE": "cloud"})
    assert (target.address, target.namespace, target.api_key) == (
        "swoosh.abc12.tmprl.cloud:7233",
        "swoosh.abc12",
        "from-profile-key",
    )
    assert dict(target.rpc_metadata) == {"x-team": "orchestration"} and target.tls_mode == "on"
    # the same profile named by SWOOSH's settings instead of Temporal's variables
    same = resolve(TemporalSettings(config_file=profiles, profile="cloud"), {})
    assert same == target


def test_connection_mutual_tls_from_a_profile_with_swoosh_overrides(profiles: Path, tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(b"CA-FROM-SWOOSH")
    target = resolve(TemporalSettings(config_file=profiles, profile="mtls", tls_server_ca_cert_path=ca), {})
    assert isinstance(target.tls, TLSConfig) and target.tls_mode == "mutual"
    assert target.tls.server_root_ca_cert == b"CA-FROM-SWOOSH"  # SWOOSH's setting over the profile's
    assert (target.tls.client_cert, target.tls.client_private_key) == (b"CERT-FROM-PROFILE", b"KEY-FROM-PROFILE")
    assert target.tls.domain == "temporal.internal"


def test_connection_tls_files_and_api_key_file(tmp_path: Path) -> None:
    files = {name: tmp_path / name for name in ("ca.pem", "client.pem", "client-key.pem", "api-key")}
    for name, path in files.items():
        path.write_text(f"{name}-content\n")
    settings = Settings.load(
        {
            "SWOOSH_TEMPORAL_ADDRESS": "temporal.example:7233",
            "SWOOSH_TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(files["ca.pem"]),
            "SWOOSH_TEMPORAL_TLS_CLIENT_CERT_PATH": str(files["client.pem"]),
            "SWOOSH_TEMPORAL_TLS_CLIENT_KEY_PATH": str(files["client-key.pem"]),
            "SWOOSH_TEMPORAL_TLS_SERVER_NAME": "temporal.internal",
            "SWOOSH_TEMPORAL_API_KEY_FILE": str(files["api-key"]),
            "SWOOSH_TEMPORAL_GRPC_META": "x-team=swoosh,x-env=prod",
        }
    ).temporal
    target = resolve(settings, {})
    assert isinstance(target.tls, TLSConfig) and target.tls_mode == "mutual"
    assert target.tls.server_root_ca_cert == b"ca.pem-content\n" and target.tls.domain == "temporal.internal"
    assert target.api_key == "api-key-content"  # trailing newline of the file dropped
    assert dict(target.rpc_metadata) == {"x-team": "swoosh", "x-env": "prod"}


def test_connection_client_environment_can_be_ignored() -> None:
    target = resolve(TemporalSettings(), {"TEMPORAL_ADDRESS": "far.example:7233"}, client_environment=False)
    assert target.address == "127.0.0.1:7233"


def test_connection_secrets_never_in_repr_describe_or_errors() -> None:
    settings = TemporalSettings(api_key=SecretStr("very-secret-key"), grpc_meta={"authorization": SecretStr("s3cr3t")})
    target = resolve(settings, {})
    shown = f"{settings!r} {target!r} {target.describe()} {explain_failure(target, 'boom')}"
    assert "very-secret-key" not in shown and "s3cr3t" not in shown
    assert target.describe() == {
        "address": "127.0.0.1:7233",
        "namespace": "default",
        "tls": "on",
        "api_key": "set",
        "grpc_meta": ["authorization"],
    }
    with pytest.raises(ConfigError) as err:
        Settings.load({"SWOOSH_TEMPORAL_GRPC_META": "authorization", "SWOOSH_TEMPORAL_API_KEY": "very-secret-key"})
    assert "very-secret-key" not in str(err.value) and "authorization" not in str(err.value)


def test_connection_missing_file_is_a_config_error_naming_the_setting(tmp_path: Path) -> None:
    settings = TemporalSettings(tls_server_ca_cert_path=tmp_path / "nope.pem")
    with pytest.raises(ConfigError, match=r"temporal.tls_server_ca_cert_path: cannot read .*nope.pem"):
        resolve(settings, {})


def test_connection_unknown_profile_is_a_config_error(profiles: Path) -> None:
    with pytest.raises(ConfigError, match="'staging'"):
        resolve(TemporalSettings(config_file=profiles, profile="staging"), {})
    with pytest.raises(ConfigError, match="TEMPORAL_PROFILE"):
        resolve(TemporalSettings(), {"TEMPORAL_CONFIG_FILE": str(profiles), "TEMPORAL_PROFILE": "staging"})


def test_connection_client_cert_needs_its_key(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="needs its key"):
        TemporalSettings(tls_client_cert_path=tmp_path / "client.pem")
    expected = "temporal from SWOOSH_TEMPORAL_TLS_CLIENT_KEY_PATH: a client certificate needs its key"
    with pytest.raises(ConfigError, match=expected):
        Settings.load({"SWOOSH_TEMPORAL_TLS_CLIENT_KEY_PATH": str(tmp_path / "k.pem")})


def test_connection_bad_address_and_header_names_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"temporal\.address from SWOOSH_TEMPORAL_ADDRESS: must be host:port"):
        Settings.load({"SWOOSH_TEMPORAL_ADDRESS": "no-port"})
    with pytest.raises(ConfigError, match="lower-case ASCII header names: X-Team"):
        Settings.load({"SWOOSH_TEMPORAL_GRPC_META": "X-Team=a"})


def test_connection_failure_hints_name_what_to_check() -> None:
    plain = resolve(TemporalSettings(address="h:1"), {})
    tls = resolve(TemporalSettings(address="h:1", tls=True), {})
    refused = 'Server connection error: ConnectError(Os { kind: ConnectionRefused, message: "Connection refused" })'
    assert explain_failure(plain, refused).endswith("nothing listens at this address")
    dropped = 'Status { code: Unknown, message: "transport error", source: BrokenPipe }'
    assert "server may expect TLS" in explain_failure(plain, dropped)
    assert "may require a client certificate" in explain_failure(tls, dropped)
    closed = 'Status { code: Cancelled, source: hyper::Error(Canceled, "connection closed") }'
    assert "may require a client certificate" in explain_failure(tls, closed)
    assert "does not speak TLS" in explain_failure(tls, "InvalidMessage(InvalidContentType)")
