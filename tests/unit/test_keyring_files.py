"""Keyring files: a warning when others may write one, and their mode kept when `swoosh keygen` rewrites one."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from swoosh.worker.keyring_file import load_keyring
from swoosh.worker.keys import add_to_keyring
from swoosh.workflows.crypto import signer_id


def _signer() -> str:
    return signer_id(Ed25519PrivateKey.generate().public_key())


def _keyring(path: Path, mode: int) -> Path:
    path.write_text(json.dumps({"signers": [{"id": _signer(), "roles": ["*"]}]}))
    os.chmod(path, mode)
    return path


@pytest.mark.parametrize("mode", [0o664, 0o646, 0o666])
def test_a_keyring_others_may_write_is_loaded_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, mode: int
) -> None:
    path = _keyring(tmp_path / "keyring.json", mode)
    with caplog.at_level(logging.WARNING, logger="swoosh.worker.keyring"):
        assert len(load_keyring(path).signers) == 1
    assert any("writable by its group or by everyone" in r.getMessage() and oct(mode)[2:] in r.getMessage()
               for r in caplog.records)  # fmt: skip


@pytest.mark.parametrize("mode", [0o600, 0o644, 0o640])
def test_a_keyring_only_its_owner_may_write_loads_quietly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, mode: int
) -> None:
    path = _keyring(tmp_path / "keyring.json", mode)
    with caplog.at_level(logging.WARNING, logger="swoosh.worker.keyring"):
        load_keyring(path)
    assert not caplog.records


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o600])
def test_adding_a_signer_keeps_the_keyrings_mode(tmp_path: Path, mode: int) -> None:
    path = _keyring(tmp_path / "keyring.json", mode)
    add_to_keyring(path, _signer(), ("council",))
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert len(load_keyring(path).signers) == 2
