"""Tools the deployment tests run: Prometheus's own `promtool`, installed from Debian's package if missing."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def _apt_install(package: str) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", package]
    if subprocess.run(cmd, env=env, capture_output=True, timeout=600).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, timeout=600, check=True)
        subprocess.run(cmd, env=env, capture_output=True, timeout=600, check=True)


@pytest.fixture(scope="session")
def promtool() -> str:
    """`promtool` (Debian's `prometheus` package): installed here when missing and this runs as root."""
    found = shutil.which("promtool")
    if found is None:
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            pytest.fail("promtool is missing: install Debian's `prometheus` package (apt-get install prometheus)")
        _apt_install("prometheus")
        found = shutil.which("promtool")
    assert found is not None, "the prometheus package did not bring promtool"
    return found
