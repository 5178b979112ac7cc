"""
Health check at the end of every deploy: GET through NGINX on the configured port must
return the OMERO.web login page (in NGINX location mode, from Gunicorn: the server block
that serves it is the sysadmin's). It changes nothing when healthy; when not, the deploy
fails with the last lines of the OMERO.web and NGINX logs.
"""

from __future__ import annotations

from pyinfra import host, state
from pyinfra.api import deploy, operation

from .context import Context, current
from .facts import LoginPage, PathExists, q
from .host_state import existing, want_existence
from .install import OmeroInstall
from .service_manager import restart_command
from .settings import APPLICATION_SERVER_PORT
from .upgrade import drop_copies, rollback_command

TAGS = ("healthcheck",)
NGINX_ERROR_LOG = "/var/log/nginx/error.log"


@operation()
def login_page(url: str, timeout: int, install: OmeroInstall, python: str, logs: list[tuple[str, str]],
               restart: str | None = None):
    """
    Wait (polling, up to ``timeout`` seconds) for the OMERO.web login page at ``url``.
    After an upgrade in this run (``<venv>.previous`` exists): healthy, the previous venv is
    removed; failing, it is put back with the configuration and records kept before the
    upgrade, OMERO.web restarted with ``restart``, and the check fails.

    + url: URL fetched on the host, through NGINX
    + timeout: seconds to wait
    + install: the OMERO.web install (its venv, when it was upgraded in this run)
    + python: the host's own interpreter that fetches the URL (root's: never the venv's)
    + logs: (log file, account that reads it or "" for root) pairs whose tails are shown on failure
    + restart: command restarting OMERO.web
    """
    if not state.is_executing:
        return  # the service may not exist yet when the deploy is planned
    result = host.get_fact(LoginPage, url=url, timeout=timeout, python=python, logs=logs)
    upgraded = bool(existing(PathExists, [install.previous_venv]))
    healthy = result.splitlines()[:1] == ["ok"]
    if healthy:
        if upgraded:
            yield drop_copies(install)
        return
    message = "OMERO.web health check failed:\n" + result
    if upgraded:
        yield rollback_command(install, restart, message)
        return
    yield f"echo {q(message)} >&2; exit 1"


def site_url(settings) -> str:
    """
    OMERO.web's root URL through NGINX, as seen on the host itself; in NGINX location mode
    Gunicorn's own (the server block that includes the locations is the sysadmin's).
    """
    if settings.nginx_mode == "location":
        return f"http://127.0.0.1:{settings.application_server_port or APPLICATION_SERVER_PORT}{settings.prefix or ''}"
    if settings.https:
        return f"https://127.0.0.1:{settings.https_port}{settings.prefix or ''}"
    return f"http://127.0.0.1:{settings.nginx_port}{settings.prefix or ''}"


@deploy("OMERO.web health check")
def healthcheck(ctx: Context | None = None) -> None:
    ctx = ctx or current()
    if not ctx.selected(*TAGS):
        return
    settings = ctx.settings
    through = "Gunicorn (NGINX location mode)" if settings.nginx_mode == "location" else "NGINX"
    want_existence([ctx.install.previous_venv])
    login_page(
        name=f"OMERO.web answers with its login page through {through}",
        url=site_url(settings) + "/webclient/login/",
        timeout=settings.healthcheck_timeout,
        install=ctx.install,
        python=ctx.profile.python,
        logs=[(ctx.install.log, settings.user), (NGINX_ERROR_LOG, "")],
        restart=restart_command(ctx.profile.service_manager, reset_failed=True),  # (a rollback's)
    )
