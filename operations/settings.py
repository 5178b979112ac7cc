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
