"""What pip installs: only `swoosh.*`, a `swoosh` console script, and no pytest plugin forced on anyone.

Builds the wheel from this checkout, installs it into a fresh virtual environment, and imports the
documented client from a folder that has its own `api` and `worker` packages, as an application
embedding SWOOSH's client would.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCAL = (".git", ".venv", "build", "*.egg-info", "__pycache__", ".swoosh", ".*_cache", ".hypothesis")


def build_wheel(out: Path) -> Path:
    """Build from a copy of the checkout, as from a fresh clone (setuptools writes build/ into its source)."""
    source = out.parent / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*LOCAL))
    cmd = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(source)]
    built = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert built.returncode == 0, built.stderr
    (wheel,) = out.glob("swoosh-*.whl")
    return wheel


def test_packaging_wheel_installs_only_swoosh_and_leaves_other_packages_alone(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "dist")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        tops = {n.split("/")[0] for n in names}
        entry_points = next(zf.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert {t for t in tops if not t.endswith(".dist-info")} == {"swoosh"}
    assert "swoosh/workflows/statechart.yaml" in names and "swoosh/api/server/openapi.json" in names
    assert "swoosh = swoosh.worker.cli:run" in entry_points
    assert "pytest11" not in entry_points  # the test kit's fixtures are opt-in

    env = tmp_path / "venv"
    venv.create(env, with_pip=True)
    python = env / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "--quiet", str(wheel)], check=True, capture_output=True)

    app = tmp_path / "app"
    for own in ("api", "worker"):
        (app / own).mkdir(parents=True)
        (app / own / "__init__.py").write_text(f"OWNER = 'the application: {own}'\n")
    probe = (
        "import api, worker\n"
        "from swoosh.api.client import SwooshClient, errors\n"
        "from swoosh.workflows.statechart import default_statechart\n"
        "assert api.OWNER.endswith('api') and worker.OWNER.endswith('worker'), (api, worker)\n"
        "assert default_statechart().contract_transitions\n"
        "print('ok', SwooshClient.__module__, errors.Rejected.__name__)\n"
    )
    done = subprocess.run([python, "-c", probe], cwd=app, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok swoosh.api.client")
    version = subprocess.run([env / "bin" / "swoosh", "statechart", "check"], capture_output=True, text=True)
    assert version.returncode == 0 and "statechart ok" in version.stdout, version.stderr
