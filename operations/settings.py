"""
Inventory data for omeroweb-deploy: every key, its default, its check and its doc.

This table is the single source of truth: validation, defaults and the README's data
table (``python -m operations.settings --markdown``) all come from ``KEYS``. Every key is
prefixed ``omero_web_``; values may come from inventories, ``group_data`` or ``--data``
(where pyinfra passes ``80`` as an int and ``a,b`` as a string, so lists also accept a
comma-separated string).

Why over 400 lines: the key table itself is half of it (one documented entry per key), the
other half the checks that span several keys; the checkers of single values are in
``operations.checks``.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping

from .appends import append_sources
from .checks import (
    Invalid,
    account,
    apps,
    boolean,
    choice,
    config,
    config_append,
    group_config,
    group_name,
    host_name,
    omero_servers,
    http_url_or_path,
    ice_wheel,
    inside,
    install_folder,
    int_range,
    interpreter,
    json_list,
    json_mapping,
    local_dir,
    local_file,
    local_files,
    nginx_include,
    nginx_server_name,
    optional,
    origins,
    pip_spec,
    pip_spec_of,
    port,
    property_names,
    publications,
    regex,
    server_config,
    server_config_append,
    single_line,
    str_list,
    template_path,
    time_of_day,
    url,
    url_like,
    url_list,
    url_prefix,
)

PREFIX = "omero_web_"

#: Tags that sections declare; ``omero_web_tags`` / ``omero_web_skip_tags`` pick from these.
TAGS = (
    "prerequisites",
    "packages",
    "ca",
    "venv",
    "ice",
    "omeroweb",
    "config",
    "gunicorn",
    "nginx",
    "selinux",
    "service",
    "healthcheck",
    "redis",
    "cors",
    "apps",
    "https",
    "sessions",
    "customization",
    "publishing",
    "omero_server",
)

ICE_SOURCES = ("auto", "build", "wheel")
SERVICE_MANAGERS = ("auto", "systemd", "initd")


class ValidationError(ValueError):
    """Bad inventory data; the message names every bad key, its value and the fix."""

    def __init__(self, host: str, problems: list[str]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid omeroweb-deploy data for host {host}:\n{lines}")


def _tags(value: Any) -> tuple[str, ...]:
    tags = str_list(value)
    unknown = [tag for tag in tags if tag not in TAGS]
    if unknown:
        raise Invalid(f"unknown tag(s) {', '.join(unknown)}; valid tags: {', '.join(TAGS)}")
    return tags


@dataclass(frozen=True)
class Key:
    """One inventory data key."""

    name: str
    default: Any
    check: Callable[[Any], Any]
    doc: str
    section: str

    @property
    def attr(self) -> str:
        return self.name[len(PREFIX):]


KEYS: tuple[Key, ...] = (
    # Selection
    Key("omero_web_tags", (), _tags, "Run only the sections with these tags (empty: all).", "selection"),
    Key("omero_web_skip_tags", (), _tags, "Skip the sections with these tags.", "selection"),
    # Prerequisites
    Key("omero_web_user", "omero-web", account("OMERO.web", "omero-web"), "System user that owns OMERODIR and runs OMERO.web.", "prerequisites"),
    Key("omero_web_omerodir", "/opt/omero/web/omero-web", install_folder("/opt/omero/web/omero-web"), "OMERODIR: configuration, logs and `etc/grid`.", "prerequisites"),
    Key("omero_web_extra_ca_certificates", (), local_files,
        "PEM files on the control machine (one or more certificates each) added to the host's trust store, "
        "and used by pip: needed behind TLS-intercepting proxies.", "prerequisites"),
    Key("omero_web_package_lock_timeout", 300, int_range(0, 86400),
        "Seconds to wait, saying so, while another apt/dnf/yum holds the package manager's lock "
        "(unattended-upgrades), before failing.", "prerequisites"),
    Key("omero_web_run_lock_timeout", 600, int_range(0, 86400),
        "Seconds to wait, saying who holds it, while another deploy holds this host's run lock "
        "(`/var/lib/omeroweb-deploy/run.lock`), before failing.", "prerequisites"),
    # Virtualenv, Ice, OMERO.web
    Key("omero_web_venv", "/opt/omero/web/venv3", install_folder("/opt/omero/web/venv3"), "Virtual environment of OMERO.web.", "venv"),
    Key("omero_web_python", None, optional(interpreter),
        "Interpreter that creates the venv (default: the distro profile's, e.g. `/usr/bin/python3`).", "venv"),
    Key("omero_web_pip_index_url", None, optional(url), "pip index URL for the venv (default: pip's).", "venv"),
    Key("omero_web_pip_extra_index_urls", (), url_list, "Extra pip index URLs for the venv.", "venv"),
    Key("omero_web_ice_source", "auto", choice(*ICE_SOURCES),
        "Where IcePy 3.6.5 comes from: `wheel` (from `omero_web_ice_wheel`), `build` (PyPI sdist, patched for the "
        "host's Python), `auto` (the distro's prebuilt wheel if there is one, falling back to `build`).", "venv"),
    Key("omero_web_ice_wheel", None, optional(ice_wheel),
        "Ice wheel URL or local `.whl` file, required with `omero_web_ice_source: wheel`.", "venv"),
    Key("omero_web_ice_cache_dir", "~/.cache/omeroweb-deploy/wheels", single_line,
        "Control-machine folder where built Ice wheels are kept per distro + Python ABI and shared with the fleet.", "venv"),
    Key("omero_web_version_spec", "omero-web>=5.6.1", pip_spec,
        "pip requirement for OMERO.web (pip picks the newest release the host's Python supports).", "venv"),
    Key("omero_web_omero_py_spec", None, optional(pip_spec_of("omero-py")),
        "pip requirement for omero-py, to upgrade it on its own (e.g. `omero-py>=5.19.5`); by default pip keeps "
        "whatever release OMERO.web pulled in. Like an OMERO.web upgrade, checked and rolled back on failure.",
        "venv"),
    Key("omero_web_migrate_from_omerodir", None, optional(install_folder("/opt/omero/web/omero-web")),
        "Previous OMERODIR when moving to a new `omero_web_omerodir`: its configuration is exported and loaded "
        "into the new one once (`omero config get --show-password` / `omero config load`); it is left as it was.",
        "venv"),
    Key("omero_web_whitenoise_spec", "whitenoise", pip_spec, "pip requirement for WhiteNoise.", "venv"),
    # Configuration
    Key("omero_web_config", MappingProxyType({}), config,
        "`omero.*` properties to set (`omero config set`); lists and mappings are stored as JSON.", "config"),
    Key("omero_web_config_append", MappingProxyType({}), config_append,
        "List properties and the items to ensure in them (`omero config append --set`), e.g. middleware.", "config"),
    Key("omero_web_secret_config_keys", (), property_names,
        "Extra property names whose values are secrets (names containing `password` always are).", "config"),
    Key("omero_web_server_host", "localhost", host_name, "OMERO.server host for `omero.web.server_list`.", "config"),
    Key("omero_web_server_port", 4064, port, "OMERO.server port for `omero.web.server_list`.", "config"),
    Key("omero_web_server_name", "omero", single_line, "Display name for `omero.web.server_list`.", "config"),
    Key("omero_web_servers", None, optional(omero_servers),
        "Several OMERO.servers for `omero.web.server_list` (the login page offers a choice): a list of "
        "`[host, port, name]`, the first being server 1; replaces `omero_web_server_host/_port/_name`.", "config"),
    # Gunicorn
    Key("omero_web_application_server_port", None, optional(port),
        "`omero.web.application_server.port`: where Gunicorn listens and NGINX connects (OMERO.web's default: "
        "4080); under SELinux it is the port labelled `http_port_t`, as in the walkthrough.", "gunicorn"),
    Key("omero_web_wsgi_workers", None, optional(int_range(1, 512)),
        "`omero.web.wsgi_workers` (default: 2 x cores + 1 from the host's facts).", "gunicorn"),
    Key("omero_web_wsgi_worker_class", None, optional(choice("sync", "gevent")),
        "`omero.web.wsgi_worker_class` (default: OMERO.web's, sync).", "gunicorn"),
    Key("omero_web_wsgi_args", None, optional(single_line), "`omero.web.wsgi_args`: extra Gunicorn arguments.", "gunicorn"),
    Key("omero_web_wsgi_threads", None, optional(int_range(1, 256)),
        "`omero.web.wsgi_threads` for sync workers (the walkthrough suggests 2-4 x cores).", "gunicorn"),
    Key("omero_web_wsgi_worker_connections", None, optional(int_range(1, 100000)),
        "`omero.web.wsgi_worker_connections` for gevent workers (OMERO.web's default: 1000).", "gunicorn"),
    Key("omero_web_gevent_spec", "gevent>=0.13", pip_spec,
        "pip requirement installed with `omero_web_wsgi_worker_class: gevent` (which also sets "
        "`omero.web.application_server.max_requests` to 0, as the walkthrough requires).", "gunicorn"),
    # Redis
    Key("omero_web_redis", False, boolean,
        "Cache and sessions in Redis: installs `django-redis`, sets `omero.web.caches` and "
        "`omero.web.session_engine`; installs and starts the distro's Redis server when the URL is local.", "redis"),
    Key("omero_web_redis_url", "redis://127.0.0.1:6379/0", url_like("redis"),
        "Redis location for `omero.web.caches` (a password in it makes the property secret).", "redis"),
    Key("omero_web_django_redis_spec", "django-redis", pip_spec,
        "pip requirement for django-redis (resolved against the installed Django).", "redis"),
    # CORS
    Key("omero_web_cors_origins", (), origins,
        "Origins allowed by CORS (`omero.web.cors_origin_whitelist`); turns CORS on.", "cors"),
    Key("omero_web_cors_allow_all", False, boolean, "Allow every origin (`omero.web.cors_origin_allow_all`).", "cors"),
    Key("omero_web_cors_headers_spec", "django-cors-headers", pip_spec,
        "pip requirement for django-cors-headers (resolved against the installed omero-web's pin).", "cors"),
    # Apps
    Key("omero_web_apps", (), apps,
        "OMERO.web apps: list of `{spec, app, top_links, open_with, right_plugins, center_plugins, config}`; "
        "apps removed from the list are uninstalled and dropped from the settings.", "apps"),
    # URL prefix
    Key("omero_web_prefix", None, optional(url_prefix),
        "Serve OMERO.web under this path (`omero.web.prefix`, `omero.web.static_url`), e.g. `/omero`.", "nginx"),
    # HTTPS
    Key("omero_web_https", False, boolean,
        "HTTPS on `omero_web_https_port` (TLS 1.2+), HTTP redirected to it, OMERO.web told it is behind "
        "HTTPS (secure cookies, `omero.web.secure`, `omero.web.secure_proxy_ssl_header`).", "https"),
    Key("omero_web_https_port", 443, port, "Port of the HTTPS server.", "https"),
    Key("omero_web_tls_certificate", None, optional(local_file),
        "PEM certificate (chain) on the control machine for HTTPS.", "https"),
    Key("omero_web_tls_key", None, optional(local_file),
        "PEM private key on the control machine for HTTPS (installed 0600).", "https"),
    Key("omero_web_tls_self_signed", False, boolean,
        "Generate a self-signed certificate on the host instead (testing only).", "https"),
    # Sessions
    Key("omero_web_session_expire_at_browser_close", None, optional(boolean),
        "`omero.web.session_expire_at_browser_close` (OMERO.web's default: true).", "sessions"),
    Key("omero_web_session_cookie_age", None, optional(int_range(60, 31536000)),
        "`omero.web.session_cookie_age` in seconds (OMERO.web's default: 86400).", "sessions"),
    Key("omero_web_clearsessions", True, boolean,
        "Run `omero web clearsessions` daily, as the walkthrough recommends: a systemd timer where systemd runs, "
        "else a cron job; false removes the job.", "sessions"),
    Key("omero_web_clearsessions_time", "03:17", time_of_day, "Time of day (HH:MM, host time) of that job.", "sessions"),
    # UI customization
    Key("omero_web_templates", None, optional(local_dir),
        "Folder of templates on the control machine, copied to `OMERODIR/etc/templates/custom` and added to "
        "`omero.web.template_dirs`.", "customization"),
    Key("omero_web_index_template", None, optional(template_path),
        "`omero.web.index_template`: a template in `omero_web_templates`, e.g. `mytemplate/index.html`.",
        "customization"),
    Key("omero_web_base_include_template", None, optional(template_path),
        "`omero.web.base_include_template`: a template in `omero_web_templates` included in every page.",
        "customization"),
    Key("omero_web_login_logo", None, optional(http_url_or_path), "`omero.web.login_logo`: URL of the logo.",
        "customization"),
    Key("omero_web_login_redirect", None, optional(json_mapping),
        "`omero.web.login_redirect`, e.g. `{redirect: [webindex], viewname: load_template, args: [userdata]}`.",
        "customization"),
    Key("omero_web_show_client_downloads", None, optional(boolean),
        "`omero.web.login.show_client_downloads` (OMERO.web's default: true): false hides the OMERO.insight "
        "download links of the login page, whose script makes every visitor's browser call api.github.com.",
        "customization"),
    Key("omero_web_top_links", (), json_list, "Items appended to `omero.web.ui.top_links`.", "customization"),
    Key("omero_web_open_with", (), json_list, "Items appended to `omero.web.open_with`.", "customization"),
    # Publishing
    Key("omero_web_public_enabled", False, boolean,
        "Public user auto-login (`omero.web.public.enabled`); needs user, password and URL filter.", "publishing"),
    Key("omero_web_public_user", None, optional(single_line), "`omero.web.public.user`.", "publishing"),
    Key("omero_web_public_password", None, optional(single_line),
        "`omero.web.public.password` (secret: never shown, stored owner-only).", "publishing"),
    Key("omero_web_public_url_filter", None, optional(regex),
        "`omero.web.public.url_filter`: URLs the public user may open, e.g. `^/webgateway`.", "publishing"),
    Key("omero_web_public_get_only", True, boolean, "`omero.web.public.get_only`.", "publishing"),
    Key("omero_web_public_server_id", 1, int_range(1, 1000), "`omero.web.public.server_id`.", "publishing"),
    Key("omero_web_public_cache_enabled", False, boolean, "`omero.web.public.cache.enabled`.", "publishing"),
    Key("omero_web_public_cache_timeout", None, optional(int_range(1, 31536000)),
        "`omero.web.public.cache.timeout` in seconds (OMERO.web's default: 86400).", "publishing"),
    Key("omero_web_publications", MappingProxyType({}), publications,
        "Publication redirects: identifier -> `project-<id>` makes `/pub/<identifier>` answer 307 to "
        "`/webclient/?show=project-<id>`.", "publishing"),
    # OMERO.server-side settings
    Key("omero_web_omero_server_group", "omero_server", group_name,
        "Inventory group whose hosts are OMERO.servers: they get only the server-side settings below.",
        "omero_server"),
    Key("omero_web_omero_server_venv", "/opt/omero/server/venv3", install_folder("/opt/omero/server/venv3"), "OMERO.server's virtualenv.",
        "omero_server"),
    Key("omero_web_omero_server_omerodir", "/opt/omero/server/OMERO.server", install_folder("/opt/omero/server/OMERO.server"), "OMERO.server's OMERODIR.",
        "omero_server"),
    Key("omero_web_omero_server_user", "omero-server", account("OMERO.server", "omero-server"), "User that owns OMERO.server.", "omero_server"),
    Key("omero_web_omero_server_config", MappingProxyType({}), server_config,
        "OMERO.server properties served to clients: `omero.client.ui.menu.dropdown.*`, "
        "`omero.client.ui.tree.orphans.name`, `omero.policy.binary_access`, ...", "omero_server"),
    Key("omero_web_omero_server_config_append", MappingProxyType({}), server_config_append,
        "OMERO.server list properties and the items to ensure, e.g. `omero.client.scripts_to_ignore`.",
        "omero_server"),
    Key("omero_web_omero_server_group_config", MappingProxyType({}), group_config,
        "Per-group settings, group id -> `{property: value}` (`omero obj map-set ExperimenterGroup:<id> config`).",
        "omero_server"),
    Key("omero_web_omero_server_admin_user", "root", single_line, "OMERO admin that applies per-group settings.",
        "omero_server"),
    Key("omero_web_omero_server_admin_password", None, optional(single_line),
        "That admin's password (secret); required with `omero_web_omero_server_group_config`.", "omero_server"),
    # NGINX
    Key("omero_web_nginx_mode", "site", choice("site", "location"),
        "`site`: the walkthrough's server block from `omero web config nginx` in NGINX's site folder, the distro's "
        "default site disabled. `location`: its alternative, `omero web config nginx-location` (location blocks "
        "for a server block of your own, which includes `omero_web_nginx_location_file`); the default site and "
        "your server blocks are left alone.", "nginx"),
    Key("omero_web_nginx_location_file", "/etc/nginx/omero-web-location.include", nginx_include,
        "With `omero_web_nginx_mode: location`: the file written (root's, outside the folders NGINX loads itself); "
        "put `include <this file>;` in your server block.", "nginx"),
    Key("omero_web_nginx_port", 80, port, "Port NGINX listens on (`--http`).", "nginx"),
    Key("omero_web_nginx_server_name", "localhost", nginx_server_name, "NGINX `server_name` (`--servername`).", "nginx"),
    # Service and checks
    Key("omero_web_service_manager", "auto", choice(*SERVICE_MANAGERS),
        "`auto`: systemd unit when systemd is PID 1, else the init.d script.", "service"),
    Key("omero_web_healthcheck_timeout", 120, int_range(5, 3600),
        "Seconds the final health check waits for the login page through NGINX.", "healthcheck"),
    Key("omero_web_troubleshoot_dir", None, optional(single_line),
        "Control-machine folder for `operations.troubleshoot.troubleshoot` (default: `./troubleshoot-<UTC timestamp>`).",
        "troubleshoot"),
)

KEYS_BY_NAME = {key.name: key for key in KEYS}


@dataclass(frozen=True)
class Settings:
    """Validated settings of one host; attributes are the key names without the prefix."""

    values: Mapping[str, Any] = field(default_factory=dict)

    def __getattr__(self, attr: str) -> Any:
        try:
            return self.values[attr]
        except KeyError:
            raise AttributeError(attr) from None

    def replace(self, **changes: Any) -> "Settings":
        return Settings({**self.values, **changes})

    def __repr__(self) -> str:
        # pyinfra prints facts' arguments (-v, --debug): never the data's values, secrets among them.
        shown = ", ".join(f"{k}={self.values[k]!r}" for k in ("user", "omerodir", "venv") if k in self.values)
        return f"Settings({shown}, ...)"


def _cross_checks(values: dict[str, Any]) -> list[str]:
    problems = []
    if values["ice_source"] == "wheel" and not values["ice_wheel"]:
        problems.append(
            "omero_web_ice_source = 'wheel' needs omero_web_ice_wheel: set it to a .whl URL or local file, "
            "or use omero_web_ice_source = 'auto'"
        )
    if values["ice_wheel"] and values["ice_source"] != "wheel":
        problems.append(
            f"omero_web_ice_wheel = {values['ice_wheel']!r} is only used with omero_web_ice_source = 'wheel': "
            "set that too, or remove omero_web_ice_wheel"
        )
    both = set(values["tags"]) & set(values["skip_tags"])
    if both:
        problems.append(
            f"omero_web_tags and omero_web_skip_tags both name {', '.join(sorted(both))}: keep each tag in one of them"
        )
    problems.extend(_ownership_checks(values))
    if values["migrate_from_omerodir"] == values["omerodir"]:
        problems.append(
            "omero_web_migrate_from_omerodir is omero_web_omerodir: set omero_web_omerodir to the new location, "
            "or remove omero_web_migrate_from_omerodir"
        )
    problems.extend(_feature_checks(values))
    return problems


def _ownership_checks(v: dict[str, Any]) -> list[str]:
    """Folders and accounts that must stay apart: who owns what decides what root may touch."""
    problems = []
    if inside(v["omerodir"], v["venv"]):
        problems.append(
            f"omero_web_omerodir = {v['omerodir']!r}: expected a folder outside omero_web_venv ({v['venv']}): "
            "it must not be the virtualenv or inside it, upgrades replace the venv (e.g. /opt/omero/web/omero-web)"
        )
    elif inside(v["venv"], v["omerodir"]):
        # the OMERO.web user owns OMERODIR: root must not install into a tree that user controls
        problems.append(
            f"omero_web_venv = {v['venv']!r}: expected a folder outside omero_web_omerodir ({v['omerodir']}), "
            "which the OMERO.web user owns (e.g. /opt/omero/web/venv3)"
        )
    # A host can be both OMERO.web and OMERO.server: neither's folders may hold the other's.
    examples = {"omero_server_venv": "/opt/omero/server/venv3", "omero_server_omerodir": "/opt/omero/server/OMERO.server"}
    for server, example in examples.items():
        for web, owner in (("omerodir", "the OMERO.web user owns"), ("venv", "upgrades of OMERO.web replace")):
            if inside(v[server], v[web]) or inside(v[web], v[server]):
                problems.append(
                    f"omero_web_{server} = {v[server]!r}: expected a folder apart from omero_web_{web} "
                    f"({v[web]}), neither inside nor around it: {owner} that tree (e.g. {example})"
                )
    if v["user"] == v["omero_server_user"]:
        problems.append(
            f"omero_web_user = {v['user']!r} is also omero_web_omero_server_user: expected an account of its own "
            "for OMERO.web (e.g. 'omero-web'), since the deploy modifies it and must leave OMERO.server's alone"
        )
    return problems


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


def _set_and_appended_checks(v: dict[str, Any]) -> list[str]:
    """
    A property both set whole and appended to never converges: the set value drops the
    appended items (hash differs), the next run appends them again, and so on. What the deploy
    appends comes from ``appends.append_sources``, the config section's own definition.
    """
    setters = [(prop, (key, True)) for prop, key in DEDICATED_PROPERTIES.items()]
    setters.append(("omero.web.nginx_server_extra_config", ("the deploy (adding its NGINX directives)", True)))
    setters += [(prop, ("omero_web_config", False)) for prop in v["config"]]
    for app in v["apps"]:
        setters += [(prop, (f"omero_web_apps ({app['app']}'s config)", False)) for prop in app["config"]]
    sources = append_sources(Settings(MappingProxyType(v)))
    problems = []
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
            problems.append(
                f"{setter} sets {prop} whole and {appender} appends to it: the value would change on every "
                f"run; {fix}"
            )
    return problems


def _feature_checks(v: dict[str, Any]) -> list[str]:
    """Mutually exclusive or incomplete feature settings."""
    problems = []
    problems.extend(_set_and_appended_checks(v))
    for prop in sorted(set(v["config"]) & set(DEDICATED_PROPERTIES)):
        problems.append(
            f"omero_web_config sets {prop}, which {DEDICATED_PROPERTIES[prop]} manages: set it there only"
        )
    if v["servers"]:
        one = [f"omero_web_server_{k} = {v['server_' + k]!r}" for k, default in
               (("host", "localhost"), ("port", 4064), ("name", "omero")) if v["server_" + k] != default]
        if one:
            problems.append(
                f"omero_web_servers and {', '.join(one)} both say which OMERO.server to use: "
                "list every server in omero_web_servers, and remove the other"
            )
    if v["nginx_mode"] == "location" and v["https"]:
        problems.append(
            "omero_web_https = True and omero_web_nginx_mode = 'location' exclude each other: in location mode "
            "the server block (its listen, TLS certificate and redirect) is yours; set up HTTPS there, "
            "or use omero_web_nginx_mode = 'site'"
        )
    upstream = v["application_server_port"] or APPLICATION_SERVER_PORT
    listening = {"omero_web_nginx_port": v["nginx_port"], **({"omero_web_https_port": v["https_port"]} if v["https"] else {})}
    for key, value in listening.items():
        if value == upstream:
            problems.append(
                f"{key} = {value} is also OMERO.web's application server port (omero_web_application_server_port, "
                "4080 unless set): NGINX and Gunicorn cannot both listen there; choose another port for one of them"
            )
    if v["cors_origins"] and v["cors_allow_all"]:
        problems.append(
            f"omero_web_cors_origins = {list(v['cors_origins'])!r} and omero_web_cors_allow_all = True exclude "
            "each other: keep the origin list, or allow all"
        )
    gevent = v["wsgi_worker_class"] == "gevent"
    if v["wsgi_worker_connections"] is not None and not gevent:
        problems.append(
            f"omero_web_wsgi_worker_connections = {v['wsgi_worker_connections']!r} only applies to async workers: "
            "set omero_web_wsgi_worker_class = 'gevent', or remove it"
        )
    if v["wsgi_threads"] is not None and gevent:
        problems.append(
            f"omero_web_wsgi_threads = {v['wsgi_threads']!r} only applies to sync workers, but "
            "omero_web_wsgi_worker_class = 'gevent': remove one of them"
        )
    tls_files = [name for name in ("tls_certificate", "tls_key") if v[name]]
    if v["https"]:
        if v["tls_self_signed"] and tls_files:
            problems.append(
                "omero_web_tls_self_signed = True and omero_web_tls_certificate/_key exclude each other: "
                "give the certificate and key, or ask for a self-signed pair"
            )
        elif not v["tls_self_signed"] and len(tls_files) != 2:
            problems.append(
                "omero_web_https = True needs both omero_web_tls_certificate and omero_web_tls_key "
                "(PEM files on the control machine), or omero_web_tls_self_signed = True"
            )
        if v["https_port"] == v["nginx_port"]:
            problems.append(
                f"omero_web_https_port and omero_web_nginx_port are both {v['nginx_port']}: HTTP must redirect "
                "to HTTPS on another port"
            )
    elif tls_files or v["tls_self_signed"]:
        problems.append(
            "omero_web_tls_certificate/_key/_self_signed are only used with omero_web_https = True: "
            "set that too, or remove them"
        )
    public = {name: v[f"public_{name}"] for name in ("user", "password", "url_filter")}
    if v["public_enabled"]:
        missing = [f"omero_web_public_{name}" for name, value in public.items() if not value]
        if missing:
            problems.append(
                f"omero_web_public_enabled = True needs {', '.join(missing)}: the public user's name, "
                "password and the URLs it may open"
            )
    elif any(public.values()):
        given = [f"omero_web_public_{name}" for name, value in public.items() if value]
        problems.append(
            f"{', '.join(given)} set but omero_web_public_enabled is False: set it to True, or remove them"
        )
    for name in ("index_template", "base_include_template"):
        template = v[name]
        if not template:
            continue
        if not v["templates"]:
            problems.append(
                f"omero_web_{name} = {template!r} needs omero_web_templates, the local folder that holds it"
            )
        elif not os.path.isfile(os.path.join(v["templates"], template)):
            problems.append(
                f"omero_web_{name} = {template!r}: no such file in omero_web_templates ({v['templates']})"
            )
    both = set(v["omero_server_config"]) & set(v["omero_server_config_append"])
    if both:
        problems.append(
            f"omero_web_omero_server_config and omero_web_omero_server_config_append both name "
            f"{', '.join(sorted(both))}: set the whole value or list the items to ensure, not both"
        )
    if v["omero_server_group_config"] and not v["omero_server_admin_password"]:
        problems.append(
            "omero_web_omero_server_group_config needs omero_web_omero_server_admin_password "
            f"(for {v['omero_server_admin_user']!r}) to log in for `omero obj map-set`"
        )
    return problems


def validate(data: Mapping[str, Any], host: str = "?") -> Settings:
    """Check every ``omero_web_*`` key of ``data``; return Settings or raise ValidationError."""
    problems: list[str] = []
    values: dict[str, Any] = {}
    for name, value in data.items():
        if name.startswith(PREFIX) and name not in KEYS_BY_NAME:
            close = difflib.get_close_matches(name, KEYS_BY_NAME, n=1)
            hint = f"did you mean {close[0]}?" if close else "see the README's data table"
            problems.append(f"{name} = {value!r}: unknown key; {hint}")
    for key in KEYS:
        raw = data.get(key.name, key.default)
        try:
            values[key.attr] = key.check(raw)
        except Invalid as exc:
            problems.append(f"{key.name} = {raw!r}: {exc}")
    if not problems:
        problems.extend(_cross_checks(values))
    if problems:
        raise ValidationError(host, problems)
    return Settings(MappingProxyType(values))


def markdown_table() -> str:
    """The README's data table."""
    rows = ["| key | default | meaning |", "| --- | --- | --- |"]
    for key in KEYS:
        default = key.default
        if isinstance(default, Mapping):
            default = dict(default)
        shown = "none" if default is None else ("`[]`" if default == () else f"`{default!r}`")
        rows.append(f"| `{key.name}` | {shown} | {key.doc} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
