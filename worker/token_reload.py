"""API tokens reloaded without a restart: on SIGHUP, and when a file they come from changes.

The watched files are the ones the settings were read from (the `SWOOSH_CONFIG` file, `_FILE`
secrets, tokens' `secret_file`s). A reload that fails (a half-written file, a bad entry) keeps the
tokens in force and logs why; the log names token labels only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Protocol

from swoosh.api.server import jsonlog
from swoosh.api.server.tokens import TokenError, TokenSet
from swoosh.worker.settings import Loaded
from swoosh.workflows.errors import ConfigError

POLL_S = 1.0
FileStamp = tuple[int, int, int] | None


def _stamp(path: Path) -> FileStamp:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


class TokenHolder(Protocol):
    """What holds tokens in force: the API's `HttpEdge`, the codec server's edge."""

    def replace_tokens(self, tokens: TokenSet) -> None: ...


class TokenReloader:
    """Re-reads the settings and swaps the edge's tokens when asked or when a watched file changes."""

    def __init__(self, edge: TokenHolder, load: Callable[[], Loaded], files: tuple[Path, ...] = ()) -> None:
        self.edge = edge
        self.load = load
        self._stamps = {p: _stamp(p) for p in files}
        self.reloads = 0

    def reload(self, why: str) -> bool:
        """Load the settings again and put their tokens in force; False (old tokens kept) on any error."""
        try:
            loaded = self.load()
            tokens = TokenSet.of(loaded.settings.api.tokens)
        except (ConfigError, TokenError) as err:
            jsonlog.event(
                f"API tokens not reloaded ({why}): {err}; the tokens in force stay", level=logging.ERROR,
                event="tokens_reload_failed",
            )  # fmt: skip
            return False
        self._stamps = {p: _stamp(p) for p in loaded.files}
        self.edge.replace_tokens(tokens)
        self.reloads += 1
        jsonlog.event(f"API tokens reloaded ({why})", event="tokens_reloaded", labels=",".join(tokens.labels))
        return True

    def changed(self) -> list[Path]:
        return [p for p, old in self._stamps.items() if _stamp(p) != old]

    async def run(self, poll_s: float = POLL_S) -> None:
        """Watch the files until cancelled; reload after a change (once the file stops changing)."""
        while True:
            await asyncio.sleep(poll_s)
            changed = self.changed()
            if changed:
                await asyncio.sleep(min(poll_s, 0.2))  # let a writer finish before reading
                self.reload(f"{', '.join(str(p) for p in changed)} changed")

    @contextlib.asynccontextmanager
    async def running(self, poll_s: float = POLL_S) -> AsyncIterator[None]:
        """Watch files and take SIGHUP for as long as the block runs."""
        loop = asyncio.get_running_loop()
        task = asyncio.create_task(self.run(poll_s))
        hup = hasattr(signal, "SIGHUP")
        if hup:
            loop.add_signal_handler(signal.SIGHUP, self.reload, "SIGHUP")
        try:
            yield
        finally:
            if hup:
                loop.remove_signal_handler(signal.SIGHUP)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
