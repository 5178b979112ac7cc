"""
What each optional feature of the walkthroughs adds to the shared steps, in one pure module
(no pyinfra, no host): OMERO.web properties to set and list items to append, pip
requirements, OS packages, server-level NGINX directives and secret property names. The
config, omeroweb, prerequisites and NGINX sections take the union (``combined``), so each
fact has one source. A feature with host steps of its own (the Redis server, the TLS files,
the clearsessions job, the templates folder, app removal) also has a section module of the
same name; that module reads its constants from here.

Every feature here is off unless the data turns it on (the hardening headers and the worker
count apply to every deploy), and turning one off removes what it added: the config
section unsets what is no longer contributed (its managed-names rule).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import urlsplit, urlunsplit

from model import web_config
from model.checks import is_local
from model.distro_profile import DistroProfile
from model.omero_install import HOST_SECRET_TOKEN, REDIS_AUTH_CONF
from model.settings import Settings
from model.tier import Tier, shared_secret_key


@dataclass(frozen=True)
class Contribution:
    """What one feature adds to the shared steps (see the module docstring)."""

    set: dict = field(default_factory=dict)
    append: dict = field(default_factory=dict)
    pip: tuple = ()
    packages: tuple = ()
    nginx: tuple = ()
    secrets: tuple = ()
    #: A root-only file on the host whose secret ``HOST_SECRET_TOKEN`` stands for in ``set``.
    host_secret_file: str | None = None


# --- Gunicorn -------------------------------------------------------------------------------
# Walkthrough "Configuring Gunicorn" and its advanced options: worker count (2 x cores + 1 by
# default, from the host's facts), extra arguments, sync workers with threads, or async
# gevent workers with their connection limit, gevent installed and
# omero.web.application_server.max_requests 0, as the walkthrough requires.


def gunicorn(s: Settings, profile: DistroProfile) -> Contribution:
    to_set = {"omero.web.wsgi_workers": s.wsgi_workers or 2 * profile.cpus + 1}
    pip: tuple = ()
    if s.wsgi_worker_class:
        to_set["omero.web.wsgi_worker_class"] = s.wsgi_worker_class
    if s.wsgi_args:
        to_set["omero.web.wsgi_args"] = s.wsgi_args
    if s.wsgi_threads:
        to_set["omero.web.wsgi_threads"] = s.wsgi_threads
    if s.wsgi_worker_class == "gevent":
        pip = (s.gevent_spec,)
        to_set["omero.web.application_server.max_requests"] = 0
        if s.wsgi_worker_connections:
            to_set["omero.web.wsgi_worker_connections"] = s.wsgi_worker_connections
    if s.application_server_port:
        to_set["omero.web.application_server.port"] = s.application_server_port
    return Contribution(set=to_set, pip=pip)


# --- Redis ----------------------------------------------------------------------------------
# Walkthrough "Configuring OMERO.web", session engine: django-redis in the release that fits
# the installed Django (the walkthrough's <4.9 pin is stale), omero.web.caches and the cache
# session engine; the distro's Redis server when the URL is local (operations/redis.py). A
# local Redis requires a password (it holds every session, pickled: any local account could
# read them or plant code for OMERO.web to unpickle): the URL's, or one made on the host that
# never leaves it (HOST_SECRET_TOKEN in the URL stands for it). A password makes
# omero.web.caches a secret.

CACHE_SESSIONS = "django.contrib.sessions.backends.cache"


def generated_password(url: str) -> bool:
    """Whether the Redis at ``url`` is this host's and its password is made on the host (none in the URL)."""
    return is_local(url) and not urlsplit(url).password


def with_password(url: str, password: str) -> str:
    """``url`` with ``password`` in its user information (its user name, if any, kept)."""
    parts = urlsplit(url)
    netloc = f"{parts.username or ''}:{password}@{parts.netloc.rpartition('@')[2]}"
    return urlunsplit(parts._replace(netloc=netloc))


def redis(s: Settings, profile: DistroProfile) -> Contribution:
    if not s.redis:
        return Contribution()
    generated = generated_password(s.redis_url)
    location = with_password(s.redis_url, HOST_SECRET_TOKEN) if generated else s.redis_url
    caches = {"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": location}}
    return Contribution(
        set={"omero.web.caches": caches, "omero.web.session_engine": CACHE_SESSIONS},
        pip=(s.django_redis_spec,),
        packages=(profile.redis_package,) if is_local(s.redis_url) else (),
        secrets=("omero.web.caches",) if generated or urlsplit(s.redis_url).password else (),
        host_secret_file=REDIS_AUTH_CONF if generated else None,
    )


# --- CORS -----------------------------------------------------------------------------------
# Walkthrough "Setting up CORS": django-cors-headers in the release the installed omero-web
# accepts (the walkthrough's <3.3 pin is stale), its two middleware entries, and either an
# origin whitelist or allow-all (validation refuses both at once).


def cors(s: Settings, profile: DistroProfile) -> Contribution:
    if not (s.cors_origins or s.cors_allow_all):
        return Contribution()
    if s.cors_allow_all:
        to_set = {"omero.web.cors_origin_allow_all": True}
    else:
        to_set = {"omero.web.cors_origin_whitelist": list(s.cors_origins)}
    return Contribution(set=to_set, append=web_config.appended_from(web_config.cors_appends(s)), pip=(s.cors_headers_spec,))


# --- Apps -----------------------------------------------------------------------------------
# Walkthrough "Installing OMERO.web apps": each app's pip spec, its Django app and UI items
# appended, its own properties; removing one is operations/apps.py's.


def apps(s: Settings, profile: DistroProfile) -> Contribution:
    if not s.apps:
        return Contribution()
    to_set: dict = {}
    for app in s.apps:
        to_set.update(app["config"])
    return Contribution(set=to_set, append=web_config.appended_from(web_config.app_appends(s)),
                        pip=tuple(app["spec"] for app in s.apps))


# --- HTTPS ----------------------------------------------------------------------------------
# Mozilla's "intermediate" TLS configuration (guidelines 6.0) in the generated site, and
# OMERO.web told it is behind HTTPS; the certificate, key and redirect site are
# operations/https.py's.

TLS_DIR = "/etc/nginx/omeroweb-tls"
CERTIFICATE = f"{TLS_DIR}/omeroweb.crt"
KEY = f"{TLS_DIR}/omeroweb.key"
PROTOCOLS = "TLSv1.2 TLSv1.3"
#: Mozilla's intermediate TLS 1.2 cipher list (guidelines 6.0; TLS 1.3 suites are OpenSSL's).
CIPHERS = ":".join((
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
))
HSTS_MAX_AGE = 63072000  # two years, as Mozilla's configuration
#: Mozilla's intermediate curves (guidelines 6.0); NGINX's default (``auto``) adds secp521r1 and X448.
CURVES = ("X25519", "prime256v1", "secp384r1")


def tls_curves(profile: DistroProfile) -> tuple[str, ...]:
    """Mozilla's curves the host's OpenSSL knows: X25519 needs 1.1.0 (``nginx -t`` fails naming it
    on 1.0.2, as CentOS 7's); an unknown release (nothing installed yet) is a current one."""
    if profile.openssl_version is not None and profile.openssl_version < (1, 1):
        return tuple(c for c in CURVES if c != "X25519")
    return CURVES


def https(s: Settings, profile: DistroProfile) -> Contribution:
    if not s.https:
        return Contribution()
    return Contribution(
        set={
            "omero.web.secure": True,
            "omero.web.session_cookie_secure": True,
            "omero.web.csrf_cookie_secure": True,
            "omero.web.secure_proxy_ssl_header": ["HTTP_X_FORWARDED_PROTO", "https"],
        },
        packages=("openssl",) if s.tls_self_signed else (),
        nginx=(
            f"ssl_certificate {CERTIFICATE};",
            f"ssl_certificate_key {KEY};",
            f"ssl_protocols {PROTOCOLS};",
            f"ssl_ciphers {CIPHERS};",
            "ssl_prefer_server_ciphers off;",
            f"ssl_ecdh_curve {':'.join(tls_curves(profile))};",
            "ssl_session_timeout 1d;",
            "ssl_session_cache shared:omeroweb_tls:10m;",
            "ssl_session_tickets off;",
            # sent once, by NGINX, on every response (redirects and error pages included)
            "proxy_hide_header Strict-Transport-Security;",
            f'add_header Strict-Transport-Security "max-age={HSTS_MAX_AGE}" always;',
        ),
    )


# --- Sessions -------------------------------------------------------------------------------
# Walkthrough "Maintaining OMERO.web": the session cookie properties; the daily clearsessions
# job (operations/maintenance.py) needs cron where systemd is not PID 1.


def sessions(s: Settings, profile: DistroProfile) -> Contribution:
    to_set = {}
    if s.session_expire_at_browser_close is not None:
        to_set["omero.web.session_expire_at_browser_close"] = s.session_expire_at_browser_close
    if s.session_cookie_age is not None:
        to_set["omero.web.session_cookie_age"] = s.session_cookie_age
    cron = s.clearsessions and profile.service_manager != "systemd"
    return Contribution(set=to_set, packages=(profile.cron_package,) if cron else ())


# --- UI customization -----------------------------------------------------------------------
# Walkthrough "OMERO.web UI customization" (web side): the templates folder in
# omero.web.template_dirs (copied by operations/customization.py), index page, base include,
# login logo and redirect, top links, "Open with" items, the client downloads on the login page.

TEMPLATE_PROPERTIES = (
    ("index_template", "omero.web.index_template"),
    ("base_include_template", "omero.web.base_include_template"),
    ("login_logo", "omero.web.login_logo"),
)


def customization(s: Settings, profile: DistroProfile) -> Contribution:
    to_set: dict = {prop: getattr(s, key) for key, prop in TEMPLATE_PROPERTIES if getattr(s, key)}
    if s.login_redirect:
        to_set["omero.web.login_redirect"] = dict(s.login_redirect)
    if s.show_client_downloads is not None:
        to_set["omero.web.login.show_client_downloads"] = s.show_client_downloads
    return Contribution(set=to_set, append=web_config.appended_from(web_config.customization_appends(s)))


# --- Publishing -----------------------------------------------------------------------------
# Walkthrough "Publishing data using OMERO.web": the public user (its password a secret) and
# page cache, and /pub/<id> redirects (the Dundee pattern) as prefix locations, as the
# walkthrough's: /pub/<id>/ and deeper paths redirect too.


def redirect_target(prefix: str, target: str) -> str:
    return target if target.startswith("/") else f"{prefix}/webclient/?show={target}"


def publishing(s: Settings, profile: DistroProfile) -> Contribution:
    to_set: dict = {}
    if s.public_enabled:
        to_set.update({
            "omero.web.public.enabled": True,
            "omero.web.public.user": s.public_user,
            "omero.web.public.password": s.public_password,
            "omero.web.public.url_filter": s.public_url_filter,
            "omero.web.public.get_only": s.public_get_only,
            "omero.web.public.server_id": s.public_server_id,
        })
        if s.public_cache_enabled:
            to_set["omero.web.public.cache.enabled"] = True
            if s.public_cache_timeout:
                to_set["omero.web.public.cache.timeout"] = s.public_cache_timeout
    prefix = s.prefix or ""
    nginx = tuple(
        f"location {prefix}/pub/{ident} {{ return 307 {redirect_target(prefix, target)}; }}"
        for ident, target in sorted(s.publications.items())
    )
    return Contribution(set=to_set, nginx=nginx, secrets=("omero.web.public.password",) if s.public_enabled else ())


# --- Hardening ------------------------------------------------------------------------------
# Web-tier hardening of the generated NGINX site on every deploy: the dev-sec NGINX baseline's
# response headers that do not get in OMERO.web's way, on every response (``always``: the
# application's, static files, redirects, error and maintenance pages), each sent exactly once
# (``proxy_hide_header`` drops Django's copy). X-Frame-Options is left to OMERO.web's own
# middleware (NGINX adding it would send it twice); not taken from the baseline: its 1k body
# and buffer limits (they break uploads) and a Content-Security-Policy (OMERO.web's inline
# scripts and viewers do not support one). The server-level add_header lines reach every
# location because none of the generated site's locations sets one of its own
# (tests/integration/test_web_hardening.py checks the real responses).
# NGINX follows no link from a file it serves from disk (the static files, the maintenance
# page: folders of the OMERO.web account) to a file of another owner: that account cannot make
# NGINX serve what NGINX's account can read and it cannot (``if_not_owner``: every component
# of the path is checked, so a link in place of OMERODIR/var/static is refused too; root's
# links above OMERODIR, to root's folders, are followed).

#: Response headers NGINX sends on every response of the OMERO.web site, exactly once.
HEADERS: tuple[tuple[str, str], ...] = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
)


def header_directives(name: str, value: str) -> tuple[str, str]:
    """Drop the application's copy of a header, then send ours on every response."""
    return (f"proxy_hide_header {name};", f'add_header {name} "{value}" always;')


#: Server level: inherited by every location serving files (none of the generated site's sets its own).
SYMLINKS = "disable_symlinks if_not_owner;"


def hardening(s: Settings, profile: DistroProfile) -> Contribution:
    headers = tuple(d for name, value in HEADERS for d in header_directives(name, value))
    return Contribution(nginx=(*headers, SYMLINKS))


# --- Behind a balancer ---------------------------------------------------------------------
# More than one machine (model/tier.py): a node shares its Django secret key with the other
# nodes (sessions and CSRF tokens valid on each), lets only its balancers (and itself) connect,
# and, where HTTPS ends at the balancer, knows that its
# requests were secure from the header the balancer sets. The node's generated site (the
# walkthrough's) sets X-Forwarded-Proto to its own scheme (http) on the way to Gunicorn, so the
# balancer's X-Forwarded-Proto cannot get through: it sends X-Forwarded-Scheme as well (not
# X-Forwarded-Ssl: Gunicorn answers 400 "Contradictory scheme headers" to that one beside the
# node's X-Forwarded-Proto: http).
FORWARDED_SCHEME_HEADER = ["HTTP_X_FORWARDED_SCHEME", "https"]


def behind_balancer(s: Settings, tier: Tier, balancer_ips: tuple[str, ...]) -> Contribution:
    if not tier.balanced:
        return Contribution()
    to_set = {"omero.web.secret_key": s.config.get("omero.web.secret_key") or shared_secret_key(s.redis_url)}
    if tier.https:
        to_set.update({
            "omero.web.secure": True,
            "omero.web.session_cookie_secure": True,
            "omero.web.csrf_cookie_secure": True,
            "omero.web.secure_proxy_ssl_header": FORWARDED_SCHEME_HEADER,
        })
    # by the connection's address (NGINX's realip would replace it with the client's before this
    # check); the client's address reaches OMERO.web in X-Forwarded-For, as the balancer set it
    nginx = (*(f"allow {ip};" for ip in balancer_ips), "allow 127.0.0.1;", "allow ::1;", "deny all;")
    return Contribution(set=to_set, nginx=nginx, secrets=("omero.web.secret_key",))


# --- All of them ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Feature:
    name: str
    #: The feature's own tag (``omero_web_tags``): selecting it runs the config section for
    #: its properties, and its own section if it has one. None: part of every deploy.
    tag: str | None
    contribution: Callable[[Settings, DistroProfile], Contribution]


FEATURES: tuple[Feature, ...] = (
    Feature("gunicorn", "gunicorn", gunicorn),
    Feature("redis", "redis", redis),
    Feature("cors", "cors", cors),
    Feature("apps", "apps", apps),
    Feature("https", "https", https),
    Feature("sessions", "sessions", sessions),
    Feature("customization", "customization", customization),
    Feature("publishing", "publishing", publishing),
    Feature("hardening", None, hardening),
)

#: The tags that run the config section: its own, and each feature's.
CONFIG_TAGS: tuple[str, ...] = ("config", *(f.tag for f in FEATURES if f.tag))


def combined(settings: Settings, profile: DistroProfile, tier: Tier = Tier(),
             balancer_ips: tuple[str, ...] = ()) -> Contribution:
    """The union of every feature's contribution for these settings on this host (a node of
    ``tier``, whose balancers it resolves to ``balancer_ips``)."""
    to_set: dict = {}
    to_append: dict = {}
    pip, packages, nginx, secrets = [], [], [], []
    host_secret_file = None
    parts = [feature.contribution(settings, profile) for feature in FEATURES]
    for part in (*parts, behind_balancer(settings, tier, balancer_ips)):
        to_set.update(part.set)
        web_config.merge_items(to_append, part.append)
        pip.extend(p for p in part.pip if p not in pip)
        packages.extend(p for p in part.packages if p not in packages)
        nginx.extend(part.nginx)
        secrets.extend(part.secrets)
        host_secret_file = host_secret_file or part.host_secret_file
    return Contribution(to_set, to_append, tuple(pip), tuple(packages), tuple(nginx), tuple(secrets),
                        host_secret_file)
