"""
The dotted path of earlier releases, kept for inventories and scripts that name it:
``operations.config.config`` is ``operations.configuration.config``. Not a section of its own
(and not pyinfra's ``config.py`` hook at the top of the tree).
"""

from operations.configuration import config

__all__ = ["config"]
