"""The one-way layout (docs/architecture.md), checked on every module's imports.

Every ``import`` and ``from ... import`` of the package counts, at module level and inside
functions alike. Nodes are packages (``core``, ``models``, ...); the back-end folders of the
pipeline (``pipeline.detect``, ``pipeline.pose``, ``pipeline.embed``) are nodes of their own, so
a back-end reaching into the orchestration above it is caught too. Sizes are checked here as well:
no file over 400 lines, no function over 80 (``LONG_FUNCTIONS`` lists the few that may, and why).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "csip_reid"
BACKENDS = ("pipeline.detect", "pipeline.pose", "pipeline.embed")
#: node -> the nodes it may import (itself always allowed); None = anything but the nodes in TOP_ONLY
ALLOWED: dict[str, set[str] | None] = {
    "core": set(),
    "models": {"core"},
    "tracking": {"core"},
    "gallery": {"core"},
    "data": {"core", "gallery"},
    "identity": {"core", "gallery"},
    "engine": {"core", "models", "data"},
    "pipeline.detect": {"core"},
    "pipeline.pose": {"core"},
    "pipeline.embed": {"core", "models"},
    "pipeline": None,
    "serve": None,
    "distributed": None,
    "cli": None,
    "<root>": {"core"},
}
#: nothing below the top imports these (the root package's lazy names reach every layer)
TOP_ONLY = {"cli", "serve", "distributed", "<root>"}
MAX_LINES = 400
#: lines of one function or method, from its ``def`` line to its last (decorators not counted;
#: a nested function counts in its parent and on its own)
MAX_FUNCTION_LINES = 80
#: ``path:qualified.name`` -> why it may be longer. An entry that is no longer needed fails the test.
LONG_FUNCTIONS: dict[str, str] = {
    "pipeline/export.py:export_gallery": "one pass over the gallery writing crops, skeletons and the labels "
                                         "template; to be split along those three (pipeline owners)",
}


def node_of(module: str) -> str:
    parts = module.split(".")[1:]
    if not parts or parts == ["__init__"] or parts == ["__main__"]:
        return "<root>" if parts != ["__main__"] else "cli"
    if parts[0] == "cli":
        return "cli"
    if len(parts) >= 2 and f"{parts[0]}.{parts[1]}" in BACKENDS:
        return f"{parts[0]}.{parts[1]}"
    return parts[0]


def modules() -> dict[str, Path]:
    out = {}
    for f in PKG.rglob("*.py"):
        rel = f.relative_to(PKG.parent).with_suffix("")
        out[".".join(rel.parts)] = f
    return out


def imported(module: str, path: Path) -> set[str]:
    names: set[str] = set()
    is_pkg = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".")[: -node.level] if not is_pkg else module.split(".")[: len(module.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{a.name}" for a in node.names)
    return {n for n in names if n == "csip_reid" or n.startswith("csip_reid.")}


def edges() -> dict[str, dict[str, set[str]]]:
    """node -> imported node -> the modules (``a -> b``) that make the edge."""
    mods = modules()
    out: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for mod, path in mods.items():
        src = node_of(mod)
        for name in imported(mod, path):
            while name not in mods and f"{name}.__init__" not in mods and "." in name:
                name = name.rsplit(".", 1)[0]
            target = node_of(name if name in mods else f"{name}.__init__")
            if target != src:
                out[src][target].add(f"{mod} -> {name}")
    return out


def test_every_package_has_a_rule() -> None:
    nodes = {node_of(m) for m in modules()}
    assert nodes <= set(ALLOWED), f"packages without a layer rule: {sorted(nodes - set(ALLOWED))}"
    assert {"core", "pipeline", "tracking", "models", "data", "engine", "gallery"} <= nodes


def test_no_forbidden_edge() -> None:
    bad = []
    for src, targets in edges().items():
        allowed = ALLOWED[src]
        for dst, why in targets.items():
            if (allowed is not None and dst not in allowed) or (dst in TOP_ONLY and src not in TOP_ONLY):
                bad += sorted(why)
    assert not bad, "imports against the layering:\n" + "\n".join(bad)


def test_no_import_cycle_between_packages() -> None:
    graph = {src: set(t) for src, t in edges().items()}
    seen: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        seen[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if seen.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in seen and (cycle := visit(m)):
                return cycle
        seen[n] = 2
        stack.pop()
        return None

    for n in sorted(graph):
        if n not in seen:
            cycle = visit(n)
            assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_checker_sees_function_level_imports(tmp_path: Path) -> None:
    """The walk must count imports inside functions (a deferred import is still an edge)."""
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from csip_reid.pipeline import indexer\n")
    assert "csip_reid.pipeline.indexer" in imported("csip_reid.models.m", f)


@pytest.mark.parametrize("path", sorted(PKG.rglob("*.py")), ids=lambda p: str(p.relative_to(PKG)))
def test_no_file_over_400_lines(path: Path) -> None:
    n = len(path.read_text().splitlines())
    assert n <= MAX_LINES, f"{path.relative_to(PKG)} has {n} lines"


def function_lengths(path: Path) -> dict[str, int]:
    """``qualified.name`` -> lines, for every function and method of a file (nested ones too)."""
    out: dict[str, int] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                out[prefix + child.name] = child.end_lineno - child.lineno + 1
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")

    visit(ast.parse(path.read_text(), str(path)), "")
    return out


def long_functions() -> dict[str, int]:
    return {f"{path.relative_to(PKG).as_posix()}:{name}": n
            for path in sorted(PKG.rglob("*.py")) for name, n in function_lengths(path).items()
            if n > MAX_FUNCTION_LINES}


def test_no_function_over_80_lines() -> None:
    """Long functions are where duplication and mixed concerns hide: split them, or say why not."""
    found = long_functions()
    over = [f"{k} has {n} lines" for k, n in found.items() if k not in LONG_FUNCTIONS]
    assert not over, f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(over)
    stale = sorted(set(LONG_FUNCTIONS) - set(found))
    assert not stale, f"no longer over {MAX_FUNCTION_LINES} lines (or gone), strike from LONG_FUNCTIONS: {stale}"


def test_the_function_check_counts_methods_and_nested_functions(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    body = "".join(f"    x{i} = {i}\n" for i in range(3))
    f.write_text(f"class A:\n    @property\n    def m(self):\n{body}        def inner():\n            pass\n"
                 .replace("    x", "        x"))
    assert function_lengths(f) == {"A.m": 6, "A.m.inner": 2}
