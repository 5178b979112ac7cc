"""
Hostile inventory data: nothing in it may turn the deploy, which runs as root, against the
host. Values reach shell commands, systemd units, init.d scripts, cron lines, NGINX
configuration and the ``.properties`` files ``omero config load`` reads, so each one is
refused with a message naming the key, the value and what is expected instead.

``HOSTILE`` is one table of ``(data, expected fragment)``: for a whole value the fragment
is ``<key> = <repr(value)>: expected ...``; for a string nested in a configuration mapping it
names the property and what is expected. The first key of ``data`` is the offending one.
"""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from model.settings import KEYS, ValidationError, validate

INVENTORIES = Path(__file__).resolve().parents[2] / "inventories"


def whole(key: str, value, expected: str, **more) -> tuple[dict, str]:
    """A case whose message is ``<key> = <repr(value)>: <expected>`` (a secret's value masked:
    ``settings.shown``)."""
    from model.settings import shown

    return {key: value, **more}, f"{key} = {shown(key, value)}: {expected}"


def test_an_error_message_shows_no_secret():
    secret = "S3cret-value-42"
    data = {"omero_web_public_password": secret + "\n", "omero_web_redis_url": f"redis://:{secret}@h:6379/0;x",
            "omero_web_config": {"omero.web.secret_key": secret, "omero.web.debug": "a\nb"},
            "omero_web_pip_index_url": f"https://u:{secret}@pypi.example.org/simple\n"}
    with pytest.raises(ValidationError) as err:
        validate(data, host="web1")
    message = str(err.value)
    assert all(key in message for key in data) and secret not in message, message


def nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


def found(text: str) -> str:
    return ", ".join(sorted({repr(char) for char in text}))


# --- expected messages ------------------------------------------------------------------
PATH_CHARS = ("expected a path without spaces, quotes or shell characters: only letters, digits, "
              "'.', '_', '+', '-' and '/' (found {})")
DOTS = "expected a path without '.' or '..' components: write the resolved path"
SYSTEM = "expected a folder of its own for this deploy, not the system folder {} (e.g. {})"
TREE = "expected a folder of its own for this deploy, not inside {}, which is {} (e.g. {})"
PSEUDO, VOLATILE, OWNED = "a pseudo file system", "temporary or world-writable", "owned by the system"
ACCOUNT = "expected an account of its own for {} (e.g. {!r}), not the system account {!r}"
USER_NAME = "expected a system user name (lowercase letters, digits, '-', '_'"
LINE = "expected a single line without control characters such as newline, tab, CR or NUL (found {})"
PROPERTY_LINE = "{}: expected a single-line value without control characters such as newline, tab, CR or NUL (found {})"
NESTED = "{}expected strings without control characters inside the value (found {} in {!r})"
PIP = "expected a pip requirement such as 'omero-web>=5.6.1'"
URL = "expected an http://, https:// or file:// URL (no spaces, quotes, backslashes, control characters"
LIST_LINE = "expected list items on a single line without control characters such as newline, tab, CR or NUL"

#: The host path keys and the example their messages suggest.
FOLDERS = {
    "omero_web_venv": "/opt/omero/web/venv3",
    "omero_web_omerodir": "/opt/omero/web/omero-web",
    "omero_web_migrate_from_omerodir": "/opt/omero/web/omero-web",
    "omero_web_omero_server_venv": "/opt/omero/server/venv3",
    "omero_web_omero_server_omerodir": "/opt/omero/server/OMERO.server",
}
PATH_KEYS = (*FOLDERS, "omero_web_python")
#: Shell, template and line-breaking characters, each refused in every host path.
METACHARACTERS = (*";|&()<>%$`'\"\\*", "\n", "\t", "\r", "\x00", " ")
#: One folder of each system class, and how it is refused.
SYSTEM_CLASSES = {
    "/": None, "/usr": None, "/etc": None, "/var/lib": None, "/opt": None, "/home": None,
    "/tmp/x": ("/tmp", VOLATILE), "/proc/x": ("/proc", PSEUDO), "/run/x": ("/run", VOLATILE),
    "/root/x": ("/root", OWNED),
}
SYSTEM_ACCOUNTS = ("root", "www-data", "nginx", "nobody", "daemon", "systemd-network", "sshd", "redis", "postgres",
                   "systemd-anything")
FIGURE = {"spec": "omero-figure", "app": "omero_figure"}

HOSTILE: list[tuple[dict, str]] = [
    # Host paths: every shell metacharacter, line break and space, in every path key
    *(whole(key, f"/srv/omero/x{char}y", PATH_CHARS.format(repr(char))) for key in PATH_KEYS for char in METACHARACTERS),
    *(whole(key, "/srv/omero/venv3\n", PATH_CHARS.format(repr("\n"))) for key in PATH_KEYS),
    whole("omero_web_venv", "/opt/omero/web/venv3; rm -rf /", PATH_CHARS.format(found(" ;"))),
    whole("omero_web_omerodir", "/opt/omero/wéb", PATH_CHARS.format(repr("é"))),
    whole("omero_web_omero_server_omerodir", "/opt/$(id)/x", PATH_CHARS.format(found("$()"))),
    # ... traversal, empty, option-like and overlong components
    whole("omero_web_venv", "/opt/omero/web/../../../etc", DOTS),
    whole("omero_web_omerodir", "/opt/omero/./web", DOTS),
    whole("omero_web_python", "/usr/bin/../../tmp/python3", DOTS),
    whole("omero_web_omero_server_venv", "/opt/omero/server/..", DOTS),
    whole("omero_web_omero_server_omerodir", "/opt//omero", "expected a path without empty components ('//')"),
    whole("omero_web_venv", "/opt/omero/-rf", "expected path components that do not start with '-'"),
    whole("omero_web_migrate_from_omerodir", "/opt/" + "a" * 250, "expected a path of at most 200 characters"),
    whole("omero_web_python", "/", "expected the path of a file, not /"),
    # ... system folders, for every install folder
    *(whole(key, path, SYSTEM.format(path, example) if how is None else TREE.format(*how, example))
      for key, example in FOLDERS.items() for path, how in SYSTEM_CLASSES.items()),
    whole("omero_web_venv", "/usr/local/", SYSTEM.format("/usr/local", "/opt/omero/web/venv3")),
    whole("omero_web_omerodir", "/etc/nginx", SYSTEM.format("/etc/nginx", "/opt/omero/web/omero-web")),
    whole("omero_web_omerodir", "/opt/omero/web", SYSTEM.format("/opt/omero/web", "/opt/omero/web/omero-web")),
    whole("omero_web_venv", "/usr/lib/python3/dist-packages/x", TREE.format("/usr/lib", OWNED, "/opt/omero/web/venv3")),
    whole("omero_web_venv", "/var/run/omero", TREE.format("/var/run", VOLATILE, "/opt/omero/web/venv3")),
    whole("omero_web_omerodir", "/dev/shm/omero", TREE.format("/dev", PSEUDO, "/opt/omero/web/omero-web")),
    whole("omero_web_omero_server_venv", "/boot/venv", TREE.format("/boot", OWNED, "/opt/omero/server/venv3")),
    whole("omero_web_omero_server_omerodir", "/sys/x", TREE.format("/sys", PSEUDO, "/opt/omero/server/OMERO.server")),
    whole("omero_web_python", "/tmp/python3", "expected an interpreter installed outside /tmp, which is " + VOLATILE),
    whole("omero_web_python", "/dev/shm/python3", "expected an interpreter installed outside /dev, which is " + PSEUDO),
    # ... folders that hold one another: root must not install into a tree a less trusted user owns
    ({"omero_web_venv": "/opt/omero/web/omero-web/venv3"},
     "omero_web_venv = '/opt/omero/web/omero-web/venv3': expected a folder outside omero_web_omerodir "
     "(/opt/omero/web/omero-web), which the OMERO.web user owns"),
    ({"omero_web_omerodir": "/srv/venv/omero-web", "omero_web_venv": "/srv/venv"},
     "omero_web_omerodir = '/srv/venv/omero-web': expected a folder outside omero_web_venv (/srv/venv): "
     "it must not be the virtualenv or inside it"),
    ({"omero_web_omero_server_venv": "/opt/omero/web/omero-web/server-venv"},
     "omero_web_omero_server_venv = '/opt/omero/web/omero-web/server-venv': expected a folder apart from "
     "omero_web_omerodir (/opt/omero/web/omero-web), neither inside nor around it: the OMERO.web user owns that tree"),
    ({"omero_web_omero_server_omerodir": "/opt/omero/web/omero-web"},
     "omero_web_omero_server_omerodir = '/opt/omero/web/omero-web': expected a folder apart from omero_web_omerodir"),
    ({"omero_web_omero_server_omerodir": "/opt/omero/web/venv3/server"},
     "omero_web_omero_server_omerodir = '/opt/omero/web/venv3/server': expected a folder apart from omero_web_venv"),
    ({"omero_web_venv": "/opt/omero/server/OMERO.server/web-venv"},
     "omero_web_omero_server_omerodir = '/opt/omero/server/OMERO.server': expected a folder apart from omero_web_venv"),
    # Accounts: system and service accounts are never the deploy's
    *(whole("omero_web_user", name, ACCOUNT.format("OMERO.web", "omero-web", name)) for name in SYSTEM_ACCOUNTS),
    *(whole("omero_web_omero_server_user", name, ACCOUNT.format("OMERO.server", "omero-server", name))
      for name in ("root", "www-data", "mysql", "apache", "systemd-timesync")),
    ({"omero_web_user": "omero", "omero_web_omero_server_user": "omero"},
     "omero_web_user = 'omero' is also omero_web_omero_server_user: expected an account of its own for OMERO.web"),
    whole("omero_web_user", "omero-web\n", USER_NAME),
    whole("omero_web_user", "-omero", USER_NAME),
    whole("omero_web_user", "a" * 33, USER_NAME),
    whole("omero_web_omero_server_user", "omero;id", USER_NAME),
    # Trailing newline in every value matched in full (re.match(r"...$") accepted it)
    whole("omero_web_nginx_server_name", "localhost\n", "expected one or more host names separated by single spaces"),
    whole("omero_web_prefix", "/omero\n", "expected a URL path with a leading slash"),
    whole("omero_web_redis_url", "redis://127.0.0.1:6379/0\n", "expected a redis:// URL such as"),
    whole("omero_web_pip_index_url", "https://pypi.example.org/simple\n", URL),
    whole("omero_web_pip_extra_index_urls", ["https://pypi.example.org/simple\n"], LIST_LINE),
    whole("omero_web_cors_origins", ["https://a.example.org\n"], LIST_LINE),
    whole("omero_web_cors_origins", "https://a.example.org\n", "expected a comma-separated string on one line"),
    whole("omero_web_clearsessions_time", "03:17\n", "expected a time of day as HH:MM"),
    whole("omero_web_publications", {"paper-1\n": "project-1"}, "publication identifier 'paper-1\\n': expected"),
    whole("omero_web_publications", {"paper-1": "project-1\n"}, "publication 'paper-1' -> 'project-1\\n': expected"),
    whole("omero_web_apps", [{**FIGURE, "app": "omero_figure\n"}],
          "app #1 app 'omero_figure\\n': expected a Python module name"),
    whole("omero_web_server_host", "omero.example.org\n", "expected a host name or IP address"),
    whole("omero_web_omero_server_group", "omero_server\n", "expected an inventory group name"),
    whole("omero_web_index_template", "site/index.html\n", "expected a template path relative to omero_web_templates"),
    whole("omero_web_login_logo", "/static/logo.png\n", "expected an http(s):// URL or an absolute URL path"),
    whole("omero_web_config", {"omero.web.debug\n": True}, "expected property names like 'omero.web.debug'"),
    whole("omero_web_ice_wheel", "https://example.org/ice.whl\n", "expected a wheel URL", omero_web_ice_source="wheel"),
    whole("omero_web_omero_server_group_config", {"15\n": {}}, "group '15\\n': expected a numeric OMERO group id"),
    whole("omero_web_tags", "nginx\n,config", "expected a comma-separated string on one line"),
    # Unicode digits: \d matched them
    whole("omero_web_clearsessions_time", "٠٣:١٧", "expected a time of day as HH:MM"),
    whole("omero_web_cors_origins", ["https://a.example.org:٤٤٣"], "expected origins like 'https://example.org'"),
    whole("omero_web_publications", {"p": "project-١"}, "publication 'p' -> 'project-١': expected"),
    whole("omero_web_omero_server_group_config", {"²": {}}, "group '²': expected a numeric OMERO group id"),
    whole("omero_web_omero_server_group_config", {-1: {}}, "group -1: expected a numeric OMERO group id"),
    # Property injection into the .properties file `omero config load` reads
    *(whole("omero_web_config", {"omero.web.session_cookie_age": value},
            PROPERTY_LINE.format("omero.web.session_cookie_age", found(char)))
      for value, char in (("60\nomero.web.debug=true", "\n"), ("60\r", "\r"), ("60\x00", "\x00"),
                          ("60\u2028omero.web.debug=true", "\u2028"), ("60\x85", "\x85"), ("6\x1b0", "\x1b"),
                          ("60\x0bx", "\x0b"), ("60\x0cx", "\x0c"), ("6\x7f0", "\x7f"))),
    whole("omero_web_config", {"omero.web.x": "a\\"}, "omero.web.x: expected a single-line value not ending with a backslash"),
    whole("omero_web_config", {"omero.web.x": " a"}, "omero.web.x: expected a single-line value without leading or trailing spaces"),
    whole("omero_web_config", {"omero.web.x": "a\t"}, PROPERTY_LINE.format("omero.web.x", repr("\t"))),
    whole("omero_web_config", {"omero.web.ui.top_links": [["Help\nomero.web.debug=true", "help"]]},
          NESTED.format("omero.web.ui.top_links: ", repr("\n"), "Help\nomero.web.debug=true")),
    whole("omero_web_config", {"omero.web.x": {"key\r": "v"}}, NESTED.format("omero.web.x: ", repr("\r"), "key\r")),
    whole("omero_web_config", {"omero.web.x": {"a": [{"b": "c\x00"}]}}, NESTED.format("omero.web.x: ", repr("\x00"), "c\x00")),
    whole("omero_web_config_append", {"omero.web.apps": ["x\ny"]}, NESTED.format("omero.web.apps: ", repr("\n"), "x\ny")),
    whole("omero_web_apps", [{**FIGURE, "config": {"omero.web.x": "a\rb"}}],
          "app #1 config: " + PROPERTY_LINE.format("omero.web.x", repr("\r"))),
    whole("omero_web_apps", [{**FIGURE, "open_with": [["Figure", "x\ny"]]}],
          "app #1 open_with: " + NESTED.format("item #1: ", repr("\n"), "x\ny")),
    whole("omero_web_apps", [{**FIGURE, "right_plugins": [["A", "a.js\u2029", "id"]]}],
          "app #1 right_plugins: " + NESTED.format("item #1: ", repr("\u2029"), "a.js\u2029")),
    whole("omero_web_top_links", [["GRE", "https://example.org"], ["Figure", "x\ny"]],
          NESTED.format("item #2: ", repr("\n"), "x\ny")),
    whole("omero_web_open_with", [["Viewer", "viewer", {"script_url": "v.js\r"}]],
          NESTED.format("item #1: ", repr("\r"), "v.js\r")),
    whole("omero_web_login_redirect", {"redirect": ["webindex\nomero.web.debug=true"]},
          NESTED.format("", repr("\n"), "webindex\nomero.web.debug=true")),
    whole("omero_web_omero_server_config", {"omero.client.ui.tree.orphans.name": "Orphans\r"},
          PROPERTY_LINE.format("omero.client.ui.tree.orphans.name", repr("\r"))),
    whole("omero_web_omero_server_config_append", {"omero.client.scripts_to_ignore": ["/a.py\n/b.py"]},
          NESTED.format("omero.client.scripts_to_ignore: ", repr("\n"), "/a.py\n/b.py")),
    whole("omero_web_omero_server_group_config", {15: {"omero.policy.binary_access": "-read\n"}},
          "group 15: " + PROPERTY_LINE.format("omero.policy.binary_access", repr("\n"))),
    # ... through the dedicated single-line keys
    whole("omero_web_wsgi_args", "--timeout 60\n--bind 0.0.0.0:1", LINE.format(repr("\n"))),
    whole("omero_web_public_user", "public\n", LINE.format(repr("\n"))),
    whole("omero_web_public_password", "pw\nomero.web.debug=true", LINE.format(repr("\n"))),
    whole("omero_web_public_password", "pw\\", "expected a single line not ending with a backslash"),
    whole("omero_web_public_password", " pw", "expected a single line without leading or trailing spaces"),
    whole("omero_web_server_name", "omero\x00", LINE.format(repr("\x00"))),
    whole("omero_web_server_name", "omero\u2028x", LINE.format(repr("\u2028"))),
    whole("omero_web_omero_server_admin_password", "pw\rx", LINE.format(repr("\r"))),
    whole("omero_web_omero_server_admin_user", "root\n", LINE.format(repr("\n"))),
    whole("omero_web_public_url_filter", "^/webgateway\n", LINE.format(repr("\n"))),
    whole("omero_web_public_url_filter", "^/webgateway\\", "expected a single line not ending with a backslash"),
    whole("omero_web_ice_cache_dir", "~/.cache/wheels\n", LINE.format(repr("\n"))),
    whole("omero_web_secret_config_keys", ["omero.web.x\nomero.web.debug"], LIST_LINE),
    whole("omero_web_secret_config_keys", ["password"], "expected omero.* property names such as 'omero.web.sentry_dsn'"),
    whole("omero_web_server_host", "-oProxyCommand=id", "expected a host name or IP address"),
    whole("omero_web_server_host", "omero;id", "expected a host name or IP address"),
    whole("omero_web_omero_server_group", "omero-server", "expected an inventory group name"),
    whole("omero_web_index_template", "../../etc/passwd", "expected a template path relative to omero_web_templates"),
    whole("omero_web_base_include_template", "/etc/passwd", "expected a template path relative to omero_web_templates"),
    whole("omero_web_base_include_template", "site/./x.html", "expected a template path relative to omero_web_templates"),
    # Values JSON cannot store as given
    whole("omero_web_config", {"omero.web.x": float("nan")}, "omero.web.x: expected a finite number, not nan"),
    whole("omero_web_config", {"omero.web.x": float("-inf")}, "omero.web.x: expected a finite number, not -inf"),
    whole("omero_web_config", {"omero.web.x": [1.0, float("inf")]}, "omero.web.x: expected finite numbers, not inf"),
    whole("omero_web_config", {"omero.web.x": [{1, 2}]}, "omero.web.x: expected only strings, numbers, booleans"),
    whole("omero_web_config", {"omero.web.x": b"x"}, "omero.web.x: expected a string, number, boolean, list or mapping"),
    whole("omero_web_config", {"omero.web.x": frozenset()}, "omero.web.x: expected a string, number, boolean, list or mapping"),
    whole("omero_web_config", {"omero.web.x": [b"x"]}, "omero.web.x: expected only strings, numbers, booleans"),
    whole("omero_web_config", {"omero.web.x": [object]}, "omero.web.x: expected only strings, numbers, booleans"),
    whole("omero_web_config", {"omero.web.x": {1: "a"}}, "omero.web.x: expected string keys in mappings, not 1"),
    whole("omero_web_config", {"omero.web.x": {("a",): 1}}, "omero.web.x: expected string keys in mappings"),
    whole("omero_web_config", {"omero.web.x": nested(20)},
          "omero.web.x: expected at most 16 levels of nested lists and mappings"),
    whole("omero_web_top_links", [["A", float("nan")]], "item #1: expected finite numbers, not nan"),
    whole("omero_web_login_redirect", {"redirect": {"webindex"}}, "expected only strings, numbers, booleans"),
    # pip requirements: no markers, URLs, options or shell characters
    *(whole("omero_web_version_spec", spec, PIP) for spec in (
        "omero-web; python_version > '3'", "omero-web @ https://evil.example/omero_web.whl",
        "--index-url https://evil.example/simple", "-e git+https://evil.example/x", "omero-web;id",
        "omero-web`id`", "omero-web$(id)", "omero-web\n", "omero-web>=abc", "omero web", "omero-web>=5.6 --pre",
        "omero-web>=5.6.1\n--extra-index-url=https://evil.example", "omero-web==5.*;os_name=='nt'",
    )),
    whole("omero_web_whitenoise_spec", "whitenoise|sh", PIP),
    whole("omero_web_gevent_spec", "gevent>=0.13&&id", PIP),
    whole("omero_web_django_redis_spec", "django-redis\t", PIP),
    whole("omero_web_cors_headers_spec", "django-cors-headers ; os_name == 'nt'", PIP),
    whole("omero_web_apps", [{**FIGURE, "spec": "omero-figure @ file:///tmp/x.whl"}],
          f"app #1 spec 'omero-figure @ file:///tmp/x.whl': {PIP}"),
    # URLs: no whitespace, quotes, backslash, control characters, braces, ; < > or backticks
    *(whole("omero_web_pip_index_url", f"https://pypi.example.org/simple{char}x", URL)
      for char in (";", "`", "'", '"', "{", "}", "<", ">", "\\", "\x00", " ", "\u2028")),
    whole("omero_web_pip_extra_index_urls", ["file:///srv/wheels;id"], URL),
    whole("omero_web_redis_url", "redis://127.0.0.1:6379/0;id", "expected a redis:// URL such as"),
    whole("omero_web_redis_url", "redis://127.0.0.1:6379/0\"", "expected a redis:// URL such as"),
    whole("omero_web_login_logo", "/static/logo.png\"onerror=x", "expected an http(s):// URL or an absolute URL path"),
    whole("omero_web_login_logo", "javascript:alert(1)", "expected an http(s):// URL or an absolute URL path"),
    whole("omero_web_cors_origins", ["https://a.example.org;"], "expected origins like 'https://example.org'"),
    whole("omero_web_ice_wheel", "https://example.org/x y.whl", "expected a wheel URL", omero_web_ice_source="wheel"),
    whole("omero_web_publications", {"p": "/x;return 200"}, "publication 'p' -> '/x;return 200': expected"),
    whole("omero_web_publications", {"p": "/x$host"}, "publication 'p' -> '/x$host': expected"),
    whole("omero_web_publications", {"p": "/x{"}, "publication 'p' -> '/x{': expected"),
    whole("omero_web_nginx_server_name", "localhost;", "expected one or more host names separated by single spaces"),
    whole("omero_web_nginx_server_name", "a\tb", "expected one or more host names separated by single spaces"),
    whole("omero_web_nginx_server_name", "$host", "expected one or more host names separated by single spaces"),
    whole("omero_web_prefix", "/omero/..", "expected a URL path with a leading slash"),
    # Control-machine paths: a NUL used to crash os.path.expanduser
    whole("omero_web_tls_certificate", "~x\x00/cert.pem", "expected a path on the control machine without control characters"),
    whole("omero_web_extra_ca_certificates", ["~x\x00/ca.pem"], LIST_LINE),
    whole("omero_web_ice_wheel", "/srv/wheels/ice;id.whl", "expected a wheel file name of letters, digits",
          omero_web_ice_source="wheel"),
]

#: Values of every type and shape, tried in every key: refused or accepted, never a crash.
ODD_VALUES = (None, True, 0, -1, 1.5, float("nan"), "", " ", "\n", "/", "//", "/\x00", "~\x00", "²", [], [None], [[]],
              [{}], {}, {1: 2}, {None: 1}, {"omero.x": {1, 2}}, ("a",), {"x"}, b"x", object(), {"15": None},
              [{"spec": 1, "app": 2}], [{"spec": "x", "app": "y", "config": None}], "(" * 5000, ",", ["x", 1])


@pytest.mark.parametrize("data, fragment", HOSTILE, ids=[repr(data)[:80] for data, _ in HOSTILE])
def test_hostile_input_is_refused_naming_key_value_and_fix(data, fragment):
    with pytest.raises(ValidationError) as err:
        validate(data, host="web1")
    message = str(err.value)
    key = next(iter(data))
    assert key in fragment and "expected" in fragment
    assert fragment in message, message


@pytest.mark.parametrize("key", [key.name for key in KEYS])
def test_odd_values_are_refused_or_accepted_never_a_crash(key):
    for value in ODD_VALUES:
        try:
            validate({key: value})
        except ValidationError as err:
            assert err.problems and all(problem.startswith("omero_web_") for problem in err.problems)


def test_hostile_table_is_large_and_distinct():
    distinct = {repr(sorted(data.items(), key=repr)) for data, _ in HOSTILE}
    assert len(distinct) == len(HOSTILE)
    assert len(distinct) >= 60


def test_a_cyclic_value_is_refused_not_a_crash():
    cyclic: list = []
    cyclic.append(cyclic)
    with pytest.raises(ValidationError, match="expected at most 16 levels"):
        validate({"omero_web_config": {"omero.web.x": cyclic}})


def test_defaults_still_validate():
    settings = validate({})
    for key in KEYS:
        key.check(key.default)
    assert settings.user == "omero-web" and settings.omero_server_user == "omero-server"


def test_example_inventories_still_validate():
    shared = runpy.run_path(str(INVENTORIES / "group_data" / "all.py"))
    for path in sorted((INVENTORIES / "group_data").glob("*.py")):
        validate({**shared, **runpy.run_path(str(path))}, host=path.name)


def test_good_values_still_validate():
    public = runpy.run_path(str(INVENTORIES / "group_data" / "public_web.py"))
    good = {
        "omero_web_venv": "/srv/omero-web/venv3/",
        "omero_web_omerodir": "/srv/omero-web/omero-web",
        "omero_web_python": "/usr/bin/python3.11",
        "omero_web_migrate_from_omerodir": "/home/omero/OMERO.web_5.6+old",
        "omero_web_user": "omero_web",
        "omero_web_omero_server_user": "omero",
        "omero_web_server_host": "::1",
        "omero_web_server_name": "OMERO server (production)",
        "omero_web_wsgi_args": "--timeout 60 --max-requests 1000",
        "omero_web_version_spec": "omero-web >= 5.6.1, < 6",
        "omero_web_whitenoise_spec": "whitenoise[brotli]==6.*",
        "omero_web_pip_index_url": "https://pypi.example.org/simple/",
        "omero_web_pip_extra_index_urls": "https://a.example.org/simple/,file:///srv/wheels",
        "omero_web_config": {
            "omero.web.secret_key": "s3cr=t!$x (with spaces) & more",
            "omero.web.open_with": [["Help", "https://help.example.org/?a=1&b=2", {"target": "_blank"}]],
            "omero.web.nginx_server_extra_config": ["client_max_body_size 0;"],
            "omero.web.x": 1.5,
            "omero.web.empty": "",
            "omero.web.unset": None,
            "omero.web.label": "Membres · ☃",
        },
        "omero_web_config_append": {"omero.web.middleware": [{"index": 0.5, "class": "my.Middleware"}]},
        "omero_web_secret_config_keys": "omero.web.secret_key, omero.web.sentry_dsn",
        "omero_web_cors_origins": ["https://a.example.org:8443"],
        "omero_web_redis": True,
        "omero_web_redis_url": "redis://:p%40ssw0rd-long@127.0.0.1:6379/1",
        "omero_web_prefix": "/omero",
        "omero_web_login_logo": "https://www.openmicroscopy.org/img/logos/omero-logomark.svg",
        "omero_web_login_redirect": {"redirect": ["webindex"], "viewname": "load_template", "args": ["userdata"],
                                     "query_string": "experimenter=-1"},
        "omero_web_public_enabled": True,
        "omero_web_public_user": "public-reader",
        "omero_web_public_password": "p@ss w0rd!",
        "omero_web_public_url_filter": public["omero_web_public_url_filter"],
        "omero_web_publications": {"paper-2024": "project-7", "site": "/webclient/?show=dataset-1"},
        "omero_web_nginx_server_name": "omero.example.org www.omero.example.org",
        "omero_web_apps": [{"spec": "omero-figure>=6", "app": "omero_figure",
                            "top_links": [["Figure", "figure_index", {"title": "Open Figure", "target": "_blank"}]],
                            "config": {"omero.web.figure.x": True}}],
        "omero_web_omero_server_venv": "/opt/omero/server/venv3",
        "omero_web_omero_server_group_config": {"15": {"omero.policy.binary_access": "-read,+write,+image"}},
        "omero_web_omero_server_admin_password": "an admin's pass-phrase",
    }
    settings = validate(good)
    assert settings.venv == "/srv/omero-web/venv3"
    assert settings.version_spec == "omero-web>=5.6.1,<6"
    assert settings.apps[0]["spec"] == "omero-figure>=6"
    assert dict(settings.omero_server_group_config) == {15: {"omero.policy.binary_access": "-read,+write,+image"}}
