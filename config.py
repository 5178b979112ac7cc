"""
pyinfra runs this file before it loads the inventory. It makes pyinfra validate every
host's omeroweb-deploy data right after loading the inventory, before it connects to any
host: bad data stops the run with every bad key listed, before any connection or change.
"""

import atexit
import gc
import secrets

from pyinfra import config, logger, state
from pyinfra.api import StringCommand
from pyinfra.api.arguments import CONNECTOR_ARGUMENT_KEYS, pop_global_arguments
from pyinfra.api.exceptions import ConnectError, PyinfraError
from pyinfra.api.state import BaseStateCallback

from operations import fact_failures, global_arguments, locks, op_order
from operations.connection import idle_check, no_delay
from operations.context import validate_inventory
from operations.settings import validate

_init = state.init

#: pyinfra's temporary folder on the hosts. With _sudo (_su_user, _doas) it uploads every
#: file as the SSH user to a temporary file named after its destination, by default in /tmp,
#: then copies it as root: another local account could create that file first and change
#: what root installs (a unit, a CA certificate). Each run uses a folder of its own with an
#: unguessable name, made 0700 by the SSH user when it connects (``_PrivateTempDir``).
TEMP_DIR = config.TEMP_DIR = f"/tmp/omeroweb-deploy-{secrets.token_hex(16)}"
# Made as the SSH user (no sudo): fails if the name exists; removes this user's folders of
# earlier runs (an interrupted run leaves its folder behind).
_MAKE_TEMP_DIR = (
    "find /tmp -maxdepth 1 -name 'omeroweb-deploy-*' -user \"$(id -u)\" -mmin +1440 -exec rm -rf {} + 2>/dev/null; "
    f"umask 077 && mkdir -m 700 {TEMP_DIR} && [ -O {TEMP_DIR} ] && [ ! -L {TEMP_DIR} ]"
)


class _FailureSummary(BaseStateCallback):
    """
    Remembers where each host failed, and prints at the very end of the run which hosts
    failed and why (the failed operation and the last lines of its output): with many
    hosts the reason is otherwise far up in the output, and the results table has no hosts.
    """

    def __init__(self):
        self.state, self.failures = None, {}
        atexit.register(self.print_summary)

    def host_connect_error(self, run_state, host, error):
        self.failures.setdefault(host.name, ("connecting", None, str(error)))

    def operation_host_error(self, run_state, host, op_hash, *args):
        self.state = run_state
        names = ", ".join(sorted(run_state.get_op_meta(op_hash).names))
        self.failures.setdefault(host.name, (names, op_hash, ""))

    def print_summary(self):
        if not self.failures:
            return
        lines = [f"--> Failed hosts ({len(self.failures)}):"]
        for name, (operation, op_hash, reason) in sorted(self.failures.items()):
            if op_hash:
                host = self.state.inventory.get_host(name)
                meta = self.state.get_op_data_for_host(host, op_hash).operation_meta
                try:
                    lines_out = meta.stderr_lines or meta.stdout_lines
                except (RuntimeError, AssertionError):  # the operation did not complete on this host
                    lines_out = []
                tail = [line.strip() for line in lines_out if line.strip()][-4:]
                reason = " / ".join(tail)
            lines.append(f"    {name}: {operation}: {reason or 'see its output above'}")
        print("\n".join(lines), flush=True)


class _PrivateTempDir(BaseStateCallback):
    """Makes ``TEMP_DIR`` on each host as soon as it is connected, as the SSH user."""

    def host_connect(self, run_state, host):
        ok, output = host.connector.run_shell_command(StringCommand(_MAKE_TEMP_DIR),
                                                      print_input=run_state.print_input)
        if not ok:
            raise PyinfraError(f"{host.name}: could not make the private temporary folder {TEMP_DIR}: "
                               + " ".join(output.stderr_lines or output.stdout_lines))


class _RunLock(BaseStateCallback):
    """
    Issue 12 (5): one deploy at a time per host. Right after connecting (before any fact is
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
                self.tokens[host.name] = locks.take_run_lock(run_state, host, self._arguments(run_state, host),
                                                             timeout)
            except RuntimeError as exc:
                raise ConnectError(f"omeroweb-deploy: {exc}") from None

        connector.connect = connect_then_lock

    def host_disconnect(self, run_state, host):
        token = self.tokens.pop(host.name, None)
        if token and not locks.release_run_lock(host, self._arguments(run_state, host), token):
            logger.warning(f"{host.print_prefix}omeroweb-deploy: could not release the run lock {locks.RUN_LOCK}: "
                           f"remove it with `{locks.REMOVE_COMMAND}`")


# pyinfra's CLI executes this file before it loads the inventory, and offers no hook between
# loading it and connecting but State.init, which also resets the state's callback handlers:
# wrapping it is the one place to validate every host's data before any connection, and to
# register the callbacks above for this run.
def _init_then_validate(inventory, *args, **kwargs):
    validate_inventory(inventory)
    _init(inventory, *args, **kwargs)
    state.add_callback_handler(_RunLock())
    state.add_callback_handler(_PrivateTempDir())
    state.add_callback_handler(_FailureSummary())


state.init = _init_then_validate
# Issue 15: pyinfra's order of operations without inspect.stack() (see operations/op_order.py),
# its global arguments' list computed once (operations/global_arguments.py)
op_order.install()
global_arguments.install()
# A fact that fails ends the run naming it, instead of handing its default on (operations/fact_failures.py)
fact_failures.install()
# Issue 15: what pyinfra, its connectors and these modules imported lives as long as the run.
# Frozen out of the cyclic garbage collector's reach, it is not walked again when the
# interpreter exits: that walk cost 0.13-0.18 s of control CPU per run here, 0.01 s after.
gc.freeze()
