"""The package's import graph: one way, no cycles; `api` is above every feature."""
from __future__ import annotations

import ast
from pathlib import Path

from scripts.devkit.import_graph import first_cycle

PACKAGE = Path(__file__).resolve().parents[2] / "functions" / "tokenledger"
# Lower layers may be imported by higher ones, never the reverse.
FOUNDATION = {"tokenledger.config", "tokenledger.money", "tokenledger.logs"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def absolute(node: ast.ImportFrom, path: Path) -> str:
    if not node.level:
        return node.module or ""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(path: Path) -> set[str]:
    """tokenledger modules imported anywhere in the file (function-level and relative imports too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and absolute(node, path).startswith("tokenledger"):
            source = absolute(node, path)
            for alias in node.names:
                candidate = f"{source}.{alias.name}"
                found.add(candidate if (PACKAGE.parent / (candidate.replace(".", "/") + ".py")).exists()
                          or (PACKAGE.parent / candidate.replace(".", "/")).is_dir() else source)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("tokenledger"))
    return found


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in PACKAGE.rglob("*.py")}


def test_there_is_no_import_cycle():
    assert first_cycle(graph()) is None


def test_features_never_import_the_api():
    offenders = {m: sorted(i for i in deps if i.startswith("tokenledger.api"))
                 for m, deps in graph().items() if not m.startswith("tokenledger.api")}
    assert {m: d for m, d in offenders.items() if d} == {}


def test_foundation_modules_import_no_feature():
    for module, deps in graph().items():
        if module in FOUNDATION:
            assert deps <= FOUNDATION, f"{module} imports {sorted(deps - FOUNDATION)}"


def test_only_the_operator_tools_import_the_tools():
    """tokenledger.tools is the top of the graph: the deployed functions never load it (it
    needs the dev requirements), and the tools never go through the HTTP API."""
    for module, deps in graph().items():
        if not module.startswith("tokenledger.tools"):
            assert not any(d.startswith("tokenledger.tools") for d in deps), module
        else:
            assert not any(d.startswith("tokenledger.api") for d in deps), module
    main = (PACKAGE.parent / "main.py").read_text()
    assert "tokenledger.tools" not in main
