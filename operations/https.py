"""
HTTPS in front of OMERO.web (the walkthroughs leave it to the site; a production site
needs it): the certificate and key from the control machine (or a self-signed pair made
on the host, for testing), the generated OMERO.web site served on ``omero_web_https_port``
with Mozilla's "intermediate" TLS configuration (guidelines 6.0: TLS 1.2 and 1.3, its
ECDHE AEAD cipher list, client cipher preference, a 1-day shared session cache, no session
tickets, HSTS for two years), plain HTTP answered with a redirect to it, and OMERO.web told
it is behind HTTPS: secure session and CSRF cookies, ``omero.web.secure_proxy_ssl_header``
(the generated site passes ``X-Forwarded-Proto``) and ``omero.web.secure`` (which makes
OMERO.web keep its OMERO.server connections encrypted as well).

Mozilla's curves (``ssl_ecdh_curve X25519:prime256v1:secp384r1``) where NGINX's OpenSSL has
X25519 (1.1.0 on): X25519 left out on OpenSSL 1.0.2 (CentOS 7), whose ``nginx -t`` fails
naming it. Not taken from Mozilla's configuration: OCSP stapling (certificate-dependent;
self-signed and private-CA certificates have no responder). A self-signed certificate is
valid 365 days (Mozilla's limit is 366) and made again on the deploy run in its last 30 days.
"""

from __future__ import annotations

from io import StringIO

from pyinfra.api import deploy
from pyinfra.operations import files

from host.context import Context, current
from host.snapshot import absent, want
from host.tls import redirect_target, tls_files

TAGS = ("https", "nginx")


def redirect_site_path(site: str) -> str:
    """The HTTP-to-HTTPS redirect site, beside the OMERO.web site."""
    return site.rsplit("/", 1)[0] + "/omeroweb-http-redirect.conf"


def redirect_site(port: int, server_name: str, https_port: int) -> str:
    target = redirect_target(https_port)
    return (
        "# Managed by omeroweb-deploy: plain HTTP answers with a redirect to OMERO.web over HTTPS.\n"
        "server {\n"
        f"    listen {port};\n"
        f"    server_name {server_name};\n"
        "    server_tokens off;\n"
        f"    return 301 {target};\n"
        "}\n"
    )


@deploy("HTTPS for OMERO.web")
def https(ctx: Context | None = None) -> list:
    """Certificate and key installed, HTTP redirect site present (or both removed when HTTPS is off)."""
    ctx = ctx or current()
    if not ctx.selected(*TAGS):
        return []
    settings, profile = ctx.settings, ctx.profile
    redirect_path = redirect_site_path(profile.nginx_site)
    if not settings.https:
        want(files=[redirect_path])
        removed = files.file(name="No HTTP-to-HTTPS redirect site", path=redirect_path, present=False,
                             _if=lambda: not absent(redirect_path))
        return [removed]
    changes = tls_files(settings)
    changes.append(files.put(
        name="Install the HTTP-to-HTTPS redirect site",
        src=StringIO(redirect_site(settings.nginx_port, settings.nginx_server_name, settings.https_port)),
        dest=redirect_path, user="root", group="root", mode="644",
    ))
    return changes
