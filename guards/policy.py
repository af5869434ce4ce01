"""SHHH policy: built-in secret rules and custom regex rules over inputs and evidence.

The same rules redact decision records and logs. Breach reasons name the rule and the place,
never the matched text, so a breach report cannot itself leak the secret.

Operators' custom rules run on RE2 (`google-re2`): linear in the text whatever the pattern, so a
badly written rule (`(a+)+$`) cannot stall a worker on a caller's megabyte of input. The built-in
rules are SWOOSH's own (reviewed, and applied in workflow code, which keeps Python's `re`).
"""

from __future__ import annotations

import functools
import re
from typing import Any, Protocol

from swoosh.guards.context import GuardContext
from swoosh.guards.facts import Facts, PolicyRuleSpec
from swoosh.guards.outcome import GuardOutcome, failed, passed
from swoosh.workflows.crypto import SIGNATURE_RE, SIGNER_RE

REDACTED = "[REDACTED]"

_PEM = PolicyRuleSpec(
    id="pem-private-key",
    pattern=r"-----BEGIN (?:[A-Z0-9]+ )?PRIVATE KEY-----",
    severity="critical",
    description="PEM private key",
)
_BEARER = PolicyRuleSpec(
    id="bearer-token",
    pattern=r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{16,}",
    severity="high",
    description="HTTP bearer token",
)
# Version 1 (projects whose snapshot says `secret_rules: 1`, i.e. every project started before version 2):
# Stripe-style sk_/pk_/rk_ keys, AWS access key ids, classic GitHub tokens, `api_key=…` assignments.
# It misses keys with dashes or underscores inside, such as OpenAI's `sk-proj-…`.
BUILTIN_RULES_V1: tuple[PolicyRuleSpec, ...] = (
    _PEM,
    _BEARER,
    PolicyRuleSpec(
        id="api-key",
        pattern=r"\b(?:sk|pk|rk)[-_](?:live|test)?[-_]?[A-Za-z0-9]{20,}\b|\bAKIA[0-9A-Z]{16}\b|\bgh[pousr]_[A-Za-z0-9]{36,}\b"
        r"|\b(?i:api[_-]?key|secret|password|token)\s*[=:]\s*['\"]?[A-Za-z0-9._~+/-]{12,}",
        severity="high",
        description="API key or credential assignment",
    ),
)
# Version 2 adds the key formats in common use since, each anchored on its issuer's prefix so that
# ordinary identifiers do not match: OpenAI (`sk-proj-`, `sk-svcacct-`, `sk-admin-`), Anthropic
# (`sk-ant-api03-`), Stripe keys with `_` inside, GitHub fine-grained (`github_pat_`), GitLab (`glpat-`),
# Slack (`xoxb-` …), Google (`AIza…`), AWS temporary ids (`ASIA…`), Hugging Face (`hf_`), npm (`npm_`).
BUILTIN_RULES_V2: tuple[PolicyRuleSpec, ...] = (
    _PEM,
    _BEARER,
    PolicyRuleSpec(
        id="api-key",
        pattern=BUILTIN_RULES_V1[2].pattern
        + r"|\bsk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,}|\bsk-ant-(?:api|admin)\d{2}-[A-Za-z0-9_-]{20,}"
        r"|\b(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9_]{16,}|\bgithub_pat_[A-Za-z0-9_]{22,}|\bglpat-[A-Za-z0-9_-]{20,}"
        r"|\bxox[abposr]-[A-Za-z0-9-]{10,}|\bAIza[0-9A-Za-z_-]{35}|\bASIA[0-9A-Z]{16}\b"
        r"|\bhf_[A-Za-z0-9]{30,}|\bnpm_[A-Za-z0-9]{36}\b",
        severity="high",
        description="API key (common issuers' formats) or credential assignment",
    ),
)
BUILTIN_RULE_VERSIONS: dict[int, tuple[PolicyRuleSpec, ...]] = {1: BUILTIN_RULES_V1, 2: BUILTIN_RULES_V2}
LATEST_RULES_VERSION = 2
# The newest rules: guards, external verdicts and logs use them. Workflow and engine code must use
# `builtin_rules(config.secret_rules)` instead, so that a project decides as it always did on replay.
BUILTIN_RULES = BUILTIN_RULE_VERSIONS[LATEST_RULES_VERSION]


def builtin_rules(version: int) -> tuple[PolicyRuleSpec, ...]:
    """The built-in rules of a version (`EngineConfig.secret_rules`)."""
    return BUILTIN_RULE_VERSIONS[version]


class _Matcher(Protocol):
    def search(self, text: str) -> object: ...

    def sub(self, repl: str, text: str) -> str: ...


@functools.lru_cache(maxsize=256)
def _builtin(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


@functools.lru_cache(maxsize=256)
def compile_custom(pattern: str) -> _Matcher:
    """An operator's pattern on RE2; raise ValueError naming why RE2 refuses it (e.g. a backreference)."""
    import re2  # type: ignore[import-untyped]  # imported where custom rules run: never in workflow code

    options = re2.Options()
    options.log_errors = False  # the error is raised; RE2 need not also print it
    try:
        return re2.compile(pattern, options)  # type: ignore[no-any-return]
    except re2.error as err:
        detail = err.args[0].decode() if err.args and isinstance(err.args[0], bytes) else str(err)
        raise ValueError(f"not an RE2 pattern ({detail}); RE2 has no backreferences or lookaround") from None


_BUILTIN_OBJECTS = frozenset(id(r) for rules in BUILTIN_RULE_VERSIONS.values() for r in rules)


def _compiled(rule: PolicyRuleSpec) -> _Matcher:
    # By identity: the built-in rules (every version) are these very objects wherever they are in force
    # (cheap: the workflow's hot path), and they never reach RE2.
    return _builtin(rule.pattern) if id(rule) in _BUILTIN_OBJECTS else compile_custom(rule.pattern)


def rule_matches(rule: PolicyRuleSpec, text: str) -> bool:
    """Whether `rule` matches anywhere in `text` (built-in rules by Python's re, operators' by RE2)."""
    return _compiled(rule).search(text) is not None


def rules_in_force(facts: Facts) -> tuple[PolicyRuleSpec, ...]:
    return (BUILTIN_RULES if facts.policy.builtin else ()) + facts.policy.rules


def signed_material(key: object, text: str) -> bool:
    """Whether `text` is a signer id, or an Ed25519 signature in a field named `signature`.

    Such values are random base64url (a public key, a signature) checked for their exact format, not
    caller text: scanning them only finds chance matches (about 1 in 40,000 signatures holds something
    shaped like an issuer's key prefix after a `-`), which would refuse a valid vote and quarantine the
    project. A caller who hides a secret in that exact shape on purpose defeats a pattern scan anyway.
    """
    return SIGNER_RE.fullmatch(text) is not None or (key == "signature" and SIGNATURE_RE.fullmatch(text) is not None)


def _strings(value: Any, path: str, exempt: bool = True, key: object = None) -> list[tuple[str, str]]:
    if isinstance(value, str):
        return [] if exempt and signed_material(key, value) else [(path, value)]
    if isinstance(value, dict):
        out = []
        for k in sorted(value):
            out.extend(_strings(k, f"{path}.<key>"))
            out.extend(_strings(value[k], f"{path}.{k}", exempt, k))
        return out
    if isinstance(value, list):
        out = []
        for i, item in enumerate(value):
            out.extend(_strings(item, f"{path}[{i}]", exempt))
        return out
    return []


def scan(
    rules: tuple[PolicyRuleSpec, ...],
    inputs: dict[str, Any],
    evidence: list[str] | tuple[str, ...],
    signed_exempt: bool = True,
) -> list[str]:
    """Breaches as `rule (severity) at path` lines, in a deterministic order.

    `signed_exempt`: skip signer ids and signatures (`signed_material`). Workflow code passes the
    project's `EngineConfig.signed_fields_exempt`, so projects recorded before it decide as they did.
    """
    breaches = []
    for path, text in _strings(inputs, "inputs", signed_exempt) + _strings(list(evidence), "evidence", signed_exempt):
        for rule in rules:
            if _compiled(rule).search(text):
                breaches.append(f"{rule.id} ({rule.severity}) at {path}")
    return breaches


def redact(value: Any, rules: tuple[PolicyRuleSpec, ...] = BUILTIN_RULES) -> Any:
    """A copy of `value` with every rule match replaced by [REDACTED]."""
    if isinstance(value, str):
        for rule in rules:
            value = _compiled(rule).sub(REDACTED, value)
        return value
    if isinstance(value, dict):
        return {k: redact(v, rules) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, rules) for v in value]
    return value


def policy_guard(state: dict[str, Any], inputs: dict[str, Any], facts: Facts, ctx: GuardContext) -> GuardOutcome:
    breaches = scan(rules_in_force(facts), inputs, ctx.evidence) + list(facts.policy.external_breaches)
    if breaches:
        return failed("policy", *(f"breach: {b}" for b in breaches))
    return passed("policy", f"{len(rules_in_force(facts))} rules, no breach")
