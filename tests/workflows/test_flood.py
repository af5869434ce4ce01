"""A flood of 1 MiB junk-signed proposals leaves the worker's memory flat (the signature memo keeps digests)."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from swoosh.api.client import ProposalFactory, Signers
from swoosh.workflows.answers import Rejected
from swoosh.workflows.lifecycle.client import ensure_project, propose, read_head
from swoosh.workflows.proposal import SIGNATURES, ProposalRequest

MIB = 1 << 20
JUNK_SIGNATURE = "A" * 86


def rss_bytes() -> int:
    """This process's resident set size (the worker runs in it), after freed memory went back to the OS."""
    gc.collect()
    libc = ctypes.util.find_library("c")
    if libc:  # glibc keeps freed blocks in its arenas; trimming them leaves what is really held
        trim = getattr(ctypes.CDLL(libc), "malloc_trim", None)
        if trim is not None:
            trim(0)
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


async def _flood(env: WorkflowEnvironment, factory: ProposalFactory, head: str, first: int, n: int) -> None:
    for i in range(first, first + n):
        # Each body is distinct (the memo would otherwise answer from one entry) and about 1 MiB.
        body = factory.body("Boot_ConfigOk", head, {"config_hash": None}) | {
            "inputs": {"junk": f"{i:08d}" + "x" * (MIB - 4096)},
            "signature": JUNK_SIGNATURE,
        }
        answer = await propose(env.client, factory.project_id, ProposalRequest(body=body))
        assert isinstance(answer, Rejected) and answer.error == "bad_signature", answer


async def test_flood_of_junk_signed_megabyte_bodies_leaves_rss_flat(
    tsenv: WorkflowEnvironment, task_queue: str, signers: Signers, factory: ProposalFactory
) -> None:
    await ensure_project(tsenv.client, factory.project_id, signers.keyring(), task_queue)
    head = (await read_head(tsenv.client, factory.project_id)).hash
    await _flood(tsenv, factory, head, 0, 16)  # warm up: buffers, allocator arenas, the memo's first entries
    before = rss_bytes()
    await _flood(tsenv, factory, head, 16, 64)
    grown = rss_bytes() - before
    print(f"RSS before {before / MIB:.1f} MiB, after 64 more 1 MiB floods {(before + grown) / MIB:.1f} MiB")
    assert len(SIGNATURES) <= SIGNATURES.max_entries
    # Keyed on whole bodies, the memo kept every one: 67 MiB more before the fix; keyed on digests,
    # 1.5 to 4.2 MiB (noise of buffers and the allocator).
    assert grown < 16 * MIB, f"RSS grew by {grown / MIB:.1f} MiB over 64 rejected 1 MiB bodies"
