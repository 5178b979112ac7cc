"""
OS packages through the package manager the distro profile selects, waiting, for a bounded
time and saying so, for **the package manager's lock**, held by another apt
(unattended-upgrades on a fresh cloud VM, an ``apt-get`` left by an interrupted run) or
dnf/yum. apt fails at once when its locks (``/var/lib/dpkg/lock-frontend``, ``lock``,
``/var/lib/apt/lists/lock``, the archives lock) are held; ``-o DPkg::Lock::Timeout`` only
exists from apt 1.9.11 (not on Debian 9/10 or Ubuntu 18.04) and pyinfra's ``apt.update``
takes no options, so each package command is run again while it fails with a lock error,
until ``omero_web_package_lock_timeout``. dnf and yum would wait forever by themselves: they
are run with ``--setopt=exit_on_lock=True`` and retried the same way. A command that fails for
a lock changed nothing, so running it again is safe.

The waiting is done in Python on the control machine, so its message shows at the default
verbosity (a command's own output is only shown with ``-v``). Used by the prerequisites and
SELinux sections (and the Ice build's packages come and go through its own script).
"""

from __future__ import annotations

import re
import shlex
import time

import gevent
from pyinfra import host, logger
from pyinfra.api import operation
from pyinfra.api import FunctionCommand, StringCommand
from pyinfra.api.arguments import CONNECTOR_ARGUMENT_KEYS
from pyinfra.connectors.util import CommandOutput
from pyinfra.facts.deb import DebPackages
from pyinfra.facts.rpm import RpmPackages
from pyinfra.operations import apt, dnf, yum

from model.omero_install import buffered

from host.snapshot import packages_installed, want

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
    arguments = host.current_op_global_arguments or {}
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


@operation()
def os_packages(manager: str, packages: list[str], update: bool | None = None, lock_timeout: int = 300):
    """
    OS packages through pyinfra's apt/dnf/yum operations, each of their commands run again
    while the package manager's lock is held, for up to ``lock_timeout`` seconds (``waiting_for_package_lock``).

    + manager: apt, dnf or yum
    + packages: the packages to ensure
    + update: refresh apt's lists first (at most once an hour); None: only when a package is missing
    + lock_timeout: seconds to wait for the package manager's lock

    Sections call it through ``install_packages``, which runs it only when a package is missing.

    **Examples:**

    .. code:: python

        os_packages(
            name="Install OS packages: nginx unzip",
            manager="apt",
            packages=["nginx", "unzip"],
            update=True,
            lock_timeout=300,
        )
    """
    if manager == "apt":
        if update is None:
            installed = host.get_fact(DebPackages)
            update = any(p not in installed for p in packages)
        commands = apt.packages._inner(packages=packages, update=update, cache_time=3600)
    else:
        # dnf and yum wait for their lock forever by themselves: fail at once, the retry bounds it
        commands = (dnf if manager == "dnf" else yum).packages._inner(
            packages=packages, extra_install_args="--setopt=exit_on_lock=True")
    for command in commands:
        yield waiting_for_package_lock(command, lock_timeout)


def install_packages(package_manager: str, packages, name: str, lock_timeout: int = 300):
    """
    Install OS packages with ``package_manager`` (apt, dnf or yum) when one is missing; apt
    refreshes its lists only then. Returns the operation (its change marker).

    + package_manager: apt, dnf or yum (the distro profile's)
    + packages: the packages to ensure
    + name: the operation's name
    + lock_timeout: seconds to wait for the package manager's lock

    **Examples:**

    .. code:: python

        install_packages("apt", ["nginx", "unzip"], "Install OS packages: nginx unzip", lock_timeout=300)
    """
    timeout = lock_timeout
    if package_manager == "apt":
        # read at execution time, in one shared read (host_state): dpkg -l only when one is missing
        want(packages=packages)
        # run only when one is missing: its lists are refreshed (at most once an hour) without a dpkg -l first
        return os_packages(name=name, manager="apt", packages=list(packages), update=True, lock_timeout=timeout,
                           _if=lambda: not packages_installed(packages))
    installed = host.get_fact(RpmPackages)
    missing = [p for p in packages if p not in installed]
    return os_packages(name=name, manager=package_manager, packages=list(packages), lock_timeout=timeout,
                       _if=lambda: bool(missing))


def install_packages_epel_first(package_manager: str, packages, lock_timeout: int, profile_packages=(),
                                name: str | None = None):
    """
    ``install_packages`` of ``packages``, after EPEL on its own when the distro profile's packages
    name it (EPEL provides NGINX and Redis on the RHEL family: it must be there before the rest).
    Returns the operation installing ``packages`` (its change marker).

    + package_manager: apt, dnf or yum (the distro profile's)
    + packages: the packages to ensure ("epel-release" among them is installed first, on its own)
    + lock_timeout: seconds to wait for the package manager's lock
    + profile_packages: the distro profile's packages (EPEL first when they name it)
    + name: the operation's name (default: "Install OS packages: " and the packages)

    **Examples:**

    .. code:: python

        install_packages_epel_first("dnf", ["nginx"], 300, profile_packages=("epel-release", "nginx"))
    """
    rest = [p for p in packages if p != "epel-release"]
    if "epel-release" in (*packages, *profile_packages):
        install_packages(package_manager, ["epel-release"], "Install EPEL", lock_timeout)
    return install_packages(package_manager, rest, name or "Install OS packages: " + " ".join(rest), lock_timeout)
