"""Migration modes end to end: the control workflow, shadow comparison against the WHOOSH stand-in, bypass.

The real dev server and worker (tests/api/conftest.py), the real API, and the ecosystem simulator's
WHOOSH stand-in (chaos/legacy.py) as the legacy system. The control workflow is one per namespace,
so every test here leaves the mode `off` again.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from swoosh.api.client._factory import ProposalFactory
from swoosh.api.server.migration import MigrationSettings
from swoosh.chaos.legacy import state_map
from swoosh.chaos.simulator import SimConfig, SimState, build_app
from tests.api.conftest import ApiServer, ServerFactory, Stack
from tests.api.helpers import head, post

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def standin() -> Iterator[tuple[ApiServer, SimState]]:
    """The ecosystem simulator (with its WHOOSH stand-in) served by uvicorn in a thread."""
    state = SimState(SimConfig(), Ed25519PrivateKey.generate(), lambda: time.time_ns() // 1_000_000)
    server = ApiServer(build_app(state)).start()
    try:
        yield server, state
    finally:
        server.stop()


@pytest.fixture
def mig(start_api: ServerFactory, standin: tuple[ApiServer, SimState]) -> Iterator[httpx.Client]:
    """An API reading the mode on every request (cache 0), with the stand-in's state mapping; mode reset to off."""
    settings = MigrationSettings.model_validate({"cache_ms": 0, "state_map": state_map()})
    server = start_api(migration=settings)
    standin[1].legacy.disagree = type(standin[1].legacy.disagree)()
    with httpx.Client(base_url=server.url, timeout=60) as http:
        try:
            yield http
        finally:
            http.put("/v1/migration", json={"mode": "off", "reason": "test over"})
            time.sleep(1.1)  # other API servers of the session cache the mode for 1 s


def set_mode(
    http: httpx.Client, mode: str, legacy_url: str | None = None, routed: Any = (), **kw: Any
) -> dict[str, Any]:
    resp = http.put("/v1/migration", json={"mode": mode, "legacy_url": legacy_url, "routed": list(routed), **kw})
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def new_project(http: httpx.Client, stack: Stack) -> ProposalFactory:
    pid = f"m-{uuid.uuid4().hex[:12]}"
    assert http.put(f"/v1/projects/{pid}").status_code == 201
    return ProposalFactory(stack.signers, pid)


def test_mode_is_off_until_an_operator_changes_it_and_every_change_is_audited(
    mig: httpx.Client, standin: tuple[ApiServer, SimState]
) -> None:
    url = standin[0].url
    before = mig.get("/v1/migration").json()
    assert before["mode"] == "off"
    view = set_mode(mig, "shadow", url, reason="start the shadow phase")
    assert (view["mode"], view["legacy_url"], view["version"]) == ("shadow", url, before["version"] + 1)
    view = set_mode(mig, "route", url, ["council", "Ingestion"], reason="council and ingestion first")
    assert view["routed"] == ["Council", "Ingestion"]
    latest = view["audit"][0]
    assert latest["before"]["mode"] == "shadow" and latest["after"]["routed"] == ["Council", "Ingestion"]
    assert latest["by"] == "anonymous" and latest["reason"] == "council and ingestion first" and latest["at_ms"] > 0
    assert mig.get("/v1/migration").json()["version"] == view["version"]
    metrics = mig.get("/metrics").text
    assert 'swoosh_migration_mode{mode="route"} 1.0' in metrics and 'swoosh_migration_mode{mode="off"} 0.0' in metrics


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"mode": "shadow"}, "needs legacy_url"),
        ({"mode": "route", "legacy_url": "http://127.0.0.1:9"}, "needs routed"),
        ({"mode": "route", "legacy_url": "http://127.0.0.1:9", "routed": ["Nope"]}, "unknown prefix"),
        ({"mode": "sideways"}, "mode"),
        ({"mode": "shadow", "legacy_url": "ftp://x"}, "http"),
        ({"mode": "off", "expected_version": 10**9}, "version"),
    ],
)
def test_invalid_or_stale_changes_are_refused_and_change_nothing(
    mig: httpx.Client, change: dict[str, Any], message: str
) -> None:
    before = mig.get("/v1/migration").json()
    resp = mig.put("/v1/migration", json=change)
    assert resp.status_code == 400, resp.text
    assert message in resp.json()["reason"]
    assert mig.get("/v1/migration").json()["version"] == before["version"]


def test_shadow_gives_the_legacy_answer_and_applies_it_in_swoosh_too(
    mig: httpx.Client, stack: Stack, standin: tuple[ApiServer, SimState]
) -> None:
    f = new_project(mig, stack)
    set_mode(mig, "shadow", standin[0].url)
    body = f.body("Boot_ConfigOk", head(mig, f.project_id), {})
    resp = post(mig, f.project_id, body)
    assert resp.status_code == 202, resp.text
    assert resp.headers["X-Swoosh-Decided-By"] == "legacy" and resp.json()["state_hash"].startswith("whoosh-")
    assert mig.get(f"/v1/projects/{f.project_id}/state").json()["index"] == 1  # SWOOSH applied it too
    report = mig.get(f"/v1/projects/{f.project_id}/shadow").json()
    assert report["compared"] == {"Boot_ConfigOk": 1} and report["divergences"] == []
    again = post(mig, f.project_id, body)  # a resend: the legacy system's first answer, nothing applied twice
    assert again.status_code == 202 and again.json()["duplicate"] is True
    assert mig.get(f"/v1/projects/{f.project_id}/state").json()["index"] == 1
    assert [a["idem_key"] for a in standin[1].legacy.applied if a["project_id"] == f.project_id] == [body["idem_key"]]


def test_shadow_reports_an_injected_rejection_and_a_wrong_phase_on_the_mutation_itself(
    mig: httpx.Client, stack: Stack, standin: tuple[ApiServer, SimState]
) -> None:
    f = new_project(mig, stack)
    set_mode(mig, "shadow", standin[0].url)
    legacy = standin[1].legacy
    legacy.eligible = 0
    legacy.disagree = type(legacy.disagree)(reject_every=1)
    refused = post(mig, f.project_id, f.body("Boot_ConfigOk", head(mig, f.project_id), {}))
    assert refused.status_code == 400 and refused.json()["error"] == "refused"
    assert mig.get(f"/v1/projects/{f.project_id}/state").json()["index"] == 0  # SWOOSH follows the legacy answer
    legacy.disagree = type(legacy.disagree)(state_every=1)
    accepted = post(mig, f.project_id, f.body("Boot_ConfigOk", head(mig, f.project_id), {}))
    assert accepted.status_code == 202
    report = mig.get(f"/v1/projects/{f.project_id}/shadow").json()
    kinds = [(d["kind"], d["legacy"], d["swoosh"]) for d in report["divergences"]]
    assert kinds == [("state", "accepted", "accepted"), ("decision", "rejected (HTTP 400, refused)", "would accept")]
    assert report["divergences"][0]["regions"] == {"top": ["stalled", "LICENSE_CHECK"]}
    assert 'swoosh_shadow_divergence_total{transition="Boot_ConfigOk"}' in mig.get("/metrics").text


def test_legacy_unreachable_is_a_503_and_nothing_is_applied(mig: httpx.Client, stack: Stack) -> None:
    f = new_project(mig, stack)
    set_mode(mig, "shadow", "http://127.0.0.1:9")
    resp = post(mig, f.project_id, f.body("Boot_ConfigOk", head(mig, f.project_id), {}))
    assert resp.status_code == 503 and resp.headers["Retry-After"].isdigit()
    assert mig.get(f"/v1/projects/{f.project_id}/state").json()["index"] == 0


def test_a_key_swoosh_decided_is_never_sent_to_the_legacy_system(
    mig: httpx.Client, stack: Stack, standin: tuple[ApiServer, SimState]
) -> None:
    f = new_project(mig, stack)
    body = f.body("Boot_ConfigOk", head(mig, f.project_id), {})
    assert post(mig, f.project_id, body).status_code == 202  # mode off: SWOOSH decides
    set_mode(mig, "bypass", standin[0].url)
    again = post(mig, f.project_id, body)
    assert again.status_code == 202 and again.json()["duplicate"] is True
    assert again.headers["X-Swoosh-Decided-By"] == "swoosh"
    assert not [a for a in standin[1].legacy.applied if a["project_id"] == f.project_id]


def test_bypass_journals_and_swoosh_catches_up_before_deciding_again(
    mig: httpx.Client, stack: Stack, standin: tuple[ApiServer, SimState]
) -> None:
    f = new_project(mig, stack)
    set_mode(mig, "bypass", standin[0].url)
    first = f.body("Boot_ConfigOk", head(mig, f.project_id), {})
    assert post(mig, f.project_id, first).status_code == 202
    assert mig.get(f"/v1/projects/{f.project_id}/state").json()["index"] == 0  # SWOOSH applied nothing
    assert mig.get(f"/v1/projects/{f.project_id}/shadow").json()["pending"] == 1
    set_mode(mig, "route", standin[0].url, ["*"])
    # The journaled mutation is applied before SWOOSH decides anything else for the project (here by
    # this resend, or by the sweep that leaving bypass starts, whichever comes first).
    resent = post(mig, f.project_id, first)  # a resend after the switch: still the legacy system's key
    assert resent.status_code == 202 and resent.headers["X-Swoosh-Decided-By"] == "legacy"
    state = mig.get(f"/v1/projects/{f.project_id}/state").json()
    assert state["index"] == 1 and state["phase"]["top"] == "LICENSE_CHECK"
    assert mig.get(f"/v1/projects/{f.project_id}/shadow").json()["pending"] == 0


def test_shadow_report_and_migration_commands(
    mig: httpx.Client,
    stack: Stack,
    standin: tuple[ApiServer, SimState],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from swoosh.worker.cli import main

    f = new_project(mig, stack)
    set_mode(mig, "shadow", standin[0].url)
    standin[1].legacy.eligible = 0
    standin[1].legacy.disagree = type(standin[1].legacy.disagree)(reject_every=1)
    assert post(mig, f.project_id, f.body("Boot_ConfigOk", head(mig, f.project_id), {})).status_code == 400
    monkeypatch.setenv("SWOOSH_TEMPORAL_ADDRESS", stack.target)
    assert main(["shadow", "report", "--project", f.project_id, "--json"]) == 1  # a divergence is reported
    report = json.loads(capsys.readouterr().out)
    assert report["totals"]["diverged"] == 1 and report["totals"]["by_transition"] == {"Boot_ConfigOk": 1}
    assert report["projects"][0]["divergences"][0]["swoosh"] == "would accept"
    assert main(["shadow", "report", "--project", f.project_id]) == 1
    text = capsys.readouterr().out
    assert f"{f.project_id}: compared 1, diverged 1 (decision 1)" in text and "shadow projects=1" in text
    api_url = str(mig.base_url).rstrip("/")
    assert main(["migration", "set", "route", "--routed", "Council", "--reason", "cli", "--api", api_url]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["mode"], shown["routed"], shown["legacy_url"]) == ("route", ["Council"], standin[0].url)
    assert main(["migration", "show", "--api", api_url]) == 0
    assert json.loads(capsys.readouterr().out)["audit"][0]["reason"] == "cli"


def test_leaving_bypass_catches_up_projects_swoosh_never_saw(
    mig: httpx.Client, stack: Stack, standin: tuple[ApiServer, SimState]
) -> None:
    from swoosh.workflows.canonical import content_hash
    from swoosh.workflows.document import genesis
    from swoosh.workflows.statechart import default_statechart

    pid = f"m-{uuid.uuid4().hex[:12]}"
    f = ProposalFactory(stack.signers, pid)
    set_mode(mig, "bypass", standin[0].url)
    born = content_hash(genesis(default_statechart(), pid, stack.signers.keyring()))
    assert post(mig, pid, f.body("Boot_ConfigOk", born, {})).status_code == 202
    assert mig.get(f"/v1/projects/{pid}/state").status_code == 404  # SWOOSH applied nothing, not even the project
    set_mode(mig, "route", standin[0].url, ["*"], reason="back from bypass")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        state = mig.get(f"/v1/projects/{pid}/state")
        if state.status_code == 200 and state.json()["index"] == 1:
            break
        time.sleep(0.2)
    else:
        pytest.fail("the background catch-up did not apply the journaled mutation")
    assert mig.post("/v1/migration/catch-up").json()["pending"] == 0
    assert mig.get(f"/v1/projects/{pid}/shadow").json()["pending"] == 0
