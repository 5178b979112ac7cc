"""
Checks that span several inventory keys, run by the ``Settings`` model's after-validator
(``model.settings``) once every value has passed its own check; the checkers of single
values are in ``model.checks``.

Each function takes the validated ``Settings`` (typed attributes; not imported, since
``settings`` imports this module) and returns the problems as messages naming the keys, their
values and the fix; ``problems`` runs them all, in the order they are reported. Pure: it
imports only ``checks`` and ``appends``, never the deploy.
"""

from __future__ import annotations

import os
from typing import Any

from model.checks import inside, is_local, local_redis_url_problem
from model.web_config import append_sources

#: OMERO.web's default ``omero.web.application_server.port``: Gunicorn's port, NGINX's upstream.
APPLICATION_SERVER_PORT = 4080

#: Properties that dedicated keys own: setting them in omero_web_config too would give two sources.
DEDICATED_PROPERTIES = {
    "omero.web.server_list": "omero_web_server_host/_port/_name",  # or omero_web_servers
    "omero.web.application_server.port": "omero_web_application_server_port",
    "omero.web.wsgi_workers": "omero_web_wsgi_workers",
    "omero.web.wsgi_worker_class": "omero_web_wsgi_worker_class",
    "omero.web.wsgi_threads": "omero_web_wsgi_threads",
    "omero.web.wsgi_worker_connections": "omero_web_wsgi_worker_connections",
    "omero.web.prefix": "omero_web_prefix",
    "omero.web.static_url": "omero_web_prefix",
    "omero.web.cors_origin_whitelist": "omero_web_cors_origins",
    "omero.web.cors_origin_allow_all": "omero_web_cors_allow_all",
    "omero.web.session_expire_at_browser_close": "omero_web_session_expire_at_browser_close",
    "omero.web.session_cookie_age": "omero_web_session_cookie_age",
    "omero.web.index_template": "omero_web_index_template",
    "omero.web.base_include_template": "omero_web_base_include_template",
    "omero.web.login_logo": "omero_web_login_logo",
    "omero.web.login_redirect": "omero_web_login_redirect",
    "omero.web.login.show_client_downloads": "omero_web_show_client_downloads",
    "omero.web.public.enabled": "omero_web_public_enabled",
    "omero.web.public.user": "omero_web_public_user",
    "omero.web.public.password": "omero_web_public_password",
    "omero.web.public.url_filter": "omero_web_public_url_filter",
    "omero.web.public.get_only": "omero_web_public_get_only",
    "omero.web.public.server_id": "omero_web_public_server_id",
    "omero.web.public.cache.enabled": "omero_web_public_cache_enabled",
    "omero.web.public.cache.timeout": "omero_web_public_cache_timeout",
}


def problems(v: Any) -> list[str]:
    """Every problem spanning several keys, in the order they are reported."""
    found = []
    if v.ice_source == "wheel" and not v.ice_wheel:
        found.append(
            "omero_web_ice_source = 'wheel' needs omero_web_ice_wheel: set it to a .whl URL or local file, "
            "or use omero_web_ice_source = 'auto'"
        )
    if v.ice_wheel and v.ice_source != "wheel":
        found.append(
            # (not the value: a URL may hold credentials)
            "omero_web_ice_wheel is only used with omero_web_ice_source = 'wheel': "
            "set that too, or remove omero_web_ice_wheel"
        )
    if v.ice_wheel_sha256 and v.ice_source == "build":
        found.append(
            "omero_web_ice_wheel_sha256 is the SHA-256 of a fetched or given wheel, and omero_web_ice_source = 'build' "
            "uses none: remove it, or set omero_web_ice_source to 'wheel' or 'auto'"
        )
    both = set(v.tags) & set(v.skip_tags)
    if both:
        found.append(
            f"omero_web_tags and omero_web_skip_tags both name {', '.join(sorted(both))}: keep each tag in one of them"
        )
    found.extend(ownership_checks(v))
    if v.migrate_from_omerodir == v.omerodir:
        found.append(
            "omero_web_migrate_from_omerodir is omero_web_omerodir: set omero_web_omerodir to the new location, "
            "or remove omero_web_migrate_from_omerodir"
        )
    found.extend(feature_checks(v))
    return found


def ownership_checks(v: Any) -> list[str]:
    """Folders and accounts that must stay apart: who owns what decides what root may touch."""
    found = []
    if inside(v.omerodir, v.venv):
        found.append(
            f"omero_web_omerodir = {v.omerodir!r}: expected a folder outside omero_web_venv ({v.venv}): "
            "it must not be the virtualenv or inside it, upgrades replace the venv (e.g. /opt/omero/web/omero-web)"
        )
    elif inside(v.venv, v.omerodir):
        # the OMERO.web user owns OMERODIR: root must not install into a tree that user controls
        found.append(
            f"omero_web_venv = {v.venv!r}: expected a folder outside omero_web_omerodir ({v.omerodir}), "
            "which the OMERO.web user owns (e.g. /opt/omero/web/venv3)"
        )
    # A host can be both OMERO.web and OMERO.server: neither's folders may hold the other's.
    examples = {"omero_server_venv": "/opt/omero/server/venv3", "omero_server_omerodir": "/opt/omero/server/OMERO.server"}
    for server, example in examples.items():
        for web, owner in (("omerodir", "the OMERO.web user owns"), ("venv", "upgrades of OMERO.web replace")):
            server_path, web_path = getattr(v, server), getattr(v, web)
            if inside(server_path, web_path) or inside(web_path, server_path):
                found.append(
                    f"omero_web_{server} = {server_path!r}: expected a folder apart from omero_web_{web} "
                    f"({web_path}), neither inside nor around it: {owner} that tree (e.g. {example})"
                )
    if v.user == v.omero_server_user:
        found.append(
            f"omero_web_user = {v.user!r} is also omero_web_omero_server_user: expected an account of its own "
            "for OMERO.web (e.g. 'omero-web'), since the deploy modifies it and must leave OMERO.server's alone"
        )
    return found


def set_and_appended_checks(v: Any) -> list[str]:
    """
    A property both set whole and appended to never converges: the set value drops the
    appended items (hash differs), the next run appends them again, and so on. What the deploy
    appends comes from ``appends.append_sources``, the config section's own definition.
    """
    setters = [(prop, (key, True)) for prop, key in DEDICATED_PROPERTIES.items()]
    setters.append(("omero.web.nginx_server_extra_config", ("the deploy (adding its NGINX directives)", True)))
    setters += [(prop, ("omero_web_config", False)) for prop in v.config]
    for app in v.apps:
        setters += [(prop, (f"omero_web_apps ({app['app']}'s config)", False)) for prop in app["config"]]
    sources = append_sources(v)
    found = []
    for prop, (setter, deploy_owned) in setters:
        for appender, part in sources:
            if prop not in part:
                continue
            if deploy_owned:
                fix = ("put your directives in omero_web_config instead" if prop.endswith("nginx_server_extra_config")
                       else f"remove it from {appender}: {setter} manages it")
            else:
                fix = (f"remove it from {setter} and list the items to ensure in omero_web_config_append "
                       "(added to OMERO.web's default list, each once)")
            found.append(
                f"{setter} sets {prop} whole and {appender} appends to it: the value would change on every "
                f"run; {fix}"
            )
    return found


def feature_checks(v: Any) -> list[str]:
    """Mutually exclusive or incomplete feature settings."""
    found = []
    found.extend(set_and_appended_checks(v))
    for prop in sorted(set(v.config) & set(DEDICATED_PROPERTIES)):
        found.append(
            f"omero_web_config sets {prop}, which {DEDICATED_PROPERTIES[prop]} manages: set it there only"
        )
    if v.servers:
        one = [f"omero_web_server_{k} = {getattr(v, 'server_' + k)!r}" for k, default in
               (("host", "localhost"), ("port", 4064), ("name", "omero")) if getattr(v, "server_" + k) != default]
        if one:
            found.append(
                f"omero_web_servers and {', '.join(one)} both say which OMERO.server to use: "
                "list every server in omero_web_servers, and remove the other"
            )
    if v.nginx_mode == "location" and v.https:
        found.append(
            "omero_web_https = True and omero_web_nginx_mode = 'location' exclude each other: in location mode "
            "the server block (its listen, TLS certificate and redirect) is yours; set up HTTPS there, "
            "or use omero_web_nginx_mode = 'site'"
        )
    upstream = v.application_server_port or APPLICATION_SERVER_PORT
    listening = {"omero_web_nginx_port": v.nginx_port, **({"omero_web_https_port": v.https_port} if v.https else {})}
    for key, value in listening.items():
        if value == upstream:
            found.append(
                f"{key} = {value} is also OMERO.web's application server port (omero_web_application_server_port, "
                "4080 unless set): NGINX and Gunicorn cannot both listen there; choose another port for one of them"
            )
    if v.redis and is_local(v.redis_url):
        found.extend(filter(None, [local_redis_url_problem(v.redis_url)]))
    if v.cors_origins and v.cors_allow_all:
        found.append(
            f"omero_web_cors_origins = {list(v.cors_origins)!r} and omero_web_cors_allow_all = True exclude "
            "each other: keep the origin list, or allow all"
        )
    gevent = v.wsgi_worker_class == "gevent"
    if v.wsgi_worker_connections is not None and not gevent:
        found.append(
            f"omero_web_wsgi_worker_connections = {v.wsgi_worker_connections!r} only applies to async workers: "
            "set omero_web_wsgi_worker_class = 'gevent', or remove it"
        )
    if v.wsgi_threads is not None and gevent:
        found.append(
            f"omero_web_wsgi_threads = {v.wsgi_threads!r} only applies to sync workers, but "
            "omero_web_wsgi_worker_class = 'gevent': remove one of them"
        )
    tls_files = [name for name in ("tls_certificate", "tls_key") if getattr(v, name)]
    if v.https:
        if v.tls_self_signed and tls_files:
            found.append(
                "omero_web_tls_self_signed = True and omero_web_tls_certificate/_key exclude each other: "
                "give the certificate and key, or ask for a self-signed pair"
            )
        elif not v.tls_self_signed and len(tls_files) != 2:
            found.append(
                "omero_web_https = True needs both omero_web_tls_certificate and omero_web_tls_key "
                "(PEM files on the control machine), or omero_web_tls_self_signed = True"
            )
        if v.https_port == v.nginx_port:
            found.append(
                f"omero_web_https_port and omero_web_nginx_port are both {v.nginx_port}: HTTP must redirect "
                "to HTTPS on another port"
            )
    elif tls_files or v.tls_self_signed:
        found.append(
            "omero_web_tls_certificate/_key/_self_signed are only used with omero_web_https = True: "
            "set that too, or remove them"
        )
    public = {name: getattr(v, f"public_{name}") for name in ("user", "password", "url_filter")}
    if v.public_enabled:
        missing = [f"omero_web_public_{name}" for name, value in public.items() if not value]
        if missing:
            found.append(
                f"omero_web_public_enabled = True needs {', '.join(missing)}: the public user's name, "
                "password and the URLs it may open"
            )
    elif any(public.values()):
        given = [f"omero_web_public_{name}" for name, value in public.items() if value]
        found.append(
            f"{', '.join(given)} set but omero_web_public_enabled is False: set it to True, or remove them"
        )
    for name in ("index_template", "base_include_template"):
        template = getattr(v, name)
        if not template:
            continue
        if not v.templates:
            found.append(
                f"omero_web_{name} = {template!r} needs omero_web_templates, the local folder that holds it"
            )
        elif not os.path.isfile(os.path.join(v.templates, template)):
            found.append(
                f"omero_web_{name} = {template!r}: no such file in omero_web_templates ({v.templates})"
            )
    both = set(v.omero_server_config) & set(v.omero_server_config_append)
    if both:
        found.append(
            f"omero_web_omero_server_config and omero_web_omero_server_config_append both name "
            f"{', '.join(sorted(both))}: set the whole value or list the items to ensure, not both"
        )
    if v.omero_server_group_config and not v.omero_server_admin_password:
        found.append(
            "omero_web_omero_server_group_config needs omero_web_omero_server_admin_password "
            f"(for {v.omero_server_admin_user!r}) to log in for `omero obj map-set`"
        )
    return found
