"""
Walkthrough "OMERO.web upgrade", as one safe operation. When the pip specs are no longer
satisfied by an existing OMERO.web install (a raised version spec), before pip changes
anything:

- the configuration is exported with ``omero config get --show-password`` to
  ``OMERODIR/etc/backups/config-<UTC time>.properties`` (mode 0600, owner omero-web, in a
  0700 folder) and the installed packages are listed beside it (``packages-<time>.txt``);
- the virtualenv is copied to ``<venv>.previous``.

Right after pip, the new venv must import OMERO.web and run ``omero web``; at the end the
deploy's health check decides. Healthy, the previous venv is removed; failing either
check, it is put back, OMERO.web restarted on it, and the deploy fails saying so.
"""

from __future__ import annotations

import time

from pyinfra import host, state
from pyinfra.api import operation

from .context import current
from .facts import CommandOutput, PathExists, UnsatisfiedRequirements, omero_cmd, q
from .ownership import as_user
from .uploads import mkdirs_as

# Run as the OMERO.web user: stdin to a new owner-only file (argv: its path; never through a link).
_SAVE = 'cd / && umask 077 && [ ! -L "$1" ] && cat > "$1"'


def previous_venv(venv: str) -> str:
    return venv + ".previous"


def backup_dir(omerodir: str) -> str:
    return f"{omerodir}/etc/backups"


@operation()
def before_upgrade(venv: str, specs: list[str]):
    """
    Back up the configuration and package list and keep a copy of the venv, when an
    installed OMERO.web is about to be upgraded (nothing on a fresh install or re-run).

    + venv: the virtualenv
    + specs: the pip requirements about to be installed
    """
    settings = current().settings
    omero = f"{venv}/bin/omero"
    if omero not in host.get_fact(PathExists, paths=[omero]):
        return  # fresh install: nothing to keep
    if not host.get_fact(UnsatisfiedRequirements, venv=venv, specs=specs):
        return
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    folder, user = backup_dir(settings.omerodir), settings.user
    config, packages = f"{folder}/config-{stamp}.properties", f"{folder}/packages-{stamp}.txt"
    # OMERODIR is the OMERO.web user's: the folder and both files are made by that user
    # (umask 077 there: the export holds secrets), never written by root.
    yield mkdirs_as(user, "700", folder)
    # (through a shell variable: a failed export fails here, not hidden by a pipe; printf is
    # a shell builtin, so the values never reach a command line)
    yield (f"out=$({omero_cmd(settings, 'config', 'get', '--show-password')}) && "
           f"printf '%s\\n' \"$out\" | {as_user(user, _SAVE, config)}")
    yield f"out=$({q(venv + '/bin/python')} -m pip freeze) && printf '%s\\n' \"$out\" | {as_user(user, _SAVE, packages)}"
    previous = previous_venv(venv)
    yield f"rm -rf {q(previous)} && cp -a {q(venv)} {q(previous)}"


def rollback(venv: str, restart: str, reason: str):
    """Commands putting the previous venv back, restarting OMERO.web, and failing with ``reason``."""
    previous = previous_venv(venv)
    yield f"rm -rf {q(venv)} && mv {q(previous)} {q(venv)} && {restart}"
    message = f"Upgrade rolled back: the previous virtualenv is restored and OMERO.web restarted on it.\n{reason}"
    yield f"echo {q(message)} >&2; exit 1"


@operation()
def verify_upgrade(venv: str, restart: str):
    """
    After an upgrade in this run, check that the new venv imports OMERO.web and runs
    ``omero web``; otherwise roll back at once (later steps would need both).

    + venv: the virtualenv
    + restart: command restarting OMERO.web
    """
    if not state.is_executing:
        return
    previous = previous_venv(venv)
    if previous not in host.get_fact(PathExists, paths=[previous]):
        return
    settings = current().settings
    check = f"{q(venv + '/bin/python')} -c 'import omeroweb' && {omero_cmd(settings, 'web', '-h')} > /dev/null"
    output = host.get_fact(CommandOutput, command=check)
    if output.splitlines()[-1:] != ["exit=0"]:
        yield from rollback(venv, restart, "The upgraded OMERO.web does not start:\n" + output)
