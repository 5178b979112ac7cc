"""
The TLS files NGINX serves HTTPS with, wherever TLS ends (a node's site, the load balancer):
the certificate and key from the control machine, or a self-signed pair made on the host (for
testing), in a root-only folder (``model.features.TLS_DIR``).
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import operation
from pyinfra.operations import files

from model.features import CERTIFICATE, KEY, TLS_DIR
from host.facts import TlsCertificate, q
from host.uploads import private_file

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


def redirect_target(https_port: int) -> str:
    """Where plain HTTP is sent: the same host and path over HTTPS (NGINX variables)."""
    return "https://$host" + ("" if https_port == 443 else f":{https_port}") + "$request_uri"


def tls_files(settings) -> list:
    """
    The TLS folder and the certificate and key the data names (or a self-signed pair made on
    the host with ``omero_web_tls_self_signed``); returns the operations (change markers).

    + settings: the validated data (``model.settings.Settings``): ``nginx_server_name``,
      ``tls_self_signed``, ``tls_certificate``, ``tls_key``

    **Examples:**

    .. code:: python

        changes = tls_files(ctx.settings)
    """
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
    return changes
