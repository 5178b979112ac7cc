"""
Run the real ``deploy.py`` in-process against pyinfra's ``@fake`` connector with the facts
of a given distro, and record every command and upload it would make. No host, no Docker:
each simulation takes well under a second.
"""

from __future__ import annotations

import os
import re
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable

import pyinfra
from pyinfra.api import Config, Inventory, State
from pyinfra.api.connect import connect_all, disconnect_all
from pyinfra.api.operations import run_ops
from pyinfra.api.state import StateStage
from pyinfra.connectors.fake import FakeConnector
from pyinfra.context import ctx_state
from pyinfra_cli.util import load_deploy_file

from model.omero_install import BUFFER_END, BUFFER_START, OMERO_COMMANDS_END

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

OS_RELEASES = {
    ("centos", "7"): 'ID="centos"\nVERSION_ID="7"\nPRETTY_NAME="CentOS Linux 7 (Core)"\nID_LIKE="rhel fedora"',
    ("centos", "8"): 'ID="centos"\nVERSION_ID="8"\nPRETTY_NAME="CentOS Linux 8"\nID_LIKE="rhel fedora"',
    ("rocky", "8"): 'ID="rocky"\nVERSION_ID="8.9"\nPRETTY_NAME="Rocky Linux 8.9 (Green Obsidian)"\nID_LIKE="rhel centos fedora"',
    ("rocky", "9"): 'ID="rocky"\nVERSION_ID="9.3"\nPRETTY_NAME="Rocky Linux 9.3 (Blue Onyx)"\nID_LIKE="rhel centos fedora"',
    ("almalinux", "8"): 'ID="almalinux"\nVERSION_ID="8.9"\nPRETTY_NAME="AlmaLinux 8.9"\nID_LIKE="rhel centos fedora"',
    ("almalinux", "9"): 'ID="almalinux"\nVERSION_ID="9.4"\nPRETTY_NAME="AlmaLinux 9.4"\nID_LIKE="rhel centos fedora"',
    ("ubuntu", "18.04"): 'ID=ubuntu\nVERSION_ID="18.04"\nPRETTY_NAME="Ubuntu 18.04.6 LTS"\nID_LIKE=debian',
    ("ubuntu", "20.04"): 'ID=ubuntu\nVERSION_ID="20.04"\nPRETTY_NAME="Ubuntu 20.04.6 LTS"\nID_LIKE=debian',
    ("ubuntu", "22.04"): 'ID=ubuntu\nVERSION_ID="22.04"\nPRETTY_NAME="Ubuntu 22.04.4 LTS"\nID_LIKE=debian',
    ("ubuntu", "24.04"): 'ID=ubuntu\nVERSION_ID="24.04"\nPRETTY_NAME="Ubuntu 24.04.1 LTS"\nID_LIKE=debian',
    ("debian", "9"): 'ID=debian\nVERSION_ID="9"\nPRETTY_NAME="Debian GNU/Linux 9 (stretch)"',
    ("debian", "10"): 'ID=debian\nVERSION_ID="10"\nPRETTY_NAME="Debian GNU/Linux 10 (buster)"',
    ("debian", "11"): 'ID=debian\nVERSION_ID="11"\nPRETTY_NAME="Debian GNU/Linux 11 (bullseye)"',
    ("debian", "12"): 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"',
    ("debian", "13"): 'ID=debian\nVERSION_ID="13"\nPRETTY_NAME="Debian GNU/Linux 13 (trixie)"',
}


@dataclass
class SimulatedHost:
    """The facts a simulated host reports."""

    distro: str
    version: str
    systemd: bool = True
    arch: str = "x86_64"
    selinux: str | None = None  # getenforce output; None: no getenforce
    pythons: dict[str, str] = field(default_factory=dict)  # interpreter -> "3.11"
    existing_paths: tuple[str, ...] = ()
    systemd_version: str = ""  # first line of `systemctl --version` (read with the inventory facts)
    nginx_conf: str = ""  # lines of nginx.conf matching an uncommented default_server
    extra_responses: dict = field(default_factory=dict)

    def inventory_facts(self) -> list[str]:
        lines = ["[os-release]", *OS_RELEASES[(self.distro, self.version)].splitlines(), "[facts]"]
        lines += [f"arch={self.arch}", f"pid1={'systemd' if self.systemd else 'sleep'}", "cpus=2"]
        lines += [f"binary={b}" for b in self._binaries()]
        if self.selinux:
            lines.append(f"selinux={self.selinux}")
        lines += [f"python={path} {version}" for path, version in self.pythons.items()]
        if self.systemd_version:
            lines.append(f"systemd={self.systemd_version}")
        return lines

    def _binaries(self) -> list[str]:
        if self.distro in ("debian", "ubuntu"):
            found = ["apt-get", "update-rc.d"]
        else:
            found = ["yum", "chkconfig"] if self.version == "7" else ["dnf", "yum", "chkconfig"]
        if self.systemd:
            found.append("systemctl")
        if self.selinux:
            found += ["getenforce", "semanage"]
        return found

    def responses(self) -> dict:
        responses = {
            "echo '[os-release]'": self.inventory_facts(),
            re.compile(r"^for p in .*do \[ -e"): [p for p in self.existing_paths],
            re.compile(r"grep -E .*default_server"): self.nginx_conf.splitlines(),
            "OMERO.web - Login": ["ok"],
            "uname -s": ["Linux"],
            re.compile(r"^command -v (useradd|groupadd|usermod) "): ["/usr/sbin/useradd"],
            # SELinux facts: booleans off, port 80 already http_port_t (as on RHEL)
            "getsebool": ["httpd_read_user_content --> off"],
            "semanage port -ln": ["http_port_t                    tcp      80, 81, 443, 488, 8008, 8009, 8443, 9000"],
        }
        responses.update(self.extra_responses)
        return responses


@dataclass
class Simulation:
    commands: list[str]
    uploads: dict[str, str]  # remote path -> content (text uploads) or local source path
    operations: list[str]
    buffered: list[str] = field(default_factory=list)  # the commands run with their output held, as run
    raw: list[str] = field(default_factory=list)  # every command as run (held output and venv checks included)

    def find(self, pattern: str) -> list[str]:
        """Commands matching ``pattern`` (the distro-profile probe, which names every tool, excluded)."""
        return [c for c in self.commands if re.search(pattern, c) and not c.startswith("echo '[os-release]'")]


def omero_commands(commands: list[str]) -> list[str]:
    """
    The ``omero`` commands in ``commands``, each as the text of its arguments (``config append
    --set KEY ITEM``): the lines of an ``omero load`` here-document one by one (how
    ``OmeroInstall.omero_commands`` runs several in one process), else what follows
    ``bin/omero `` on the command's line.
    """
    found = []
    session = f"bin/omero load <<'{OMERO_COMMANDS_END}'"
    for command in commands:
        if session in command:
            body = command.split(session, 1)[1].split("\n", 1)[1]
            found += body.split(f"\n{OMERO_COMMANDS_END}", 1)[0].split("\n")
        else:
            found += re.findall(r"bin/omero (.*)", command)
    return found


_BUFFERED = re.compile(re.escape(BUFFER_START) + "(.*?)" + re.escape(BUFFER_END), re.S)


def unbuffered(command: str) -> str:
    """The command with the commands in it whose output is held until they end (``install.buffered``)
    as they are themselves."""
    return _BUFFERED.sub(lambda match: match.group(1), command)


#: Where a command run only in a trusted venv begins (``install.trusted``), up to that command.
VENV_GUARD = re.compile(r'\{ owd_v=\S+; untrusted=; .*?; if \[ -n "\$untrusted" \]; then .*?; else ')
_GUARD_END = "; fi; }"


def unguarded(command: str) -> str:
    """The command with the commands in it that run only in a trusted venv (``install.trusted``)
    as they are themselves (the check before each is pinned by its own tests)."""
    while match := VENV_GUARD.search(command):
        start = match.end()
        end = start
        while True:  # the guard's own end: the first after which braces balance
            end = command.index(_GUARD_END, end)
            if command.count("{", start, end) == command.count("}", start, end):
                break
            end += 1
        command = command[:match.start()] + command[start:end] + command[end + len(_GUARD_END):]
    return command


def _recording_put_file(self, filename_or_io, remote_filename, *args, **kwargs):
    if isinstance(filename_or_io, (str, os.PathLike)):
        with open(filename_or_io, "rb") as handle:  # wheels are binary
            content = handle.read().decode(errors="replace")
    else:
        content = filename_or_io.read()
        if isinstance(content, bytes):
            content = content.decode()
    self.uploads[remote_filename] = content
    self.executed_commands.append(f"PUT {remote_filename}")
    return True


# What a staged upload becomes: written as an account (``uploads.write_as``: ``... sh DEST
# MODE < STAGED``) or moved into place by root (``uploads.install_staged``: ``mv -fTZ STAGED DEST``).
_LANDED = re.compile(r" sh (?P<dest>/\S+) \d+ < (?P<staged>/\S+?)(?:\.resolved)?;|mv -fTZ (?P<staged2>/\S+) (?P<dest2>/\S+)")


def land_staged_uploads(commands: list[str], uploads: dict) -> dict:
    """Also record each staged upload under the path it lands at (what the tests check)."""
    landed = dict(uploads)
    for command in commands:
        for match in _LANDED.finditer(command):
            staged = match.group("staged") or match.group("staged2")
            dest = match.group("dest") or match.group("dest2")
            if staged in uploads:
                landed[dest] = uploads[staged]
    return landed


#: The control machine's Ice cache in every simulation that names none: always empty.
EMPTY_ICE_CACHE = tempfile.mkdtemp(prefix="owd-sim-ice-cache-")


@contextmanager
def fake_run(hosts: dict[str, SimulatedHost], data: dict | None, load: Callable[[State], None], cwd: str = ROOT,
             groups: dict[str, list[str]] | None = None, host_data: dict[str, dict] | None = None):
    """
    Connect to fake hosts scripted with their facts, plan with ``load(state)`` (a deploy
    file or function) and execute, as the pyinfra CLI does; yield (state, inventory).
    Uploads are recorded on each connector as ``uploads`` and as ``PUT <path>`` commands.
    ``groups``: inventory groups (name -> host names); ``host_data``: data of one host.
    """
    instant = {"fake_delay": 0, "fake_delay_jitter": 0}
    # the plan must not depend on the Ice wheels this machine happens to keep: an empty cache
    hermetic = {"omero_web_ice_cache_dir": EMPTY_ICE_CACHE}
    inventory = Inventory(([(n, {"fake_responses": h.responses(), **instant, **hermetic, **(data or {}),
                                 **(host_data or {}).get(n, {})})
                            for n, h in hosts.items()], {}),
                          **{group: (names, {}) for group, names in (groups or {}).items()})
    state = State(inventory, Config())
    original = FakeConnector.put_file
    FakeConnector.put_file = _recording_put_file
    old_cwd = os.getcwd()
    pyinfra.is_cli = True
    try:
        os.chdir(cwd)
        ctx_state.set(state)
        state.set_stage(StateStage.Connect)
        connect_all(state)
        for name in hosts:
            inventory.get_host(name).connector.uploads = {}
        state.set_stage(StateStage.Prepare)
        load(state)
        state.set_stage(StateStage.Execute)
        run_ops(state)
        yield state, inventory
    finally:
        FakeConnector.put_file = original
        pyinfra.is_cli = False
        os.chdir(old_cwd)
        state.set_stage(StateStage.Disconnect)
        disconnect_all(state)
        ctx_state.reset()


def simulate(host: SimulatedHost, data: dict | None = None, name: str = "@fake/web") -> Simulation:
    """Plan and execute deploy.py on a fake host with ``host``'s facts; return what it did."""
    with fake_run({name: host}, data, lambda state: load_deploy_file(state, os.path.join(ROOT, "deploy.py"))) as (
        state,
        inventory,
    ):
        connector = inventory.get_host(name).connector
        operations = [", ".join(state.get_op_meta(h).names) for h in state.get_op_order()]
        # the commands themselves: held output (install.buffered) is checked on its own
        commands = [unguarded(unbuffered(c)) for c in connector.executed_commands]
        return Simulation(commands, land_staged_uploads(commands, connector.uploads), operations,
                          [c for c in connector.executed_commands if unbuffered(c) != c],
                          list(connector.executed_commands))
