"""The package layers, read from the import statements of src/ (docs/architecture.md draws them).

* ``bundlekit`` (the bundle toolkit) imports nothing of ``fraud_mlops``: it could be its own package.
* ``fraud_mlops.platform`` (session, storage, tables) imports no fraud logic.
* ``fraud_mlops.medallion`` (bronze, silver, gold, features) imports the platform only.
* ``fraud_mlops.lifecycle`` (training, gate, scoring, monitoring) imports the platform and the medallion.
* ``fraud_mlops.jobs`` (the task entry points) may import all of those, and nothing imports it.
* ``fraud_mlops.reporting`` (charts for the notebooks) reads through the lifecycle and the platform.
* ``fraud_mlops.online`` (the online feature store of real-time scoring) builds on the platform and the
  medallion (the feature definitions).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from .conftest import REPO_ROOT

SRC = REPO_ROOT / "src"

#: For each layer, the project layers it may import (besides itself and third-party packages).
ALLOWED: dict[str, set[str]] = {
    "bundlekit": set(),
    "fraud_mlops.platform": {"bundlekit"},
    "fraud_mlops.medallion": {"bundlekit", "fraud_mlops.platform"},
    "fraud_mlops.lifecycle": {"bundlekit", "fraud_mlops.platform", "fraud_mlops.medallion"},
    "fraud_mlops.demo": {"bundlekit", "fraud_mlops.platform", "fraud_mlops.medallion", "fraud_mlops.lifecycle",
                         "fraud_mlops.reporting", "fraud_mlops.online", "fraud_mlops.serving"},
    "fraud_mlops.reporting": {"bundlekit", "fraud_mlops.platform", "fraud_mlops.medallion", "fraud_mlops.lifecycle"},
    "fraud_mlops.online": {"bundlekit", "fraud_mlops.platform", "fraud_mlops.medallion"},
    "fraud_mlops.serving": {"bundlekit", "fraud_mlops.platform", "fraud_mlops.medallion", "fraud_mlops.lifecycle",
                            "fraud_mlops.online"},
    "fraud_mlops.jobs": {"bundlekit", "fraud_mlops.platform", "fraud_mlops.medallion", "fraud_mlops.lifecycle",
                         "fraud_mlops.online"},
    "fraud_mlops.cli": {"bundlekit", "fraud_mlops.platform", "fraud_mlops.medallion", "fraud_mlops.lifecycle",
                        "fraud_mlops.reporting", "fraud_mlops.demo", "fraud_mlops.online", "fraud_mlops.serving"},
}
PROJECT_PACKAGES = ("bundlekit", "fraud_mlops")


def module_name(path: Path, src: Path = SRC) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> str | None:
    """The layer (key of :data:`ALLOWED`) a dotted module belongs to; None for a package's own
    ``__init__`` (``fraud_mlops``), which documents and imports nothing."""
    for layer in sorted(ALLOWED, key=len, reverse=True):
        if module == layer or module.startswith(layer + "."):
            return layer
    return None


def imported_modules(source: str, module: str) -> set[str]:
    """Every name a source imports (``from a import b`` gives ``a.b``), at the top or inside a
    function, relative imports resolved."""
    found: set[str] = set()
    package = module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.update(f"{base}.{alias.name}" if base else alias.name for alias in node.names)
    return found


def layer_violations(src: Path = SRC) -> list[str]:
    """``file: layer imports module (layer X)`` for each import that crosses the allowed layers."""
    problems = []
    for path in sorted(src.rglob("*.py")):
        module = module_name(path, src)
        layer = layer_of(module)
        if layer is None:
            continue
        for imported in sorted(imported_modules(path.read_text(encoding="utf-8"), module)):
            if not imported.startswith(PROJECT_PACKAGES):
                continue
            target = layer_of(imported)
            if target is None or target == layer or target in ALLOWED[layer]:
                continue
            problems.append(f"{path.relative_to(src)}: {layer} imports {imported} ({target})")
    return problems


def test_every_module_belongs_to_a_layer():
    modules = [module_name(p) for p in SRC.rglob("*.py")]
    assert "bundlekit.runner" in modules and "fraud_mlops.medallion.silver" in modules
    unplaced = [m for m in modules if layer_of(m) is None and m not in PROJECT_PACKAGES]
    assert unplaced == []


def test_layers_import_only_what_they_may():
    assert layer_violations() == []


def test_bundle_toolkit_imports_nothing_of_the_fraud_code():
    for path in (SRC / "bundlekit").rglob("*.py"):
        imports = imported_modules(path.read_text(encoding="utf-8"), module_name(path))
        assert not [m for m in imports if m.split(".")[0] == "fraud_mlops"], path


@pytest.mark.parametrize(
    ("module", "source", "violation"),
    [
        ("bundlekit/runner.py", "from fraud_mlops.platform import config\n", "bundlekit imports fraud_mlops.platform"),
        ("bundlekit/runner.py", "def f():\n    import fraud_mlops.jobs.training\n", "bundlekit imports fraud_mlops.jobs"),
        ("fraud_mlops/medallion/gold.py", "from fraud_mlops.lifecycle import scoring\n",
         "fraud_mlops.medallion imports fraud_mlops.lifecycle"),
        ("fraud_mlops/medallion/gold.py", "from ..lifecycle.scoring import x\n",
         "fraud_mlops.medallion imports fraud_mlops.lifecycle.scoring"),
        ("fraud_mlops/platform/session.py", "from fraud_mlops import jobs\n", "fraud_mlops.platform imports fraud_mlops.jobs"),
    ],
)
def test_a_crossing_import_is_reported(tmp_path, module, source, violation):
    path = tmp_path / module
    path.parent.mkdir(parents=True)
    path.write_text(source, encoding="utf-8")
    problems = layer_violations(tmp_path)
    assert len(problems) == 1 and violation in problems[0]
