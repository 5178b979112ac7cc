"""
Walkthrough "Maintaining OMERO.web".

Part of every deploy (``sessions`` tag): the session cookie properties
(``omero.web.session_expire_at_browser_close``, ``omero.web.session_cookie_age``) and,
with ``omero_web_clearsessions``, a daily ``omero web clearsessions`` run as the OMERO.web
user: a systemd timer (``omero-web-clearsessions.timer``) where systemd is PID 1, else a
job in ``/etc/cron.d`` (with the distro's cron installed and running). Turning it off
removes the timer or the job.

Explicit actions, each run alone by dotted path (and each reports a change, since it acts):

    pyinfra inventories/<site>.py operations.maintenance.clearsessions
    pyinfra inventories/<site>.py operations.maintenance.restart
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy, operation
from pyinfra.operations import files, server

from model.omero_install import OmeroInstall
from host.context import Context, current
from host.facts import PathExists, q
from host.health import wait_for_login_page
from host.service_manager import ensure_service, restart_command
from host.uploads import root_template
from model.units import (CLEARSESSIONS_CRON_FILE, CLEARSESSIONS_JOB, SYSTEMD_DIR, TEMPLATES,
                         clearsessions_job_file, unit_variables)

TAGS = ("sessions",)
JOB, CRON_FILE = CLEARSESSIONS_JOB, CLEARSESSIONS_CRON_FILE


@operation()
def remove_timer(job: str):
    """
    Stop, disable and remove a systemd timer and its service, if installed.

    + job: unit name without suffix

    **Examples:**

    .. code:: python

        remove_timer(
            name="No omero-web-clearsessions timer",
            job="omero-web-clearsessions",
        )
    """
    paths = [f"{SYSTEMD_DIR}/{job}.timer", f"{SYSTEMD_DIR}/{job}.service"]
    if not host.get_fact(PathExists, paths=paths):
        return
    yield (
        f"systemctl disable --now {q(job + '.timer')} || true; rm -f {' '.join(q(p) for p in paths)}; "
        "systemctl daemon-reload"
    )


def cron_escape(command: str) -> str:
    """A shell command as a crontab line's command: ``%`` is a newline there unless escaped."""
    if any(c in command for c in "\r\n\0"):
        raise ValueError(f"a cron command is one line: {command!r}")
    return command.replace("%", "\\%")


def clearsessions_command(install: OmeroInstall) -> str:
    """The command the daily job runs (as the OMERO.web user already), quoted for sh and cron."""
    # TMPDIR: where OMERO.web keeps its file sessions (the init.d script's, the unit's)
    command = (f"OMERODIR={q(install.omerodir)} TMPDIR={q(install.tmpdir)} PATH={q(install.bin)}:/usr/bin:/bin "
               f"{q(install.omero)} web clearsessions")
    return cron_escape(command)


@deploy("OMERO.web session maintenance")
def sessions(ctx: Context | None = None) -> None:
    """The daily clearsessions timer or cron job, present or absent as the data says."""
    ctx = ctx or current()
    if not ctx.selected(*TAGS):
        return
    settings, profile = ctx.settings, ctx.profile
    hour, minute = settings.clearsessions_time.split(":")
    if profile.service_manager == "systemd":
        if settings.clearsessions:
            variables = unit_variables(ctx.install, ctx.profile.systemd_version)
            # omero-web.service's sandbox and TMPDIR, but not its runtime folder: systemd
            # removes a oneshot's RuntimeDirectory when it ends, under the running service
            variables["hardening"] = [d for d in variables["hardening"]
                                      if not d.startswith(("RuntimeDirectory", 'Environment="XDG_RUNTIME_DIR='))]
            units = [
                root_template(name=f"Install the {JOB} unit", src=str(TEMPLATES / f"{JOB}.service.j2"),
                               dest=f"{SYSTEMD_DIR}/{JOB}.service", mode="644", **variables),
                root_template(name=f"Install the {JOB} timer", src=str(TEMPLATES / f"{JOB}.timer.j2"),
                               dest=clearsessions_job_file("systemd"), mode="644", time=f"{hour}:{minute}"),
            ]
            ensure_service(profile, f"{JOB}.timer", units_changed=units)
        else:
            remove_timer(name=f"No {JOB} timer", job=JOB)
        return
    if settings.clearsessions:
        root_template(name=f"Install the daily {JOB} cron job", src=str(TEMPLATES / f"{JOB}.cron.j2"),
                       dest=clearsessions_job_file(profile.service_manager), mode="644", omero_user=settings.user,
                       hour=int(hour), minute=int(minute), command=clearsessions_command(ctx.install))
        ensure_service(profile, profile.cron_service)
    else:
        files.file(name=f"No {JOB} cron job", path=CRON_FILE, present=False)


@deploy("OMERO.web clear sessions")
def clearsessions(ctx: Context | None = None) -> None:
    """Purge expired sessions with OMERO.web's management command, as the OMERO.web user."""
    ctx = ctx or current()
    # the unit and the init.d script keep OMERO.web's file sessions in its own TMPDIR
    server.shell(name="Purge the OMERO.web session cache (omero web clearsessions)",
                 commands=[ctx.install.omero_cmd("web", "clearsessions", tmpdir=ctx.install.tmpdir)])


@deploy("OMERO.web restart")
def restart(ctx: Context | None = None) -> None:
    """Restart OMERO.web (systemd unit or init.d script), then wait for the login page."""
    ctx = ctx or current()
    server.shell(
        name="Restart OMERO.web with the host's service manager",
        # OMERO.web's code starts as its account: only while the venv is root's alone (``trusted``)
        commands=[ctx.install.trusted(restart_command(ctx.profile.service_manager))],
    )
    if ctx.selected("healthcheck"):
        wait_for_login_page(ctx.install, ctx.settings, ctx.profile.python, ctx.profile.service_manager)
