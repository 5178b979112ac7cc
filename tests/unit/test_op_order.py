"""
``run.op_order``: pyinfra's order of operations without ``inspect`` gives exactly the
list pyinfra's own function gives, at every operation of real deploys planned as the CLI
plans them, and replaces pyinfra's only where pyinfra's function is the checked one (elsewhere
installing it raises).
"""

from __future__ import annotations

from types import SimpleNamespace

import pyinfra
import pytest
from pyinfra.api import util as pyinfra_util

from run import op_order
from run.checked import UncheckedPyinfra, source_sha256
from run.op_order import pyinfra_operation
from tests.unit.simulate import SimulatedHost, simulate
from tests.unit.test_features import all_features, tls_files  # noqa: F401 (a fixture)


def both(state):
    """pyinfra's list and ours, asked from the same frame and line."""
    return pyinfra_util.get_operation_order_from_stack(state), op_order.operation_order_from_stack(state)


def nested(depth: int, state):
    return nested(depth - 1, state) if depth else both(state)


@pytest.mark.parametrize("cli", [True, False])
@pytest.mark.parametrize("deploy_file", [__file__, "/elsewhere/deploy.py", None])
def test_same_list_as_pyinfra(monkeypatch, cli, deploy_file):
    monkeypatch.setattr(pyinfra, "is_cli", cli)
    state = SimpleNamespace(current_deploy_filename=deploy_file, current_op_file_number=7)
    theirs, ours = nested(3, state)
    assert ours == theirs
    if deploy_file == __file__:
        assert len(ours) >= 4 + cli  # the frames of this file, from the test function in


@pytest.mark.parametrize("distro, version", [("debian", "12"), ("rocky", "9")])
def test_same_order_at_every_operation_of_a_deploy(monkeypatch, tmp_path, tls_files, distro, version):
    """The real deploy.py, with every feature, planned as the CLI plans it (``load_deploy_file``)."""
    seen = []

    def compare(state):
        seen.append(both(state))
        return seen[-1][0]

    monkeypatch.setattr(pyinfra_operation, "get_operation_order_from_stack", compare)
    data = {"omero_web_ice_cache_dir": str(tmp_path / "wheels"), **all_features(tls_files)}
    simulate(SimulatedHost(distro, version), data)
    assert len(seen) > 40
    assert all(ours == theirs for theirs, ours in seen), [pair for pair in seen if pair[0] != pair[1]][:3]


def test_replaces_the_checked_pyinfra_function_only(monkeypatch):
    original = pyinfra_util.get_operation_order_from_stack
    # pyinfra as pinned in requirements.txt: when this fails after a pyinfra upgrade, compare
    # operation_order_from_stack with pyinfra's new function, then update CHECKED_SOURCE_SHA256
    assert source_sha256(original) == op_order.CHECKED_SOURCE_SHA256
    monkeypatch.setattr(pyinfra_operation, "get_operation_order_from_stack", original)
    assert op_order.install()
    assert pyinfra_operation.get_operation_order_from_stack is op_order.operation_order_from_stack

    monkeypatch.setattr(pyinfra_operation, "get_operation_order_from_stack", original)
    monkeypatch.setattr(op_order, "CHECKED_SOURCE_SHA256", "another pyinfra")
    with pytest.raises(UncheckedPyinfra, match="get_operation_order_from_stack is not the source"):
        op_order.install()
    assert pyinfra_operation.get_operation_order_from_stack is original
