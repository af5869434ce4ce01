"""Scoped tokens against the real API and dev server: each route's scope, project patterns, labels in logs,
tokens reloaded without a restart, and the CLI's token from the environment or a file."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from swoosh.api.client._factory import ProposalFactory
from swoosh.api.server.tokens import ApiToken
from swoosh.worker.cli import main as swoosh
from swoosh.worker.logs import JsonFormatter
from swoosh.worker.settings import load_settings
from swoosh.worker.token_reload import TokenReloader
from tests.api.conftest import ApiServer, ServerFactory, Stack
from tests.api.helpers import post

SECRETS = {name: f"{name}-secret-{uuid.uuid4().hex}" for name in ("admin", "reader", "team", "legacy")}
TEAM = f"team-{uuid.uuid4().hex[:8]}"


def _tokens() -> list[ApiToken]:
    return [
        ApiToken(label="ops", secret=SECRETS["admin"]),  # type: ignore[arg-type]
        ApiToken(label="dashboard", secret=SECRETS["reader"], scopes=("read",)),  # type: ignore[arg-type]
        ApiToken(label="team-ci", secret=SECRETS["team"], scopes=("read", "propose"), projects=("team-*",)),  # type: ignore[arg-type]
    ]


def _auth(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {SECRETS[name]}"}


@pytest.fixture
def scoped(start_api: ServerFactory) -> ApiServer:
    return start_api(tokens=_tokens())


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("swoosh")
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        yield buf
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)


def test_scopes_each_route_needs_its_scope(scoped: ApiServer, stack: Stack) -> None:
    pid = f"t-{uuid.uuid4().hex[:12]}"
    with httpx.Client(base_url=scoped.url, timeout=30) as http:
        assert http.put(f"/v1/projects/{pid}").status_code == 401
        forbidden = http.put(f"/v1/projects/{pid}", headers=_auth("reader"))
        assert forbidden.status_code == 403
        assert forbidden.json() == {
            "error": "forbidden",
            "reason": f"token dashboard does not hold the admin scope on project {pid}",
        }
        assert http.put(f"/v1/projects/{pid}", headers=_auth("admin")).status_code == 201
        # read: both /v1 and legacy reads; the health and metrics endpoints stay open
        assert http.get(f"/v1/projects/{pid}/state", headers=_auth("reader")).status_code == 200
        assert http.get("/state", params={"project_id": pid}, headers=_auth("reader")).status_code == 200
        assert http.get(f"/v1/projects/{pid}/decisions", headers=_auth("reader")).status_code == 200
        assert http.get(f"/v1/projects/{pid}/health").status_code == 200
        # propose: refused to a read-only token on both paths, before anything reaches Temporal
        body = ProposalFactory(stack.signers, pid).body("Boot_ConfigOk", head_of(http, pid), {})
        for path in (f"/v1/projects/{pid}/transition", "/transition"):
            resp = http.post(path, json=body, headers=_auth("reader"))
            assert resp.status_code == 403 and resp.json()["error"] == "forbidden", resp.text
        assert http.post(f"/v1/projects/{pid}/transition", json=body, headers=_auth("admin")).status_code == 202


def head_of(http: httpx.Client, pid: str) -> str:
    resp = http.get(f"/v1/projects/{pid}/state", params={"projection": "meta"}, headers=_auth("admin"))
    assert resp.status_code == 200, resp.text
    return str(resp.json()["hash"])


def test_scopes_project_patterns_limit_a_token(scoped: ApiServer, stack: Stack) -> None:
    mine, other = TEAM, f"t-{uuid.uuid4().hex[:12]}"
    with httpx.Client(base_url=scoped.url, timeout=30) as http:
        for pid in (mine, other):
            assert http.put(f"/v1/projects/{pid}", headers=_auth("admin")).status_code in (200, 201)
        assert http.put(f"/v1/projects/{mine}", headers=_auth("team")).status_code == 403  # no admin scope
        assert http.get(f"/v1/projects/{mine}/state", headers=_auth("team")).status_code == 200
        assert http.get(f"/v1/projects/{other}/state", headers=_auth("team")).status_code == 403
        assert http.get("/state", headers={**_auth("team"), "X-Project-Id": other}).status_code == 403
        body = ProposalFactory(stack.signers, mine).body("Boot_ConfigOk", head_of(http, mine), {})
        assert http.post(f"/v1/projects/{mine}/transition", json=body, headers=_auth("team")).status_code == 202
        stray = ProposalFactory(stack.signers, other).body("Boot_ConfigOk", head_of(http, other), {})
        assert http.post(f"/v1/projects/{other}/transition", json=stray, headers=_auth("team")).status_code == 403
        # legacy path: the project comes from the body, checked once it is known
        assert http.post("/transition", json={**stray, "project_id": other}, headers=_auth("team")).status_code == 403
        assert (
            http.get(f"/v1/projects/{other}/state", params={"projection": "meta"}, headers=_auth("admin")).json()[
                "index"
            ]
            == 0
        )


def test_scopes_identity_rotation_needs_admin(scoped: ApiServer, stack: Stack) -> None:
    with httpx.Client(base_url=scoped.url, timeout=30) as http:
        assert http.put(f"/v1/projects/{TEAM}", headers=_auth("admin")).status_code in (200, 201)
        rotate = {"transition": "Identity_Rotate", "inputs": {"add": [], "remove": [], "reason": "x"}}
        resp = post(http, TEAM, rotate, **_auth("team"))
        assert resp.status_code == 403 and "admin scope" in resp.json()["reason"]
        assert post(http, TEAM, rotate, **_auth("admin")).status_code == 400  # past the scope check: a schema answer


def test_scopes_logs_name_the_token_label_never_the_secret(
    scoped: ApiServer, stack: Stack, log_lines: io.StringIO
) -> None:
    pid = f"t-{uuid.uuid4().hex[:12]}"
    with httpx.Client(base_url=scoped.url, timeout=30) as http:
        http.put(f"/v1/projects/{pid}", headers=_auth("admin"))
        body = ProposalFactory(stack.signers, pid).body("Boot_ConfigOk", head_of(http, pid), {})
        post(http, pid, body, **_auth("admin"))
        post(http, pid, body | {"idem_key": "other"}, **_auth("admin"))  # rejected: bad signature
        post(http, pid, body, **_auth("reader"))  # 403
    text = log_lines.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    by_event = {(x.get("event"), x.get("token_label")) for x in lines}
    assert {("transition_accepted", "ops"), ("transition_rejected", "ops"), ("http_problem", "dashboard")} <= by_event
    assert not any(secret in text for secret in SECRETS.values())


def test_scopes_tokens_reload_when_their_file_changes(start_api: ServerFactory, tmp_path: Path) -> None:
    tokens_file = tmp_path / "tokens"
    tokens_file.write_text("first-" + SECRETS["legacy"] + "\n")
    loaded = load_settings({"SWOOSH_API_TOKENS_FILE": str(tokens_file)})
    server = start_api(tokens=loaded.settings.api.tokens)
    reloader = TokenReloader(
        server.app.state.edge, lambda: load_settings({"SWOOSH_API_TOKENS_FILE": str(tokens_file)}), loaded.files
    )
    url = f"{server.url}/v1/projects/t-nope/state"

    def status(token: str) -> int:
        return httpx.get(url, headers={"Authorization": f"Bearer {token}"}).status_code

    assert status("first-" + SECRETS["legacy"]) == 404  # authenticated: the project does not exist
    assert reloader.changed() == []
    tokens_file.write_text("second-" + SECRETS["legacy"] + "\n")
    assert reloader.changed() == [tokens_file]
    assert reloader.reload("test") is True
    assert status("second-" + SECRETS["legacy"]) == 404
    assert status("first-" + SECRETS["legacy"]) == 401
    tokens_file.write_text("")  # a bad reload keeps the tokens in force
    assert reloader.reload("test") is False
    assert status("second-" + SECRETS["legacy"]) == 404


def test_cli_takes_its_token_from_the_environment_or_a_file(
    scoped: ApiServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pid = f"t-{uuid.uuid4().hex[:12]}"
    assert httpx.put(f"{scoped.url}/v1/projects/{pid}", headers=_auth("admin")).status_code == 201
    common = ["state", "--api", scoped.url, "--project", pid, "--projection", "meta"]
    monkeypatch.delenv("SWOOSH_TOKEN", raising=False)
    monkeypatch.delenv("SWOOSH_TOKEN_FILE", raising=False)
    assert swoosh(common) == 1  # 401
    monkeypatch.setenv("SWOOSH_TOKEN", SECRETS["reader"])
    assert swoosh(common) == 0
    token_file = tmp_path / "token"
    token_file.write_text(SECRETS["admin"] + "\n")
    monkeypatch.setenv("SWOOSH_TOKEN", "wrong")
    assert swoosh([*common, "--token-file", str(token_file)]) == 0
    monkeypatch.setenv("SWOOSH_TOKEN_FILE", str(token_file))
    assert swoosh(common) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit):  # no way to put a token on the command line
        swoosh([*common, "--token", SECRETS["admin"]])
