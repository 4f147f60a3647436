"""The stand-in's import graph: one way, no cycles, and no tokenledger anywhere in it (it is the
second, independent implementation the ledger's cost maths is checked against)."""
from __future__ import annotations

import ast
from pathlib import Path

from scripts.devkit.import_graph import first_cycle

STANDIN = Path(__file__).resolve().parents[2] / "scripts" / "standin"


def imports() -> dict[str, set[str]]:
    """module -> every top-level package and stand-in module it imports (function-level too)."""
    found: dict[str, set[str]] = {}
    for path in STANDIN.glob("*.py"):
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                deps.update([node.module] if node.module else [a.name for a in node.names])
            elif isinstance(node, ast.ImportFrom):
                deps.add((node.module or "").split(".")[0])
            elif isinstance(node, ast.Import):
                deps.update(a.name.split(".")[0] for a in node.names)
        found[path.stem] = deps
    return found


def test_the_standin_has_no_import_cycle():
    assert first_cycle(imports()) is None


def test_the_standin_never_imports_tokenledger():
    assert {m: deps for m, deps in imports().items() if "tokenledger" in deps} == {}
