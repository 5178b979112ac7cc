"""
pyinfra's list of global arguments, computed once per run. Installed by ``config.py``.

pyinfra rebuilds the list of its global arguments (``_sudo``, ``_if``, ...) with
``typing.get_type_hints`` of a TypedDict each time an operation, a ``@deploy`` or a fact is
called (``pyinfra.api.arguments.all_global_arguments``): about 0.3 ms each, 20–27 ms of the
control side's CPU for one host's cold deploy (issue 15: < 1 s per host). The TypedDict
never changes during a run, so the list is computed once and a copy returned to each caller.
Installed only where pyinfra's function is the one it was checked against
(``CHECKED_SOURCE_SHA256``, pyinfra 3.10.0); another pyinfra keeps its own, and a unit test
says which.
"""

from __future__ import annotations

from pyinfra.api import arguments, facts

from .op_order import source_sha256

#: sha256 of the source of ``all_global_arguments`` that this module was checked against.
CHECKED_SOURCE_SHA256 = "f7afbc472d78c5d2f0bb282994175647651e888543da001968d903cc4a26a5a1"

_original = arguments.all_global_arguments


def installable() -> bool:
    """Whether pyinfra's function is the checked one, used by both of its callers."""
    return (arguments.all_global_arguments is _original and facts.all_global_arguments is _original
            and source_sha256(_original) == CHECKED_SOURCE_SHA256)


def install() -> bool:
    """Compute pyinfra's global arguments once for this run, when its function is the checked one."""
    if not installable():
        return False
    computed = tuple(_original())

    def all_global_arguments() -> list[tuple[str, type]]:
        """pyinfra's global arguments and their types (computed once, a new list each call)."""
        return list(computed)

    arguments.all_global_arguments = facts.all_global_arguments = all_global_arguments
    return True
