"""
Locks (issue 12, items 1 and 5): waiting, for a bounded time and saying so, for

- **the package manager's lock**, held by another apt (unattended-upgrades on a fresh cloud
  VM, an ``apt-get`` left by an interrupted run) or dnf/yum. apt fails at once when its
  locks (``/var/lib/dpkg/lock-frontend``, ``lock``, ``/var/lib/apt/lists/lock``, the
  archives lock) are held; ``-o DPkg::Lock::Timeout`` only exists from apt 1.9.11 (not on
  Debian 9/10 or Ubuntu 18.04) and pyinfra's ``apt.update`` takes no options, so each
  package command is run again while it fails with a lock error, until
  ``omero_web_package_lock_timeout``. dnf and yum would wait forever by themselves: they
  are run with ``--setopt=exit_on_lock=True`` and retried the same way. A command that
  fails for a lock changed nothing, so running it again is safe.
- **another deploy to the same host** (``RUN_LOCK``): taken when pyinfra connects, released
  when it disconnects (also after a failed run); see ``take_run_lock``.

Both wait in Python on the control machine, so the waiting message shows at the default
verbosity (a command's own output is only shown with ``-v``).
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
from pyinfra import host as current_host, logger
from pyinfra.api import FunctionCommand, StringCommand
from pyinfra.api.arguments import CONNECTOR_ARGUMENT_KEYS
from pyinfra.connectors.util import CommandOutput

from .install import ROOT_STAGING, STATE_DIR, buffered

q = shlex.quote

#: Seconds between two tries while a lock is held.
POLL = 3

# apt (every release: 1.4's "Could not get lock /var/lib/dpkg/lock - open (11: ...)", 1.9's
# "Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 42 (apt-get)",
# "Unable to lock directory /var/lib/apt/lists/"), dnf ("... already locked by 42") and yum
# ("Existing lock /var/run/yum.pid: another copy is running as pid 42.") with exit_on_lock.
PACKAGE_LOCK_ERROR = re.compile(
    r"Could not get lock|Unable to lock|Unable to acquire the dpkg frontend lock|already locked by \d+"
    r"|Existing lock \S+: another copy is running", re.I)
_HOLDER = re.compile(r"held by process (\d+)(?: \(([^)]*)\))?|already locked by (\d+)|running as pid (\d+)")


def package_lock_holder(output: str) -> str | None:
    """None when ``output`` is not a lock error; else who holds it, as far as the tool says."""
    if not PACKAGE_LOCK_ERROR.search(output):
        return None
    found = _HOLDER.search(output)
    if not found:
        return "another process (this apt does not say which: `ps -e | grep -e apt -e dpkg`)"
    pid = next(g for g in (found.group(1), found.group(3), found.group(4)) if g)
    return f"process {pid}" + (f" ({found.group(2)})" if found.group(2) else "")


def connector_arguments() -> dict:
    """The current operation's connection arguments (``_sudo``, ...), for commands run from Python."""
    arguments = current_host.current_op_global_arguments or {}
    return {key: arguments[key] for key in CONNECTOR_ARGUMENT_KEYS if key in arguments}


def waiting_for_package_lock(command, timeout: int) -> FunctionCommand:
    """``command`` (an apt/dnf/yum command line) run again while the package lock is held, up to ``timeout`` s;
    its output held until it ends (``buffered``: the package managers' progress)."""
    text = command.get_raw_value() if isinstance(command, StringCommand) else str(command)
    return FunctionCommand(_run_waiting, (buffered(text), timeout, connector_arguments()), {})


def _run_waiting(state, host, command: str, timeout: int, arguments: dict) -> bool:
    started = time.monotonic()
    said = False
    env = {**(arguments.get("_env") or {}), "LC_ALL": "C"}  # lock errors are matched in English
    while True:
        ok, output = host.connector.run_shell_command(
            StringCommand(command), print_output=state.print_output, print_input=state.print_input,
            **{**arguments, "_env": env})
        waited = int(time.monotonic() - started)
        if ok:
            if said:
                host.log_styled(f"omeroweb-deploy: package manager lock released after {waited} s", fg="green")
            return True
        holder = package_lock_holder(output.output)
        if holder is None or waited >= timeout:
            if not state.print_output:
                _print_output(host, output)
            if holder is not None:
                host.log_styled(
                    f"omeroweb-deploy: the package manager lock is still held by {holder} after {waited} s "
                    f"(omero_web_package_lock_timeout = {timeout}): let it finish (unattended-upgrades, another "
                    "apt/dnf), or raise omero_web_package_lock_timeout, then run again", fg="red", log_func=logger.error)
            return False
        if not said:
            host.log_styled(
                f"omeroweb-deploy: the package manager lock is held by {holder}: waiting up to {timeout} s "
                "(omero_web_package_lock_timeout)", fg="yellow", log_func=logger.warning)
            said = True
        gevent.sleep(min(POLL, max(timeout - waited, 0) or POLL))


def _print_output(host, output: CommandOutput) -> None:
    for line in output.output_lines:
        logger.error(f"{host.print_prefix}{line}")


# ---- the run lock --------------------------------------------------------------------------------

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
