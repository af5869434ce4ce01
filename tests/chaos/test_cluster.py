"""The short multi-host run: separate hosts (network namespaces), a partition, a kill, a restart, a store cut."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from swoosh.chaos.cluster import PROFILES, run_cluster
from swoosh.chaos.netns import Network, available

pytestmark = [
    pytest.mark.temporal,
    pytest.mark.timeout(300),
    pytest.mark.skipif(available() is not None, reason=f"hosts need root and iproute2: {available()}"),
]


def _namespaces() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout


async def test_cluster_short_loses_nothing_and_both_replicas_page_the_same(tmp_path: Path) -> None:
    lines: list[str] = []
    report = await run_cluster(PROFILES["short"], tmp_path, log=lines.append)
    assert report.ok, "\n".join(lines + report.lines())
    assert report.partitions == 1 and report.hosts == 5 and report.workers == 2 and report.apis == 2
    assert report.transitions > 20 and report.records == report.transitions
    assert report.lost == 0 and report.duplicated == 0 and report.identical
    kinds = {e.fault.split("@")[0] for e in report.effects}
    assert kinds == {"partition", "worker_kill", "api_restart", "postgres_cut"}
    cut = next(e for e in report.effects if e.fault.startswith("postgres_cut"))
    assert cut.backlog_cleared_s is not None and cut.backlog_cleared_s < 90
    assert report.last_line().startswith("cluster hosts=5 workers=2 apis=2 transitions=")
    assert report.network and report.network not in _namespaces()  # every host and the switch are gone


def test_network_is_removed_even_when_the_run_fails() -> None:
    with pytest.raises(RuntimeError, match="boom"), Network.create(["a", "b"]) as net:
        names = [h.netns for h in net.hosts.values()] + [net.switch]
        assert all(n in _namespaces() for n in names)
        raise RuntimeError("boom")
    left = _namespaces()
    assert not any(n in left for n in names)
