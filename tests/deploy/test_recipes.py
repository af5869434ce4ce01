"""The deployment recipes, validated without a Docker daemon or a cluster.

Compose: the file parses; every SWOOSH service runs a `swoosh` command with arguments that command
accepts; every SWOOSH_* variable is a setting; ports, scrape targets and mounted files agree; the
chaos profile stays out of a plain `up`. Kubernetes: every manifest validates against the
Kubernetes schemas (kubernetes-validate, offline) and runs real commands with real settings. The
Dockerfile: multi-stage, unprivileged, `swoosh` as its entry point. The development secrets script
runs. Payload encryption (both recipes): every SWOOSH process reads one key file that the secrets
script writes, and the codec server, built from its recipe's settings and that file, decrypts what a
worker encrypts for the UI's origin, the UI pointing at it.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from swoosh.worker.api_server import refuse_open_bind
from swoosh.worker.cli import COMMANDS, build_parser
from swoosh.worker.codec_server import codec_app
from swoosh.worker.settings import CONFIG_ENV, env_variables, load_settings
from swoosh.workflows.lifecycle.codec import new_key_entry
from tests.deploy.conftest import DEPLOY, ROOT

COMPOSE = DEPLOY / "compose"
K8S = DEPLOY / "k8s"
SETTINGS = {v.name for v in env_variables()} | {CONFIG_ENV}
OTEL = {"OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME"}
K8S_VERSION = "1.30.0"
KEYS_FILE = "SWOOSH_ENCRYPTION_KEYS_FILE"


def _compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())
    return doc


def _swoosh_services() -> dict[str, dict[str, Any]]:
    return {n: s for n, s in _compose()["services"].items() if s.get("image") == "${SWOOSH_IMAGE}"}


def _parse(argv: list[str]) -> argparse.Namespace:
    """What `swoosh <argv>` would parse (SystemExit for an unknown command or option)."""
    assert argv[0] in COMMANDS, f"`swoosh {argv[0]}` is not a command"
    return build_parser(argv[0]).parse_args(argv)


def _bind_port(args: argparse.Namespace) -> int:
    if args.command == "worker":
        return int(str(args.metrics_bind).rpartition(":")[2])
    if args.command in ("api", "codec-server"):
        return int(args.port)
    return 0  # no port (swoosh setup)


@pytest.fixture(scope="module")
def dev_secrets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What deploy/compose/dev-secrets.py writes (also the files of the Kubernetes Secret)."""
    out = tmp_path_factory.mktemp("secrets")
    run = subprocess.run(
        [sys.executable, str(COMPOSE / "dev-secrets.py"), str(out)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    return out


def _on_this_machine(env: dict[str, str], mounted: str, files: Path) -> dict[str, str]:
    """A container's settings variables with its mounted secret files replaced by dev-secrets' output."""
    out = {k: v for k, v in os.environ.items() if not k.startswith("SWOOSH_")}
    for key, value in env.items():
        if key.startswith("SWOOSH_"):
            out[key] = str(files / value.removeprefix(mounted)) if value.startswith(mounted) else value
    return out


async def _ui_reads_through_codec_server(worker_env: dict[str, str], codec_env: dict[str, str], origin: str) -> None:
    """The codec server these settings start decrypts, for the UI's origin, what a worker encrypts."""
    worker, server = load_settings(worker_env).settings, load_settings(codec_env).settings
    assert worker.encryption.key_ids() and worker.encryption.key_ids() == server.encryption.key_ids()
    codec = worker.encryption.codec()
    assert codec is not None
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b'"a proposal"')
    sealed = await codec.encode([plain])
    headers = {"Origin": origin, "Content-Type": "application/json", "X-Namespace": "default"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=codec_app(server)), base_url="http://c") as http:
        asks = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,x-namespace"}
        preflight = await http.options("/decode", headers={"Origin": origin, **asks})
        assert preflight.status_code == 204 and preflight.headers["access-control-allow-origin"] == origin
        decoded = await http.post(
            "/decode", content=json_format.MessageToJson(Payloads(payloads=sealed)), headers=headers
        )
        assert decoded.status_code == 200, decoded.text
        assert list(json_format.Parse(decoded.text, Payloads()).payloads) == [plain]


# ---------------------------------------------------------------------- compose
def test_compose_swoosh_services_run_real_commands_with_real_settings() -> None:
    services = _swoosh_services()
    assert {"worker", "api-1", "api-2", "setup", "codec-server"} <= set(services)
    assert services["worker"]["deploy"]["replicas"] == 3
    for name, service in services.items():
        args = _parse(list(service["command"]))
        env = service["environment"]
        unknown = {k for k in env if k.startswith("SWOOSH_") and k not in SETTINGS}
        assert not unknown, (name, unknown)
        assert {k for k in env if k.startswith("OTEL_")} <= OTEL
        for key, value in env.items():
            if key.endswith("_FILE") or key in ("SWOOSH_KEYRING", "SWOOSH_KACHING_LICENSE_FILE"):
                secret = Path(str(value)).name
                assert secret in service["secrets"], (name, key, secret)
        if args.command == "api":
            assert args.host == "0.0.0.0"


def test_compose_ports_and_scrape_targets_agree() -> None:
    services = _swoosh_services()
    prometheus = yaml.safe_load((COMPOSE / "prometheus.yml").read_text())
    jobs = {j["job_name"]: j for j in prometheus["scrape_configs"]}
    worker_port = _bind_port(_parse(services["worker"]["command"]))
    assert jobs["swoosh-worker"]["dns_sd_configs"][0] == {"names": ["worker"], "type": "A", "port": worker_port}
    api_targets = set(jobs["swoosh-api"]["static_configs"][0]["targets"])
    assert api_targets == {f"{n}:{_bind_port(_parse(services[n]['command']))}" for n in ("api-1", "api-2")}
    for name in ("api-1", "api-2"):
        published = services[name]["ports"][0].rsplit(":", 1)[1]
        assert int(published) == _bind_port(_parse(services[name]["command"]))
    collector = yaml.safe_load((COMPOSE / "otel-collector.yaml").read_text())
    http = collector["receivers"]["otlp"]["protocols"]["http"]["endpoint"].rpartition(":")[2]
    env = services["worker"]["environment"]
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == f"http://otel-collector:{http}"
    assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"


def test_compose_mounts_and_secrets_exist() -> None:
    doc = _compose()
    for name, service in doc["services"].items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if source.startswith("."):
                assert (COMPOSE / source).exists(), (name, source)
        for secret in service.get("secrets", []):
            assert secret in doc["secrets"], (name, secret)
    written = {"keyring.json", "license.json", "license.pub", "postgres_dsn", "temporal_db_password"}
    written |= {"swoosh_db_password", "api_tokens", "encryption_keys"}
    assert {Path(s["file"]).name for s in doc["secrets"].values()} <= written


def test_compose_stack_has_every_part_and_chaos_only_in_its_profile() -> None:
    services = _compose()["services"]
    for part in ("postgresql", "temporal", "temporal-ui", "prometheus", "grafana", "otel-collector", "jaeger"):
        assert part in services, part
    chaos = {n for n, s in services.items() if "chaos" in s.get("profiles", [])}
    assert chaos == {n for n in services if n.startswith("chaos-")} and len(chaos) >= 5
    readme = (DEPLOY / "README.md").read_text()
    faults = set(re.findall(r"def _(\w+)\(self, ev: FaultEvent", (ROOT / "chaos" / "faults.py").read_text()))
    for name in chaos:
        assert f"`{name}`" in readme, f"{name} is not in deploy/README.md's chaos table"
    mapped = set(re.findall(r"`(\w+)` \(swoosh chaos\)", readme))
    assert mapped and mapped <= faults, mapped - faults


def test_compose_prometheus_config_and_dashboards_provisioned(promtool: str, tmp_path: Path) -> None:
    shutil.copy(COMPOSE / "prometheus.yml", tmp_path / "prometheus.yml")
    shutil.copy(DEPLOY / "prometheus" / "alerts.yml", tmp_path / "alerts.yml")
    out = subprocess.run(
        [promtool, "check", "config", str(tmp_path / "prometheus.yml")], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr
    grafana = _compose()["services"]["grafana"]["volumes"]
    dashboards = next(v for v in grafana if v.endswith(":/var/lib/grafana/dashboards:ro")).split(":")[0]
    assert (COMPOSE / dashboards / "swoosh.json").exists()
    provider = yaml.safe_load((COMPOSE / "grafana/provisioning/dashboards/swoosh.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def test_dev_secrets_script_writes_every_compose_secret(dev_secrets: Path) -> None:
    for secret in _compose()["secrets"].values():
        assert (dev_secrets / Path(secret["file"]).name).stat().st_size > 0, secret
    assert (dev_secrets / "api_tokens").read_text().strip() == (dev_secrets / "api_token").read_text().strip()
    # Compose mounts file secrets with the host's owner and mode, and the containers run as other users:
    # the folder keeps the host's other users out, the mounted files are readable inside it.
    assert dev_secrets.stat().st_mode & 0o077 == 0
    for secret in _compose()["secrets"].values():
        assert (dev_secrets / Path(secret["file"]).name).stat().st_mode & 0o777 == 0o644, secret
    before = (dev_secrets / "encryption_keys").read_bytes()
    again = subprocess.run([sys.executable, str(COMPOSE / "dev-secrets.py"), str(dev_secrets)], capture_output=True)
    assert (
        again.returncode == 0 and (dev_secrets / "encryption_keys").read_bytes() == before
    )  # kept: histories stay readable


def test_compose_every_swoosh_process_encrypts_with_the_one_key_file() -> None:
    doc = _compose()
    services = _swoosh_services()
    paths = {services[n]["environment"].get(KEYS_FILE) for n in services}
    assert len(paths) == 1 and None not in paths, paths  # every process of the namespace shares the keys
    (path,) = paths
    secret = Path(str(path)).name
    assert doc["secrets"][secret]["file"] == f"./secrets/{secret}"
    assert all(secret in s["secrets"] for s in services.values())


def test_compose_codec_server_is_reachable_from_this_host_only_and_the_ui_points_at_it() -> None:
    services = _compose()["services"]
    codec = services["codec-server"]
    args = _parse(codec["command"])
    env = codec["environment"]
    host_ip, host_port, container_port = str(codec["ports"][0]).split(":")
    assert host_ip == "127.0.0.1" and int(container_port) == _bind_port(args) and len(codec["ports"]) == 1
    if "SWOOSH_API_TOKENS_FILE" not in env:  # no tokens (the browser has none): nobody else may reach it
        refuse_open_bind(args.host, (), args.insecure, what="the codec server")
        others = {net for name, s in services.items() if name != "codec-server" for net in s.get("networks", [])}
        # (a service that names no network is on "default")
        assert not set(codec["networks"]) & others and "default" not in codec["networks"]
    ui = services["temporal-ui"]
    assert ui["environment"]["TEMPORAL_CODEC_ENDPOINT"] == f"http://127.0.0.1:{host_port}"
    ui_ip, ui_port, _ = str(ui["ports"][0]).split(":")
    origins = set(env["SWOOSH_CODEC_SERVER_ORIGINS"].split(","))
    assert ui_ip == "127.0.0.1" and origins == {f"http://127.0.0.1:{ui_port}", f"http://localhost:{ui_port}"}


async def test_compose_codec_server_decrypts_for_the_ui_what_a_worker_encrypts(dev_secrets: Path) -> None:
    services = _compose()["services"]
    worker = _on_this_machine(services["worker"]["environment"], "/run/secrets/", dev_secrets)
    codec = _on_this_machine(services["codec-server"]["environment"], "/run/secrets/", dev_secrets)
    for origin in services["codec-server"]["environment"]["SWOOSH_CODEC_SERVER_ORIGINS"].split(","):
        await _ui_reads_through_codec_server(worker, codec, origin)


# ---------------------------------------------------------------------- Kubernetes
def _manifests() -> list[tuple[str, dict[str, Any]]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    out = []
    for name in kustomization["resources"]:
        for doc in yaml.safe_load_all((K8S / name).read_text()):
            if doc:
                out.append((name, doc))
    return out


def test_kubernetes_manifests_validate_against_the_schemas() -> None:
    manifests = _manifests()
    assert {d["kind"] for _, d in manifests} >= {
        "Namespace",
        "ConfigMap",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
    }
    for _, doc in manifests:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def _containers(kind: str = "Deployment") -> list[tuple[str, dict[str, Any]]]:
    return [
        (d["metadata"]["name"], c)
        for _, d in _manifests()
        if d["kind"] == kind
        for c in d["spec"]["template"]["spec"]["containers"]
    ]


def _config() -> dict[str, str]:
    data: dict[str, str] = next(d for _, d in _manifests() if d["kind"] == "ConfigMap")["data"]
    return data


def _settings_env(container: dict[str, Any], config: dict[str, str]) -> dict[str, str]:
    """The variables a container gets: the ConfigMap (envFrom), then its own `value`s and ConfigMap keys."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        assert source["configMapRef"]["name"] == "swoosh-config"
        env.update(config)
    for var in container.get("env", []):
        ref = var.get("valueFrom", {}).get("configMapKeyRef")
        if ref is not None:
            assert ref["name"] == "swoosh-config" and ref["key"] in config, var
            env[var["name"]] = config[ref["key"]]
        elif "value" in var:
            env[var["name"]] = var["value"]
    return env


def _pods() -> list[tuple[str, dict[str, Any]]]:
    return [
        (d["metadata"]["name"], d["spec"]["template"]["spec"])
        for _, d in _manifests()
        if d["kind"] in ("Job", "Deployment")
    ]


def test_kubernetes_setup_job_runs_swoosh_setup() -> None:
    jobs = _containers("Job")
    assert [_parse(c["args"]).command for _, c in jobs] == ["setup"]


def test_kubernetes_workloads_run_real_commands_with_probes_resources_and_file_secrets() -> None:
    config = _config()
    assert {k for k in config if k.startswith("SWOOSH_")} <= SETTINGS
    commands = []
    for name, container in _containers():
        args = _parse(container["args"])
        commands.append(args.command)
        env = _settings_env(container, config)
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert container["resources"]["requests"] and container["resources"]["limits"], name
        if args.command == "codec-server":
            # No health route (only the codec protocol): a TCP connect to its port, from inside the pod
            # since it listens on the pod's loopback.
            assert not {"/livez", "/readyz"} & {getattr(r, "path", "") for r in _codec_routes()}, "probe the route"
            for probe in ("livenessProbe", "readinessProbe"):
                command = container[probe]["exec"]["command"]
                assert command[:2] == ["python", "-c"] and f"('{args.host}', {_bind_port(args)})" in command[2]
            assert ports == {"codec": _bind_port(args)}
            continue
        # Probes on the process's own /livez and /readyz (CONTRACT.md, "Health of processes").
        assert container["livenessProbe"]["httpGet"]["path"] == "/livez", name
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        probed = ports[container["readinessProbe"]["httpGet"]["port"]]
        if args.command == "worker":
            assert ports["metrics"] == _bind_port(args)
            assert probed == int(str(env["SWOOSH_WORKER_HEALTH_BIND"]).rpartition(":")[2])
        else:
            assert args.command == "api" and probed == _bind_port(args) and set(ports.values()) == {probed}
        for key, value in config.items():
            if key.endswith("_FILE") or key == "SWOOSH_KEYRING":
                assert str(value).startswith("/run/secrets/swoosh/"), key
        assert all(e["name"] in SETTINGS | OTEL for e in container.get("env", []))
    assert sorted(commands) == ["api", "codec-server", "worker"]


def _codec_routes() -> list[object]:
    """The codec server's routes (built with a throwaway key)."""
    return list(codec_app(load_settings({"SWOOSH_ENCRYPTION_KEYS": new_key_entry("probe")}).settings).routes)


def test_kubernetes_pods_run_unprivileged_on_a_read_only_root_with_read_only_secrets() -> None:
    pods = _pods()
    assert {n for n, _ in pods} == {"swoosh-setup", "swoosh-worker", "swoosh-api", "swoosh-codec-server"}
    for name, pod in pods:
        context = pod["securityContext"]
        assert context["runAsNonRoot"] is True and context["runAsUser"] not in (0, None), name
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}, name
        secrets = {v["name"]: v["secret"] for v in pod["volumes"] if "secret" in v}
        assert secrets and all(v["defaultMode"] == 0o400 for v in secrets.values()), name
        for container in pod["containers"]:
            hardening = container["securityContext"]
            assert hardening["readOnlyRootFilesystem"] is True and hardening["allowPrivilegeEscalation"] is False
            assert hardening["capabilities"]["drop"] == ["ALL"], name
            mounted = [m for m in container["volumeMounts"] if m["name"] in secrets]
            assert mounted and all(m["readOnly"] is True for m in mounted), name


def test_kubernetes_every_swoosh_process_reads_the_one_encryption_key_file(dev_secrets: Path) -> None:
    config = _config()
    created = set(re.findall(r"--from-file=([\w.]+)", (DEPLOY / "README.md").read_text()))
    keys_files = set()
    for name, pod in _pods():
        (secret,) = [v["secret"] for v in pod["volumes"] if "secret" in v]
        items = {i["path"]: i["key"] for i in secret["items"]}
        for key in items.values():  # every file of the Secret: written by dev-secrets, created by the README
            assert key in created and (dev_secrets / key).stat().st_size > 0, (name, key)
        for container in pod["containers"]:
            env = _settings_env(container, config)
            keys_files.add(env.get(KEYS_FILE))
            for var, value in env.items():
                if value.startswith("/run/secrets/swoosh/"):  # every file a setting names is mounted
                    assert value.removeprefix("/run/secrets/swoosh/") in items, (name, var)
    assert keys_files == {config[KEYS_FILE]}  # every process of the namespace shares the keys


async def test_kubernetes_codec_server_decrypts_for_the_port_forwarded_ui(dev_secrets: Path) -> None:
    config = _config()
    containers = dict(_containers())
    codec, worker = containers["swoosh-codec-server"], containers["swoosh-worker"]
    args = _parse(codec["args"])
    codec_env = _settings_env(codec, config)
    # No tokens (the browser has none), so reachable only through `kubectl port-forward` (it dials the
    # pod's loopback): no --insecure, no Service in front of it.
    assert "SWOOSH_API_TOKENS_FILE" not in codec_env and not args.insecure
    refuse_open_bind(args.host, (), args.insecure, what="the codec server")
    selectors = [d["spec"].get("selector", {}) for _, d in _manifests() if d["kind"] == "Service"]
    assert all(s.get("app.kubernetes.io/name") != "swoosh-codec-server" for s in selectors)
    readme = (DEPLOY / "README.md").read_text()
    forwarded = re.search(r"port-forward deploy/swoosh-codec-server (\d+):(\d+)", readme)
    ui_forwarded = re.search(r"port-forward svc/temporal-web (\d+):8080", readme)
    assert forwarded and ui_forwarded and int(forwarded[2]) == _bind_port(args)
    values = yaml.safe_load((K8S / "temporal-values.yaml").read_text())
    ui_env = {e["name"]: e["value"] for e in values["web"]["additionalEnv"]}
    assert ui_env["TEMPORAL_CODEC_ENDPOINT"] == f"http://127.0.0.1:{forwarded[1]}"
    origin = f"http://127.0.0.1:{ui_forwarded[1]}"
    assert origin in codec_env["SWOOSH_CODEC_SERVER_ORIGINS"].split(",")
    mounted = "/run/secrets/swoosh/"
    await _ui_reads_through_codec_server(
        _on_this_machine(_settings_env(worker, config), mounted, dev_secrets),
        _on_this_machine(codec_env, mounted, dev_secrets),
        origin,
    )


def test_temporal_chart_values_follow_the_upstream_layout() -> None:
    values = yaml.safe_load((K8S / "temporal-values.yaml").read_text())
    stores = values["server"]["config"]["persistence"]["datastores"]
    for store in ("default", "visibility"):
        sql = stores[store]["sql"]
        assert sql["pluginName"] == "postgres12" and sql["existingSecret"] and "password" not in sql
    # The chart passes web.additionalEnv to the UI container as a list of EnvVar.
    assert all(set(e) == {"name", "value"} for e in values["web"]["additionalEnv"])


# ---------------------------------------------------------------------- the image
def test_dockerfile_is_multi_stage_unprivileged_and_runs_swoosh() -> None:
    lines = [ln.strip() for ln in (ROOT / "Dockerfile").read_text().splitlines() if ln.strip() and ln[0] != "#"]
    stages = [ln for ln in lines if ln.startswith("FROM ")]
    assert len(stages) >= 2 and any("AS runtime" in s for s in stages)
    runtime = lines[lines.index(next(s for s in stages if "AS runtime" in s)) :]
    user = [ln for ln in runtime if ln.startswith("USER ")]
    assert user and user[-1].split()[1].split(":")[0] not in ("root", "0")
    assert 'ENTRYPOINT ["swoosh"]' in runtime
    cmd = next(ln for ln in runtime if ln.startswith("CMD "))
    _parse(yaml.safe_load(cmd[4:]))
    copied = {ln.split()[1] for ln in lines if ln.startswith("COPY ") and "--from" not in ln}
    for package in ("workflows", "guards", "activities", "api", "worker", "chaos"):
        assert package in copied, package
