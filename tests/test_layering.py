"""Imports run one way: media -> signals -> index query -> decision -> queue. A lower
layer never imports a higher one (checked on the source, so a lazy import counts too)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

# package -> the ansim packages it must never import
FORBIDDEN = {
    "detector": {"store", "casework", "pipeline", "signal_types", "commands", "crawler"},
    "indexer": {"store", "casework", "pipeline", "signal_types", "commands", "crawler"},
    "signal_types": {"store", "casework", "pipeline", "commands"},
    "store": {"casework", "pipeline", "signal_types", "commands", "detector", "indexer"},
    "casework": {"pipeline", "signal_types", "commands"},
    "crawler": {"store", "casework", "pipeline", "commands"},
    "pipeline": {"commands"},
}


def ansim_imports(path: Path) -> set[str]:
    """The top-level ansim packages a module imports (`ansim.X...` -> X)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "ansim" and len(parts) > 1:
                found.add(parts[1])
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_import_runs_back_up(package: str) -> None:
    offences = []
    for path in sorted((REPO_ROOT / package).rglob("*.py")):
        bad = ansim_imports(path) & FORBIDDEN[package]
        if bad:
            offences.append(f"{path.relative_to(REPO_ROOT)} imports {sorted(bad)}")
    assert not offences, "\n".join(offences)


def test_nothing_imports_the_old_top_level_names() -> None:
    """Every module imports through the `ansim` namespace (no bare `detector`, ...)."""
    bare = {"detector", "indexer", "crawler", "models", "casework", "store", "pipeline"}
    offences = []
    for path in sorted(REPO_ROOT.rglob("*.py")):
        if ".venv" in path.parts or "build" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if node.module.split(".")[0] in bare:
                    offences.append(f"{path.relative_to(REPO_ROOT)}: from {node.module}")
            elif isinstance(node, ast.Import):
                offences += [
                    f"{path.relative_to(REPO_ROOT)}: import {a.name}"
                    for a in node.names
                    if a.name.split(".")[0] in bare
                ]
    assert not offences, "\n".join(offences)
