"""SHHH policy: the rules in force (built-in + custom) and, in HTTP mode, an external policy verdict.

The guard (`guards.policy`) scans inputs and evidence with the rules itself; an external SHHH endpoint
(`POST {base_url}/v1/policy/check`) adds its own breaches. Fail closed: when the endpoint cannot give
a verdict, that is a breach ("policy endpoint unreachable: …"). External breach texts are redacted
with the same rules before they reach a decision record.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx

from swoosh.guards.facts import PolicyFact, PolicyRuleSpec
from swoosh.guards.policy import BUILTIN_RULES, redact
from swoosh.workflows.canonical import content_hash

log = logging.getLogger("swoosh.activities.shhh")

CHECK_PATH = "/v1/policy/check"
UNREACHABLE = "policy endpoint unreachable"
MAX_BREACHES = 64
MAX_BREACH_CHARS = 300


class EmbeddedPolicyProvider:
    """The configured rules only: the guard applies them, nothing is asked of anyone."""

    def __init__(self, rules: tuple[PolicyRuleSpec, ...], builtin: bool, clock: Callable[[], int]) -> None:
        self.rules = rules
        self.builtin = builtin
        self.clock = clock

    async def policy(self, inputs: dict[str, object], evidence: list[str]) -> PolicyFact:
        return PolicyFact(rules=self.rules, builtin=self.builtin, fetched_at_ms=self.clock())


class HttpPolicyProvider:
    """The configured rules plus the external endpoint's breaches for these inputs and evidence.

    Verdicts are remembered per (inputs, evidence) hash for `reuse_ms`, so a retried decision does not
    ask again; failures are never remembered.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        rules: tuple[PolicyRuleSpec, ...],
        builtin: bool,
        clock: Callable[[], int],
        reuse_ms: int,
        max_remembered: int = 256,
    ) -> None:
        self.client = client
        self.rules = rules
        self.builtin = builtin
        self.clock = clock
        self.reuse_ms = reuse_ms
        self.max_remembered = max_remembered
        self._verdicts: OrderedDict[str, tuple[int, tuple[str, ...]]] = OrderedDict()

    async def policy(self, inputs: dict[str, object], evidence: list[str]) -> PolicyFact:
        key = content_hash({"inputs": inputs, "evidence": list(evidence)})
        now = self.clock()
        hit = self._verdicts.get(key)
        if hit is not None and now - hit[0] <= self.reuse_ms:
            return self._fact(hit[1], hit[0])
        breaches, ok = await self._ask(inputs, evidence)
        now = self.clock()
        if ok:
            self._verdicts[key] = (now, breaches)
            self._verdicts.move_to_end(key)
            while len(self._verdicts) > self.max_remembered:
                self._verdicts.popitem(last=False)
        return self._fact(breaches, now)

    def blocked(self, reason: str) -> PolicyFact:
        """The fail-closed fact when the endpoint may not be asked at all."""
        return self._fact((f"{UNREACHABLE}: {reason}",), self.clock())

    async def _ask(self, inputs: Mapping[str, Any], evidence: Sequence[str]) -> tuple[tuple[str, ...], bool]:
        try:
            response = await self.client.post(CHECK_PATH, json={"inputs": inputs, "evidence": list(evidence)})
        except httpx.TimeoutException:
            return self._down("timed out")
        except httpx.HTTPError as err:
            return self._down(type(err).__name__)
        if response.status_code != 200:
            return self._down(f"HTTP {response.status_code}")
        try:
            payload = response.json()
        except ValueError:
            return self._down("malformed answer")
        raw = payload.get("breaches") if isinstance(payload, Mapping) else None
        if not isinstance(raw, list) or not all(isinstance(b, str) for b in raw):
            return self._down("malformed answer")
        rules = (BUILTIN_RULES if self.builtin else ()) + self.rules
        clean = tuple(str(redact(b, rules))[:MAX_BREACH_CHARS] for b in raw[:MAX_BREACHES])
        return tuple(f"external: {b}" for b in clean), True

    def _down(self, detail: str) -> tuple[tuple[str, ...], bool]:
        log.warning("policy endpoint failed: %s", detail)
        return (f"{UNREACHABLE}: {detail}",), False

    def _fact(self, breaches: tuple[str, ...], at_ms: int) -> PolicyFact:
        return PolicyFact(rules=self.rules, builtin=self.builtin, external_breaches=breaches, fetched_at_ms=at_ms)
