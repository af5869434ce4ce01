"""The WHOOSH stand-in: its own state in its own words, idempotency, the disagree switch, faults."""

from __future__ import annotations

import httpx

from swoosh.chaos.legacy import Disagree, LegacyState, state_map
from swoosh.chaos.simulator import SimHandle, running_simulator
from swoosh.workflows.document import genesis, phases
from swoosh.workflows.testing.driver import LIFECYCLE, LOOP
from tests.unit.helpers import Driver


def mapped(view: dict[str, object]) -> dict[str, str | None]:
    """The stand-in's state read through its state map, as SWOOSH reads it."""
    out: dict[str, str | None] = {}
    for region, rule in state_map().items():
        value: object = view
        for part in str(rule["path"]).split("."):
            value = value.get(part) if isinstance(value, dict) else None  # type: ignore[union-attr]
        out[region] = None if value is None else rule["values"].get(str(value), str(value))
    return out


def test_its_state_read_through_the_map_follows_swoosh_through_a_lifecycle() -> None:
    legacy, d = LegacyState(), Driver()
    for n, transition in enumerate((*LIFECYCLE, *LOOP, "Control_Pause", "Control_Resume")):
        inputs = {"reason": "r"} if transition.startswith("Control") else None
        d.submit(transition, inputs) if inputs else d.run(transition)
        status, _ = legacy.mutate("demo", transition, f"k{n}")
        assert status == 202
        ours = phases(d.doc)
        theirs = mapped(legacy.projects["demo"].view())
        assert {r: theirs[r] for r in theirs} == {r: ours[r] for r in theirs}, transition


def test_a_repeated_key_gets_its_first_answer_and_is_applied_once() -> None:
    legacy = LegacyState()
    first = legacy.mutate("p", "Boot_ConfigOk", "k1")
    again = legacy.mutate("p", "Boot_Licensed", "k1")  # a different body with the same key: the first answer
    assert first[0] == again[0] == 202 and again[1]["duplicate"] and again[1]["transition"] == "Boot_ConfigOk"
    assert [a["idem_key"] for a in legacy.applied] == ["k1"]


def test_the_disagree_switch_rejects_or_falsifies_and_logs_each_injection() -> None:
    legacy = LegacyState()
    legacy.disagree = Disagree(reject_every=2, state_every=3)
    answers = [
        legacy.mutate("p", t, f"k{n}")[0] for n, t in enumerate(("Boot_ConfigOk", "Boot_ConfigOk", "Boot_Licensed"))
    ]
    assert answers == [202, 400, 202]
    assert [(i["idem_key"], i["kind"]) for i in legacy.injections] == [("k1", "reject"), ("k2", "state")]
    assert legacy.projects["p"].view()["status"] == "stalled"
    assert legacy.mutate("p", "Not_ATransition", "k9")[0] == 400  # unknown names are refused, not injected


def test_unknown_projects_start_at_genesis_like_swoosh() -> None:
    legacy = LegacyState()
    legacy.project("fresh")
    view = legacy.projects["fresh"].view()
    assert mapped(view)["top"] == phases(genesis_doc())["top"] == "UNINITIALIZED"


def genesis_doc() -> dict[str, object]:
    from swoosh.workflows.keyring import Keyring
    from swoosh.workflows.statechart import default_statechart

    return genesis(default_statechart(), "fresh", Keyring())


async def test_the_simulator_serves_the_stand_in_with_faults() -> None:
    async with running_simulator() as sim:
        await endpoints(sim)


async def endpoints(sim: SimHandle) -> None:
    async with httpx.AsyncClient(base_url=sim.base_url, timeout=5.0, trust_env=False) as http:
        headers = {"Idempotency-Key": "k1", "X-Project-Id": "p"}
        r = await http.post("/transition", json={"transition": "Boot_ConfigOk"}, headers=headers)
        assert r.status_code == 202 and r.json()["success"] is True
        assert (await http.get("/state", params={"project_id": "p"})).json()["status"] == "licensing"
        assert (
            await http.post("/transition", json={"transition": "Boot_ConfigOk"}, headers={"X-Project-Id": "p"})
        ).status_code == 400
        await sim.set_faults("legacy", error_status=503)
        assert (
            await http.post("/transition", json={"transition": "Boot_ConfigOk"}, headers=headers)
        ).status_code == 503
        await sim.clear_faults()
        await sim.set_disagree(reject_every=1)
        r = await http.post(
            "/transition", json={"transition": "Boot_Licensed"}, headers={**headers, "Idempotency-Key": "k2"}
        )
        assert r.status_code == 400 and r.json()["error"] == "refused"
        assert [i["idem_key"] for i in await sim.legacy_log("injections")] == ["k2"]
        assert [a["idem_key"] for a in await sim.legacy_log("applied")] == ["k1"]
