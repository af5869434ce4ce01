"""Pure guard functions `(state, inputs, facts, ctx) -> GuardOutcome` and the provider interfaces."""

from swoosh.guards.context import GuardContext
from swoosh.guards.evaluate import GUARDS, evaluate_guards
from swoosh.guards.facts import BeatFrame, Facts, LicenseFact, McpFact, PolicyFact, PolicyRuleSpec
from swoosh.guards.outcome import GuardOutcome

__all__ = [
    "GUARDS",
    "BeatFrame",
    "Facts",
    "GuardContext",
    "GuardOutcome",
    "LicenseFact",
    "McpFact",
    "PolicyFact",
    "PolicyRuleSpec",
    "evaluate_guards",
]
