"""
What the root ``config.py`` installs into pyinfra for every run from this folder
(``deploy.py``, a section by dotted path, ``exec``, ``fact``), before pyinfra loads the inventory:

- every host's data validated right after the inventory is loaded, before any connection
  (``validate_inventory``, through pyinfra's ``State.init``);
- one deploy at a time per host (``run_lock``), the SSH connection's settings (``connection``),
  a private temporary folder per run (``temp_dir``), the failed hosts summed up at the end
  (``failure_summary``);
- changes to pyinfra's own behaviour, each checked against pyinfra ``CHECKED_PYINFRA`` and the
  source of what it changes (``checked``): the order of operations without ``inspect``
  (``op_order``), the global arguments' list computed once (``global_arguments``), a failing
  fact ending the run (``fact_failures``), and the run's imports frozen out of the garbage
  collector's reach. On another pyinfra, ``install`` raises: nothing switches itself off.
"""

from __future__ import annotations

import gc

from pyinfra import config, state
from pyinfra.api.state import State

from host.context import validate_inventory
from run import connection, fact_failures, global_arguments, op_order, temp_dir
from run.checked import CHECKED_PYINFRA, require
from run.failure_summary import FailureSummary
from run.run_lock import RunLock
from run.temp_dir import PrivateTempDir

__all__ = ["CHECKED_PYINFRA", "install"]

#: sha256 of the source of pyinfra's ``State.init``, which resets the callback handlers.
STATE_INIT_SHA256 = "0d730bb453f36c10463473bd6ec0226f4815aa25581eb806b5cbc799e7327d36"


def _validating_init(original):
    # pyinfra's CLI executes config.py before it loads the inventory, and offers no hook between
    # loading it and connecting but State.init, which also resets the state's callback handlers:
    # wrapping it is the one place to validate every host's data before any connection, and to
    # register the callbacks for this run.
    def init_then_validate(inventory, *args, **kwargs):
        validate_inventory(inventory)
        original(inventory, *args, **kwargs)
        state.add_callback_handler(RunLock())
        state.add_callback_handler(PrivateTempDir())
        state.add_callback_handler(FailureSummary())

    init_then_validate.validates_inventory = True
    return init_then_validate


def install() -> None:
    """Install everything above into pyinfra for this run (called once, by ``config.py``)."""
    require(State.init, STATE_INIT_SHA256, "the validation before connecting (run)")
    connection.check()
    if not getattr(state.init, "validates_inventory", False):
        state.init = _validating_init(state.init)
    config.TEMP_DIR = temp_dir.TEMP_DIR
    op_order.install()
    global_arguments.install()
    fact_failures.install()
    # What pyinfra, its connectors and these modules imported lives as long as the run. Frozen
    # out of the cyclic garbage collector's reach, it is not walked again when the interpreter
    # exits: that walk cost 0.13-0.18 s of control CPU per run here, 0.01 s after.
    gc.freeze()
