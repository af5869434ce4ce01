"""KACHING licence: a local signed licence file (embedded) or a licence token validated over HTTP.

Both answers are Ed25519-signed by the licence key and checked against the configured licence public
key; `verified=True` only then. Failures fail closed: an answer that cannot be had becomes a fact with
status `unreachable` or `throttled` (the workflow's licence grace substate), never an exception.
The licence token is a secret: it is sent in the request body only and never logged.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from swoosh.guards.facts import LicenseFact
from swoosh.workflows.crypto import private_key_from_text, private_key_to_text, sign_object, signer_id, verify_object

log = logging.getLogger("swoosh.activities.kaching")

LICENSE_KIND = "kaching.license.v1"
VERDICT_KIND = "kaching.verdict.v1"
VALIDATE_PATH = "/v1/license/validate"
DAY_MS = 86_400_000


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Licence(_Model):
    """The signed body of a licence file."""

    kind: Literal["kaching.license.v1"] = "kaching.license.v1"
    license_id: str = Field(min_length=1)
    licensee: str = ""
    issued_at_ms: int
    expires_at_ms: int | None = None


class LicenceFile(_Model):
    """A licence file: the licence, who signed it and the signature over its canonical JSON."""

    license: Licence
    signer: str
    signature: str


class Verdict(_Model):
    """KACHING's answer to a validation request; `nonce` echoes the request so answers cannot be replayed."""

    kind: Literal["kaching.verdict.v1"] = "kaching.verdict.v1"
    status: Literal["valid", "throttled", "denied", "expired"]
    license_id: str | None = None
    expires_at_ms: int | None = None
    issued_at_ms: int
    nonce: str | None = None


class SignedVerdict(_Model):
    verdict: Verdict
    signer: str
    signature: str


def sign_licence(key: Ed25519PrivateKey, licence: Licence) -> LicenceFile:
    return LicenceFile(
        license=licence, signer=signer_id(key.public_key()), signature=sign_object(key, licence.model_dump())
    )


def sign_verdict(key: Ed25519PrivateKey, verdict: Verdict) -> SignedVerdict:
    return SignedVerdict(
        verdict=verdict, signer=signer_id(key.public_key()), signature=sign_object(key, verdict.model_dump())
    )


@dataclass(frozen=True)
class DevLicence:
    """Where `create_dev_license` put things, and the public key to configure."""

    license_file: Path
    key_file: Path
    public_key_file: Path
    public_key: str
    license_id: str


def create_dev_license(
    directory: Path,
    *,
    license_id: str = "dev-license",
    licensee: str = "local developer",
    valid_for_ms: int = 365 * DAY_MS,
    now_ms: int | None = None,
    overwrite: bool = False,
) -> DevLicence:
    """Write a dev licence (`license.json`), its signing key (`license-key`, mode 0600) and `license.pub`.

    Idempotent: an existing licence and key are kept unless `overwrite`. These are the embedded
    provider's defaults (`<data_dir>/license.json`, `<data_dir>/license.pub`).
    """
    directory.mkdir(parents=True, exist_ok=True)
    lic_path, key_path, pub_path = directory / "license.json", directory / "license-key", directory / "license.pub"
    if not overwrite and lic_path.exists() and key_path.exists():
        key = private_key_from_text(key_path.read_text(encoding="utf-8"))
        existing = LicenceFile.model_validate_json(lic_path.read_text(encoding="utf-8"))
        pub = signer_id(key.public_key())
        pub_path.write_text(pub + "\n", encoding="utf-8")
        return DevLicence(lic_path, key_path, pub_path, pub, existing.license.license_id)
    now_ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    key = Ed25519PrivateKey.generate()
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(private_key_to_text(key) + "\n")
    licence = Licence(
        license_id=license_id, licensee=licensee, issued_at_ms=now_ms, expires_at_ms=now_ms + valid_for_ms
    )
    lic_path.write_text(json.dumps(sign_licence(key, licence).model_dump(), indent=2) + "\n", encoding="utf-8")
    pub = signer_id(key.public_key())
    pub_path.write_text(pub + "\n", encoding="utf-8")
    return DevLicence(lic_path, key_path, pub_path, pub, license_id)


class EmbeddedLicenceProvider:
    """Reads and verifies the local licence file: no network."""

    def __init__(self, license_file: Path, public_key: Callable[[], str | None], clock: Callable[[], int]) -> None:
        self.license_file = license_file
        self.public_key = public_key
        self.clock = clock

    async def license(self) -> LicenseFact:
        now = self.clock()
        try:
            signed = LicenceFile.model_validate_json(self.license_file.read_bytes())
        except OSError as err:
            return _fact("denied", now, detail=f"cannot read licence file {self.license_file}: {err.strerror}")
        except ValidationError:
            return _fact("denied", now, detail=f"licence file {self.license_file} is malformed")
        lic = signed.license
        key = self.public_key()
        verified = key is not None and signed.signer == key and verify_object(key, lic.model_dump(), signed.signature)
        detail = "" if verified else _why_unverified(key, signed.signer == key)
        expired = lic.expires_at_ms is not None and lic.expires_at_ms <= now
        return LicenseFact(
            status="expired" if expired else "valid",
            license_id=lic.license_id,
            expires_at_ms=lic.expires_at_ms,
            fetched_at_ms=now,
            verified=verified,
            detail=detail,
        )


class HttpLicenceProvider:
    """POSTs the licence token to `{base_url}/v1/license/validate` and verifies the signed verdict."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        token: Callable[[], str | None],
        public_key: Callable[[], str | None],
        clock: Callable[[], int],
        max_skew_ms: int,
    ) -> None:
        self.client = client
        self.token = token
        self.public_key = public_key
        self.clock = clock
        self.max_skew_ms = max_skew_ms

    async def license(self) -> LicenseFact:
        token = self.token()
        if token is None:
            return _fact("denied", self.clock(), detail="no licence token configured")
        nonce = secrets.token_urlsafe(16)
        try:
            response = await self.client.post(VALIDATE_PATH, json={"token": token, "nonce": nonce})
        except httpx.TimeoutException:
            return self._unreachable("KACHING timed out")
        except httpx.HTTPError as err:
            return self._unreachable(f"KACHING unreachable: {type(err).__name__}")
        now = self.clock()
        if response.status_code == 429:
            retry = response.headers.get("retry-after")
            return _fact(
                "throttled", now, detail="KACHING is throttling" + (f" (retry after {retry} s)" if retry else "")
            )
        if response.status_code in (401, 403):
            return _fact("denied", now, detail=f"KACHING refused the token (HTTP {response.status_code}, unsigned)")
        if response.status_code != 200:
            return _fact("unreachable", now, detail=f"KACHING answered HTTP {response.status_code}")
        try:
            signed = SignedVerdict.model_validate_json(response.content)
        except ValidationError:
            return _fact("unreachable", now, detail="KACHING answered a malformed verdict")
        return self._judge(signed, nonce, now)

    def _judge(self, signed: SignedVerdict, nonce: str, now: int) -> LicenseFact:
        v = signed.verdict
        key = self.public_key()
        reasons = []
        if key is None or signed.signer != key or not verify_object(key, v.model_dump(), signed.signature):
            reasons.append(_why_unverified(key, signed.signer == key))
        if v.nonce != nonce:
            reasons.append("verdict does not answer this request (nonce mismatch)")
        skew = v.issued_at_ms - now
        if abs(skew) > self.max_skew_ms:
            reasons.append(f"KACHING clock is {skew} ms off the local clock (max skew {self.max_skew_ms} ms)")
        status = v.status
        if status == "valid" and v.expires_at_ms is not None and v.expires_at_ms <= now:
            status = "expired"
        return LicenseFact(
            status=status,
            license_id=v.license_id,
            expires_at_ms=v.expires_at_ms,
            fetched_at_ms=now,
            verified=not reasons,
            detail="; ".join(reasons),
        )

    def _unreachable(self, detail: str) -> LicenseFact:
        log.warning("licence check failed: %s", detail)
        return _fact("unreachable", self.clock(), detail=detail)


def _fact(
    status: Literal["valid", "throttled", "denied", "expired", "unreachable"], now: int, detail: str
) -> LicenseFact:
    return LicenseFact(status=status, fetched_at_ms=now, verified=False, detail=detail)


def _why_unverified(key: str | None, same_signer: bool) -> str:
    if key is None:
        return "no licence public key configured"
    if not same_signer:
        return "signed by a key other than the configured licence key"
    return "licence signature invalid"


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """Read a licence signing key file (base64url seed), as written by `create_dev_license`."""
    return private_key_from_text(path.read_text(encoding="utf-8"))
