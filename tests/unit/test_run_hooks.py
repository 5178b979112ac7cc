"""
``run``: what config.py installs into pyinfra, checked against one pyinfra. The version it
names is the installed one and requirements.txt's pin; every function it changes or wraps is
the source it was read against; on another pyinfra, installing raises before any connection
(nothing switches itself off silently).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pyinfra.api import Config, State
from pyinfra.api import arguments, facts as pyinfra_facts, util as pyinfra_util
from pyinfra.api.state import State as StateClass
from pyinfra.connectors.ssh import SSHConnector
from pyinfra.context import ctx_config, ctx_state

import run
from run import checked, connection, fact_failures, global_arguments, op_order
from run.checked import CHECKED_PYINFRA, UncheckedPyinfra, installed_pyinfra, source_sha256

ROOT = Path(__file__).resolve().parents[2]

#: Each function of pyinfra that ``run`` replaces, wraps or relies on the inside of, with the
#: sha256 its module states.
CHECKED_FUNCTIONS = [
    (pyinfra_util.get_operation_order_from_stack, op_order.CHECKED_SOURCE_SHA256),
    (global_arguments._original, global_arguments.CHECKED_SOURCE_SHA256),
    (fact_failures._original, fact_failures.CHECKED_SOURCE_SHA256),
    (SSHConnector.connect, connection.CHECKED_SOURCE_SHA256),
    (StateClass.init, run.STATE_INIT_SHA256),
]


def test_the_checked_pyinfra_is_installed_and_pinned():
    pin = re.search(r"^pyinfra==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M).group(1)
    assert CHECKED_PYINFRA == installed_pyinfra() == pin


@pytest.mark.parametrize("index", range(len(CHECKED_FUNCTIONS)))
def test_every_changed_function_is_the_checked_source(index):
    function, sha256 = CHECKED_FUNCTIONS[index]
    # when this fails after a pyinfra upgrade: read the new function, then update its sha256
    assert source_sha256(function) == sha256, function.__qualname__


@pytest.fixture
def run_state():
    with ctx_config.use(Config()), ctx_state.use(State()):
        yield


def test_another_pyinfra_version_stops_the_run_before_it_connects(run_state, monkeypatch):
    monkeypatch.setattr(checked, "installed_pyinfra", lambda: "3.11.0")
    before = (arguments.all_global_arguments, pyinfra_facts._get_fact)
    with pytest.raises(UncheckedPyinfra, match=r"pyinfra 3\.11\.0 is installed.*pyinfra==3\.10\.0"):
        run.install()
    assert (arguments.all_global_arguments, pyinfra_facts._get_fact) == before  # nothing changed on the way


def test_another_source_of_a_wrapped_function_stops_the_run(run_state, monkeypatch):
    monkeypatch.setattr(run, "STATE_INIT_SHA256", "0" * 64)
    with pytest.raises(UncheckedPyinfra, match="State.init is not the source"):
        run.install()
    monkeypatch.setattr(connection, "CHECKED_SOURCE_SHA256", "0" * 64)
    with pytest.raises(UncheckedPyinfra, match="SSHConnector.connect is not the source"):
        connection.check()
