"""JSON-line logs without secrets, and the brief's metrics counted once per accepted answer."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from swoosh.api.client._factory import ProposalFactory
from swoosh.api.server.metrics import METRIC_NAMES, ApiMetrics
from swoosh.worker.logs import JsonFormatter
from swoosh.workflows.crypto import private_key_to_text
from tests.api.conftest import ServerFactory, Stack
from tests.api.helpers import head, post

TOKEN = "s3cret-token-" + uuid.uuid4().hex


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


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_logs_are_json_lines_with_the_fields_and_no_secrets(
    stack: Stack, start_api: ServerFactory, log_lines: io.StringIO
) -> None:
    server = start_api(tokens=(TOKEN,))
    pid = f"t-{uuid.uuid4().hex[:12]}"
    factory = ProposalFactory(stack.signers, pid)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    sent = []
    with httpx.Client(base_url=server.url, timeout=30, headers=auth) as http:
        assert http.put(f"/v1/projects/{pid}").status_code == 201
        body = factory.body("Boot_ConfigOk", head(http, pid), {}, window_id="backbeat:W-3")
        sent.append(body)
        assert post(http, pid, body).status_code == 202
        assert post(http, pid, body).status_code == 202  # duplicate
        stack.facts.license_status = "denied"
        failing = factory.body("Boot_Licensed", head(http, pid), {"license_id": "LIC-1"})
        sent.append(failing)
        assert post(http, pid, failing).status_code == 400
        leaky = factory.body("Control_Pause", head(http, pid), {"reason": f"Bearer {TOKEN}"})
        sent.append(leaky)
        post(http, pid, leaky)
        assert http.get(f"/v1/projects/{pid}/state", headers={"Authorization": "Bearer wrong-token"}).status_code == 401
    lines = [json.loads(line) for line in log_lines.getvalue().splitlines() if line.strip()]
    accepted = [x for x in lines if x.get("event") == "transition_accepted" and x["project_id"] == pid]
    assert [a["duplicate"] for a in accepted] == [False, True]
    first = accepted[0]
    assert {k: first[k] for k in ("transition", "idem_key", "hlc", "window_id", "index")} == {
        "transition": "Boot_ConfigOk",
        "idem_key": body["idem_key"],
        "hlc": body["hlc"],
        "window_id": "backbeat:W-3",
        "index": 1,
    }
    assert first["state_pre_hash"].startswith("sha256-") and first["state_post_hash"].startswith("sha256-")
    rejected = [x for x in lines if x.get("event") == "transition_rejected" and x["project_id"] == pid]
    assert rejected[0]["error"] == "guard_failed" and rejected[0]["failing_guard"] == "license"
    assert rejected[0]["reason"]
    assert any(x.get("status") == 401 for x in lines)
    text = log_lines.getvalue()
    private_keys = [private_key_to_text(k) for k in stack.signers.keys.values()]
    for secret in [TOKEN, "wrong-token", *(b["signature"] for b in sent), *private_keys]:
        assert secret not in text
    assert "authorization" not in text.lower()


def test_metrics_have_the_brief_names_and_count_once_per_accepted_answer(
    stack: Stack, start_api: ServerFactory
) -> None:
    metrics = ApiMetrics()
    server = start_api(metrics=metrics)
    pid = f"t-{uuid.uuid4().hex[:12]}"
    factory = ProposalFactory(stack.signers, pid)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.put(f"/v1/projects/{pid}").status_code == 201
        boot = factory.body("Boot_ConfigOk", head(http, pid), {})
        assert post(http, pid, boot).status_code == 202
        assert post(http, pid, boot).status_code == 202  # duplicate: not counted again
        retried = factory.body("Control_Pause", head(http, pid), {"reason": "r"})
        assert post(http, pid, retried, **{"X-Swoosh-Retry": "1"}).status_code == 202
        assert post(http, pid, factory.body("Control_Resume", head(http, pid), {"reason": "r"})).status_code == 202
        stack.facts.license_status = "denied"
        assert post(http, pid, factory.body("Boot_Licensed", head(http, pid), {"license_id": "L"})).status_code == 400
        quarantine = factory.body("Policy_Quarantine", head(http, pid), {"reason": "look"})
        assert post(http, pid, quarantine).status_code == 202
        release = factory.body("Policy_Release", head(http, pid), {"reason": "fine"})
        assert post(http, pid, release).status_code == 202
        assert http.get(f"/v1/projects/{pid}/health").status_code == 200
        exposed = http.get("/metrics")
    assert exposed.status_code == 200 and exposed.headers["content-type"].startswith("text/plain")
    families = {f.name for f in text_string_to_metric_families(exposed.text)}
    for name in METRIC_NAMES:  # the client parser strips _total from counter family names
        assert name.removesuffix("_total") in families, name
        assert f"# TYPE {name}" in exposed.text or f"# TYPE {name.removesuffix('_total')} counter" in exposed.text
    s = _samples(exposed.text)
    assert s[("swoosh_api_transition_total", (("transition", "Boot_ConfigOk"),))] == 1
    assert s[("swoosh_api_transition_total", (("transition", "Control_Pause"),))] == 1
    assert s[("swoosh_api_guard_fail_total", (("guard", "license"),))] == 1
    assert s[("swoosh_retry_count", (("transition", "Control_Pause"),))] == 1
    assert s[("swoosh_api_quarantine_total", ())] == 1
    assert s[("swoosh_api_state_advance_latency_seconds_count", (("region", "boot"),))] == 1
    assert s[("swoosh_api_state_advance_latency_seconds_count", (("region", "control"),))] == 2
    assert s[("swoosh_api_state_advance_latency_seconds_count", (("region", "policy"),))] == 2
    assert s[("swoosh_api_state_advance_latency_seconds_count", (("region", "council"),))] == 0
    assert s[("swoosh_api_responses_total", (("code", "202"),))] == 6
    assert s[("swoosh_api_responses_total", (("code", "400"),))] == 1
    assert s[("swoosh_api_responses_total", (("code", "500"),))] == 0


@pytest.mark.parametrize(
    "field",
    ["hlc", "signature", "transition", "idem_key", "inputs"],
)
def test_oversized_fields_give_clipped_reasons_and_log_lines(
    stack: Stack, start_api: ServerFactory, log_lines: io.StringIO, field: str
) -> None:
    """A 500 kB field once gave a 500,075-character reason, in the answer and in the log."""
    server = start_api()
    pid = f"t-{uuid.uuid4().hex[:12]}"
    factory = ProposalFactory(stack.signers, pid)
    big = "9" * 500_000
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.put(f"/v1/projects/{pid}").status_code == 201
        if field == "inputs":  # signed as sent: the input schema names the unknown input
            body = factory.body("Boot_ConfigOk", head(http, pid), {big: "x"})
        else:
            body = factory.body("Boot_ConfigOk", head(http, pid), {}) | {field: big}
        resp = post(http, pid, body)
    assert resp.status_code == 400, resp.text[:300]
    answer = resp.json()
    assert answer["error"] == "schema"
    assert 0 < len(answer["reason"]) <= 1000
    assert len(resp.content) < 4000
    lines = [line for line in log_lines.getvalue().splitlines() if pid in line]
    assert lines and all(len(line) < 5000 for line in lines), max(len(line) for line in lines)


class _BrokenClient:
    """Stands in for a client whose every use hits a bug (not Temporal: no RPC is ever made)."""

    namespace = "default"

    def get_workflow_handle_for(self, *args: object, **kwargs: object) -> None:
        raise ValueError("bug while reading -----BEGIN PRIVATE KEY----- MIIEv… from the request")

    get_workflow_handle = get_workflow_handle_for


def test_a_500_is_logged_with_its_redacted_traceback(
    stack: Stack, start_api: ServerFactory, log_lines: io.StringIO
) -> None:
    async def broken() -> _BrokenClient:
        return _BrokenClient()

    server = start_api(broken, check_setup=False)
    factory = ProposalFactory(stack.signers, "bug-project")
    with httpx.Client(base_url=server.url, timeout=30) as http:
        state = http.get("/v1/projects/bug-project/state")  # FastAPI's routing
        transition = post(http, "bug-project", factory.body("Boot_ConfigOk", "sha256-" + "0" * 64))  # the fast path
    for resp in (state, transition):
        assert resp.status_code == 500 and resp.json() == {
            "error": "internal",
            "reason": "internal error; see the API log",
        }
    bugs = [json.loads(line) for line in log_lines.getvalue().splitlines() if '"internal_error"' in line]
    assert {b["path"] for b in bugs} == {"/v1/projects/bug-project/state", "/v1/projects/bug-project/transition"}
    for b in bugs:
        assert b["level"] == "error" and b["status"] == 500 and b["exc_type"] == "ValueError"
        assert "Traceback (most recent call last)" in b["traceback"] and "get_workflow_handle_for" in b["traceback"]
        assert "BEGIN PRIVATE KEY" not in b["traceback"] and "[REDACTED]" in b["traceback"]


def test_a_500_is_logged_with_its_traceback_and_no_secret(log_lines: io.StringIO) -> None:
    from swoosh.worker import logs

    secret = "tok-" + uuid.uuid4().hex
    logs.add_secrets([secret])
    try:
        raise RuntimeError(f"boom with Bearer {'x' * 24} and {secret}")
    except RuntimeError as err:
        logging.getLogger("swoosh.api").error("unexpected", exc_info=err, extra={"swoosh": {"status": 500}})
    line = json.loads(log_lines.getvalue().splitlines()[-1])
    assert line["status"] == 500 and line["exc_type"] == "RuntimeError"
    assert "test_a_500_is_logged_with_its_traceback" in line["traceback"]
    assert secret not in line["traceback"] and "x" * 24 not in line["traceback"]
