"""
The health check's step: OMERO.web's login page fetched on the host through NGINX (in NGINX
location mode from Gunicorn), polled until it answers or a timeout; after an upgrade in this
run the previous venv is dropped when healthy and put back when not. Used by the health check
section and by the restart (``operations.maintenance.restart``), which pass in its values.
"""

from __future__ import annotations

from pyinfra import host, state
from pyinfra.api import operation

from model.omero_install import NGINX_ERROR_LOG, OmeroInstall
from model.settings import APPLICATION_SERVER_PORT
from host.facts import LOGIN_PROBE, LoginPage, PathExists, q
from host.service_manager import restart_command
from host.snapshot import existing, want_existence
from host.upgrade import drop_copies, rollback_command


@operation()
def login_page(url: str, timeout: int, install: OmeroInstall | None, python: str, logs: list[tuple[str, str]],
               restart: str | None = None):
    """
    Wait (polling, up to ``timeout`` seconds) for the OMERO.web login page at ``url``.
    After an upgrade in this run (``<venv>.previous`` exists): healthy, the previous venv is
    removed; failing, it is put back with the configuration and records kept before the
    upgrade, OMERO.web restarted with ``restart``, and the check fails.

    + url: URL fetched on the host, through NGINX
    + timeout: seconds to wait
    + install: the OMERO.web install (its venv, when it was upgraded in this run); None on a balancer
    + python: the host's own interpreter that fetches the URL (root's: never the venv's)
    + logs: (log file, account that reads it or "" for root) pairs whose tails are shown on failure
    + restart: command restarting OMERO.web

    Sections call it through ``wait_for_login_page``, which derives these values from the data.

    **Examples:**

    .. code:: python

        login_page(
            name="OMERO.web answers with its login page through NGINX",
            url="http://127.0.0.1:80/webclient/login/",
            timeout=120,
            install=ctx.install,
            python="/usr/bin/python3",
            logs=[("/opt/omero/web/omero-web/var/log/OMEROweb.log", "omero-web"), ("/var/log/nginx/error.log", "")],
            restart=restart_command("systemd", reset_failed=True),
        )
    """
    if not state.is_executing:
        return  # the service may not exist yet when the deploy is planned
    result = host.get_fact(LoginPage, url=url, timeout=timeout, python=python, logs=logs)
    upgraded = install is not None and bool(existing(PathExists, [install.previous_venv]))
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


def wait_for_login_page(install: OmeroInstall | None, settings, python: str, service_manager: str):
    """
    The ``login_page`` operation for this install and data: through NGINX (or Gunicorn in
    NGINX location mode), showing OMERO.web's log and NGINX's error log when it fails, rolling
    an upgrade of this run back with the service manager's restart. Without ``install`` (a load
    balancer): through the balancer's NGINX, to the nodes, showing its error log.

    One call site for both: pyinfra runs the operations of one call site on every host as one
    step, after what comes before it on each of them, so a balancer checks through its nodes
    only once they have been deployed and restarted.

    + install: the OMERO.web install, None on a load balancer
    + settings: the validated data (``model.settings.Settings``)
    + python: the host's own interpreter (the distro profile's)
    + service_manager: systemd or sysvinit (the distro profile's)

    **Examples:**

    .. code:: python

        wait_for_login_page(ctx.install, ctx.settings, ctx.profile.python, ctx.profile.service_manager)
    """
    if install is None:
        through, url, logs = "the balancer", site_url(settings), [(NGINX_ERROR_LOG, "")]
    else:
        through = "Gunicorn (NGINX location mode)" if settings.nginx_mode == "location" else "NGINX"
        url, logs = site_url(settings), [(install.log, settings.user), (NGINX_ERROR_LOG, "")]
        want_existence([install.previous_venv])
    return login_page(
        name=f"OMERO.web answers with its login page through {through}",
        url=url + "/webclient/login/",
        timeout=settings.healthcheck_timeout,
        install=install,
        python=python,
        logs=logs,
        restart=restart_command(service_manager, reset_failed=True),  # (a rollback's)
    )


def wait_command(url: str, timeout: int, python: str) -> str:
    """
    A shell command that waits until ``url`` answers with OMERO.web's login page (fetched with
    the host's own ``python``), failing after ``timeout`` seconds with the last error.
    """
    return (f"out=$({q(python)} -c {q(LOGIN_PROBE)} {q(url)} {int(timeout)} 2>&1); "
            'if [ "$out" != ok ]; then echo "$out" >&2; false; fi')
