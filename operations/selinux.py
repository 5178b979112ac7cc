"""
Walkthrough "SELinux": on the RHEL family with SELinux not Disabled, the policy tools,
``httpd_read_user_content`` and ``httpd_enable_homedirs`` on (persistently), and the NGINX
port (and the HTTPS port) labelled ``http_port_t``. Every step checks the current state first, so re-runs do
not fail on an existing port label as the walkthrough's ``semanage port -a`` would.
"""

from __future__ import annotations

from pyinfra.api import deploy
from pyinfra.operations import selinux as se

from .context import Context, current
from .prerequisites import install_packages

TAGS = ("selinux",)
BOOLEANS = ("httpd_read_user_content", "httpd_enable_homedirs")


@deploy("SELinux for OMERO.web")
def selinux(ctx: Context | None = None) -> list:
    ctx = ctx or current()
    profile = ctx.profile
    if not ctx.selected(*TAGS) or profile.family != "rhel" or not profile.selinux_enforcing:
        return []
    install_packages(ctx, profile.selinux_packages, "Install the SELinux policy tools")
    for name in BOOLEANS:
        se.boolean(name=f"SELinux boolean {name} on", bool_name=name, value="on", persistent=True)
    ports = [ctx.settings.nginx_port, *((ctx.settings.https_port,) if ctx.settings.https else ())]
    labelled = [
        se.port(name=f"Label port {port} http_port_t", protocol="tcp", port_num=port, se_type="http_port_t")
        for port in ports
    ]
    return labelled
