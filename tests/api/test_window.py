"""`GET /v1/projects/{id}/window`, end to end: BACKBEAT's windows from the schedule the workers use."""

from __future__ import annotations

import uuid

import httpx
import pytest

from swoosh.activities.backbeat import Schedule
from swoosh.activities.config import BackbeatSettings
from swoosh.activities.windows import BackbeatWindows
from swoosh.api.client._factory import ProposalFactory
from swoosh.workflows.testing.driver import LIFECYCLE
from tests.api.conftest import ServerFactory, Stack
from tests.api.helpers import HttpDriver

pytestmark = [pytest.mark.temporal, pytest.mark.timeout(180)]
SETTINGS = BackbeatSettings(tempo_bpm=60, beats_per_bar=8, plan=10, work=40, review=30, reverb=20)


def test_window_table_is_the_schedule_and_names_the_next_step(stack: Stack, start_api: ServerFactory) -> None:
    server = start_api(windows=BackbeatWindows(SETTINGS))
    project = f"wd-{uuid.uuid4().hex[:10]}"
    schedule = Schedule.from_settings(SETTINGS)
    with httpx.Client(base_url=server.url, timeout=60) as http:
        assert http.put(f"/v1/projects/{project}").status_code == 201
        before = http.get(f"/v1/projects/{project}/window").json()
        now = before["now_ms"]
        frame = schedule.frame(now)
        assert (before["window_id"], before["phase"]) == (frame.window_id, frame.phase)
        for cls, c in before["classes"].items():
            wid, start, end = schedule.next_open(cls, now)
            assert (c["window_id"], c["opens_at_ms"], c["closes_at_ms"], c["open"]) == (
                wid,
                start,
                end,
                cls == frame.phase,
            )
            assert c["opens_in_ms"] == max(0, start - now) and c["closes_in_ms"] == end - now
        assert before["gates"] == {
            "Execution_PlanLocked": "work",
            "Execution_BeatReviewGate": "review",
            "Execution_ApprovalsThreshold": "reverb",
            "Execution_NextWindow": "plan",
        }
        assert before["next"] is None and "60 bpm, 8 beats per bar" in before["source"]
        HttpDriver(http, ProposalFactory(stack.signers, project), stack.facts).run(LIFECYCLE)
        stack.facts.reset()
        after = http.get(f"/v1/projects/{project}/window").json()
        nxt = after["next"]
        assert (nxt["transition"], nxt["window_class"]) == ("Execution_PlanLocked", "work")
        assert nxt["window_id"] == after["classes"]["work"]["window_id"]
        assert http.get("/v1/projects/no-such-project/window").status_code == 404


def test_window_without_backbeat_settings_is_503(start_api: ServerFactory, project: str) -> None:
    server = start_api()
    resp = httpx.get(f"{server.url}/v1/projects/{project}/window")
    assert resp.status_code == 503 and "BACKBEAT" in resp.json()["reason"]
