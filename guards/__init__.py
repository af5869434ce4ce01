"""Pure guard functions `(state, inputs, facts, ctx) -> GuardOutcome` and the provider interfaces."""

from guards.context import GuardContext
from guards.evaluate import GUARDS, evaluate_guards
from guards.facts import BeatFrame, Facts, LicenseFact, McpFact, PolicyFact, PolicyRuleSpec
from guards.outcome import GuardOutcome

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
