"""
Health check at the end of every deploy: GET through NGINX on the configured port must
return the OMERO.web login page (on a load balancer: through it, from the nodes) (in NGINX location mode, from Gunicorn: the server block
that serves it is the sysadmin's). It changes nothing when healthy; when not, the deploy
fails with the last lines of the OMERO.web and NGINX logs.
"""

from __future__ import annotations

from pyinfra.api import deploy

from host.context import Context, current
from host.health import wait_for_login_page

TAGS = ("healthcheck",)


@deploy("OMERO.web health check")
def healthcheck(ctx: Context | None = None) -> None:
    """The login page on an OMERO.web node through its NGINX, on a load balancer through it."""
    ctx = ctx or current()
    if not ctx.selected(*TAGS) or not {"web", "balancer"} & ctx.roles:
        return
    install = ctx.install if "web" in ctx.roles else None
    wait_for_login_page(install, ctx.settings, ctx.profile.python, ctx.profile.service_manager)
