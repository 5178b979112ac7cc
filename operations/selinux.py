"""
Walkthrough "SELinux": on the RHEL family with SELinux not Disabled, the policy tools,
``httpd_read_user_content`` and ``httpd_enable_homedirs`` on (persistently), and the port
NGINX connects to, Gunicorn's ``omero.web.application_server.port`` (4080 unless the data
says otherwise), labelled ``http_port_t`` as the walkthrough's ``semanage port -a -t
http_port_t -p tcp 4080`` does: without it an enforcing policy denies NGINX the upstream and
every page is a 502. NGINX's own listen ports (HTTP, HTTPS) are labelled too when the policy
does not already allow them (80 and 443 are). Every step checks the current state first, so
re-runs do not fail on an existing port label as the walkthrough's ``semanage port -a`` would.
"""

from __future__ import annotations

from pyinfra.api import deploy
from pyinfra.operations import selinux as se

from model.settings import APPLICATION_SERVER_PORT
from host.context import Context, current
from host.packages import install_packages

TAGS = ("selinux",)
BOOLEANS = ("httpd_read_user_content", "httpd_enable_homedirs")


def labelled_ports(settings) -> list[int]:
    """The TCP ports NGINX must be allowed to use: Gunicorn's upstream, then its own listen ports."""
    upstream = settings.application_server_port or APPLICATION_SERVER_PORT
    listen = [settings.nginx_port, *((settings.https_port,) if settings.https else ())]
    return list(dict.fromkeys([upstream, *listen]))


@deploy("SELinux for OMERO.web")
def selinux(ctx: Context | None = None) -> list:
    ctx = ctx or current()
    profile = ctx.profile
    if not ctx.selected(*TAGS) or profile.family != "rhel" or not profile.selinux_enforcing:
        return []
    install_packages(profile.package_manager, profile.selinux_packages, "Install the SELinux policy tools",
                     ctx.settings.package_lock_timeout)
    for name in BOOLEANS:
        se.boolean(name=f"SELinux boolean {name} on", bool_name=name, value="on", persistent=True)
    return [
        se.port(name=f"Label port {port} http_port_t", protocol="tcp", port_num=port, se_type="http_port_t")
        for port in labelled_ports(ctx.settings)
    ]
