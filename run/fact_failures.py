"""
A fact that fails ends the run, with a message naming the host and the fact. Installed by
``run.install``.

pyinfra (3.10) answers a fact whose command fails with a line "could not load fact", marks the
host failed and hands the fact's *default* to the code that asked. Code planning a deploy
then plans the rest of that host on a picture that is not the host's; worse, an operation
reading a fact as it runs (most of this project's do) goes on with that default and runs its
commands. Seen on Ubuntu 18.04: the venv probe failed on Python 3.6 and the Ice step went on as
if the venv held nothing. Here, loading a fact that fails the host raises ``FactFailed``, a
pyinfra error: pyinfra's command line ends the run with that message, no traceback; what the
host printed is above it. (Read by an operation as it runs, the other hosts finish that
operation first.) Facts read with ``_ignore_errors`` (failure expected) are untouched.

Checked against pyinfra 3.10.0's ``_get_fact`` (``CHECKED_SOURCE_SHA256``, ``run.checked``): on
another pyinfra, installing it raises.
"""

from __future__ import annotations

import gevent
from pyinfra.api import facts as pyinfra_facts
from pyinfra.api.exceptions import PyinfraError

from run.checked import require

#: sha256 of the source of ``pyinfra.api.facts._get_fact`` that this module was checked against.
CHECKED_SOURCE_SHA256 = "4bae739f846172aaaf1f4cd3d65c40090cf3e183d5a1fc090882033ed5e7f98a"

_original = pyinfra_facts._get_fact


class FactFailed(PyinfraError):
    """A fact's command failed on a host: the run stops before anything acts on its default."""


def message(host, cls) -> str:
    return (f"omeroweb-deploy: reading the fact {cls.name} failed on {host.name} (its output is above); "
            "the run stops here, so that no step acts on a wrong picture of the host")


def _get_fact_or_stop(state, host, cls, *args, **kwargs):
    failed_before = host in state.failed_hosts
    try:
        value = _original(state, host, cls, *args, **kwargs)
    except PyinfraError as error:  # pyinfra's "No hosts remaining!" when it failed the last host
        if failed_before or host not in state.failed_hosts or isinstance(error, FactFailed):
            raise
        raise FactFailed(message(host, cls)) from None
    if host in state.failed_hosts and not failed_before:
        raise FactFailed(message(host, cls))
    return value


def install() -> bool:
    """Wrap pyinfra's ``_get_fact`` for this run (False: already in place); raises
    ``UncheckedPyinfra`` when it is not the checked one."""
    if pyinfra_facts._get_fact is _get_fact_or_stop:
        return False
    require(pyinfra_facts._get_fact, CHECKED_SOURCE_SHA256, "the fact failures' stop (run.fact_failures)")
    pyinfra_facts._get_fact = _get_fact_or_stop
    # Raised in an operation's greenlet, it reaches pyinfra's command line through
    # ``greenlet.get()``; gevent's hub would first print it as a crash (a traceback): it is not one.
    hub = gevent.get_hub()
    hub.NOT_ERROR = (*hub.NOT_ERROR, FactFailed)
    return True
