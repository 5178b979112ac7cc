"""
Walkthrough "Maintaining OMERO.web": explicit actions, each run alone by dotted path (and
each reports a change, since it acts):

    pyinfra inventories/<site>.py operations.maintenance.clearsessions
    pyinfra inventories/<site>.py operations.maintenance.restart
"""

from __future__ import annotations

from pyinfra.api import deploy
from pyinfra.operations import server

from .context import Context, current
from .facts import omero_cmd
from .healthcheck import healthcheck
from .service import restart_command


@deploy("OMERO.web clear sessions")
def clearsessions(ctx: Context | None = None) -> None:
    """Purge expired sessions with OMERO.web's management command, as the OMERO.web user."""
    ctx = ctx or current()
    server.shell(
        name="Purge the OMERO.web session cache (omero web clearsessions)",
        commands=[omero_cmd(ctx.settings, "web", "clearsessions")],
    )


@deploy("OMERO.web restart")
def restart(ctx: Context | None = None) -> None:
    """Restart OMERO.web (systemd unit or init.d script), then wait for the login page."""
    ctx = ctx or current()
    server.shell(
        name="Restart OMERO.web with the host's service manager",
        commands=[restart_command(ctx.profile.service_manager)],
    )
    healthcheck(ctx)
