"""Load the keyring file named by SWOOSH_KEYRING (process wiring; the model is `workflows.keyring`).

A keyring decides who may sign for new projects: whoever can write it can grant themselves every
role. Loading one that its group or everyone may write logs a warning.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

from pydantic import ValidationError

from swoosh.workflows.errors import KeyringError
from swoosh.workflows.keyring import Keyring

KEYRING_ENV = "SWOOSH_KEYRING"
log = logging.getLogger("swoosh.worker.keyring")


def writable_by_others(path: Path) -> int | None:
    """The file's permission bits when its group or everyone may write it, else None."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None
    return mode if mode & (stat.S_IWGRP | stat.S_IWOTH) else None


def load_keyring(path: str | Path | None = None) -> Keyring:
    """Load a keyring from `path`, else from $SWOOSH_KEYRING; raise KeyringError with the reason."""
    source = path if path is not None else os.environ.get(KEYRING_ENV)
    if not source:
        raise KeyringError(f"no keyring: set {KEYRING_ENV} to a keyring JSON file")
    loose = writable_by_others(Path(source))
    if loose is not None:
        log.warning(
            "keyring %s is writable by its group or by everyone (mode %o): whoever can write it can grant "
            "themselves any role in new projects; chmod go-w it",
            source,
            loose,
        )
    try:
        data = json.loads(Path(source).read_text(encoding="utf-8"))
    except OSError as err:
        raise KeyringError(f"cannot read keyring {source}: {err.strerror}") from None
    except json.JSONDecodeError as err:
        raise KeyringError(f"keyring {source} is not JSON: {err}") from None
    try:
        return Keyring.model_validate(data)
    except ValidationError as err:
        raise KeyringError(f"keyring {source} is malformed: {err}") from None
