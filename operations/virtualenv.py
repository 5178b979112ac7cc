"""
The dotted paths of earlier releases, kept for inventories and scripts that name them:
``operations.virtualenv.venv`` is ``operations.venv.venv``, ``operations.virtualenv.omeroweb``
is ``operations.omeroweb.omeroweb``. Not a section of its own.
"""

from operations.omeroweb import omeroweb
from operations.venv import venv

__all__ = ["omeroweb", "venv"]
