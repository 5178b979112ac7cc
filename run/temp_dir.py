"""
pyinfra's temporary folder on the hosts, private to each run (``TEMP_DIR``, set by
``run.install``), made by ``PrivateTempDir`` as soon as a host is connected.
"""

from __future__ import annotations

import secrets

from pyinfra.api import StringCommand
from pyinfra.api.exceptions import PyinfraError
from pyinfra.api.state import BaseStateCallback

#: pyinfra's temporary folder on the hosts. With _sudo (_su_user, _doas) it uploads every
#: file as the SSH user to a temporary file named after its destination, by default in /tmp,
#: then copies it as root: another local account could create that file first and change
#: what root installs (a unit, a CA certificate). Each run uses a folder of its own with an
#: unguessable name, made 0700 by the SSH user when it connects (``PrivateTempDir``).
TEMP_DIR = f"/tmp/omeroweb-deploy-{secrets.token_hex(16)}"
# Made as the SSH user (no sudo): fails if the name exists; removes this user's folders of
# earlier runs (an interrupted run leaves its folder behind).
_MAKE_TEMP_DIR = (
    "find /tmp -maxdepth 1 -name 'omeroweb-deploy-*' -user \"$(id -u)\" -mmin +1440 -exec rm -rf {} + 2>/dev/null; "
    f"umask 077 && mkdir -m 700 {TEMP_DIR} && [ -O {TEMP_DIR} ] && [ ! -L {TEMP_DIR} ]"
)


class PrivateTempDir(BaseStateCallback):
    """Makes ``TEMP_DIR`` on each host as soon as it is connected, as the SSH user."""

    def host_connect(self, run_state, host):
        ok, output = host.connector.run_shell_command(StringCommand(_MAKE_TEMP_DIR),
                                                      print_input=run_state.print_input)
        if not ok:
            raise PyinfraError(f"{host.name}: could not make the private temporary folder {TEMP_DIR}: "
                               + " ".join(output.stderr_lines or output.stdout_lines))
