"""The example inventories: one group per distro, group_data beside them, all data valid."""

import ast
import runpy
from pathlib import Path

from model.settings import validate
from tests.unit.simulate import OS_RELEASES

INVENTORIES = Path(__file__).resolve().parents[2] / "inventories"


def test_example_has_one_group_per_supported_distro():
    groups = {k for k, v in runpy.run_path(str(INVENTORIES / "example.py")).items() if isinstance(v, list)}
    expected = {f"{d}{v.replace('.', '')}" for d, v in OS_RELEASES}
    assert groups == expected
    for group in groups:
        assert (INVENTORIES / "group_data" / f"{group}.py").is_file(), group


def test_group_data_is_valid_and_holds_no_distro_logic():
    for path in (INVENTORIES / "group_data").glob("*.py"):
        tree = ast.parse(path.read_text())
        # Data only: plain assignments, no imports, conditions or calls deciding per distro
        assert all(isinstance(node, ast.Assign) for node in tree.body), path
        validate(runpy.run_path(str(path)), host=path.name)


def test_publication_example_groups_have_data():
    groups = {k for k, v in runpy.run_path(str(INVENTORIES / "publication.py")).items() if isinstance(v, list)}
    assert groups == {"web", "public_web", "omero_server"}
    for group in ("public_web", "omero_server"):
        assert (INVENTORIES / "group_data" / f"{group}.py").is_file(), group
