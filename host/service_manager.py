"""
Services under the host's service manager, as the distro profile says (facts: what PID 1
is), never pyinfra's ``server.service``, which picks systemd whenever ``systemctl`` exists:
enabled at boot, running, restarted or reloaded when given operations changed. A restart on
purpose clears systemd's start-rate count first, so that only a crash loop makes systemd
give up (see ``units.START_LIMITS``).
"""

from __future__ import annotations

from collections.abc import Callable

from pyinfra import host
from pyinfra.api import operation
from pyinfra.facts.files import FindLinks
from pyinfra.facts.sysvinit import InitdStatus
from pyinfra.operations import server, systemd, sysvinit

from model.distro_profile import DistroProfile
from model.units import SERVICE
from host.facts import q
from host.snapshot import unit_enabled, unit_file_loaded, unit_running, want


def restart_command(service_manager: str, service: str = SERVICE, reset_failed: bool = False) -> str:
    """
    The command restarting a service (OMERO.web by default) with the host's service manager;
    ``reset_failed``: under systemd, clear its start-rate count first (START_LIMITS), so that
    a restart on purpose or a rollback after a crash loop is not refused.
    """
    if service_manager == "systemd":
        restart = f"systemctl restart {q(service)}"
        return f"{{ systemctl reset-failed {q(service)} 2>/dev/null; {restart}; }}" if reset_failed else restart
    return f"/etc/init.d/{service} restart"


@operation()
def initd_running(service: str, start: str):
    """
    An init.d service running: what ``sysvinit.service(running=True)`` does, with the start
    command given (e.g. checked first: ``OmeroInstall.trusted``).

    + service: script name in /etc/init.d
    + start: the command that starts it

    **Examples:**

    .. code:: python

        initd_running(
            name="omero-web running",
            service="omero-web",
            start="/etc/init.d/omero-web start",
        )
    """
    if host.get_fact(InitdStatus).get(service):
        return
    yield start


@operation()
def initd_enabled(service: str, enable_command: list[str]):
    """
    Register an init.d script for boot unless start links exist.

    + service: script name in /etc/init.d
    + enable_command: the distro's registration command (update-rc.d / chkconfig)

    **Examples:**

    .. code:: python

        initd_enabled(
            name="omero-web enabled at boot",
            service="omero-web",
            enable_command=["update-rc.d", "omero-web", "defaults", "98", "02"],
        )
    """
    if host.get_fact(FindLinks, path="/etc", path_match=f"/etc/rc*.d/S*{service}"):
        return
    yield " ".join(q(part) for part in enable_command)
    if enable_command[0] == "chkconfig":
        yield f"chkconfig {q(service)} on"


def ensure_service(profile: DistroProfile, service: str, restart_when=(), reload_when=(),
                   on_restart_failure: str | None = None, units_changed=(),
                   checked: Callable[[str], str] | None = None, serial: bool = False,
                   after_restart: str | None = None):
    """Service enabled and running with the profile's service manager; restarted / reloaded
    when any given operation changed (``on_restart_failure``: shell run when the restart
    fails, ending the command failing). ``units_changed``: the operations installing its
    systemd unit files, after which systemd must read them again before a restart.
    ``checked``: wraps each command that starts the service (``OmeroInstall.trusted``: the
    code it runs is root's alone). ``serial``: the restart runs on one host at a time (a rolling
    restart), each followed by ``after_restart`` (e.g. waiting until it serves again), which
    must succeed before the next host restarts."""
    starts = checked or (lambda command: command)
    handler = f" || {{ {on_restart_failure}; }}" if on_restart_failure else ""
    then = f" && {{ {after_restart}; }}" if after_restart else ""
    restart_if = lambda: any(op.did_change() for op in restart_when)  # noqa: E731
    reload_if = lambda: any(op.did_change() for op in reload_when)  # noqa: E731
    if profile.service_manager == "systemd":
        unit = service if "." in service else f"{service}.service"
        # a unit file systemd has not read yet (a run stopped after installing it): read again
        # and its service restarted, though this run changed nothing
        stale_unit = lambda: bool(units_changed) and not unit_file_loaded(unit)  # noqa: E731
        # read in the one shared reading (host_state) instead of SystemdStatus + SystemdEnabled
        want(units=[unit])
        # Enabled first, as the walkthrough does (daemon-reload, enable, restart): `systemctl
        # enable` makes systemd read every unit file again itself, so a unit installed just now
        # needs no daemon-reload of its own then (each costs 0.15-0.4 s on a busy host).
        enabled = server.shell(name=f"{service} enabled at boot", commands=[f"systemctl enable {q(unit)}"],
                               _if=lambda: not unit_enabled(unit))
        if units_changed:
            systemd.daemon_reload(name="Reload systemd units",
                                  _if=lambda: not enabled.did_change()
                                  and (any(op.did_change() for op in units_changed) or stale_unit()))
        restarted = None
        if restart_when:
            # a restart on purpose clears the start-rate count first (START_LIMITS): only a crash
            # loop, not a deploy after a few manual restarts, makes systemd give up
            restarted = server.shell(name=f"Restart {service}", _if=lambda: restart_if() or stale_unit(),
                                     commands=[starts(restart_command("systemd", service, reset_failed=True) + handler)
                                               + then], _serial=serial)
        # a restart that succeeded started it (one that failed stopped this host's run)
        server.shell(name=f"{service} running", commands=[starts(f"systemctl start {q(unit)}")],
                     _if=lambda: not (restarted and restarted.did_change()) and not unit_running(unit))
        if reload_when:
            systemd.service(name=f"Reload {service}", service=service, reloaded=True, _if=reload_if)
        return
    if profile.initd_tool == "update-rc.d":
        # 98 02: the walkthrough's start/stop priorities for OMERO.web
        enable = ["update-rc.d", service, "defaults", *(("98", "02") if service == SERVICE else ())]
    else:
        enable = ["chkconfig", "--add", service]
    initd_enabled(name=f"{service} enabled at boot", service=service, enable_command=enable)
    if restart_when and (handler or checked or then):
        server.shell(name=f"Restart {service}", _if=restart_if,
                     commands=[starts(f"/etc/init.d/{service} restart{handler}") + then], _serial=serial)
    elif restart_when:
        sysvinit.service(name=f"Restart {service}", service=service, restarted=True, _if=restart_if, _serial=serial)
    if checked:
        initd_running(name=f"{service} running", service=service, start=starts(f"/etc/init.d/{service} start"))
    else:
        sysvinit.service(name=f"{service} running", service=service, running=True)
    if reload_when:
        sysvinit.service(name=f"Reload {service}", service=service, reloaded=True, _if=reload_if)
