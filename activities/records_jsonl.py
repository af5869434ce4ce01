"""The JSONL decision-record store: `<root>/<project_id>.jsonl`, one canonical record per line.

The embedded default (`make run`): one host, or hosts sharing a POSIX file system (writers take an
exclusive `flock`). A file holds a project's chain from index 1 without holes, so record N is line
N. Each process keeps a sparse index per file (the byte offset of every `STRIDE`-th line), built by
one scan and then extended with what was appended since: a page or a delivery reads only its own
lines, never the file from the start.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from swoosh.activities.decisions import plan_delivery, receipt_conflict, result_of, same_receipt
from swoosh.workflows.canonical import canonical_json
from swoosh.workflows.ids import PROJECT_ID_RE
from swoosh.workflows.messages import DeliveryResult

STRIDE = 64
MAX_PAGE = 1000


class StoreCorrupt(ValueError):
    """A JSONL file is not a chain 1..N, one record per line (the message names the file and line)."""


@dataclass
class _FileIndex:
    """What one process knows of one file: its identity, how far it was scanned, every STRIDE-th offset."""

    ino: int = -1
    end: int = 0  # bytes scanned, always at a line boundary
    count: int = 0  # complete records up to `end`; record N is line N
    marks: list[int] = field(default_factory=list)  # marks[k] = offset of record k*STRIDE + 1
    last_hash: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self, ino: int) -> None:
        self.ino, self.end, self.count, self.marks, self.last_hash = ino, 0, 0, [], None

    def refresh(self, fh: BinaryIO, path: Path) -> None:
        """Catch up with the file: rescan only when it was replaced or shrank, else read what was appended."""
        st = os.fstat(fh.fileno())
        if st.st_ino != self.ino or st.st_size < self.end:
            self.reset(st.st_ino)
        if st.st_size == self.end:
            return
        fh.seek(self.end)
        offset, last = self.end, b""
        for line in fh:
            if not line.endswith(b"\n"):
                break  # a writer is mid-append: leave the partial line for later
            if line.strip():
                if self.count % STRIDE == 0:
                    self.marks.append(offset)
                self.count += 1
                last = line
            offset += len(line)
        if last:
            rec = json.loads(last)
            if int(rec["index"]) != self.count:
                raise StoreCorrupt(f"{path}: line {self.count} holds record {rec['index']} (expected a chain from 1)")
            self.last_hash = str(rec["dr_hash"])
        self.end = offset

    def lines(self, fh: BinaryIO, path: Path, first: int, limit: int) -> list[dict[str, Any]]:
        """Records first .. first+limit-1 (those that exist), read from the nearest mark."""
        if first > self.count or limit <= 0:
            return []
        k = (first - 1) // STRIDE
        fh.seek(self.marks[k])
        n = k * STRIDE
        out: list[dict[str, Any]] = []
        last = min(self.count, first + limit - 1)
        for line in fh:
            if not line.strip():
                continue
            n += 1
            if n < first:
                continue
            rec = json.loads(line)
            if int(rec["index"]) != n:
                raise StoreCorrupt(f"{path}: line {n} holds record {rec['index']}")
            out.append(rec)
            if n >= last:
                break
        return out


class JsonlSink:
    """The JSONL store (`kind = "jsonl"`); `read` is the blocking form of `page`."""

    kind = "jsonl"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._locks: dict[str, asyncio.Lock] = {}
        self._indexes: dict[str, _FileIndex] = {}
        self._guard = threading.Lock()

    def path(self, project_id: str) -> Path:
        if not PROJECT_ID_RE.fullmatch(project_id):
            raise ValueError(f"bad project id {project_id!r}")
        return self.root / f"{project_id}.jsonl"

    def _index(self, project_id: str) -> _FileIndex:
        with self._guard:
            return self._indexes.setdefault(project_id, _FileIndex())

    # ------------------------------------------------------------------ reads
    def read(self, project_id: str, after_index: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        path = self.path(project_id)
        limit = max(0, min(limit, MAX_PAGE))
        try:
            fh = path.open("rb")
        except FileNotFoundError:
            return []
        idx = self._index(project_id)
        with fh, idx.lock:
            idx.refresh(fh, path)
            try:
                return idx.lines(fh, path, after_index + 1, limit)
            except StoreCorrupt:
                idx.reset(-1)  # rewritten in place since we indexed it (e.g. an operator moved a fork aside)
                idx.refresh(fh, path)
                return idx.lines(fh, path, after_index + 1, limit)

    async def page(self, project_id: str, after_index: int, limit: int) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.read, project_id, after_index, limit)

    async def setup(self) -> str:
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)
        return f"decision records: JSONL files under {self.root} (nothing to create)"

    async def check(self) -> str | None:
        """None when records can be written: the folder, or the nearest folder it would be created in, is writable."""

        def problem() -> str | None:
            folder = self.root.absolute()
            while not folder.exists() and folder != folder.parent:
                folder = folder.parent
            if not folder.is_dir() or not os.access(folder, os.R_OK | os.W_OK | os.X_OK):
                return f"decision-record folder {self.root} is not a writable directory"
            return None

        return await asyncio.to_thread(problem)

    async def aclose(self) -> None:
        return None

    # ------------------------------------------------------------------ deliveries
    async def deliver(self, project_id: str, records: list[dict[str, Any]]) -> DeliveryResult:
        lock = self._locks.setdefault(project_id, asyncio.Lock())
        async with lock:
            return await asyncio.to_thread(self._deliver_sync, project_id, records)

    def _deliver_sync(self, project_id: str, records: list[dict[str, Any]]) -> DeliveryResult:
        if not records:
            return DeliveryResult(delivered=0, skipped=0, last_index=0)
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.path(project_id)
        idx = self._index(project_id)
        # Several processes may deliver for one project (a retry may land on another worker): the
        # file itself, read under an exclusive lock, is the only truth.
        with path.open("a+b") as fh, idx.lock:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                idx.refresh(fh, path)
                first = min(int(r["index"]) for r in records)
                last = max(int(r["index"]) for r in records)
                start = max(1, first - 1)
                held = {int(r["index"]): str(r["dr_hash"]) for r in idx.lines(fh, path, start, last - start + 1)}
                fresh, skipped = plan_delivery(project_id, records, held, idx.count)
                if fresh:
                    fh.seek(0, os.SEEK_END)
                    fh.write(b"".join(canonical_json(r) + b"\n" for r in fresh))
                    fh.flush()
                    os.fsync(fh.fileno())
                    idx.refresh(fh, path)
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        return result_of(records, fresh, skipped)

    # ------------------------------------------------------------------ receipts
    def receipts_path(self, project_id: str) -> Path:
        return self.path(project_id).with_suffix(".receipts.jsonl")

    def read_receipts(self, project_id: str) -> list[dict[str, Any]]:
        """Every receipt in `<project_id>.receipts.jsonl`, by `from_index` (a few hundred bytes each)."""
        try:
            with self.receipts_path(project_id).open("rb") as fh:
                found = [json.loads(line) for line in fh if line.strip()]
        except FileNotFoundError:
            return []
        return sorted(found, key=lambda r: int(r["from_index"]))

    async def receipts(self, project_id: str) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.read_receipts, project_id)

    async def deliver_receipts(self, project_id: str, receipts: list[dict[str, Any]]) -> None:
        lock = self._locks.setdefault(project_id, asyncio.Lock())
        async with lock:
            await asyncio.to_thread(self._receipts_sync, project_id, receipts)

    def _receipts_sync(self, project_id: str, receipts: list[dict[str, Any]]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        with self.receipts_path(project_id).open("a+b") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                fh.seek(0)
                held = {int(r["from_index"]): r for r in (json.loads(line) for line in fh if line.strip())}
                fresh = []
                for r in sorted(receipts, key=lambda r: int(r["from_index"])):
                    have = held.get(int(r["from_index"]))
                    if have is not None:
                        if not same_receipt(have, r):
                            raise receipt_conflict(project_id, have, r)
                        continue
                    fresh.append(r)
                    held[int(r["from_index"])] = r
                if fresh:
                    fh.seek(0, os.SEEK_END)
                    fh.write(b"".join(canonical_json(r) + b"\n" for r in fresh))
                    fh.flush()
                    os.fsync(fh.fileno())
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
