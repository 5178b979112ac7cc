"""
The pyinfra every change to pyinfra's own behaviour in this package was checked against, and
the check each of them makes before it changes anything: pyinfra's version, and the source of
the very function it replaces or wraps. On another pyinfra, installing a change raises
``UncheckedPyinfra`` (the run stops before it connects, saying what to compare): a change
never switches itself off silently, and never runs over code it was not read against.
requirements.txt pins the same version (tests/unit/test_run_hooks.py says so).
"""

from __future__ import annotations

import hashlib
import inspect
from importlib.metadata import version

from pyinfra.api.exceptions import PyinfraError

#: The pyinfra release this package was read against.
CHECKED_PYINFRA = "3.10.0"


class UncheckedPyinfra(PyinfraError):
    """The installed pyinfra is not the one a change to its behaviour was checked against."""


def installed_pyinfra() -> str:
    return version("pyinfra")


def source_sha256(function) -> str:
    return hashlib.sha256(inspect.getsource(function).encode()).hexdigest()


def require(function, sha256: str, what: str) -> None:
    """Raise ``UncheckedPyinfra`` unless pyinfra is ``CHECKED_PYINFRA`` and ``function``'s source is ``sha256``."""
    installed = installed_pyinfra()
    if installed != CHECKED_PYINFRA:
        raise UncheckedPyinfra(
            f"omeroweb-deploy: pyinfra {installed} is installed, but {what} was checked against pyinfra "
            f"{CHECKED_PYINFRA} only: install pyinfra=={CHECKED_PYINFRA} (requirements.txt)")
    if source_sha256(function) != sha256:
        raise UncheckedPyinfra(
            f"omeroweb-deploy: {function.__module__}.{function.__qualname__} is not the source {what} was "
            f"checked against (pyinfra {CHECKED_PYINFRA}): compare them, then update its sha256")
