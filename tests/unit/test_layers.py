"""
The layers, read from the folders (not from a list): ``model`` (pure: no pyinfra), ``host``
(pyinfra operations and facts), ``operations`` (the walkthrough's sections) and ``run`` (what
``config.py`` installs into pyinfra). Each imports only its own folder and the folders below it;
no import cycle anywhere (function-level imports included); no section imports another but the
one declared composition; ``operations`` holds sections and the declared dotted-path aliases
only. The README's "Layout" section draws this tree.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = ROOT / "operations"
#: The layers, bottom first, and the folders each may import from (its own included).
LAYERS = {
    "model": {"model"},
    "host": {"model", "host"},
    "operations": {"model", "host", "operations"},
    "run": {"model", "host", "run"},
}
#: The one section composed by another: the NGINX site serves the TLS files and redirect the
#: HTTPS section makes, so ``operations.nginx.nginx`` run alone does both.
SECTION_COMPOSES = {("operations.nginx", "operations.https")}
#: Modules of ``operations/`` that only keep earlier releases' dotted paths working.
ALIASES = {"operations.config": {"operations.configuration"},
           "operations.virtualenv": {"operations.venv", "operations.omeroweb"}}


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


def modules() -> dict[str, Path]:
    """Every module of the layers' folders, by dotted name (packages' ``__init__`` as the package)."""
    found = {}
    for layer in LAYERS:
        for path in sorted((ROOT / layer).glob("*.py")):
            found[layer if path.stem == "__init__" else f"{layer}.{path.stem}"] = path
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: {m for m in imports(path) if m in known and m != name} for name, path in known.items()}


def is_deploy(node) -> bool:
    return isinstance(node, ast.FunctionDef) and any(
        isinstance(d, ast.Call) and getattr(d.func, "id", None) == "deploy" for d in node.decorator_list)


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


def test_no_import_cycle_in_the_layers():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_each_layer_imports_only_itself_and_the_layers_below():
    for name, path in modules().items():
        layer = name.split(".")[0]
        wrong = sorted(m for m in imports(path) if m.split(".")[0] in LAYERS and m.split(".")[0] not in LAYERS[layer])
        assert not wrong, f"{path.relative_to(ROOT)} imports {wrong}: {layer} imports only {sorted(LAYERS[layer])}"


def test_the_model_imports_no_pyinfra():
    for name, path in modules().items():
        if name.split(".")[0] == "model":
            found = [m for m in imports(path) if m.split(".")[0] in ("pyinfra", "pyinfra_cli", "gevent", "paramiko")]
            assert not found, f"{path.relative_to(ROOT)} imports {found}: the model is plain values in, plain values out"


def test_operations_holds_sections_and_declared_aliases_only():
    edges = graph()
    for name, path in modules().items():
        if not name.startswith("operations."):
            continue
        deploys = [n.name for n in ast.walk(ast.parse(path.read_text())) if is_deploy(n)]
        if name in ALIASES:
            assert not deploys and edges[name] == ALIASES[name], f"{name}: an alias only re-exports {ALIASES[name]}"
            continue
        assert deploys, f"{path.relative_to(ROOT)} has no @deploy: what is not a section belongs in model/ or host/"
        other_sections = {m for m in edges[name] if m.startswith("operations.")} - {
            composed for section, composed in SECTION_COMPOSES if section == name}
        assert not other_sections, f"{name} imports the sections {sorted(other_sections)}: move what they share down"


def test_no_deploy_below_the_sections():
    for name, path in modules().items():
        if not name.startswith("operations"):
            found = [n.name for n in ast.walk(ast.parse(path.read_text())) if is_deploy(n)]
            assert not found, f"{path.relative_to(ROOT)} defines the @deploy {found}: sections live in operations/"


def test_tools_do_not_import_tests():
    for path in sorted((ROOT / "tools").glob("*.py")):
        found = [m for m in imports(path) if m == "tests" or m.startswith("tests.")]
        assert not found, f"tools/{path.name} imports {found}: shared code belongs below both"


def section_tags() -> set[str]:
    """Every tag a section module names: its TAGS tuples and the literals it passes to ``selected``."""
    found = set()
    for path in OPERATIONS.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "").endswith("TAGS") for t in node.targets) \
                    and isinstance(node.value, ast.Tuple):
                found.update(e.value for e in node.value.elts if isinstance(e, ast.Constant))
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "selected":
                found.update(a.value for a in node.args if isinstance(a, ast.Constant))
    return found


def test_the_valid_tags_are_exactly_the_tags_sections_and_features_use():
    from model import features
    from model import settings

    used = section_tags() | {f.tag for f in features.FEATURES if f.tag} | set(features.CONFIG_TAGS)
    assert len(settings.TAGS) == len(set(settings.TAGS))
    assert used == set(settings.TAGS), (
        f"used but not valid: {sorted(used - set(settings.TAGS))}; valid but unused: {sorted(set(settings.TAGS) - used)}"
    )


def test_the_service_reads_the_sessions_sections_tags():
    # the service keeps sessions only where the clearsessions job purges them: it must know that job's tags
    from operations import maintenance, service

    assert service.SESSIONS_TAGS == maintenance.TAGS
