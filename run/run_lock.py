"""
One deploy at a time per host: the run lock (``RUN_LOCK``), taken right after pyinfra
connects (before any fact is read), released when it disconnects (also after a failed run).
A run that finds it held waits, for a bounded time and saying so, then fails that host with
a message naming the holder; a lock whose pyinfra process is gone from this control machine
(a killed run) is taken over. The waiting is done in Python on the control machine, so its
message shows at the default verbosity. ``RunLock`` is the pyinfra callback that does it
(installed by ``run.install``).
"""

from __future__ import annotations

import getpass
import os
import re
import secrets
import shlex
import socket
import time

import gevent
from pyinfra import logger
from pyinfra.api import StringCommand
from pyinfra.api.arguments import CONNECTOR_ARGUMENT_KEYS, pop_global_arguments
from pyinfra.api.exceptions import ConnectError
from pyinfra.api.state import BaseStateCallback

from model.omero_install import ROOT_STAGING, STATE_DIR
from model.settings import validate
from run.connection import idle_check, no_delay

q = shlex.quote

#: Seconds between two tries while the lock is held.
POLL = 3

#: Held while a run is connected: a folder (``mkdir`` is atomic) with an ``owner`` file.
RUN_LOCK = f"{STATE_DIR}/run.lock"
#: The manual removal the messages give, for a lock whose run is gone.
REMOVE_COMMAND = f"sudo rm -rf {RUN_LOCK}"

# argv: owner line. Makes the state folder and the staging folder in it (root-only: nothing
# else can put a link there afterwards, so uploads stage there without checking again).
# Prints "taken", or "held" then the owner file and "now=<epoch>".
_TAKE = (
    f"umask 077; d={q(STATE_DIR)}; s={q(ROOT_STAGING)}; "
    "mkdir -p \"$d\" && [ ! -L \"$d\" ] && chown root:root \"$d\" && chmod 700 \"$d\" "
    "&& mkdir -p \"$s\" && [ ! -L \"$s\" ] && chown root:root \"$s\" && chmod 700 \"$s\" "
    "|| { echo \"cannot make $d and $s (root-only)\" >&2; exit 2; }; "
    f"if mkdir {q(RUN_LOCK)} 2>/dev/null; then printf '%s\\n' \"$1\" > {q(RUN_LOCK)}/owner && echo taken; "
    f"else echo held; cat {q(RUN_LOCK)}/owner 2>/dev/null; echo \"now=$(date +%s)\"; fi"
)
# argv: token. Removes the lock only if it is still the one with this token, and the state
# folder when nothing else is in it (a run refused before any change leaves no trace).
_DROP = (f"[ \"$(tr ' ' '\\n' < {q(RUN_LOCK)}/owner 2>/dev/null | sed -n 's/^token=//p')\" = \"$1\" ] "
         f"&& rm -rf {q(RUN_LOCK)} && {{ rmdir {q(ROOT_STAGING)} {q(STATE_DIR)} 2>/dev/null; true; }}; true")


def _clean(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9._@:-]", "_", value)[:100] or "?"


def owner_fields(token: str) -> dict[str, str]:
    """Who takes the lock: control machine, user, pyinfra's PID, start time (epoch), and a token."""
    try:
        user = getpass.getuser()
    except Exception:  # no login name (a container without passwd entry)
        user = str(os.getuid())
    return {"control": _clean(socket.gethostname()), "user": _clean(user), "pid": str(os.getpid()),
            "started": str(int(time.time())), "token": token}


def parse_owner(lines) -> dict[str, str]:
    owner = {}
    for line in lines:
        for part in line.split():
            key, sep, value = part.partition("=")
            if sep:
                owner[key] = value
    return owner


def describe(owner: dict[str, str]) -> str:
    if "token" not in owner:
        return "a deploy that has not written its name yet (or an unreadable lock)"
    started = int(owner.get("started", "0") or 0)
    age = int(owner.get("now", started) or started) - started
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(started))
    return (f"{owner.get('user', '?')}@{owner.get('control', '?')}, pyinfra PID {owner.get('pid', '?')}, "
            f"started {when} ({age} s ago)")


def _dead_here(owner: dict[str, str]) -> bool:
    """The lock's run was started from this control machine and its pyinfra process is gone."""
    if owner.get("control") != _clean(socket.gethostname()) or not owner.get("pid", "").isdigit():
        return False
    pid = int(owner["pid"])
    if pid == os.getpid():
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return b"pyinfra" not in handle.read()
    except OSError:
        return True


def _sh(host, arguments: dict, script: str, *args: str):
    command = " ".join([f"sh -c {q(script)} sh", *(q(a) for a in args)])
    return host.connector.run_shell_command(StringCommand(command), **arguments)


def take_run_lock(state, host, arguments: dict, timeout: int) -> str:
    """
    Take the host's run lock, waiting up to ``timeout`` s while another deploy holds it;
    return the token that releases it, or raise RuntimeError saying who holds it. A lock
    whose pyinfra process is gone from this control machine (a killed run) is taken over,
    saying so; one left from another machine is waited for, then reported with its age and
    the command removing it.
    """
    token = secrets.token_hex(8)
    started = time.monotonic()
    said, dropped = False, set()
    while True:
        line = "\n".join(f"{k}={v}" for k, v in owner_fields(token).items())
        ok, output = _sh(host, arguments, _TAKE, line)
        lines = list(output.stdout_lines)
        if not ok:
            raise RuntimeError(f"cannot take the run lock {RUN_LOCK}: " + " ".join(output.stderr_lines or lines))
        if lines and lines[0] == "taken":
            if said:
                host.log_styled(f"omeroweb-deploy: run lock taken after {int(time.monotonic() - started)} s",
                                fg="green")
            return token
        owner = parse_owner(lines[1:])
        if _dead_here(owner) and owner["token"] not in dropped:
            dropped.add(owner["token"])
            host.log_styled(f"omeroweb-deploy: removing the run lock left by a run that is gone ({describe(owner)})",
                            fg="yellow", log_func=logger.warning)
            _sh(host, arguments, _DROP, owner["token"])
            continue
        waited = int(time.monotonic() - started)
        if waited >= timeout:
            raise RuntimeError(
                f"another deploy holds the run lock {RUN_LOCK}: {describe(owner)}; still held after {waited} s "
                f"(omero_web_run_lock_timeout = {timeout}). Let it finish, or if that run is gone (check "
                f"`ps -p {owner.get('pid', 'PID')}` on {owner.get('control', 'its control machine')}), remove the lock "
                f"with `{REMOVE_COMMAND}` on the host, then run again")
        if not said:
            host.log_styled(f"omeroweb-deploy: another deploy holds the run lock on this host: {describe(owner)}; "
                            f"waiting up to {timeout} s (omero_web_run_lock_timeout)", fg="yellow",
                            log_func=logger.warning)
            said = True
        gevent.sleep(min(POLL, max(timeout - waited, 1)))


def release_run_lock(host, arguments: dict, token: str) -> bool:
    """Remove the host's run lock if it is still this run's."""
    ok, _ = _sh(host, arguments, _DROP, token)
    return ok


class RunLock(BaseStateCallback):
    """
    One deploy at a time per host. Right after connecting (before any fact is
    read), the host's run lock is taken as root (the connection's ``_sudo``/``_su_user``
    settings), waiting up to ``omero_web_run_lock_timeout`` while another run holds it, then
    the host fails to connect with a message naming the holder (other hosts go on). It is
    released when pyinfra disconnects, after a successful or a failed run. Applies to every
    pyinfra run from this folder: ``deploy.py``, a section by dotted path, ``exec``, ``fact``.
    """

    def __init__(self):
        self.tokens = {}

    @staticmethod
    def _arguments(run_state, host) -> dict:
        arguments, _ = pop_global_arguments(run_state, host, {})
        return {key: arguments[key] for key in CONNECTOR_ARGUMENT_KEYS if key in arguments}

    def host_before_connect(self, run_state, host):
        connector, connect = host.connector, host.connector.connect

        def connect_then_lock():
            connect()
            no_delay(connector)
            idle_check(connector)
            timeout = validate(host.data.dict(), host.name).run_lock_timeout
            try:
                self.tokens[host.name] = take_run_lock(run_state, host, self._arguments(run_state, host),
                                                             timeout)
            except RuntimeError as exc:
                raise ConnectError(f"omeroweb-deploy: {exc}") from None

        connector.connect = connect_then_lock

    def host_disconnect(self, run_state, host):
        token = self.tokens.pop(host.name, None)
        if token and not release_run_lock(host, self._arguments(run_state, host), token):
            logger.warning(f"{host.print_prefix}omeroweb-deploy: could not release the run lock {RUN_LOCK}: "
                           f"remove it with `{REMOVE_COMMAND}`")
