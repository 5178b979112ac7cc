"""
Health check at the end of every deploy: GET through NGINX on the configured port must
return the OMERO.web login page. It changes nothing when healthy; when not, the deploy
fails with the last lines of the OMERO.web and NGINX logs.
"""

from __future__ import annotations

from pyinfra import host, state
from pyinfra.api import deploy, operation

from .context import Context, current
from .facts import LoginPage, q

TAGS = ("healthcheck",)
NGINX_ERROR_LOG = "/var/log/nginx/error.log"


@operation()
def login_page(url: str, timeout: int, python: str, logs: list[str]):
    """
    Wait (polling, up to ``timeout`` seconds) for the OMERO.web login page at ``url``.

    + url: URL fetched on the host, through NGINX
    + timeout: seconds to wait
    + python: interpreter on the host that fetches it
    + logs: log files whose tails are shown on failure
    """
    if not state.is_executing:
        return  # the service may not exist yet when the deploy is planned
    result = host.get_fact(LoginPage, url=url, timeout=timeout, python=python, logs=logs)
    if result.splitlines()[:1] != ["ok"]:
        yield f"echo {q('OMERO.web health check failed:' + chr(10) + result)} >&2; exit 1"


@deploy("OMERO.web health check")
def healthcheck(ctx: Context | None = None) -> None:
    ctx = ctx or current()
    if not ctx.selected(*TAGS):
        return
    settings = ctx.settings
    login_page(
        name="OMERO.web answers with its login page through NGINX",
        url=f"http://127.0.0.1:{settings.nginx_port}/",
        timeout=settings.healthcheck_timeout,
        python=f"{settings.venv}/bin/python",
        logs=[f"{settings.omerodir}/var/log/OMEROweb.log", NGINX_ERROR_LOG],
    )
