"""The gallery owns its data: no SQL outside ``gallery/``, no private gallery attribute used from
outside it, no ``gallery: Any``, and no import cycle between the files of ``gallery/``.

Like ``test_layers.py`` these read the source (AST), every import counted (module level, inside
functions and under ``TYPE_CHECKING``).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "csip_reid"
GALLERY = PKG / "gallery"
#: A string that is an SQL statement (what a query run outside the gallery would need).
SQL = re.compile(r"^\s*(SELECT\s.+\sFROM\s|INSERT\s+(OR\s+\w+\s+)?INTO\s|UPDATE\s+\w+\s+SET\s|DELETE\s+FROM\s|"
                 r"(CREATE|ALTER|DROP)\s+(TABLE|INDEX)\s|PRAGMA\s+\w+)", re.IGNORECASE | re.DOTALL)
#: Calls that run SQL on a connection or cursor.
SQL_CALLS = {"execute", "executemany", "executescript"}


def _name(path: Path) -> str:
    return str(path.relative_to(PKG.parent)) if path.is_relative_to(PKG.parent) else path.name


def outside_gallery() -> list[Path]:
    return sorted(p for p in PKG.rglob("*.py") if GALLERY not in p.parents)


def sql_uses(path: Path) -> list[str]:
    """``file:line what`` of each SQL statement text, SQL call or sqlite3 import in a file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        what = None
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.match(node.value):
            what = f"SQL text {node.value[:40]!r}"
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in SQL_CALLS:
            what = f".{node.func.attr}(...)"
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
            if "sqlite3" in names:
                what = "import sqlite3"
        if what:
            found.append(f"{_name(path)}:{node.lineno} {what}")
    return found


def private_gallery_attributes() -> set[str]:
    """The private attributes a ``Gallery`` sets on itself (``self._db`` ...)."""
    tree = ast.parse((GALLERY / "store.py").read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Gallery")
    return {n.attr for n in ast.walk(cls) if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
            and n.value.id == "self" and n.attr.startswith("_") and not n.attr.startswith("__")}


def gallery_imports(path: Path) -> set[str]:
    """The ``csip_reid.gallery.X`` modules a file of ``gallery/`` imports (the package itself left out)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            base = node.module if not node.level else f"csip_reid.gallery.{node.module}"
            if base == "csip_reid.gallery":  # from csip_reid.gallery import thumbs -> the submodule
                out.update(f"csip_reid.gallery.{a.name}" for a in node.names
                           if (GALLERY / f"{a.name}.py").is_file())
            elif base.startswith("csip_reid.gallery."):
                out.add(base)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("csip_reid.gallery."))
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one node, or a node importing itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph.get(v, ()):
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_sql_outside_the_gallery() -> None:
    found = [f for p in outside_gallery() for f in sql_uses(p)]
    assert not found, "SQL belongs in csip_reid/gallery/ (add a typed read or write there):\n" + "\n".join(found)


def test_the_sql_check_sees_sql(tmp_path: Path) -> None:
    assert any("SQL text" in x for x in sql_uses(GALLERY / "database.py"))  # the gallery's own SQL is seen
    probe = tmp_path / "probe.py"
    probe.write_text("import sqlite3\n\ndef f(g):\n    return g.conn.execute('select id from tracklets')\n")
    assert [x.split(" ", 1)[1] for x in sql_uses(probe)] == ["import sqlite3", ".execute(...)",
                                                             "SQL text 'select id from tracklets'"]


def test_no_private_gallery_attribute_outside_the_gallery() -> None:
    private = private_gallery_attributes()
    assert {"_db", "_sync", "_writer"} <= private
    found = []
    for p in outside_gallery():
        for node in ast.walk(ast.parse(p.read_text(), str(p))):
            if isinstance(node, ast.Attribute) and node.attr in private:
                found.append(f"{p.relative_to(PKG.parent)}:{node.lineno} .{node.attr}")
    assert not found, "use the Gallery's public methods:\n" + "\n".join(found)


def test_no_gallery_typed_any() -> None:
    found = []
    for p in sorted(PKG.rglob("*.py")):
        for node in ast.walk(ast.parse(p.read_text(), str(p))):
            if isinstance(node, ast.arg) and node.arg in ("gallery", "g", "dst", "src", "shard") \
                    and isinstance(node.annotation, ast.Name) and node.annotation.id == "Any":
                found.append(f"{p.relative_to(PKG.parent)}:{node.lineno} {node.arg}: Any")
    assert not found, "annotate galleries with Gallery (under TYPE_CHECKING where layering needs it):\n" + \
        "\n".join(found)


def test_no_import_cycle_between_gallery_files() -> None:
    graph = {f"csip_reid.gallery.{p.stem}": gallery_imports(p) for p in GALLERY.glob("*.py")
             if p.name != "__init__.py"}
    assert graph["csip_reid.gallery.store"] >= {"csip_reid.gallery.database", "csip_reid.gallery.writer"}
    found = cycles(graph)
    assert not found, f"files of gallery/ import each other in a circle: {found}"


@pytest.mark.parametrize("graph,expected", [
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ({"a": {"b"}, "b": set(), "c": {"c"}}, [["c"]]),
    ({"a": {"b", "c"}, "b": {"c"}, "c": set()}, []),
])
def test_cycle_finder(graph: dict[str, set[str]], expected: list[list[str]]) -> None:
    assert cycles(graph) == expected
