"""
``run.global_arguments``: pyinfra's list of global arguments computed once gives the
same list as pyinfra's own function, a new list for each caller, and replaces pyinfra's
only where pyinfra's function is the checked one (elsewhere installing it raises).
"""

from __future__ import annotations

import pytest
from pyinfra.api import arguments, facts

from run import global_arguments
from run.checked import UncheckedPyinfra, require


@pytest.fixture
def restore():
    yield
    arguments.all_global_arguments = facts.all_global_arguments = global_arguments._original


def test_installed_over_the_checked_pyinfra_and_same_list(restore):
    expected = global_arguments._original()
    # pyinfra's all_global_arguments changed when this raises: check the new one, update the sha256
    require(global_arguments._original, global_arguments.CHECKED_SOURCE_SHA256, "global_arguments")
    assert global_arguments.install() is True
    assert arguments.all_global_arguments is facts.all_global_arguments is not global_arguments._original
    first = arguments.all_global_arguments()
    assert first == expected and ("_sudo", bool) in first and len(first) > 20
    first.clear()  # a caller changing its copy changes nobody else's
    assert arguments.all_global_arguments() == expected
    assert global_arguments.install() is False  # once: the function in place is no longer pyinfra's


def test_another_pyinfra_fails_loudly_and_keeps_its_own(restore, monkeypatch):
    monkeypatch.setattr(global_arguments, "CHECKED_SOURCE_SHA256", "0" * 64)
    with pytest.raises(UncheckedPyinfra, match="all_global_arguments is not the source"):
        global_arguments.install()
    assert arguments.all_global_arguments is global_arguments._original
