"""
Inventory data for omeroweb-deploy: every key, its default, its check and its doc.

This table is the single source of truth: validation, defaults and the README's data
table (``python -m operations.settings --markdown``) all come from ``KEYS``. Every key is
prefixed ``omero_web_``; values may come from inventories, ``group_data`` or ``--data``
(where pyinfra passes ``80`` as an int and ``a,b`` as a string, so lists also accept a
comma-separated string).
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping

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


class _Invalid(Exception):
    pass


# Checkers: each takes the raw value and returns the normalised value or raises _Invalid
# with "expected ...".


def _str(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Invalid("expected a non-empty string")
    return value


def _optional(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def checker(value: Any) -> Any:
        return None if value is None else check(value)

    checker.__doc__ = check.__doc__
    return checker


def _abs_path(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith("/") or "\n" in value:
        raise _Invalid("expected an absolute path starting with '/'")
    if value != "/" and value.endswith("/"):
        value = value.rstrip("/")
    if re.search(r"[\s'\"$`\\]", value):
        raise _Invalid("expected a path without spaces, quotes or shell characters")
    return value


def _int_range(low: int, high: int) -> Callable[[Any], int]:
    def checker(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise _Invalid(f"expected a whole number from {low} to {high}")
        return value

    return checker


_port = _int_range(1, 65535)


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Invalid("expected true or false")
    return value


def _choice(*choices: str) -> Callable[[Any], str]:
    def checker(value: Any) -> str:
        if value not in choices:
            raise _Invalid(f"expected one of: {', '.join(choices)}")
        return value

    return checker


def _str_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, (list, tuple)) or not all(
        isinstance(item, str) and item.strip() for item in value
    ):
        raise _Invalid("expected a list of non-empty strings (or a comma-separated string)")
    return tuple(value)


def _tags(value: Any) -> tuple[str, ...]:
    tags = _str_list(value)
    unknown = [tag for tag in tags if tag not in TAGS]
    if unknown:
        raise _Invalid(f"unknown tag(s) {', '.join(unknown)}; valid tags: {', '.join(TAGS)}")
    return tags


def _local_files(value: Any) -> tuple[str, ...]:
    paths = _str_list(value)
    missing = [p for p in paths if not os.path.isfile(os.path.expanduser(p))]
    if missing:
        raise _Invalid(f"expected existing files on the control machine; not found: {', '.join(missing)}")
    return tuple(os.path.abspath(os.path.expanduser(p)) for p in paths)


def _url(value: Any) -> str:
    if not isinstance(value, str) or not re.match(r"^(https?|file)://[^\s]+$", value):
        raise _Invalid("expected an http://, https:// or file:// URL")
    return value


def _url_like(scheme: str) -> Callable[[Any], str]:
    def checker(value: Any) -> str:
        if not isinstance(value, str) or not re.match(rf"^{scheme}s?://[^\s'\"]+$", value):
            raise _Invalid(f"expected a {scheme}:// URL such as '{scheme}://127.0.0.1:6379/0'")
        return value

    return checker


def _url_list(value: Any) -> tuple[str, ...]:
    return tuple(_url(item) for item in _str_list(value))


def _pip_spec(value: Any) -> str:
    if not isinstance(value, str) or not re.match(r"^[A-Za-z0-9][A-Za-z0-9._\-\[\],]*\s*([<>=!~]=?.*)?$", value):
        raise _Invalid("expected a pip requirement such as 'omero-web>=5.6.1'")
    if re.search(r"[\s;|&`$'\"]", value.replace(" ", "")):
        raise _Invalid("expected a pip requirement without shell characters")
    return value.replace(" ", "")


def _ice_wheel(value: Any) -> str:
    if isinstance(value, str) and re.match(r"^https?://", value):
        if not value.endswith(".whl"):
            raise _Invalid("expected a URL ending in .whl")
        return value
    if isinstance(value, str):
        path = os.path.abspath(os.path.expanduser(value))
        if not value.endswith(".whl"):
            raise _Invalid("expected a .whl URL or a local .whl file")
        if not os.path.isfile(path):
            raise _Invalid(f"expected an existing local wheel file; {path} does not exist")
        return path
    raise _Invalid("expected a .whl URL or a local .whl file path")


_PROPERTY = re.compile(r"^omero\.[A-Za-z0-9_.\-]+$")


def _config_value(key: str, value: Any) -> Any:
    if isinstance(value, str):
        if "\n" in value or value.endswith("\\") or value != value.strip():
            raise _Invalid(
                f"{key}: expected a single-line value without surrounding spaces or a trailing backslash"
            )
        return value
    if isinstance(value, (bool, int, float, list, dict)) or value is None:
        return value
    raise _Invalid(f"{key}: expected a string, number, boolean, list or mapping")


def _config(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _Invalid("expected a mapping of omero.* property names to values")
    bad = [k for k in value if not isinstance(k, str) or not _PROPERTY.match(k)]
    if bad:
        raise _Invalid(f"expected property names like 'omero.web.debug'; got {', '.join(map(repr, bad))}")
    return MappingProxyType({k: _config_value(k, v) for k, v in value.items()})


def _config_append(value: Any) -> Mapping[str, tuple]:
    config = _config(value)
    for key, items in config.items():
        if not isinstance(items, (list, tuple)):
            raise _Invalid(f"{key}: expected a list of items to append")
    return MappingProxyType({k: tuple(v) for k, v in config.items()})


def _nginx_server_name(value: Any) -> str:
    if not isinstance(value, str) or not re.match(r"^[A-Za-z0-9_.*~\-]+( [A-Za-z0-9_.*~\-]+)*$", value):
        raise _Invalid("expected one or more host names separated by single spaces")
    return value


def _user(value: Any) -> str:
    if not isinstance(value, str) or not re.match(r"^[a-z_][a-z0-9_\-]{0,31}$", value):
        raise _Invalid("expected a system user name (lowercase letters, digits, '-', '_')")
    return value


def _local_dir(value: Any) -> str:
    if not isinstance(value, str) or not os.path.isdir(os.path.expanduser(value)):
        raise _Invalid(f"expected an existing folder on the control machine; not found: {value!r}")
    return os.path.abspath(os.path.expanduser(value))


def _local_file(value: Any) -> str:
    if not isinstance(value, str) or not os.path.isfile(os.path.expanduser(value)):
        raise _Invalid(f"expected an existing file on the control machine; not found: {value!r}")
    return os.path.abspath(os.path.expanduser(value))


def _url_prefix(value: Any) -> str:
    if not isinstance(value, str) or not re.match(r"^(/[A-Za-z0-9._~\-]+)+$", value):
        raise _Invalid("expected a URL path with a leading slash and no trailing slash, such as '/omero'")
    return value


_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.\-]+(:\d{1,5})?$")


def _origins(value: Any) -> tuple[str, ...]:
    origins = _str_list(value)
    bad = [o for o in origins if not _ORIGIN.match(o)]
    if bad:
        raise _Invalid(f"expected origins like 'https://example.org' (scheme, host, optional port); got {', '.join(bad)}")
    return origins


def _regex(value: Any) -> str:
    value = _str(value)
    try:
        re.compile(value)
    except re.error as exc:
        raise _Invalid(f"expected a regular expression: {exc}") from None
    return value


def _time_of_day(value: Any) -> str:
    if not isinstance(value, str) or not re.match(r"^([01]\d|2[0-3]):[0-5]\d$", value):
        raise _Invalid("expected a time of day as HH:MM, such as '03:17'")
    return value


def _http_url_or_path(value: Any) -> str:
    if not isinstance(value, str) or not re.match(r"^(https?://[^\s'\"]+|/[^\s'\"]*)$", value):
        raise _Invalid("expected an http(s):// URL or an absolute URL path")
    return value


def _json_list(value: Any) -> tuple:
    if not isinstance(value, (list, tuple)) or not all(isinstance(item, (list, tuple, Mapping)) for item in value):
        raise _Invalid("expected a list of lists or mappings (stored as JSON)")
    return tuple(list(item) if isinstance(item, tuple) else item for item in value)


def _mapping(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise _Invalid("expected a mapping with string keys")
    return MappingProxyType(dict(value))


_APP_FIELDS = {
    "spec": "pip requirement",
    "app": "Django app label for omero.web.apps",
    "top_links": "items for omero.web.ui.top_links",
    "open_with": "items for omero.web.open_with",
    "right_plugins": "items for omero.web.ui.right_plugins",
    "center_plugins": "items for omero.web.ui.center_plugins",
    "config": "extra omero.* properties",
}


def _apps(value: Any) -> tuple[Mapping[str, Any], ...]:
    if not isinstance(value, (list, tuple)):
        raise _Invalid("expected a list of apps, each a mapping with at least 'spec' and 'app'")
    apps, labels = [], set()
    for index, app in enumerate(value):
        where = f"app #{index + 1}"
        if not isinstance(app, Mapping):
            raise _Invalid(f"{where}: expected a mapping with 'spec' and 'app'")
        unknown = sorted(set(app) - set(_APP_FIELDS))
        if unknown:
            raise _Invalid(f"{where}: unknown field(s) {', '.join(unknown)}; known: {', '.join(_APP_FIELDS)}")
        if "spec" not in app or "app" not in app:
            raise _Invalid(f"{where}: expected both 'spec' (pip requirement) and 'app' (Django app label)")
        try:
            spec = _pip_spec(app["spec"])
        except _Invalid as exc:
            raise _Invalid(f"{where} spec {app['spec']!r}: {exc}") from None
        if not isinstance(app["app"], str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_.]*$", app["app"]):
            raise _Invalid(f"{where}: 'app' must be a Python module name such as 'omero_figure'")
        if app["app"] in labels:
            raise _Invalid(f"{where}: app {app['app']!r} is listed twice")
        labels.add(app["app"])
        entry = {"spec": spec, "app": app["app"]}
        for field_name in ("top_links", "open_with", "right_plugins", "center_plugins"):
            try:
                entry[field_name] = _json_list(app.get(field_name, ()))
            except _Invalid as exc:
                raise _Invalid(f"{where} {field_name}: {exc}") from None
        try:
            entry["config"] = _config(app.get("config", {}))
        except _Invalid as exc:
            raise _Invalid(f"{where} config: {exc}") from None
        apps.append(MappingProxyType(entry))
    return tuple(apps)


_PUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")
_PUB_TARGET = re.compile(r"^((project|dataset|image|screen|plate|well)-\d+|/[^\s;{}'\"]*)$")


def _publications(value: Any) -> Mapping[str, str]:
    if not isinstance(value, Mapping):
        raise _Invalid("expected a mapping of publication identifier to 'project-<id>' (or an URL path)")
    for ident, target in value.items():
        if not isinstance(ident, str) or not _PUB_ID.match(ident):
            raise _Invalid(f"publication identifier {ident!r}: expected letters, digits, '.', '_' or '-'")
        if not isinstance(target, str) or not _PUB_TARGET.match(target):
            raise _Invalid(
                f"publication {ident!r} -> {target!r}: expected 'project-<id>' (or dataset-, image-, screen-, "
                "plate-, well-) or an absolute URL path"
            )
    return MappingProxyType(dict(value))


def _server_config(value: Any) -> Mapping[str, Any]:
    config = _config(value)
    web = [k for k in config if k.startswith("omero.web.")]
    if web:
        raise _Invalid(f"expected OMERO.server properties; {', '.join(web)} belong in omero_web_config")
    return config


def _server_config_append(value: Any) -> Mapping[str, tuple]:
    config = _config_append(_server_config(value))
    for key, items in config.items():
        bad = [i for i in items if not isinstance(i, str) or not i.strip() or "," in i]
        if bad:
            raise _Invalid(f"{key}: OMERO.server list properties are comma-separated; expected strings "
                           f"without commas, got {', '.join(map(repr, bad))}")
    return config


def _group_config(value: Any) -> Mapping[int, Mapping[str, Any]]:
    if not isinstance(value, Mapping):
        raise _Invalid("expected a mapping of OMERO group id to {property: value}")
    result = {}
    for group, config in value.items():
        if isinstance(group, bool) or not (isinstance(group, int) or (isinstance(group, str) and group.isdigit())):
            raise _Invalid(f"group {group!r}: expected a numeric OMERO group id")
        try:
            result[int(group)] = _server_config(config)
        except _Invalid as exc:
            raise _Invalid(f"group {group}: {exc}") from None
    return MappingProxyType(result)


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
    Key("omero_web_user", "omero-web", _user, "System user that owns OMERODIR and runs OMERO.web.", "prerequisites"),
    Key("omero_web_omerodir", "/opt/omero/web/omero-web", _abs_path, "OMERODIR: configuration, logs and `etc/grid`.", "prerequisites"),
    Key("omero_web_extra_ca_certificates", (), _local_files,
        "PEM files on the control machine (one or more certificates each) added to the host's trust store, "
        "and used by pip: needed behind TLS-intercepting proxies.", "prerequisites"),
    # Virtualenv, Ice, OMERO.web
    Key("omero_web_venv", "/opt/omero/web/venv3", _abs_path, "Virtual environment of OMERO.web.", "venv"),
    Key("omero_web_python", None, _optional(_abs_path),
        "Interpreter that creates the venv (default: the distro profile's, e.g. `/usr/bin/python3`).", "venv"),
    Key("omero_web_pip_index_url", None, _optional(_url), "pip index URL for the venv (default: pip's).", "venv"),
    Key("omero_web_pip_extra_index_urls", (), _url_list, "Extra pip index URLs for the venv.", "venv"),
    Key("omero_web_ice_source", "auto", _choice(*ICE_SOURCES),
        "Where IcePy 3.6.5 comes from: `wheel` (from `omero_web_ice_wheel`), `build` (PyPI sdist, patched for the "
        "host's Python), `auto` (the distro's prebuilt wheel if there is one, falling back to `build`).", "venv"),
    Key("omero_web_ice_wheel", None, _optional(_ice_wheel),
        "Ice wheel URL or local `.whl` file, required with `omero_web_ice_source: wheel`.", "venv"),
    Key("omero_web_ice_cache_dir", "~/.cache/omeroweb-deploy/wheels", _str,
        "Control-machine folder where built Ice wheels are kept per distro + Python ABI and shared with the fleet.", "venv"),
    Key("omero_web_version_spec", "omero-web>=5.6.1", _pip_spec,
        "pip requirement for OMERO.web (pip picks the newest release the host's Python supports).", "venv"),
    Key("omero_web_migrate_from_omerodir", None, _optional(_abs_path),
        "Previous OMERODIR when moving to a new `omero_web_omerodir`: its configuration is exported and loaded "
        "into the new one once (`omero config get --show-password` / `omero config load`); it is left as it was.",
        "venv"),
    Key("omero_web_whitenoise_spec", "whitenoise", _pip_spec, "pip requirement for WhiteNoise.", "venv"),
    # Configuration
    Key("omero_web_config", MappingProxyType({}), _config,
        "`omero.*` properties to set (`omero config set`); lists and mappings are stored as JSON.", "config"),
    Key("omero_web_config_append", MappingProxyType({}), _config_append,
        "List properties and the items to ensure in them (`omero config append --set`), e.g. middleware.", "config"),
    Key("omero_web_secret_config_keys", (), _str_list,
        "Extra property names whose values are secrets (names containing `password` always are).", "config"),
    Key("omero_web_server_host", "localhost", _str, "OMERO.server host for `omero.web.server_list`.", "config"),
    Key("omero_web_server_port", 4064, _port, "OMERO.server port for `omero.web.server_list`.", "config"),
    Key("omero_web_server_name", "omero", _str, "Display name for `omero.web.server_list`.", "config"),
    # Gunicorn
    Key("omero_web_wsgi_workers", None, _optional(_int_range(1, 512)),
        "`omero.web.wsgi_workers` (default: 2 x cores + 1 from the host's facts).", "gunicorn"),
    Key("omero_web_wsgi_worker_class", None, _optional(_choice("sync", "gevent")),
        "`omero.web.wsgi_worker_class` (default: OMERO.web's, sync).", "gunicorn"),
    Key("omero_web_wsgi_args", None, _optional(_str), "`omero.web.wsgi_args`: extra Gunicorn arguments.", "gunicorn"),
    Key("omero_web_wsgi_threads", None, _optional(_int_range(1, 256)),
        "`omero.web.wsgi_threads` for sync workers (the walkthrough suggests 2-4 x cores).", "gunicorn"),
    Key("omero_web_wsgi_worker_connections", None, _optional(_int_range(1, 100000)),
        "`omero.web.wsgi_worker_connections` for gevent workers (OMERO.web's default: 1000).", "gunicorn"),
    Key("omero_web_gevent_spec", "gevent>=0.13", _pip_spec,
        "pip requirement installed with `omero_web_wsgi_worker_class: gevent` (which also sets "
        "`omero.web.application_server.max_requests` to 0, as the walkthrough requires).", "gunicorn"),
    # Redis
    Key("omero_web_redis", False, _bool,
        "Cache and sessions in Redis: installs `django-redis`, sets `omero.web.caches` and "
        "`omero.web.session_engine`; installs and starts the distro's Redis server when the URL is local.", "redis"),
    Key("omero_web_redis_url", "redis://127.0.0.1:6379/0", _url_like("redis"),
        "Redis location for `omero.web.caches` (a password in it makes the property secret).", "redis"),
    Key("omero_web_django_redis_spec", "django-redis", _pip_spec,
        "pip requirement for django-redis (resolved against the installed Django).", "redis"),
    # CORS
    Key("omero_web_cors_origins", (), _origins,
        "Origins allowed by CORS (`omero.web.cors_origin_whitelist`); turns CORS on.", "cors"),
    Key("omero_web_cors_allow_all", False, _bool, "Allow every origin (`omero.web.cors_origin_allow_all`).", "cors"),
    Key("omero_web_cors_headers_spec", "django-cors-headers", _pip_spec,
        "pip requirement for django-cors-headers (resolved against the installed omero-web's pin).", "cors"),
    # Apps
    Key("omero_web_apps", (), _apps,
        "OMERO.web apps: list of `{spec, app, top_links, open_with, right_plugins, center_plugins, config}`; "
        "apps removed from the list are uninstalled and dropped from the settings.", "apps"),
    # URL prefix
    Key("omero_web_prefix", None, _optional(_url_prefix),
        "Serve OMERO.web under this path (`omero.web.prefix`, `omero.web.static_url`), e.g. `/omero`.", "nginx"),
    # HTTPS
    Key("omero_web_https", False, _bool,
        "HTTPS on `omero_web_https_port` (TLS 1.2+), HTTP redirected to it, OMERO.web told it is behind "
        "HTTPS (secure cookies, `omero.web.secure`, `omero.web.secure_proxy_ssl_header`).", "https"),
    Key("omero_web_https_port", 443, _port, "Port of the HTTPS server.", "https"),
    Key("omero_web_tls_certificate", None, _optional(_local_file),
        "PEM certificate (chain) on the control machine for HTTPS.", "https"),
    Key("omero_web_tls_key", None, _optional(_local_file),
        "PEM private key on the control machine for HTTPS (installed 0600).", "https"),
    Key("omero_web_tls_self_signed", False, _bool,
        "Generate a self-signed certificate on the host instead (testing only).", "https"),
    # Sessions
    Key("omero_web_session_expire_at_browser_close", None, _optional(_bool),
        "`omero.web.session_expire_at_browser_close` (OMERO.web's default: true).", "sessions"),
    Key("omero_web_session_cookie_age", None, _optional(_int_range(60, 31536000)),
        "`omero.web.session_cookie_age` in seconds (OMERO.web's default: 86400).", "sessions"),
    Key("omero_web_clearsessions", False, _bool,
        "Run `omero web clearsessions` daily: a systemd timer where systemd runs, else a cron job.", "sessions"),
    Key("omero_web_clearsessions_time", "03:17", _time_of_day, "Time of day (HH:MM, host time) of that job.", "sessions"),
    # UI customization
    Key("omero_web_templates", None, _optional(_local_dir),
        "Folder of templates on the control machine, copied to `OMERODIR/etc/templates/custom` and added to "
        "`omero.web.template_dirs`.", "customization"),
    Key("omero_web_index_template", None, _optional(_str),
        "`omero.web.index_template`: a template in `omero_web_templates`, e.g. `mytemplate/index.html`.",
        "customization"),
    Key("omero_web_base_include_template", None, _optional(_str),
        "`omero.web.base_include_template`: a template in `omero_web_templates` included in every page.",
        "customization"),
    Key("omero_web_login_logo", None, _optional(_http_url_or_path), "`omero.web.login_logo`: URL of the logo.",
        "customization"),
    Key("omero_web_login_redirect", None, _optional(_mapping),
        "`omero.web.login_redirect`, e.g. `{redirect: [webindex], viewname: load_template, args: [userdata]}`.",
        "customization"),
    Key("omero_web_top_links", (), _json_list, "Items appended to `omero.web.ui.top_links`.", "customization"),
    Key("omero_web_open_with", (), _json_list, "Items appended to `omero.web.open_with`.", "customization"),
    # Publishing
    Key("omero_web_public_enabled", False, _bool,
        "Public user auto-login (`omero.web.public.enabled`); needs user, password and URL filter.", "publishing"),
    Key("omero_web_public_user", None, _optional(_str), "`omero.web.public.user`.", "publishing"),
    Key("omero_web_public_password", None, _optional(_str),
        "`omero.web.public.password` (secret: never shown, stored owner-only).", "publishing"),
    Key("omero_web_public_url_filter", None, _optional(_regex),
        "`omero.web.public.url_filter`: URLs the public user may open, e.g. `^/webgateway`.", "publishing"),
    Key("omero_web_public_get_only", True, _bool, "`omero.web.public.get_only`.", "publishing"),
    Key("omero_web_public_server_id", 1, _int_range(1, 1000), "`omero.web.public.server_id`.", "publishing"),
    Key("omero_web_public_cache_enabled", False, _bool, "`omero.web.public.cache.enabled`.", "publishing"),
    Key("omero_web_public_cache_timeout", None, _optional(_int_range(1, 31536000)),
        "`omero.web.public.cache.timeout` in seconds (OMERO.web's default: 86400).", "publishing"),
    Key("omero_web_publications", MappingProxyType({}), _publications,
        "Publication redirects: identifier -> `project-<id>` makes `/pub/<identifier>` answer 307 to "
        "`/webclient/?show=project-<id>`.", "publishing"),
    # OMERO.server-side settings
    Key("omero_web_omero_server_group", "omero_server", _str,
        "Inventory group whose hosts are OMERO.servers: they get only the server-side settings below.",
        "omero_server"),
    Key("omero_web_omero_server_venv", "/opt/omero/server/venv3", _abs_path, "OMERO.server's virtualenv.",
        "omero_server"),
    Key("omero_web_omero_server_omerodir", "/opt/omero/server/OMERO.server", _abs_path, "OMERO.server's OMERODIR.",
        "omero_server"),
    Key("omero_web_omero_server_user", "omero-server", _user, "User that owns OMERO.server.", "omero_server"),
    Key("omero_web_omero_server_config", MappingProxyType({}), _server_config,
        "OMERO.server properties served to clients: `omero.client.ui.menu.dropdown.*`, "
        "`omero.client.ui.tree.orphans.name`, `omero.policy.binary_access`, ...", "omero_server"),
    Key("omero_web_omero_server_config_append", MappingProxyType({}), _server_config_append,
        "OMERO.server list properties and the items to ensure, e.g. `omero.client.scripts_to_ignore`.",
        "omero_server"),
    Key("omero_web_omero_server_group_config", MappingProxyType({}), _group_config,
        "Per-group settings, group id -> `{property: value}` (`omero obj map-set ExperimenterGroup:<id> config`).",
        "omero_server"),
    Key("omero_web_omero_server_admin_user", "root", _str, "OMERO admin that applies per-group settings.",
        "omero_server"),
    Key("omero_web_omero_server_admin_password", None, _optional(_str),
        "That admin's password (secret); required with `omero_web_omero_server_group_config`.", "omero_server"),
    # NGINX
    Key("omero_web_nginx_port", 80, _port, "Port NGINX listens on (`--http`).", "nginx"),
    Key("omero_web_nginx_server_name", "localhost", _nginx_server_name, "NGINX `server_name` (`--servername`).", "nginx"),
    # Service and checks
    Key("omero_web_service_manager", "auto", _choice(*SERVICE_MANAGERS),
        "`auto`: systemd unit when systemd is PID 1, else the init.d script.", "service"),
    Key("omero_web_healthcheck_timeout", 120, _int_range(5, 3600),
        "Seconds the final health check waits for the login page through NGINX.", "healthcheck"),
    Key("omero_web_troubleshoot_dir", None, _optional(_str),
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
    if values["venv"] == values["omerodir"] or values["omerodir"].startswith(values["venv"] + "/"):
        problems.append("omero_web_omerodir must not be the virtualenv or inside it (upgrades replace the venv)")
    if values["migrate_from_omerodir"] == values["omerodir"]:
        problems.append(
            "omero_web_migrate_from_omerodir is omero_web_omerodir: set omero_web_omerodir to the new location, "
            "or remove omero_web_migrate_from_omerodir"
        )
    problems.extend(_feature_checks(values))
    return problems


#: Properties that dedicated keys own: setting them in omero_web_config too would give two sources.
DEDICATED_PROPERTIES = {
    "omero.web.server_list": "omero_web_server_host/_port/_name",
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
    "omero.web.public.enabled": "omero_web_public_enabled",
    "omero.web.public.user": "omero_web_public_user",
    "omero.web.public.password": "omero_web_public_password",
    "omero.web.public.url_filter": "omero_web_public_url_filter",
    "omero.web.public.get_only": "omero_web_public_get_only",
    "omero.web.public.server_id": "omero_web_public_server_id",
    "omero.web.public.cache.enabled": "omero_web_public_cache_enabled",
    "omero.web.public.cache.timeout": "omero_web_public_cache_timeout",
}


def _feature_checks(v: dict[str, Any]) -> list[str]:
    """Mutually exclusive or incomplete feature settings."""
    problems = []
    for prop in sorted(set(v["config"]) & set(DEDICATED_PROPERTIES)):
        problems.append(
            f"omero_web_config sets {prop}, which {DEDICATED_PROPERTIES[prop]} manages: set it there only"
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
        except _Invalid as exc:
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
