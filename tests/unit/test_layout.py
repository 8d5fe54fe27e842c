"""The package's shape holds: no import cycle, a small engine that knows no web, a tidy root.

Issue 12 ("Done means"). Imports are read from the source with ``ast`` — every import, including
those inside functions (a lazy import hides a cycle, it does not remove it) and relative ones —
so the test needs nothing imported and sees what a reader of the code sees.
"""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "kato_web"
ROOT_FILES = {"__init__.py", "__main__.py", "config.py", "cli.py"}
ENGINE_MAX_LINES = 600


def _modules() -> dict[str, Path]:
    """Map every module of kato_web to its file (a package is its __init__.py)."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _imported(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Return the kato_web modules that module ``name`` imports, anywhere in its body."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # ``from a import b`` reads b from a's __init__, unless b is a module of its own.
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                       for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # a name inside a module: that module
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imported(name, path, modules) for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """Return one import cycle (its modules, first repeated last), or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_import_walk_sees_lazy_and_relative_imports():
    graph = _graph()
    # A relative import at module level, and one inside a function body (services.monitoring
    # reads the store lazily): both are edges.
    assert "kato_web.engine.types" in graph["kato_web.engine.predictor"]
    assert "kato_web.store.repositories" in graph["kato_web.services.monitoring"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_inside_kato_web():
    cycle = _cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_engine_module_is_over_600_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in (PACKAGE / "engine").rglob("*.py")
            if (n := len(p.read_text().splitlines())) > ENGINE_MAX_LINES}
    assert not long, f"engine modules over {ENGINE_MAX_LINES} lines: {long}"


def test_the_engine_imports_neither_flask_nor_sqlalchemy_nor_the_rest_of_kato_web():
    # ARCHITECTURE.md: the engine is pure; it can be tested without the web or the database.
    offenders = {}
    for path in (PACKAGE / "engine").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level
                     else [])
            bad = [n for n in names if n.split(".")[0] in ("flask", "sqlalchemy", "werkzeug",
                                                           "psycopg", "flask_caching")
                   or (n.startswith("kato_web.") and not n.startswith("kato_web.engine"))]
            if bad:
                offenders.setdefault(str(path.relative_to(PACKAGE)), []).extend(bad)
    assert not offenders, offenders


def test_the_package_root_holds_only_the_factory_config_and_entry_points():
    files = {p.name for p in PACKAGE.glob("*.py")}
    assert files <= ROOT_FILES, f"move these into a package: {sorted(files - ROOT_FILES)}"
    assert {"__init__.py", "config.py"} <= files
