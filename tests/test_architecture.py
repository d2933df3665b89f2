"""The layout rules of docs/architecture.md, checked on the source: no import cycles, no reaching
into another subpackage's private modules, few loose modules, the CLI only above the library."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "kerasweights"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _top_level_imports(name: str, path: Path) -> set[str]:
    """Modules ``name`` imports when it is imported (function-level imports are lazy, so not counted)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("kerasweights"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("kerasweights"):
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                out.add(sub if sub in MODULES else target)
    return {m for m in out if m in MODULES and m != name}


GRAPH = {name: _top_level_imports(name, path) for name, path in MODULES.items()}


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    return found


def test_no_module_level_import_cycle() -> None:
    assert _cycles() == []


def test_the_cycle_finder_finds_a_cycle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(GRAPH, "kerasweights.errors", {"kerasweights.model"})
    assert any("kerasweights.errors" in c for c in _cycles())


def _subpackage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and MODULES[module].name == "__init__.py") else ""


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_another_subpackages_private_module(module: str) -> None:
    imported = set(GRAPH[module])
    for node in ast.walk(ast.parse(MODULES[module].read_text())):  # lazy imports count here too
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("kerasweights"):
            imported.add(node.module)
    home = _subpackage(module)
    for target in imported:
        private = [p for p in target.split(".")[1:] if p.startswith("_")]
        if private and target.split(".")[1] != home and not target.startswith("kerasweights._optional"):
            pytest.fail(f"{module} imports {target}, a private module of another package")


def test_at_most_twelve_loose_modules() -> None:
    loose = sorted(p.name for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py"))
    assert len(loose) <= 12, loose


@pytest.mark.parametrize(
    "module", sorted(m for m in MODULES if not m.startswith(("kerasweights.cli", "kerasweights.__main__")))
)
def test_only_the_cli_imports_the_cli(module: str) -> None:
    assert not any(t.startswith("kerasweights.cli") for t in GRAPH[module])


def test_formats_know_nothing_of_layers_or_the_model() -> None:
    for module in (m for m in MODULES if m.startswith("kerasweights.formats")):
        assert not GRAPH[module] & {"kerasweights.model", "kerasweights.layouts", "kerasweights.bind"}, module
