"""`ShadowLedger`: one workflow per project (`swoosh-shadow-<project_id>`) holding its migration ledger.

The API claims a key for the legacy system before forwarding it (Update `claim`), settles it with
both systems' answers and any divergence (Update `settle`), and reports catch-up progress (Update
`caught_up`); `lookup`, `report` and `journal` are queries. The ledger changes only through these
deterministic Updates; continue-as-new after `UPDATES_PER_RUN` Updates (or when the server suggests it)
carries the bounded state.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel, ConfigDict

    from swoosh.workflows.shadow import (
        CatchUp,
        Claim,
        JournalEntry,
        LedgerState,
        Lookup,
        Settlement,
        ShadowReport,
    )

LEDGER_WORKFLOW = "SwooshShadowLedger"
LEDGER_ID_PREFIX = "swoosh-shadow-"
UPDATES_PER_RUN = 500


def ledger_id(project_id: str) -> str:
    return f"{LEDGER_ID_PREFIX}{project_id}"


class LedgerInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: LedgerState
    runs: int = 0


class ClaimRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    idem_key: str
    transition: str


class ClaimAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    claim: Claim
    new: bool
    pending: int


@workflow.defn(name=LEDGER_WORKFLOW)
class ShadowLedger:
    @workflow.init
    def __init__(self, inp: LedgerInput) -> None:
        self.state = inp.state.model_copy(deep=True)
        self.runs = inp.runs
        self.updates = 0

    @workflow.run
    async def run(self, inp: LedgerInput) -> None:
        self._describe()
        await workflow.wait_condition(
            lambda: (
                (
                    self.updates >= UPDATES_PER_RUN
                    or (self.updates > 0 and workflow.info().is_continue_as_new_suggested())
                )
                and workflow.all_handlers_finished()
            )
        )
        workflow.continue_as_new(LedgerInput(state=self.state, runs=self.runs + 1))

    def _now_ms(self) -> int:
        return int(workflow.now().timestamp() * 1000)

    def _describe(self) -> None:
        s = self.state
        workflow.set_current_details(
            f"**migration ledger of `{s.project_id}`** · claims {len(s.claims)} · journal {len(s.journal)}"
            f" (dropped {s.dropped}) · divergences {sum(s.diverged.values())} of {sum(s.compared.values())} compared"
        )

    @workflow.update(name="claim")
    def claim(self, req: ClaimRequest) -> ClaimAnswer:
        self.updates += 1
        claim, new = self.state.claim(req.idem_key, req.transition, self._now_ms())
        self._describe()
        return ClaimAnswer(claim=claim, new=new, pending=len(self.state.journal))

    @workflow.update(name="settle")
    def settle(self, s: Settlement) -> Lookup:
        self.updates += 1
        self.state.settle(s, self._now_ms())
        self._describe()
        return self.state.lookup(s.idem_key)

    @workflow.update(name="caught_up")
    def caught_up(self, c: CatchUp) -> Lookup:
        self.updates += 1
        self.state.caught_up(c, self._now_ms())
        self._describe()
        return self.state.lookup("")

    @workflow.query(name="lookup")
    def lookup(self, idem_key: str) -> Lookup:
        return self.state.lookup(idem_key)

    @workflow.query(name="report")
    def report(self, limit: int = 50) -> ShadowReport:
        return self.state.report(limit)

    @workflow.query(name="journal")
    def journal(self) -> list[JournalEntry]:
        return list(self.state.journal)
