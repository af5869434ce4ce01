"""The layer rules, read from the source: which part of SWOOSH may import which.

Every `import` and `from … import` in the installed packages (module level or inside a function:
a lazy import is still an arrow) is checked against `ALLOWED`. `docs/architecture.md` shows the same
table ("Layers"); a test keeps the two in step. Tests and benchmarks may import anything.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("workflows", "guards", "activities", "api", "worker", "chaos")

# Layers, lowest first. A module belongs to the first layer whose prefix it starts with.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("lifecycle", ("swoosh.workflows.lifecycle",)),
    ("replay", ("swoosh.workflows.replay",)),
    ("testing", ("swoosh.workflows.testing",)),
    ("core", ("swoosh.workflows", "swoosh.guards")),
    ("activities", ("swoosh.activities",)),
    ("api", ("swoosh.api",)),
    ("chaos", ("swoosh.chaos",)),
    ("worker", ("swoosh.worker",)),
)
# Which layers each layer may import (itself included).
ALLOWED: dict[str, frozenset[str]] = {
    "core": frozenset({"core"}),
    "lifecycle": frozenset({"core", "lifecycle"}),
    "activities": frozenset({"core", "activities"}),
    "api": frozenset({"core", "lifecycle", "replay", "api"}),
    "replay": frozenset({"core", "lifecycle", "replay"}),
    "testing": frozenset({"core", "lifecycle", "activities", "api", "replay", "testing"}),
    "chaos": frozenset({"core", "lifecycle", "activities", "api", "replay", "testing", "chaos"}),
    "worker": frozenset({"core", "lifecycle", "activities", "api", "replay", "testing", "worker"}),
}
# Third-party packages a layer must not import at all.
FORBIDDEN_THIRD_PARTY: dict[str, frozenset[str]] = {"core": frozenset({"temporalio"})}


def layer_of(module: str) -> str | None:
    for name, prefixes in LAYERS:
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return name
    return None


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["swoosh", *parts])


def imported_modules(source: str, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in `source`."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            # `from swoosh.workflows import lifecycle` imports the sub-module
            found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names if target.startswith("swoosh")]
    return found


def breaches_in(source: str, module: str, is_package: bool = False) -> list[str]:
    """Every import in `source` that its layer may not make."""
    layer = layer_of(module)
    assert layer is not None, f"{module} belongs to no layer"
    out = []
    for line, target in imported_modules(source, module, is_package):
        top = target.split(".")[0]
        if top in FORBIDDEN_THIRD_PARTY.get(layer, frozenset()):
            out.append(f"{module}:{line} ({layer}) imports {target}")
        if top in FOLDERS:
            out.append(f"{module}:{line} imports {target}: import SWOOSH as swoosh.{target}")
        if top != "swoosh" or target == "swoosh":
            continue
        to = layer_of(target)
        if to is not None and to not in ALLOWED[layer]:
            out.append(f"{module}:{line} ({layer}) imports {target} ({to})")
    return out


def package_files() -> list[Path]:
    return sorted(p for folder in FOLDERS for p in (ROOT / folder).rglob("*.py"))


def test_layers_every_import_is_allowed() -> None:
    breaches = []
    for path in package_files():
        breaches += breaches_in(path.read_text(encoding="utf-8"), module_name(path), path.name == "__init__.py")
    assert breaches == []


def test_layers_every_module_has_a_layer() -> None:
    assert [module_name(p) for p in package_files() if layer_of(module_name(p)) is None] == []


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("swoosh.workflows.engine", "import temporalio.workflow\n", "(core) imports temporalio.workflow"),
        ("swoosh.guards.policy", "from swoosh.activities.facts import FactsService\n", "(activities)"),
        ("swoosh.api.server.gateway", "from swoosh.activities.decisions import JsonlSink\n", "(activities)"),
        ("swoosh.activities.facts", "def f():\n    from swoosh.worker.settings import Settings\n", "(worker)"),
        ("swoosh.chaos.stack", "from swoosh.worker import dev\n", "(worker)"),
        ("swoosh.workflows.lifecycle.workflow", "from ..replay import fold\n", "(replay)"),
        ("swoosh.worker.cli", "import chaos.cli\n", "import SWOOSH as swoosh.chaos.cli"),
    ],
)
def test_layers_checker_catches_a_breach(module: str, source: str, expected: str) -> None:
    """The checker itself: each of these imports breaks a rule and must be reported."""
    found = breaches_in(source, module)
    assert len(found) >= 1 and expected in found[0], found


def test_layers_architecture_doc_shows_the_same_table() -> None:
    """docs/architecture.md's "may import" table is this test's ALLOWED, row for row."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(\w+)` \| [^|]+ \| ([^|]+) \|", text, flags=re.M)
    documented = {name: frozenset(re.findall(r"`(\w+)`", allowed)) | {name} for name, allowed in rows}
    assert documented == ALLOWED


# Sizes a reader can hold in their head: a module does one job; the workflow class only conducts.
MAX_MODULE_LINES = 450
MAX_WORKFLOW_CLASS_LINES = 300


def test_no_package_module_outgrows_one_job() -> None:
    sizes = {module_name(p): len(p.read_text(encoding="utf-8").splitlines()) for p in package_files()}
    assert {m: n for m, n in sizes.items() if n > MAX_MODULE_LINES} == {}


def test_the_workflow_class_only_conducts() -> None:
    """ProjectLifecycle is run loop, handlers and queries; the decision path, outbox, pump, fence,
    snapshot policy and views are units of their own (docs/architecture.md, "Inside the workflow")."""
    tree = ast.parse((ROOT / "workflows" / "lifecycle" / "workflow.py").read_text(encoding="utf-8"))
    [cls] = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "ProjectLifecycle"]
    assert cls.end_lineno is not None and cls.end_lineno - cls.lineno + 1 <= MAX_WORKFLOW_CLASS_LINES
