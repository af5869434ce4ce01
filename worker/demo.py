"""`swoosh demo`: one project from UNINITIALIZED into EXECUTION and once around the loop, on a running stack.

Meant for the minutes after `make run`: it uses the development keys `make run` wrote
(`<data_dir>/dev/keys`), creates a fresh project (`demo-<time>`, or `--project`), and sends every
transition over the HTTP API with valid, signed inputs — the council's votes and approvals signed by
the three council keys, each window-gated transition sent while its BACKBEAT window is open (read
from `GET /v1/projects/{id}/window`). It prints each step and, at the end, where to look.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from swoosh.api.client import ProposalFactory, load_signers
from swoosh.worker.dev import local_target
from swoosh.worker.propose import bearer_token, default_api_url
from swoosh.worker.settings import Settings
from swoosh.workflows.hlc import HLC
from swoosh.workflows.ids import workflow_id
from swoosh.workflows.statechart import default_statechart
from swoosh.workflows.testing.driver import LIFECYCLE, LOOP, valid_inputs

# Send a window-gated transition only with this much of its window left (at most a third of the window):
# it must reach the worker's guard before the window closes.
MARGIN_MS = 600


class DemoError(Exception):
    """The demo cannot go on (the message says why and what to do)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=None, help="TOML settings file (else $SWOOSH_CONFIG), as for make run")
    parser.add_argument("--api", default=None, help="API base URL (default $SWOOSH_API_URL, else the settings' API)")
    parser.add_argument("--token-file", type=Path, default=None, help="file holding the bearer token ($SWOOSH_TOKEN)")
    parser.add_argument("--project", default=None, help="project id (default: a fresh demo-<time>)")
    parser.add_argument("--keys", type=Path, default=None, help="development key folder (default <data_dir>/dev/keys)")
    parser.add_argument("--loops", type=int, default=1, help="times around PLAN → WORK → REVIEW → REVERB (default 1)")


class Demo:
    def __init__(self, http: httpx.Client, factory: ProposalFactory, out: Any = sys.stdout) -> None:
        self.http, self.factory, self.out = http, factory, out
        self.project = factory.project_id
        self.version = 0
        self.count = 0

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def get(self, path: str, **params: Any) -> Any:
        resp = self.http.get(f"/v1/projects/{self.project}{path}", params=params)
        if resp.status_code != 200:
            raise DemoError(f"GET {path}: HTTP {resp.status_code}: {resp.text[:300]}")
        return resp.json()

    def state(self) -> dict[str, Any]:
        view: dict[str, Any] = self.get("/state")
        if view["hlc_last"]:
            self.factory.clock.observe(HLC.parse(view["hlc_last"]))
        return view

    def window(self, window_class: str | None) -> str:
        """The window id to name: the current one, or (for a gated transition) once its class is open."""
        while True:
            table = self.get("/window")
            if table.get("error"):
                raise DemoError(f"BACKBEAT: {table['error']}")
            if window_class is None:
                return str(table["window_id"])
            cls = table["classes"][window_class]
            span = (cls["closes_at_ms"] or 0) - (cls["opens_at_ms"] or 0)
            margin = min(MARGIN_MS, span // 3) if span > 0 else MARGIN_MS
            if cls["open"] and cls["closes_in_ms"] is not None and cls["closes_in_ms"] >= margin:
                return str(cls["window_id"])
            wait_ms = cls["closes_in_ms"] if cls["open"] else cls["opens_in_ms"]
            if wait_ms is None:
                raise DemoError(f"BACKBEAT does not say when the {window_class} window opens; try again")
            if not cls["open"]:  # (an open window with too little left: wait for it to close, then as usual)
                self.say(f"        … waiting {wait_ms / 1000:.1f} s for the {window_class} window")
            time.sleep(wait_ms / 1000 + 0.05)

    def step(self, transition: str) -> dict[str, Any]:
        spec = default_statechart().transitions[transition].spec
        for attempt in range(3):
            view = self.state()
            window_id = self.window(spec.window)
            inputs, version = valid_inputs(
                self.factory, transition, view["projection"], self.count, self.version, window_id
            )
            body = self.factory.body(transition, view["hash"], inputs, window_id=window_id)
            resp = self.http.post(f"/v1/projects/{self.project}/transition", json=body)
            if resp.status_code in (429, 503):
                time.sleep(float(resp.headers.get("Retry-After", "1")))
                continue
            answer: dict[str, Any] = resp.json()
            if resp.status_code == 202:
                self.version, self.count = version, self.count + 1
                return answer
            if answer.get("failing_guard") == "window" and attempt < 2:
                continue  # the window closed on the way: wait for the next one
            raise DemoError(f"{transition} was rejected: {answer.get('error')}: {answer.get('reason')}")
        raise DemoError(f"{transition}: the API stayed busy")

    def run(self, transitions: list[str]) -> None:
        for t in transitions:
            answer = self.step(t)
            phase = self.state()["phase"]
            if phase["top"] == "EXECUTION":
                where = f"execution {phase['execution']}"
            else:
                where = " · ".join(f"{k} {phase[k]}" for k in ("ingestion", "council", "environment") if phase.get(k))
            self.say(f"  {answer['index']:>5}  {t:<30} → {phase['top']:<18} {where}".rstrip())


def main(args: argparse.Namespace) -> int:
    settings = Settings.load(config_file=args.config)
    api = (args.api or (default_api_url() if os.environ.get("SWOOSH_API_URL") else settings.api.url())).rstrip("/")
    keys = args.keys or Path(settings.data_dir) / "dev" / "keys"
    try:
        signers = load_signers(keys)
    except OSError:
        print(
            f"swoosh demo: no development keys in {keys}: start the stack with `make run` first (it writes them), "
            "or pass --keys",
            file=sys.stderr,
        )
        return 2
    project = args.project or time.strftime("demo-%Y%m%d-%H%M%S")
    token = bearer_token(args)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    started = time.monotonic()
    try:
        with httpx.Client(base_url=api, timeout=60, headers=headers) as http:
            created = http.put(f"/v1/projects/{project}")
            if created.status_code not in (200, 201):
                raise DemoError(f"PUT /v1/projects/{project}: HTTP {created.status_code}: {created.text[:300]}")
            demo = Demo(http, ProposalFactory(signers, project, prefix="demo"))
            if demo.state()["index"] != 0:
                raise DemoError(f"project {project} is not new (index {demo.state()['index']}); name another")
            demo.say(f"SWOOSH demo: project {project} on {api}, signed with the development keys in {keys}")
            demo.say("  index transition                        → top-level state   where the regions are")
            demo.run(list(LIFECYCLE))
            demo.say("  — in EXECUTION; once around the loop (each step waits for its BACKBEAT window) —")
            for _ in range(max(args.loops, 0)):
                demo.run(list(LOOP))
    except DemoError as err:
        print(f"swoosh demo: {err}", file=sys.stderr)
        return 1
    except httpx.HTTPError as err:
        print(
            f"swoosh demo: cannot reach the API at {api} ({type(err).__name__}): is `make run` running?",
            file=sys.stderr,
        )
        return 2
    target = local_target(settings)
    host = target.address.rpartition(":")[0] or "127.0.0.1"
    base = f"{api}/v1/projects/{project}"
    print(
        "\n".join(
            [
                f"\nDone in {time.monotonic() - started:.0f} s: {project} reached EXECUTION and went around the loop.",
                "Where to look:",
                f"  state          {base}/state",
                f"  decisions      {base}/decisions",
                f"  the statechart {base}/diagram        (open it in a browser; ?format=mermaid for text)",
                f"  the past       {base}/state?at=5      (the state right after index 5)",
                f"  Temporal UI    http://{host}:{settings.dev.ui_port}/namespaces/{target.namespace}"
                f"/workflows/{workflow_id(project)}",
                f"  from the CLI   .venv/bin/swoosh state --api {api} --project {project} --projection execution",
            ]
        ),
        flush=True,
    )
    return 0
