"""
pyinfra runs this file before it loads the inventory. It makes pyinfra validate every
host's omeroweb-deploy data right after loading the inventory, before it connects to any
host: bad data stops the run with every bad key listed, before any connection or change.
"""

from pyinfra import state

from operations.context import validate_inventory

_init = state.init


def _init_then_validate(inventory, *args, **kwargs):
    validate_inventory(inventory)
    _init(inventory, *args, **kwargs)


state.init = _init_then_validate
