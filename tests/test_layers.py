"""The package's import graph: data and control flow one way, from the CLI down.

cli -> experiments -> runs -> methods -> training -> config, features -> data, models -> the
base modules (errors, io, options, registry, device, cluster, threads). No module imports from a higher layer,
no two modules import each other (directly or around a circle), and imports sit at the top of
modules except for the heavy optional dependencies deferred on purpose.
"""

from __future__ import annotations

import ast
from pathlib import Path

import s4aqa

SOURCE = Path(s4aqa.__file__).resolve().parent
LAYERS = {  # package (or module) under s4aqa -> layer; higher layers may import lower ones
    "": 0, "errors": 0, "io": 0, "options": 0, "registry": 0, "device": 0, "cluster": 0, "threads": 0,
    "data": 1, "models": 1,
    "config": 2, "features": 2,
    "training": 3,
    "methods": 4,
    "runs": 5,
    "experiments": 6,
    "cli": 7, "__main__": 7,
}
DEFERRED = {"av", "matplotlib", "matplotlib.pyplot", "ray", "faiss"}  # optional extras, imported where used


def _modules() -> dict[str, Path]:
    out = {}
    for path in SOURCE.rglob("*.py"):
        parts = list(path.relative_to(SOURCE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS.get(parts[1] if len(parts) > 1 else "", -1)


def _imports(path: Path) -> tuple[list[str], list[str]]:
    """(s4aqa modules imported at the top, every module imported inside a function)."""
    tree = ast.parse(path.read_text())
    top, inner = [], []
    top_nodes = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        if id(node) in top_nodes:
            top += [n for n in names if n.startswith("s4aqa")]
        else:
            inner += names[:1]
    return top, inner


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        top, _ = _imports(path)
        graph[name] = {n for n in top if n in modules and n != name}
    return graph


def test_every_package_has_a_layer():
    """A new package or top-level module must be placed in LAYERS (else the rules below
    cannot see where it sits)."""
    unplaced = sorted({m.split(".")[1] for m in _modules() if "." in m} - set(LAYERS))
    assert unplaced == []


def test_no_module_imports_from_a_higher_layer():
    upward = [(m, d) for m, deps in _graph().items() for d in deps if _layer(d) > _layer(m)]
    assert upward == []


def test_no_import_circles():
    graph = _graph()
    state: dict[str, int] = {}
    circles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in graph[node]:
            if state.get(dep) == 1:
                circles.append(path[path.index(dep):] + [dep] if dep in path else [node, dep])
            elif dep not in state:
                visit(dep, path + [dep])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [node])
    assert circles == []


def test_imports_are_at_the_top_except_deferred_extras():
    late = {(name, dep) for name, path in _modules().items() for dep in _imports(path)[1]
            if dep not in DEFERRED}
    assert late == set()
