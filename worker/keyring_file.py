"""Load the keyring file named by SWOOSH_KEYRING (process wiring; the model is `workflows.keyring`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import ValidationError

from swoosh.workflows.errors import KeyringError
from swoosh.workflows.keyring import Keyring

KEYRING_ENV = "SWOOSH_KEYRING"


def load_keyring(path: str | Path | None = None) -> Keyring:
    """Load a keyring from `path`, else from $SWOOSH_KEYRING; raise KeyringError with the reason."""
    source = path if path is not None else os.environ.get(KEYRING_ENV)
    if not source:
        raise KeyringError(f"no keyring: set {KEYRING_ENV} to a keyring JSON file")
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
