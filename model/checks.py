"""
Checkers of inventory values, used by ``model.settings``' key table.

Each checker takes the raw value and returns it normalised, or raises ``Invalid`` whose
message says what is expected (the fix); ``validate`` prefixes ``<key> = <repr(value)>: ``.

The deploy runs as root, and these values reach shell commands, systemd units, init.d
scripts, cron lines, NGINX configuration and the ``.properties`` files that ``omero config
load`` reads. So every check is an allowlist matched in full: ``re.fullmatch`` (``$`` also
matches before a trailing newline) and ``[0-9]`` (``\\d`` and ``\\s`` are Unicode-wide).

Why one module of ~600 lines: it is a flat list of small, independent checkers with no
state and one import (packaging); each rule is found by its heading below, and splitting
it would only spread one concern (what a value may contain) over several files.
"""

from __future__ import annotations

import json
import math
import os
import re
from types import MappingProxyType
from urllib.parse import unquote, urlsplit
from typing import Any, Callable, Mapping

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name


class Invalid(Exception):
    """A value fails its check; the message starts with "expected" and names the fix."""


# --- Text on one line ------------------------------------------------------------------

#: What ends or breaks a line somewhere: C0 and C1 controls, DEL, and the line ends of
#: Python's str.splitlines() (\x85, \u2028, \u2029); Java's properties reader ends lines at \r too.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _found(value: str) -> str:
    return ", ".join(sorted({repr(char) for char in _CONTROL.findall(value)}))


def line_problem(value: str) -> str | None:
    """Why ``value`` would not stay one property/shell/template line, or None."""
    if _CONTROL.search(value):
        return f"without control characters such as newline, tab, CR or NUL (found {_found(value)})"
    if value != value.strip():
        return "without leading or trailing spaces"
    if value.endswith("\\"):
        # a .properties line ending in a backslash continues on the next line
        return "not ending with a backslash"
    return None


def single_line(value: Any) -> str:
    """A non-empty string on one line: no control characters, surrounding spaces or trailing backslash."""
    if not isinstance(value, str) or not value.strip():
        raise Invalid("expected a non-empty string")
    problem = line_problem(value)
    if problem:
        raise Invalid(f"expected a single line {problem}")
    return value


def optional(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def checker(value: Any) -> Any:
        return None if value is None else check(value)

    checker.__doc__ = check.__doc__
    return checker


def str_list(value: Any) -> tuple[str, ...]:
    """A list of single-line strings, or (from ``--data``) a comma-separated string."""
    if isinstance(value, str):
        if _CONTROL.search(value):
            raise Invalid(f"expected a comma-separated string on one line (found {_found(value)})")
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) and item.strip() for item in value):
        raise Invalid("expected a list of non-empty strings (or a comma-separated string)")
    for item in value:
        problem = line_problem(item)
        if problem:
            raise Invalid(f"expected list items on a single line {problem}: {item!r}")
    return tuple(value)


# --- Scalars ---------------------------------------------------------------------------


def int_range(low: int, high: int) -> Callable[[Any], int]:
    def checker(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise Invalid(f"expected a whole number from {low} to {high}")
        return value

    return checker


port = int_range(1, 65535)


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid("expected true or false")
    return value


def choice(*choices: str) -> Callable[[Any], str]:
    def checker(value: Any) -> str:
        if not isinstance(value, str) or value not in choices:
            raise Invalid(f"expected one of: {', '.join(choices)}")
        return value

    return checker


def time_of_day(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", value):
        raise Invalid("expected a time of day as HH:MM, such as '03:17'")
    return value


def regex(value: Any) -> str:
    value = single_line(value)
    try:
        re.compile(value)
    except (re.error, RecursionError, OverflowError) as exc:
        raise Invalid(f"expected a regular expression: {exc}") from None
    return value


# --- Paths and files on the host -----------------------------------------------------------

MAX_PATH = 200
_PATH_CHARS = "letters, digits, '.', '_', '+', '-' and '/'"
_HOST_PATH = re.compile(r"(/[A-Za-z0-9._+][A-Za-z0-9._+-]*)+")

#: Shared system folders: root installing into (or the OMERO.web user owning) one of these
#: would change files that belong to the system or to other software.
SYSTEM_FOLDERS = frozenset("""
    /bin /boot /dev /etc /home /lib /lib32 /lib64 /libx32 /media /mnt /opt /proc /root /run /sbin /srv
    /sys /tmp /usr /var /usr/bin /usr/lib /usr/lib64 /usr/local /usr/local/bin /usr/local/lib
    /usr/local/sbin /usr/sbin /usr/share /usr/src /usr/include /var/lib /var/log /var/cache /var/www
    /var/tmp /var/spool /var/mail /var/backups /var/opt /var/local /opt/omero /opt/omero/web
    /opt/omero/server /etc/nginx /etc/systemd
""".split())

_PSEUDO, _VOLATILE, _SYSTEM = "a pseudo file system", "temporary or world-writable", "owned by the system"
#: Trees nothing of this deploy may live in (/var/run and /var/lock are links into /run).
SYSTEM_TREES = {
    **dict.fromkeys(("/proc", "/sys", "/dev"), _PSEUDO),
    **dict.fromkeys(("/run", "/var/run", "/var/lock", "/tmp", "/var/tmp"), _VOLATILE),
    **dict.fromkeys(("/boot", "/etc", "/root", "/usr/bin", "/usr/sbin", "/usr/lib", "/usr/lib64",
                     "/bin", "/sbin", "/lib", "/lib64"), _SYSTEM),
}


def inside(path: str, folder: str) -> bool:
    """``path`` is ``folder`` or below it."""
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _tree(path: str, reasons: tuple[str, ...] = (_PSEUDO, _VOLATILE, _SYSTEM)) -> str | None:
    return next((tree for tree, why in SYSTEM_TREES.items() if why in reasons and inside(path, tree)), None)


def host_path(value: Any, *, allow_root: bool = False) -> str:
    """An absolute path that is safe unquoted anywhere: '/' then components of [A-Za-z0-9._+-]."""
    if not isinstance(value, str) or not value.startswith("/"):
        raise Invalid("expected an absolute path starting with '/'")
    bad = sorted(set(re.sub(r"[A-Za-z0-9._+/-]", "", value)))
    if bad:
        raise Invalid(f"expected a path without spaces, quotes or shell characters: only {_PATH_CHARS} "
                      f"(found {', '.join(map(repr, bad))})")
    path = value.rstrip("/") or "/"
    if path == "/":
        if allow_root:
            return path
        raise Invalid("expected the path of a file, not /")
    parts = path.split("/")[1:]
    if "" in parts:
        raise Invalid("expected a path without empty components ('//')")
    if "." in parts or ".." in parts:
        raise Invalid("expected a path without '.' or '..' components: write the resolved path")
    if any(part.startswith("-") for part in parts):
        raise Invalid("expected path components that do not start with '-' (commands would read them as options)")
    if len(path) > MAX_PATH:
        raise Invalid(f"expected a path of at most {MAX_PATH} characters")
    if not _HOST_PATH.fullmatch(path):  # the checks above already ensure this; the allowlist is the rule
        raise Invalid(f"expected an absolute path of {_PATH_CHARS}")
    return path


def nginx_include(value: Any) -> str:
    """A file under /etc/nginx that NGINX does not load by itself (a server block includes it)."""
    path = host_path(value)
    if not inside(path, "/etc/nginx") or path == "/etc/nginx":
        raise Invalid("expected a file under /etc/nginx (root's, as NGINX's master is), "
                      "such as '/etc/nginx/omero-web-location.include'")
    loaded = ("/etc/nginx/conf.d", "/etc/nginx/sites-enabled", "/etc/nginx/sites-available", "/etc/nginx/modules-enabled")
    if any(inside(path, folder) for folder in loaded) or path == "/etc/nginx/nginx.conf":
        raise Invalid("expected a file outside the folders NGINX loads at http level (conf.d, sites-*, "
                      "modules-enabled): its location blocks belong inside a server block, through include")
    return path


def install_folder(example: str) -> Callable[[Any], str]:
    """A host folder this deploy owns: never a shared system folder, nor in a system tree."""

    def checker(value: Any) -> str:
        path = host_path(value, allow_root=True)
        if path == "/" or path in SYSTEM_FOLDERS:
            raise Invalid(f"expected a folder of its own for this deploy, not the system folder {path} (e.g. {example})")
        tree = _tree(path)
        if tree:
            raise Invalid(f"expected a folder of its own for this deploy, not inside {tree}, which is "
                          f"{SYSTEM_TREES[tree]} (e.g. {example})")
        return path

    return checker


def interpreter(value: Any) -> str:
    """The Python that creates the venv: root runs it, so never from a volatile or pseudo tree."""
    path = host_path(value)
    tree = _tree(path, (_PSEUDO, _VOLATILE))
    if tree:
        raise Invalid(f"expected an interpreter installed outside {tree}, which is {SYSTEM_TREES[tree]} "
                      "(e.g. /usr/bin/python3)")
    return path


def template_path(value: Any) -> str:
    """A template's path relative to ``omero_web_templates``."""
    if (not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*", value)
            or {".", ".."} & set(value.split("/"))):
        raise Invalid("expected a template path relative to omero_web_templates, such as 'mysite/index.html' "
                      "(letters, digits, '.', '_', '-' between slashes; no '.' or '..' component)")
    return value


# --- Names -----------------------------------------------------------------------------

#: Accounts of the system and of other services: the deploy modifies its user (usermod), and
#: runs commands as OMERO.server's, so neither may be one of these.
SYSTEM_ACCOUNTS = frozenset("""
    root daemon bin sys sync games man lp mail news uucp proxy www-data backup list irc gnats nobody
    nogroup _apt messagebus sshd nginx apache httpd redis postgres mysql adm halt shutdown operator ftp
    polkitd dbus chrony _chrony tss nfsnobody postfix syslog ntp rpc rpcuser uuidd tcpdump
""".split())


def account(owner: str, example: str) -> Callable[[Any], str]:
    def checker(value: Any) -> str:
        if not isinstance(value, str) or not re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", value):
            raise Invalid("expected a system user name (lowercase letters, digits, '-', '_'; starting with a "
                          "letter or '_'; at most 32 characters)")
        if value in SYSTEM_ACCOUNTS or value.startswith("systemd-"):
            raise Invalid(f"expected an account of its own for {owner} (e.g. {example!r}), "
                          f"not the system account {value!r}")
        return value

    return checker


def host_name(value: Any) -> str:
    """A host name or IP address (IPv6 without brackets)."""
    if not isinstance(value, str) or len(value) > 253 or not re.fullmatch(r"[A-Za-z0-9:][A-Za-z0-9.:-]*", value):
        raise Invalid("expected a host name or IP address (letters, digits, '.', ':', '-'), such as 'omero.example.org'")
    return value


def host_and_port(value: Any) -> str:
    """``host`` or ``host:port`` (an IPv6 address in brackets: ``[2001:db8::1]:8080``)."""
    expected = "expected a host name or IP address with an optional port, such as 'web1.example.org:8080'"
    if not isinstance(value, str):
        raise Invalid(expected)
    found = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](?::([0-9]+))?|([A-Za-z0-9][A-Za-z0-9.-]*)(?::([0-9]+))?", value)
    if not found:
        raise Invalid(expected)
    host_part = found.group(1) or found.group(3)
    port_part = found.group(2) or found.group(4)
    host_name(host_part)
    if port_part is not None:
        port(int(port_part))
    return value


def omero_servers(value: Any) -> tuple[tuple[str, int, str], ...]:
    """OMERO.servers for ``omero.web.server_list``: a list of ``[host, port, name]``."""
    expected = "expected a list of [host, port, name], such as [['omero1.example.org', 4064, 'omero1']]"
    if not isinstance(value, (list, tuple)) or not value:
        raise Invalid(expected)
    servers = []
    for item in value:
        if not isinstance(item, (list, tuple)) or len(item) != 3:
            raise Invalid(expected)
        try:
            servers.append((host_name(item[0]), port(item[1]), single_line(item[2])))
        except Invalid as exc:
            raise Invalid(f"{expected}; in {list(item)!r}: {exc}") from None
    if len({(h, p) for h, p, _ in servers}) != len(servers):
        raise Invalid(f"{expected}, each host and port once")
    return tuple(servers)


def group_name(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        raise Invalid("expected an inventory group name (letters, digits, '_'), such as 'omero_server'")
    return value


def nginx_server_name(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_.*~-]+( [A-Za-z0-9_.*~-]+)*", value):
        raise Invalid("expected one or more host names separated by single spaces")
    return value


PROPERTY = re.compile(r"omero\.[A-Za-z0-9_.-]+")


def property_names(value: Any) -> tuple[str, ...]:
    names = str_list(value)
    bad = [name for name in names if not PROPERTY.fullmatch(name)]
    if bad:
        raise Invalid(f"expected omero.* property names such as 'omero.web.sentry_dsn'; got {', '.join(map(repr, bad))}")
    return names


# --- URLs and pip requirements ---------------------------------------------------------------

#: A URL character: none of whitespace, quotes, backslash, control characters, { } ; < > `
_URL_CHAR = r"[^\s'\"\\{};<>`\x00-\x1f\x7f-\x9f\u2028\u2029]"
_URL_RULE = "no spaces, quotes, backslashes, control characters or any of { } ; < > `"


def url(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(rf"(https?|file)://{_URL_CHAR}+", value):
        raise Invalid(f"expected an http://, https:// or file:// URL ({_URL_RULE})")
    return value


def url_like(scheme: str) -> Callable[[Any], str]:
    def checker(value: Any) -> str:
        if not isinstance(value, str) or not re.fullmatch(rf"{scheme}s?://{_URL_CHAR}+", value):
            raise Invalid(f"expected a {scheme}:// URL such as '{scheme}://127.0.0.1:6379/0' ({_URL_RULE})")
        return value

    return checker


#: Host names of a Redis on the host itself (the deploy installs and locks it).
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def is_local(url: str) -> bool:
    """Whether a URL names this host (loopback)."""
    try:
        return (urlsplit(url).hostname or "") in LOCAL_HOSTS
    except ValueError:
        return False


def local_redis_url_problem(url: str) -> str | None:
    """Why a URL of the Redis the deploy installs cannot be its configuration (None: it can): the
    password it requires is the URL's (as redis-py reads it, unquoted), written in Redis's own
    configuration; the deploy sets the password of Redis's default user."""
    parts = urlsplit(url)
    if parts.username not in (None, "", "default"):
        # (the URL itself is not shown: it holds a password)
        return ("omero_web_redis_url: a local Redis (the deploy's) has one password, for its default user: leave "
                f"the user name ({parts.username!r}) out (redis://:PASSWORD@127.0.0.1:6379/0)")
    password = unquote(parts.password or "")
    if parts.password is not None and not re.fullmatch(r"[!-~]{8,}", password):
        return ("omero_web_redis_url: the password of a local Redis must be 8 or more printable ASCII characters "
                "without spaces (percent-encoded in the URL where needed), or left out: the deploy then makes one "
                "on the host")
    return None


def url_list(value: Any) -> tuple[str, ...]:
    return tuple(url(item) for item in str_list(value))


def http_url_or_path(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(rf"(https?://{_URL_CHAR}+|/{_URL_CHAR}*)", value):
        raise Invalid(f"expected an http(s):// URL or an absolute URL path ({_URL_RULE})")
    return value


def url_prefix(value: Any) -> str:
    if (not isinstance(value, str) or not re.fullmatch(r"(/[A-Za-z0-9._~-]+)+", value)
            or {".", ".."} & set(value.split("/"))):
        raise Invalid("expected a URL path with a leading slash and no trailing slash, such as '/omero'")
    return value


_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?")


def origins(value: Any) -> tuple[str, ...]:
    items = str_list(value)
    bad = [item for item in items if not _ORIGIN.fullmatch(item)]
    if bad:
        raise Invalid(f"expected origins like 'https://example.org' (scheme, host, optional port); got {', '.join(bad)}")
    return items


_PIP_CHARS = re.compile(r"[A-Za-z0-9._\-\[\],<>=!~*+ ]+")
_PIP_HINT = "expected a pip requirement such as 'omero-web>=5.6.1'"


def pip_spec(value: Any) -> str:
    """A name, [extras] and version specifiers: no markers (';'), URLs ('@') or pip options; spaces removed."""
    if not isinstance(value, str) or not _PIP_CHARS.fullmatch(value):
        raise Invalid(f"{_PIP_HINT}: a name, optional [extras] and versions, made of letters, digits and "
                      ". _ - [ ] , < > = ! ~ * + only: no markers (;), URLs (@) or pip options")
    compact = value.replace(" ", "")
    try:
        requirement = Requirement(value)
        same = str(Requirement(compact)) == str(requirement)  # removing spaces must not change its meaning
    except InvalidRequirement as exc:
        raise Invalid(f"{_PIP_HINT}; pip would not read this one: {str(exc).splitlines()[0]}") from None
    if requirement.url or requirement.marker or not same:
        raise Invalid(f"{_PIP_HINT}: a name, optional [extras] and versions only, no markers (;) or URLs (@)")
    return compact


def pip_spec_of(distribution: str) -> Callable[[Any], str]:
    """A ``pip_spec`` for one distribution (named as pip normalises names: omero_py is omero-py)."""
    def checker(value: Any) -> str:
        spec = pip_spec(value)
        if canonicalize_name(Requirement(spec).name) != distribution:
            raise Invalid(f"expected a pip requirement for {distribution}, such as '{distribution}>=5.19'")
        return spec

    return checker


# --- Files on the control machine ------------------------------------------------------------


def _local(path: str) -> str:
    """``path`` on the control machine, absolute, ``~`` expanded (where a NUL would raise ValueError)."""
    if _CONTROL.search(path):
        raise Invalid(f"expected a path on the control machine without control characters (found {_found(path)})")
    return os.path.abspath(os.path.expanduser(path))


def local_files(value: Any) -> tuple[str, ...]:
    paths = str_list(value)
    missing = [p for p in paths if not os.path.isfile(_local(p))]
    if missing:
        raise Invalid(f"expected existing files on the control machine; not found: {', '.join(missing)}")
    return tuple(_local(p) for p in paths)


def local_dir(value: Any) -> str:
    if not isinstance(value, str) or not os.path.isdir(_local(value)):
        raise Invalid(f"expected an existing folder on the control machine; not found: {value!r}")
    return _local(value)


def local_file(value: Any) -> str:
    if not isinstance(value, str) or not os.path.isfile(_local(value)):
        raise Invalid(f"expected an existing file on the control machine; not found: {value!r}")
    return _local(value)


def ice_wheel(value: Any) -> str:
    if isinstance(value, str) and re.match(r"https?://", value):
        if not re.fullmatch(rf"https?://{_URL_CHAR}+", value):
            raise Invalid(f"expected a wheel URL ({_URL_RULE})")
        if not value.endswith(".whl"):
            raise Invalid("expected a URL ending in .whl")
        return value
    if isinstance(value, str):
        path = _local(value)
        if not value.endswith(".whl"):
            raise Invalid("expected a .whl URL or a local .whl file")
        # uploaded to the host under its own name
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]*\.whl", os.path.basename(path)):
            raise Invalid("expected a wheel file name of letters, digits, '.', '_', '+', '-' only")
        if not os.path.isfile(path):
            raise Invalid(f"expected an existing local wheel file; {path} does not exist")
        return path
    raise Invalid("expected a .whl URL or a local .whl file path")


def sha256_hex(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[0-9A-Fa-f]{64}", value):
        raise Invalid("expected a SHA-256: 64 hexadecimal digits (as `sha256sum` prints it)")
    return value.lower()


# --- omero.* properties and JSON values ---------------------------------------------------------

_MAX_DEPTH = 16


def _json_data(where: str, value: Any, depth: int = 0) -> None:
    """Strings without control characters, finite numbers, booleans, lists and string-keyed mappings (no
    null), all the way down."""
    if depth > _MAX_DEPTH:
        raise Invalid(f"{where}expected at most {_MAX_DEPTH} levels of nested lists and mappings")
    if isinstance(value, str):
        if _CONTROL.search(value):
            raise Invalid(f"{where}expected strings without control characters inside the value "
                          f"(found {_found(value)} in {value!r})")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise Invalid(f"{where}expected finite numbers, not {value!r}")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise Invalid(f"{where}expected string keys in mappings, not {key!r}")
            _json_data(where, key, depth + 1)
            _json_data(where, item, depth + 1)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _json_data(where, item, depth + 1)
    elif value is None:
        # OMERO.web reads a null item as a value (an app label None, a link None) and fails at
        # start; only a whole property set to None means something (unset)
        raise Invalid(f"{where}expected no JSON null (None) inside a list or mapping: leave the item out")
    elif not isinstance(value, (bool, int)):
        raise Invalid(f"{where}expected only strings, numbers, booleans, lists and mappings inside the value, "
                      f"not {type(value).__name__} {value!r}")


def json_text(value: Any, where: str = "") -> str:
    """``value`` as the JSON the deploy stores; refused unless it is plain, finite, control-free data.

    ``where`` prefixes the messages, e.g. ``"omero.web.ui.top_links: "``.
    """
    _json_data(where, value)
    try:
        text = json.dumps(dict(value) if isinstance(value, Mapping) else value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise Invalid(f"{where}expected a value JSON can store: {exc}") from None
    if text.endswith("\\"):
        raise Invalid(f"{where}expected a value not ending with a backslash")
    return text


def config_value(key: str, value: Any) -> Any:
    if isinstance(value, str):
        problem = line_problem(value)
        if problem:
            raise Invalid(f"{key}: expected a single-line value {problem}")
        return value
    if isinstance(value, float) and not math.isfinite(value):
        raise Invalid(f"{key}: expected a finite number, not {value!r}")
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    if isinstance(value, (list, tuple, Mapping)):
        json_text(value, f"{key}: ")
        return value
    raise Invalid(f"{key}: expected a string, number, boolean, list or mapping")


def config(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise Invalid("expected a mapping of omero.* property names to values")
    bad = [k for k in value if not isinstance(k, str) or not PROPERTY.fullmatch(k)]
    if bad:
        raise Invalid(f"expected property names like 'omero.web.debug'; got {', '.join(map(repr, bad))}")
    return MappingProxyType({k: config_value(k, v) for k, v in value.items()})


def config_append(value: Any) -> Mapping[str, tuple]:
    checked = config(value)
    for key, items in checked.items():
        if not isinstance(items, (list, tuple)):
            raise Invalid(f"{key}: expected a list of items to append")
    return MappingProxyType({k: tuple(v) for k, v in checked.items()})


def json_list(value: Any) -> tuple:
    if not isinstance(value, (list, tuple)) or not all(isinstance(item, (list, tuple, Mapping)) for item in value):
        raise Invalid("expected a list of lists or mappings (stored as JSON)")
    items = tuple(list(item) if isinstance(item, tuple) else item for item in value)
    for number, item in enumerate(items, 1):
        json_text(item, f"item #{number}: ")
    return items


def json_mapping(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise Invalid("expected a mapping with string keys")
    json_text(value)
    return MappingProxyType(dict(value))


def server_config(value: Any) -> Mapping[str, Any]:
    checked = config(value)
    web = [k for k in checked if k.startswith("omero.web.")]
    if web:
        raise Invalid(f"expected OMERO.server properties; {', '.join(web)} belong in omero_web_config")
    return checked


def server_config_append(value: Any) -> Mapping[str, tuple]:
    checked = config_append(server_config(value))
    for key, items in checked.items():
        bad = [i for i in items if not isinstance(i, str) or not i.strip() or "," in i]
        if bad:
            raise Invalid(f"{key}: OMERO.server list properties are comma-separated; expected strings "
                          f"without commas, got {', '.join(map(repr, bad))}")
    return checked


def group_config(value: Any) -> Mapping[int, Mapping[str, Any]]:
    if not isinstance(value, Mapping):
        raise Invalid("expected a mapping of OMERO group id to {property: value}")
    result = {}
    for group, properties in value.items():
        # ASCII digits only: str.isdigit() also accepts '²', which int() refuses
        if isinstance(group, bool) or not (
            (isinstance(group, int) and group >= 0) or (isinstance(group, str) and re.fullmatch("[0-9]+", group))
        ):
            raise Invalid(f"group {group!r}: expected a numeric OMERO group id")
        try:
            result[int(group)] = server_config(properties)
        except Invalid as exc:
            raise Invalid(f"group {group}: {exc}") from None
    return MappingProxyType(result)


# --- Apps and publications ------------------------------------------------------------------

APP_FIELDS = {
    "spec": "pip requirement",
    "app": "Django app label for omero.web.apps",
    "top_links": "items for omero.web.ui.top_links",
    "open_with": "items for omero.web.open_with",
    "right_plugins": "items for omero.web.ui.right_plugins",
    "center_plugins": "items for omero.web.ui.center_plugins",
    "config": "extra omero.* properties",
}


def apps(value: Any) -> tuple[Mapping[str, Any], ...]:
    if not isinstance(value, (list, tuple)):
        raise Invalid("expected a list of apps, each a mapping with at least 'spec' and 'app'")
    result, labels = [], set()
    for index, app in enumerate(value):
        where = f"app #{index + 1}"
        if not isinstance(app, Mapping):
            raise Invalid(f"{where}: expected a mapping with 'spec' and 'app'")
        unknown = sorted(map(str, set(app) - set(APP_FIELDS)))
        if unknown:
            raise Invalid(f"{where}: unknown field(s) {', '.join(unknown)}; known: {', '.join(APP_FIELDS)}")
        if "spec" not in app or "app" not in app:
            raise Invalid(f"{where}: expected both 'spec' (pip requirement) and 'app' (Django app label)")
        try:
            spec = pip_spec(app["spec"])
        except Invalid as exc:
            raise Invalid(f"{where} spec {app['spec']!r}: {exc}") from None
        label = app["app"]
        if not isinstance(label, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", label):
            raise Invalid(f"{where} app {label!r}: expected a Python module name such as 'omero_figure'")
        if label in labels:
            raise Invalid(f"{where}: app {label!r} is listed twice")
        labels.add(label)
        entry = {"spec": spec, "app": label}
        for field_name in ("top_links", "open_with", "right_plugins", "center_plugins"):
            try:
                entry[field_name] = json_list(app.get(field_name, ()))
            except Invalid as exc:
                raise Invalid(f"{where} {field_name}: {exc}") from None
        try:
            entry["config"] = config(app.get("config", {}))
        except Invalid as exc:
            raise Invalid(f"{where} config: {exc}") from None
        result.append(MappingProxyType(entry))
    return tuple(result)


_PUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
#: The target goes into an NGINX `return 307` line: a URL path without NGINX variables ($).
_PUB_TARGET = re.compile(rf"(project|dataset|image|screen|plate|well)-[0-9]+|/((?!\$){_URL_CHAR})*")


def publications(value: Any) -> Mapping[str, str]:
    if not isinstance(value, Mapping):
        raise Invalid("expected a mapping of publication identifier to 'project-<id>' (or an URL path)")
    for ident, target in value.items():
        if not isinstance(ident, str) or not _PUB_ID.fullmatch(ident):
            raise Invalid(f"publication identifier {ident!r}: expected letters, digits, '.', '_' or '-'")
        if not isinstance(target, str) or not _PUB_TARGET.fullmatch(target):
            raise Invalid(
                f"publication {ident!r} -> {target!r}: expected 'project-<id>' (or dataset-, image-, screen-, "
                f"plate-, well-) or an absolute URL path ({_URL_RULE}, or $)"
            )
    return MappingProxyType(dict(value))
