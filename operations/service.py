"""
Walkthrough "Automatically running OMERO.web": the documented ``omero-web.service`` unit
when systemd is PID 1, otherwise the documented init.d script registered with
update-rc.d / chkconfig. Enabled at boot, restarted only when something it runs changed.

The service manager comes from the distro profile (facts: what PID 1 is), never from
pyinfra's ``server.service``, which picks systemd whenever ``systemctl`` exists.
"""

from __future__ import annotations

from pathlib import Path

from pyinfra import host
from pyinfra.api import deploy, operation
from pyinfra.facts.files import FindLinks
from pyinfra.operations import files, systemd, sysvinit

from .context import Context, current
from .facts import q

TAGS = ("service", "config")  # a configuration change is applied by a restart
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
SERVICE = "omero-web"


def restart_command(service_manager: str) -> str:
    """The command restarting OMERO.web with the host's service manager."""
    if service_manager == "systemd":
        return f"systemctl restart {SERVICE}"
    return f"/etc/init.d/{SERVICE} restart"


@operation()
def initd_enabled(service: str, enable_command: list[str]):
    """
    Register an init.d script for boot unless start links exist.

    + service: script name in /etc/init.d
    + enable_command: the distro's registration command (update-rc.d / chkconfig)
    """
    if host.get_fact(FindLinks, path="/etc", path_match=f"/etc/rc*.d/S*{service}"):
        return
    yield " ".join(q(part) for part in enable_command)
    if enable_command[0] == "chkconfig":
        yield f"chkconfig {q(service)} on"


def ensure_service(ctx: Context, service: str, restart_when=(), reload_when=()):
    """Service enabled and running; restarted / reloaded when any given operation changed."""
    restart_if = lambda: any(op.did_change() for op in restart_when)  # noqa: E731
    reload_if = lambda: any(op.did_change() for op in reload_when)  # noqa: E731
    if ctx.profile.service_manager == "systemd":
        if restart_when:
            systemd.service(name=f"Restart {service}", service=service, restarted=True, _if=restart_if)
        systemd.service(name=f"{service} enabled and running", service=service, running=True, enabled=True)
        if reload_when:
            systemd.service(name=f"Reload {service}", service=service, reloaded=True, _if=reload_if)
        return
    if ctx.profile.initd_tool == "update-rc.d":
        # 98 02: the walkthrough's start/stop priorities for OMERO.web
        enable = ["update-rc.d", service, "defaults", *(("98", "02") if service == SERVICE else ())]
    else:
        enable = ["chkconfig", "--add", service]
    initd_enabled(name=f"{service} enabled at boot", service=service, enable_command=enable)
    if restart_when:
        sysvinit.service(name=f"Restart {service}", service=service, restarted=True, _if=restart_if)
    sysvinit.service(name=f"{service} running", service=service, running=True)
    if reload_when:
        sysvinit.service(name=f"Reload {service}", service=service, reloaded=True, _if=reload_if)


@deploy("OMERO.web service")
def service(ctx: Context | None = None, app_changes: list | None = None) -> list:
    """The unit or init.d script, enabled, running, restarted when ``app_changes`` changed."""
    ctx = ctx or current()
    if not ctx.selected(*TAGS):
        return []
    settings, profile = ctx.settings, ctx.profile
    variables = dict(omero_user=settings.user, omerodir=settings.omerodir, venv=settings.venv)
    if profile.service_manager == "systemd":
        script = files.template(
            name="Install the omero-web systemd unit",
            src=str(TEMPLATES / "omero-web.service.j2"),
            dest=f"/etc/systemd/system/{SERVICE}.service",
            mode="644",
            **variables,
        )
        systemd.daemon_reload(name="Reload systemd units", _if=script.did_change)
    else:
        script = files.template(
            name="Install the omero-web init.d script",
            src=str(TEMPLATES / "omero-web.init.j2"),
            dest=f"/etc/init.d/{SERVICE}",
            mode="755",
            **variables,
        )
    ensure_service(ctx, SERVICE, restart_when=[script, *(app_changes or [])])
    return [script]
