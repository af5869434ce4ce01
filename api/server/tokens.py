"""Scoped API tokens: who a bearer token is (its label) and what it may do (scopes, project patterns).

A token entry (settings `[[api.tokens]]`) has a unique `label` (what logs show instead of the secret),
its `secret` or a `secret_file` holding it, `scopes` (a subset of `read`, `propose`, `admin`; default
all three) and `projects` (fnmatch patterns over project ids; default `*`). The plain legacy form
`SWOOSH_API_TOKENS=a,b` becomes entries `token-1`, `token-2`, … with every scope on every project.
Without any token the API is open: every request is the `anonymous` principal with every scope.
"""

from __future__ import annotations

import fnmatch
import hmac
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, SecretStr, field_validator, model_validator

from swoosh.workflows.crypto import SIGNER_RE

Scope = Literal["read", "propose", "admin"]
SCOPES: tuple[Scope, ...] = ("read", "propose", "admin")
LABEL_RE = re.compile(r"[A-Za-z0-9_.:@-]{1,64}")
PATTERN_RE = re.compile(r"[A-Za-z0-9_.*?\[\]!-]{1,64}")
# Transitions that change who may act on a project need the `admin` scope, not just `propose`.
ADMIN_TRANSITIONS = frozenset({"Identity_Rotate"})


class TokenError(ValueError):
    """A token entry that cannot be used (e.g. its secret file is unreadable); names the label, never the secret."""


class ApiToken(BaseModel):
    """One bearer token the API accepts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str
    secret: SecretStr | None = None
    secret_file: Path | None = None
    scopes: tuple[Scope, ...] = SCOPES
    projects: tuple[str, ...] = ("*",)
    # The signer id of a gateway identity this token signs legacy bodies as (docs/migration.md): its
    # private key must be among the API's gateway keys. None: the token's callers sign for themselves.
    gateway: str | None = None

    @field_validator("label")
    @classmethod
    def _label(cls, value: str) -> str:
        if not LABEL_RE.fullmatch(value):
            raise ValueError("label must be 1-64 of [A-Za-z0-9_.:@-]")
        return value

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, value: tuple[Scope, ...]) -> tuple[Scope, ...]:
        if not value:
            raise ValueError("scopes must name at least one of read, propose, admin")
        return tuple(s for s in SCOPES if s in value)

    @field_validator("projects")
    @classmethod
    def _projects(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError('projects must hold at least one pattern (["*"] = every project)')
        for pattern in value:
            if not PATTERN_RE.fullmatch(pattern):
                raise ValueError(f"project pattern {pattern!r}: 1-64 of project-id characters and * ? [ ] !")
        return value

    @model_validator(mode="after")
    def _one_secret(self) -> Self:
        if (self.secret is None) == (self.secret_file is None):
            raise ValueError(f"token {self.label}: give exactly one of secret and secret_file")
        if self.secret is not None and not self.secret.get_secret_value().strip():
            raise ValueError(f"token {self.label}: the secret is empty")
        return self

    def resolved_secret(self) -> str:
        """The secret, read from `secret_file` when that is how it is given (never log it)."""
        if self.secret is not None:
            return self.secret.get_secret_value().strip()
        assert self.secret_file is not None
        try:
            text = self.secret_file.read_text(encoding="utf-8").strip()
        except OSError as err:
            raise TokenError(f"token {self.label}: cannot read {self.secret_file}: {err.strerror}") from None
        if not text:
            raise TokenError(f"token {self.label}: {self.secret_file} is empty")
        return text

    @field_validator("gateway")
    @classmethod
    def _gateway(cls, value: str | None) -> str | None:
        if value is not None and not SIGNER_RE.fullmatch(value):
            raise ValueError("gateway must be a signer id hmmm:pubkey:<base64url of a 32-byte Ed25519 public key>")
        return value

    def principal(self) -> Principal:
        return Principal(self.label, frozenset(self.scopes), self.projects, self.gateway)


def legacy_tokens(values: Iterable[Any]) -> list[Any]:
    """Plain secrets (the `SWOOSH_API_TOKENS=a,b` form) as entries `token-1`, … with every scope; entries unchanged."""
    out: list[Any] = []
    for n, value in enumerate(values, 1):
        if isinstance(value, (str, SecretStr)):
            out.append({"label": f"token-{n}", "secret": value})
        else:
            out.append(value)
    return out


@dataclass(frozen=True)
class Principal:
    """Who made a request: the token's label, its scopes and the projects it may touch."""

    label: str
    scopes: frozenset[str]
    projects: tuple[str, ...] = ("*",)
    gateway: str | None = None  # the gateway identity the token signs legacy bodies as

    def may(self, scope: Scope, project_id: str | None = None) -> bool:
        """True when this principal holds `scope` (on `project_id`, when one is named)."""
        if scope not in self.scopes:
            return False
        return project_id is None or any(fnmatch.fnmatchcase(project_id, p) for p in self.projects)

    @property
    def everywhere(self) -> bool:
        """True when the principal's projects are not limited (the `*` pattern)."""
        return "*" in self.projects


ANONYMOUS = Principal("anonymous", frozenset(SCOPES), ("*",))


class TokenSet:
    """The accepted tokens, immutable; the API swaps in a new set when its tokens are reloaded."""

    def __init__(self, entries: Sequence[tuple[str, Principal]] = ()) -> None:
        labels = [p.label for _, p in entries]
        if len(labels) != len(set(labels)):
            raise TokenError("token labels must be unique")
        if any(not secret for secret, _ in entries):
            raise TokenError("an API token must not be empty")
        self._entries = tuple((secret.encode(), principal) for secret, principal in entries)

    @classmethod
    def of(cls, tokens: Iterable[ApiToken | str | SecretStr]) -> TokenSet:
        """A set from settings entries (secret files are read now) or plain secrets (legacy labels)."""
        entries = [t if isinstance(t, ApiToken) else ApiToken.model_validate(t) for t in legacy_tokens(tokens)]
        return cls([(t.resolved_secret(), t.principal()) for t in entries])

    def __bool__(self) -> bool:
        return bool(self._entries)

    @property
    def labels(self) -> list[str]:
        return [p.label for _, p in self._entries]

    def authenticate(self, token: str | None) -> Principal | None:
        """The principal of `token`; None when it matches no configured token. Open (ANONYMOUS) without tokens."""
        if not self._entries:
            return ANONYMOUS
        if token is None:
            return None
        given = token.encode()
        # Compare with every token (no early exit) so timing says nothing about which one matched.
        found: Principal | None = None
        for secret, principal in self._entries:
            if hmac.compare_digest(given, secret):
                found = principal
        return found


def required_scope(transition: object) -> Scope:
    """The scope a proposal of `transition` needs."""
    return "admin" if isinstance(transition, str) and transition in ADMIN_TRANSITIONS else "propose"


def tokens_field(value: Any) -> Any:
    """Settings input for `api.tokens`: a list of secrets and/or entries, legacy secrets labelled."""
    if isinstance(value, (str, SecretStr)):
        value = [value]
    if isinstance(value, (list, tuple)):
        return legacy_tokens(value)
    return value
