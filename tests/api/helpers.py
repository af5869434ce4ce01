"""Small helpers for the end-to-end API tests."""

from __future__ import annotations

from typing import Any

import httpx

from swoosh.api.client._factory import ProposalFactory


def head(http: httpx.Client, project: str) -> str:
    resp = http.get(f"/v1/projects/{project}/state", params={"projection": "meta"})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["hash"])


def post(http: httpx.Client, project: str, body: Any, **headers: str) -> httpx.Response:
    return http.post(f"/v1/projects/{project}/transition", json=body, headers=headers)


def step(
    http: httpx.Client, factory: ProposalFactory, transition: str, inputs: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Propose `transition` with the right signer on the current head; assert it is accepted."""
    body = factory.body(transition, head(http, factory.project_id), inputs or {})
    resp = post(http, factory.project_id, body)
    assert resp.status_code == 202, resp.text
    data: dict[str, Any] = resp.json()
    return data


def state(http: httpx.Client, project: str, **params: Any) -> dict[str, Any]:
    resp = http.get(f"/v1/projects/{project}/state", params=params)
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()
    return data


class HttpDriver:
    """Takes a project through transitions over HTTP with valid, signed inputs (the test kit's inputs).

    Opens the BACKBEAT window each transition needs on the stack's controllable facts, and keeps every
    answer and the document after it (`seen[index]`), so tests can compare what was live with what is
    read later.
    """

    def __init__(self, http: httpx.Client, factory: ProposalFactory, facts: Any) -> None:
        self.http, self.factory, self.facts = http, factory, facts
        self.answers: list[dict[str, Any]] = []
        self.seen: dict[int, dict[str, Any]] = {}
        self.version = 0

    @property
    def project(self) -> str:
        return self.factory.project_id

    def body(self, transition: str, inputs: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        """A signed body for `transition` on the current head (valid inputs unless given)."""
        from swoosh.workflows.statechart import default_statechart
        from swoosh.workflows.testing.driver import valid_inputs

        doc = state(self.http, self.project)
        if inputs is None:
            inputs, self.version = valid_inputs(
                self.factory, transition, doc["projection"], len(self.answers), self.version, "backbeat:W-1"
            )
        window = default_statechart().transitions[transition].spec.window
        if window is not None:
            self.facts.open_window(window, "backbeat:W-1")
        return self.factory.body(transition, doc["hash"], inputs, window_id="backbeat:W-1", **kw)

    def step(self, transition: str, inputs: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        resp = post(self.http, self.project, self.body(transition, inputs, **kw))
        assert resp.status_code == 202, resp.text
        answer: dict[str, Any] = resp.json()
        self.answers.append(answer)
        self.remember()
        return answer

    def remember(self) -> None:
        now = state(self.http, self.project)
        self.seen[now["index"]] = now

    def run(self, transitions: tuple[str, ...] | list[str]) -> None:
        for t in transitions:
            self.step(t)
