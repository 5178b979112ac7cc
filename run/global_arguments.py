"""
pyinfra's list of global arguments, computed once per run. Installed by ``run.install``.

pyinfra rebuilds the list of its global arguments (``_sudo``, ``_if``, ...) with
``typing.get_type_hints`` of a TypedDict each time an operation, a ``@deploy`` or a fact is
called (``pyinfra.api.arguments.all_global_arguments``): about 0.3 ms each, 20–27 ms of the
control side's CPU for one host's cold deploy (issue 15: < 1 s per host). The TypedDict
never changes during a run, so the list is computed once and a copy returned to each caller.
Checked against pyinfra 3.10.0's source (``CHECKED_SOURCE_SHA256``, ``run.checked``): on
another pyinfra, installing it raises.
"""

from __future__ import annotations

from pyinfra.api import arguments, facts

from run.checked import require

#: sha256 of the source of ``all_global_arguments`` that this module was checked against.
CHECKED_SOURCE_SHA256 = "f7afbc472d78c5d2f0bb282994175647651e888543da001968d903cc4a26a5a1"

_original = arguments.all_global_arguments


def install() -> bool:
    """Compute pyinfra's global arguments once for this run (False: already in place); raises
    ``UncheckedPyinfra`` when pyinfra's function, used by both of its callers, is not the checked one."""
    if getattr(arguments.all_global_arguments, "computed_once", False):
        return False
    for function in (_original, arguments.all_global_arguments, facts.all_global_arguments):
        require(function, CHECKED_SOURCE_SHA256, "the global arguments' list (run.global_arguments)")
    computed = tuple(_original())

    def all_global_arguments() -> list[tuple[str, type]]:
        """pyinfra's global arguments and their types (computed once, a new list each call)."""
        return list(computed)

    all_global_arguments.computed_once = True
    arguments.all_global_arguments = facts.all_global_arguments = all_global_arguments
    return True
