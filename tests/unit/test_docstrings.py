"""
This project's own operations and facts are documented as pyinfra's are
(``pyinfra/operations/systemd.py``, ``pyinfra/facts/systemd.py``): every ``@operation`` names each
argument on a ``+ arg:`` line and shows a call in an **Examples:** block; every fact is typed
(``FactBase[...]``) and its docstring shows the value it returns in a ``.. code::`` block.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("operations", "host")


def definitions():
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).glob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                yield path.relative_to(ROOT), node


def is_operation(node) -> bool:
    return isinstance(node, ast.FunctionDef) and any(
        isinstance(d, ast.Call) and getattr(d.func, "id", None) == "operation" for d in node.decorator_list)


def fact_base(node) -> ast.expr | None:
    if isinstance(node, ast.ClassDef):
        for base in node.bases:
            named = base.value if isinstance(base, ast.Subscript) else base
            if getattr(named, "id", None) == "FactBase":
                return base
    return None


OPERATIONS = [(str(path), node.name) for path, node in definitions() if is_operation(node)]
FACTS = [(str(path), node.name) for path, node in definitions() if fact_base(node) is not None]


def find(path: str, name: str):
    for node in ast.walk(ast.parse((ROOT / path).read_text())):
        if getattr(node, "name", None) == name:
            return node
    raise LookupError(name)


def test_the_checks_see_every_operation_and_fact():
    assert len(OPERATIONS) >= 30 and len(FACTS) >= 15


@pytest.mark.parametrize("path, name", OPERATIONS)
def test_every_operation_documents_its_arguments_and_an_example(path, name):
    node = find(path, name)
    doc = ast.get_docstring(node) or ""
    arguments = [a.arg for a in node.args.posonlyargs + node.args.args + node.args.kwonlyargs]
    missing = [a for a in arguments if f"+ {a}:" not in doc]
    assert not missing, f"{path}: {name} has no '+ arg:' line for {missing}"
    assert "**Examples:**" in doc and ".. code:: python" in doc.split("**Examples:**", 1)[1], \
        f"{path}: {name} has no **Examples:** block with a '.. code:: python' call"
    example = doc.split("**Examples:**", 1)[1]
    assert f"{name}(" in example, f"{path}: {name}'s example does not call it"


@pytest.mark.parametrize("path, name", FACTS)
def test_every_fact_is_typed_and_shows_its_value(path, name):
    node = find(path, name)
    assert isinstance(fact_base(node), ast.Subscript), f"{path}: {name} is not typed: FactBase[<the value's type>]"
    doc = ast.get_docstring(node) or ""
    assert ".. code::" in doc, f"{path}: {name}'s docstring does not show the value it returns"
