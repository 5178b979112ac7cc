"""
The shape of ``operations/``: no import cycle between its modules (function-level imports
included), and the pure helpers at the bottom import neither pyinfra nor anything above them.
The README's "Layout" section draws these layers.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = ROOT / "operations"
#: The bottom layer: plain values in, plain values out; unit tests feed them without a host.
PURE = {"settings", "cross_checks", "checks", "appends", "secrets", "profile", "features", "install", "properties", "units"}


def imports(path: Path) -> set[str]:
    """Every module of this project that ``path`` imports, anywhere in it (functions included)."""
    package = path.parent.name if path.parent != ROOT else ""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from . import x / from .x import y
                base = package if node.level == 1 else ""
                if node.module:
                    found.add(f"{base}.{node.module}".strip("."))
                else:
                    found.update(f"{base}.{alias.name}".strip(".") for alias in node.names)
            elif node.module:
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def graph() -> dict[str, set[str]]:
    modules = {f"operations.{p.stem}": p for p in OPERATIONS.glob("*.py") if p.stem != "__init__"}
    return {name: {m for m in imports(path) if m in modules and m != name} for name, path in modules.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """A cycle of the graph as a path (first node repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_cycle_finder_finds_a_function_level_cycle(tmp_path):
    # the checker itself: a cycle made only by an import inside a function is found
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    module = tmp_path / "operations" / "x.py"
    module.parent.mkdir()
    module.write_text("def f():\n    from .y import z\n    from . import w\n")
    assert imports(module) == {"operations.y", "operations.w"}


def test_no_import_cycle_in_operations():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_pure_helpers_import_no_pyinfra_and_nothing_above_them():
    for name in sorted(PURE):
        path = OPERATIONS / f"{name}.py"
        found = imports(path)
        assert not [m for m in found if m.split(".")[0] in ("pyinfra", "pyinfra_cli", "gevent")], name
        above = {m for m in found if m.startswith("operations.") and m.split(".")[1] not in PURE}
        assert not above, f"operations/{name}.py imports {sorted(above)}: a pure helper imports only pure helpers"


def test_tools_do_not_import_tests():
    for path in sorted((ROOT / "tools").glob("*.py")):
        found = [m for m in imports(path) if m == "tests" or m.startswith("tests.")]
        assert not found, f"tools/{path.name} imports {found}: shared code belongs below both"


def section_tags() -> set[str]:
    """Every tag a section module names: its TAGS tuple and the literals it passes to ``selected``."""
    found = set()
    for path in OPERATIONS.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "TAGS" for t in node.targets) \
                    and isinstance(node.value, ast.Tuple) and path.stem != "settings":
                found.update(e.value for e in node.value.elts if isinstance(e, ast.Constant))
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "selected":
                found.update(a.value for a in node.args if isinstance(a, ast.Constant))
    return found


def test_the_valid_tags_are_exactly_the_tags_sections_and_features_use():
    from operations import features, settings

    used = section_tags() | {f.tag for f in features.FEATURES if f.tag} | set(features.CONFIG_TAGS)
    assert len(settings.TAGS) == len(set(settings.TAGS))
    assert used == set(settings.TAGS), (
        f"used but not valid: {sorted(used - set(settings.TAGS))}; valid but unused: {sorted(set(settings.TAGS) - used)}"
    )
