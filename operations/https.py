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

from pyinfra import host
from pyinfra.api import deploy, operation
from pyinfra.operations import files

from model.features import CERTIFICATE, KEY, TLS_DIR
from host.context import Context, current
from host.facts import TlsCertificate, q
from host.snapshot import absent, want
from host.uploads import private_file

TAGS = ("https", "nginx")


def redirect_site_path(site: str) -> str:
    """The HTTP-to-HTTPS redirect site, beside the OMERO.web site."""
    return site.rsplit("/", 1)[0] + "/omeroweb-http-redirect.conf"


def redirect_site(port: int, server_name: str, https_port: int) -> str:
    target = "https://$host" + ("" if https_port == 443 else f":{https_port}") + "$request_uri"
    return (
        "# Managed by omeroweb-deploy: plain HTTP answers with a redirect to OMERO.web over HTTPS.\n"
        "server {\n"
        f"    listen {port};\n"
        f"    server_name {server_name};\n"
        "    server_tokens off;\n"
        f"    return 301 {target};\n"
        "}\n"
    )


#: Days a self-signed certificate is valid: Mozilla's configurations allow at most 366.
SELF_SIGNED_DAYS = 365
MAX_LIFETIME_DAYS = 366
#: A self-signed certificate is made again this long before it ends (on the deploy run then).
RENEW_BEFORE_SECONDS = 30 * 86400


def certificate_wanted(state: dict) -> bool:
    """
    Whether a self-signed pair must be made, from ``TlsCertificate``: the certificate or key
    missing, or a self-signed certificate (the kind this operation makes) ending within
    ``RENEW_BEFORE_SECONDS`` or valid longer than ``MAX_LIFETIME_DAYS`` (the 825 days of older
    releases of this deploy). Any other certificate found there is left alone.
    """
    if not (state["certificate"] and state["key"]):
        return True
    if not state["self_signed"]:
        return False
    return state["ending"] or state["lifetime_days"] is None or state["lifetime_days"] > MAX_LIFETIME_DAYS


@operation()
def self_signed_certificate(certificate: str, key: str, common_name: str):
    """
    Make a self-signed server certificate (not a CA's) and key (RSA 2048, ``SELF_SIGNED_DAYS``
    days) when either is missing, or again when the self-signed certificate ends within
    ``RENEW_BEFORE_SECONDS`` or is valid longer than ``MAX_LIFETIME_DAYS``
    (``certificate_wanted``); written beside the old pair (root's folder), then renamed over it.

    + certificate: PEM certificate path
    + key: PEM key path (0600)
    + common_name: subject CN and DNS name (127.0.0.1 is added as an IP name)

    **Examples:**

    .. code:: python

        self_signed_certificate(name="Make a self-signed TLS certificate",
                                certificate="/etc/nginx/omeroweb-tls/omeroweb.crt",
                                key="/etc/nginx/omeroweb-tls/omeroweb.key", common_name="localhost")
    """
    state = host.get_fact(TlsCertificate, certificate=certificate, key=key, seconds=RENEW_BEFORE_SECONDS)
    if not certificate_wanted(state):
        return
    new_key, new_certificate = q(key + ".new"), q(certificate + ".new")
    yield (
        f"umask 077 && openssl req -x509 -newkey rsa:2048 -nodes -days {SELF_SIGNED_DAYS} "
        f"-keyout {new_key} -out {new_certificate} "
        f"-subj {q('/CN=' + common_name)} -addext {q(f'subjectAltName=DNS:{common_name},IP:127.0.0.1')} "
        # a server's certificate, not a CA's (openssl's default for -x509): verifiers following
        # the Web PKI rules (sslyze's, through cryptography) refuse a CA certificate as a server's
        f"-addext 'basicConstraints=critical,CA:FALSE' -addext 'keyUsage=critical,digitalSignature,keyEncipherment' "
        f"-addext extendedKeyUsage=serverAuth "
        f"&& chmod 644 {new_certificate} && mv -f {new_key} {q(key)} && mv -f {new_certificate} {q(certificate)}"
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
    name = settings.nginx_server_name.split()[0]
    changes = [files.directory(name=f"Create {TLS_DIR}", path=TLS_DIR, user="root", group="root", mode="700")]
    if settings.tls_self_signed:
        changes.append(self_signed_certificate(
            name="Make a self-signed TLS certificate", certificate=CERTIFICATE, key=KEY,
            common_name="localhost" if name in ("_", "localhost") else name,
        ))
    else:
        changes.append(files.put(name="Install the TLS certificate", src=settings.tls_certificate,
                                 dest=CERTIFICATE, user="root", group="root", mode="644"))
        # a secret: through owner-only places only, hash-compared, never diffed (-vvv --diff)
        with open(settings.tls_key) as handle:
            key = handle.read()
        changes.append(private_file(name="Install the TLS private key", dest=KEY, content=key, mode="600"))
    changes.append(files.put(
        name="Install the HTTP-to-HTTPS redirect site",
        src=StringIO(redirect_site(settings.nginx_port, settings.nginx_server_name, settings.https_port)),
        dest=redirect_path, user="root", group="root", mode="644",
    ))
    return changes
