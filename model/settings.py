"""
Inventory data for omeroweb-deploy: the ``Settings`` model, one typed field per key.

The model is the single source of truth. Each field is a key without its ``omero_web_``
prefix, with its type, its default, its rule (``Rule``: a checker of ``model.checks``,
which returns the value normalised or says what is expected), its doc (``description``) and
its section (``json_schema_extra``). Validation, defaults, ``KEYS`` (derived from the fields)
and the docs' data table (``python -m tools.readme_table``) all come from it; the checks that
span several keys are its after-validator (``model.cross_checks``). Values may come from
inventories, ``group_data`` or ``--data`` (where pyinfra passes ``80`` as an int and ``a,b``
as a string, so lists also accept a comma-separated string).

Settings never show their values: pyinfra prints facts' arguments (-v, --debug) and the data
holds secrets, so repr and str name the user and folders only, and pydantic's errors never
include the input.

Why over 400 lines: the field table itself is half of it (one documented, typed field per
key, ~200 lines); the rest is the model's machinery and ``validate``. The checkers of single
values are in ``model.checks``, the checks spanning keys in ``model.cross_checks``.
"""

import difflib
from dataclasses import FrozenInstanceError, dataclass
from types import MappingProxyType
from typing import Annotated, Any, Callable, Literal, Mapping, Optional, Union, get_args

import pydantic
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError, core_schema

from model import checks

from model import cross_checks
from model.checks import Invalid, str_list
from model.secrecy import MASK, is_secret_name, mask_text

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
    "balancer",
)

IceSource = Literal["auto", "build", "wheel"]
ServiceManager = Literal["auto", "systemd", "initd"]
ICE_SOURCES: tuple[str, ...] = get_args(IceSource)
SERVICE_MANAGERS: tuple[str, ...] = get_args(ServiceManager)

#: OMERO.web's default application server port (defined with the checks that use it).
APPLICATION_SERVER_PORT = cross_checks.APPLICATION_SERVER_PORT


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


def _plain(value: Any) -> Any:
    """A value as plain data for ``model_dump``: read-only mappings become dicts."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value


@dataclass(frozen=True)
class Rule:
    """
    A field's rule: ``check`` (of ``model.checks``) is its whole validation, replacing
    pydantic's own for the annotated type, so each rule is written once; its ``checks.Invalid``
    becomes a pydantic error whose ``reason`` is the message as the checker wrote it.
    """

    check: Callable[[Any], Any]

    def validate(self, value: Any) -> Any:
        try:
            return self.check(value)
        except Invalid as exc:
            raise PydanticCustomError("invalid", "{reason}", {"reason": str(exc)}) from None

    def __get_pydantic_core_schema__(self, source_type: Any, handler: Any) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            self.validate,
            json_schema_input_schema=handler.generate_schema(source_type),
            serialization=core_schema.plain_serializer_function_ser_schema(_plain),
        )


def key(default: Any, doc: str, section: str) -> Any:
    """A field's default, doc (the data table's meaning) and section (the README's key index)."""
    return Field(default, description=doc, json_schema_extra={"section": section})


Strings = tuple[str, ...]
Properties = Mapping[str, Any]
# Types shared by several keys, with their rule.
Tags = Annotated[Strings, Rule(_tags)]
Flag = Annotated[bool, Rule(checks.boolean)]
OptionalFlag = Annotated[Optional[bool], Rule(checks.optional(checks.boolean))]
Port = Annotated[int, Rule(checks.port)]
PipSpec = Annotated[str, Rule(checks.pip_spec)]
Line = Annotated[str, Rule(checks.single_line)]
OptionalLine = Annotated[Optional[str], Rule(checks.optional(checks.single_line))]
OptionalTemplate = Annotated[Optional[str], Rule(checks.optional(checks.template_path))]
OptionalLocalFile = Annotated[Optional[str], Rule(checks.optional(checks.local_file))]
JsonItems = Annotated[tuple[Union[list, Properties], ...], Rule(checks.json_list)]


class Settings(BaseModel):
    """
    Validated settings of one host (build them with ``validate``): one typed field per key,
    named without the ``omero_web_`` prefix. Frozen; ``replace`` makes a changed copy.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True, hide_input_in_errors=True)

    # Selection
    tags: Tags = key((), "Run only the sections with these tags (empty: all).", "selection")
    skip_tags: Tags = key((), "Skip the sections with these tags.", "selection")
    # Prerequisites
    user: Annotated[str, Rule(checks.account("OMERO.web", "omero-web"))] = key(
        "omero-web", "System user that owns OMERODIR and runs OMERO.web.", "prerequisites")
    omerodir: Annotated[str, Rule(checks.install_folder("/opt/omero/web/omero-web"))] = key(
        "/opt/omero/web/omero-web", "OMERODIR: configuration, logs and `etc/grid`.", "prerequisites")
    extra_ca_certificates: Annotated[Strings, Rule(checks.local_files)] = key(
        (), "PEM files on the control machine (one or more certificates each) added to the host's trust store, "
        "and used by pip: needed behind TLS-intercepting proxies.", "prerequisites")
    package_lock_timeout: Annotated[int, Rule(checks.int_range(0, 86400))] = key(
        300, "Seconds to wait, saying so, while another apt/dnf/yum holds the package manager's lock "
        "(unattended-upgrades), before failing.", "prerequisites")
    run_lock_timeout: Annotated[int, Rule(checks.int_range(0, 86400))] = key(
        600, "Seconds to wait, saying who holds it, while another deploy holds this host's run lock "
        "(`/var/lib/omeroweb-deploy/run.lock`), before failing.", "prerequisites")
    # Virtualenv, Ice, OMERO.web
    venv: Annotated[str, Rule(checks.install_folder("/opt/omero/web/venv3"))] = key(
        "/opt/omero/web/venv3", "Virtual environment of OMERO.web.", "venv")
    python: Annotated[Optional[str], Rule(checks.optional(checks.interpreter))] = key(
        None, "Interpreter that creates the venv (default: the distro profile's, e.g. `/usr/bin/python3`).", "venv")
    pip_index_url: Annotated[Optional[str], Rule(checks.optional(checks.url))] = key(
        None, "pip index URL for the venv (default: pip's).", "venv")
    pip_extra_index_urls: Annotated[Strings, Rule(checks.url_list)] = key(
        (), "Extra pip index URLs for the venv.", "venv")
    ice_source: Annotated[IceSource, Rule(checks.choice(*ICE_SOURCES))] = key(
        "auto",
        "Where IcePy 3.6.5 comes from: `wheel` (from `omero_web_ice_wheel`), `build` (PyPI sdist, patched for the "
        "host's Python), `auto` (the distro's prebuilt wheel if there is one, falling back to `build`).", "venv")
    ice_wheel: Annotated[Optional[str], Rule(checks.optional(checks.ice_wheel))] = key(
        None, "Ice wheel URL or local `.whl` file, required with `omero_web_ice_source: wheel`.", "venv")
    ice_wheel_sha256: Annotated[Optional[str], Rule(checks.optional(checks.sha256_hex))] = key(
        None, "SHA-256 the Ice wheel must have: the one at `omero_web_ice_wheel` (a URL or a local file), or the "
        "distro's prebuilt wheel with `omero_web_ice_source: auto`; any other is refused, naming it.", "venv")
    ice_cache_dir: Line = key(
        "~/.cache/omeroweb-deploy/wheels",
        "Control-machine folder where built Ice wheels are kept per distro + Python ABI and shared with the fleet.",
        "venv")
    version_spec: PipSpec = key(
        "omero-web>=5.6.1", "pip requirement for OMERO.web (pip picks the newest release the host's Python supports).",
        "venv")
    omero_py_spec: Annotated[Optional[str], Rule(checks.optional(checks.pip_spec_of("omero-py")))] = key(
        None, "pip requirement for omero-py, to upgrade it on its own (e.g. `omero-py>=5.19.5`); by default pip keeps "
        "whatever release OMERO.web pulled in. Like an OMERO.web upgrade, checked and rolled back on failure.", "venv")
    migrate_from_omerodir: Annotated[
        Optional[str], Rule(checks.optional(checks.install_folder("/opt/omero/web/omero-web")))] = key(
        None, "Previous OMERODIR when moving to a new `omero_web_omerodir`: its configuration is exported and loaded "
        "into the new one once (`omero config get --show-password` / `omero config load`); it is left as it was.",
        "venv")
    whitenoise_spec: PipSpec = key("whitenoise", "pip requirement for WhiteNoise.", "venv")
    # Configuration
    config: Annotated[Properties, Rule(checks.config)] = key(
        {}, "`omero.*` properties to set (`omero config set`); lists and mappings are stored as JSON.", "config")
    config_append: Annotated[Mapping[str, tuple], Rule(checks.config_append)] = key(
        {}, "List properties and the items to ensure in them (`omero config append --set`), e.g. middleware.", "config")
    secret_config_keys: Annotated[Strings, Rule(checks.property_names)] = key(
        (), "Extra property names whose values are secrets (names containing `password` always are).", "config")
    server_host: Annotated[str, Rule(checks.host_name)] = key(
        "localhost", "OMERO.server host for `omero.web.server_list`.", "config")
    server_port: Port = key(4064, "OMERO.server port for `omero.web.server_list`.", "config")
    server_name: Line = key("omero", "Display name for `omero.web.server_list`.", "config")
    servers: Annotated[Optional[tuple[tuple[str, int, str], ...]], Rule(checks.optional(checks.omero_servers))] = key(
        None, "Several OMERO.servers for `omero.web.server_list` (the login page offers a choice): a list of "
        "`[host, port, name]`, the first being server 1; replaces `omero_web_server_host/_port/_name`.", "config")
    # Gunicorn
    application_server_port: Annotated[Optional[int], Rule(checks.optional(checks.port))] = key(
        None, "`omero.web.application_server.port`: where Gunicorn listens and NGINX connects (OMERO.web's default: "
        "4080); under SELinux it is the port labelled `http_port_t`, as in the walkthrough.", "gunicorn")
    wsgi_workers: Annotated[Optional[int], Rule(checks.optional(checks.int_range(1, 512)))] = key(
        None, "`omero.web.wsgi_workers` (default: 2 x cores + 1 from the host's facts).", "gunicorn")
    wsgi_worker_class: Annotated[
        Optional[Literal["sync", "gevent"]], Rule(checks.optional(checks.choice("sync", "gevent")))] = key(
        None, "`omero.web.wsgi_worker_class` (default: OMERO.web's, sync).", "gunicorn")
    wsgi_args: OptionalLine = key(None, "`omero.web.wsgi_args`: extra Gunicorn arguments.", "gunicorn")
    wsgi_threads: Annotated[Optional[int], Rule(checks.optional(checks.int_range(1, 256)))] = key(
        None, "`omero.web.wsgi_threads` for sync workers (the walkthrough suggests 2-4 x cores).", "gunicorn")
    wsgi_worker_connections: Annotated[Optional[int], Rule(checks.optional(checks.int_range(1, 100000)))] = key(
        None, "`omero.web.wsgi_worker_connections` for gevent workers (OMERO.web's default: 1000).", "gunicorn")
    gevent_spec: PipSpec = key(
        "gevent>=0.13", "pip requirement installed with `omero_web_wsgi_worker_class: gevent` (which also sets "
        "`omero.web.application_server.max_requests` to 0, as the walkthrough requires).", "gunicorn")
    # Redis
    redis: Flag = key(
        False, "Cache and sessions in Redis: installs `django-redis`, sets `omero.web.caches` and "
        "`omero.web.session_engine`; installs and starts the distro's Redis server when the URL is local.", "redis")
    redis_url: Annotated[str, Rule(checks.url_like("redis"))] = key(
        "redis://127.0.0.1:6379/0",
        "Redis location for `omero.web.caches` (always a secret property with a local Redis). A local Redis "
        "(127.0.0.1, localhost, ::1) is the deploy's and requires a password: the URL's (8+ printable ASCII "
        "characters, no user name or `default`), else one made on the host that never leaves it.", "redis")
    django_redis_spec: PipSpec = key(
        "django-redis", "pip requirement for django-redis (resolved against the installed Django).", "redis")
    # CORS
    cors_origins: Annotated[Strings, Rule(checks.origins)] = key(
        (), "Origins allowed by CORS (`omero.web.cors_origin_whitelist`); turns CORS on.", "cors")
    cors_allow_all: Flag = key(False, "Allow every origin (`omero.web.cors_origin_allow_all`).", "cors")
    cors_headers_spec: PipSpec = key(
        "django-cors-headers",
        "pip requirement for django-cors-headers (resolved against the installed omero-web's pin).", "cors")
    # Apps
    apps: Annotated[tuple[Mapping[str, Any], ...], Rule(checks.apps)] = key(
        (), "OMERO.web apps: list of `{spec, app, top_links, open_with, right_plugins, center_plugins, config}`; "
        "apps removed from the list are uninstalled and dropped from the settings.", "apps")
    # URL prefix
    prefix: Annotated[Optional[str], Rule(checks.optional(checks.url_prefix))] = key(
        None, "Serve OMERO.web under this path (`omero.web.prefix`, `omero.web.static_url`), e.g. `/omero`.", "nginx")
    # HTTPS
    https: Flag = key(
        False, "HTTPS on `omero_web_https_port` (TLS 1.2+), HTTP redirected to it, OMERO.web told it is behind "
        "HTTPS (secure cookies, `omero.web.secure`, `omero.web.secure_proxy_ssl_header`).", "https")
    https_port: Port = key(443, "Port of the HTTPS server.", "https")
    tls_certificate: OptionalLocalFile = key(None, "PEM certificate (chain) on the control machine for HTTPS.", "https")
    tls_key: OptionalLocalFile = key(
        None, "PEM private key on the control machine for HTTPS (installed 0600).", "https")
    tls_self_signed: Flag = key(
        False, "Generate a self-signed certificate on the host instead (testing only).", "https")
    # Sessions
    session_expire_at_browser_close: OptionalFlag = key(
        None, "`omero.web.session_expire_at_browser_close` (OMERO.web's default: true).", "sessions")
    session_cookie_age: Annotated[Optional[int], Rule(checks.optional(checks.int_range(60, 31536000)))] = key(
        None, "`omero.web.session_cookie_age` in seconds (OMERO.web's default: 86400).", "sessions")
    clearsessions: Flag = key(
        True, "Run `omero web clearsessions` daily, as the walkthrough recommends: a systemd timer where systemd runs, "
        "else a cron job; OMERO.web then starts with `--keep-sessions` (no purge at every start; a run that "
        "leaves the `sessions` section out follows the job found on the host). False removes the job.", "sessions")
    clearsessions_time: Annotated[str, Rule(checks.time_of_day)] = key(
        "03:17", "Time of day (HH:MM, host time) of that job.", "sessions")
    # UI customization
    templates: Annotated[Optional[str], Rule(checks.optional(checks.local_dir))] = key(
        None, "Folder of templates on the control machine, copied to `OMERODIR/etc/templates/custom` and added to "
        "`omero.web.template_dirs`.", "customization")
    index_template: OptionalTemplate = key(
        None, "`omero.web.index_template`: a template in `omero_web_templates`, e.g. `mytemplate/index.html`.",
        "customization")
    base_include_template: OptionalTemplate = key(
        None, "`omero.web.base_include_template`: a template in `omero_web_templates` included in every page.",
        "customization")
    login_logo: Annotated[Optional[str], Rule(checks.optional(checks.http_url_or_path))] = key(
        None, "`omero.web.login_logo`: URL of the logo.", "customization")
    login_redirect: Annotated[Optional[Properties], Rule(checks.optional(checks.json_mapping))] = key(
        None, "`omero.web.login_redirect`, e.g. `{redirect: [webindex], viewname: load_template, args: [userdata]}`.",
        "customization")
    show_client_downloads: OptionalFlag = key(
        None, "`omero.web.login.show_client_downloads` (OMERO.web's default: true): false hides the OMERO.insight "
        "download links of the login page, whose script makes every visitor's browser call api.github.com.",
        "customization")
    top_links: JsonItems = key((), "Items appended to `omero.web.ui.top_links`.", "customization")
    open_with: JsonItems = key((), "Items appended to `omero.web.open_with`.", "customization")
    # Publishing
    public_enabled: Flag = key(
        False, "Public user auto-login (`omero.web.public.enabled`); needs user, password and URL filter.",
        "publishing")
    public_user: OptionalLine = key(None, "`omero.web.public.user`.", "publishing")
    public_password: OptionalLine = key(
        None, "`omero.web.public.password` (secret: never shown, stored owner-only).", "publishing")
    public_url_filter: Annotated[Optional[str], Rule(checks.optional(checks.regex))] = key(
        None, "`omero.web.public.url_filter`: URLs the public user may open, e.g. `^/webgateway`.", "publishing")
    public_get_only: Flag = key(True, "`omero.web.public.get_only`.", "publishing")
    public_server_id: Annotated[int, Rule(checks.int_range(1, 1000))] = key(
        1, "`omero.web.public.server_id`.", "publishing")
    public_cache_enabled: Flag = key(False, "`omero.web.public.cache.enabled`.", "publishing")
    public_cache_timeout: Annotated[Optional[int], Rule(checks.optional(checks.int_range(1, 31536000)))] = key(
        None, "`omero.web.public.cache.timeout` in seconds (OMERO.web's default: 86400).", "publishing")
    publications: Annotated[Mapping[str, str], Rule(checks.publications)] = key(
        {}, "Publication redirects: identifier -> `project-<id>` makes `/pub/<identifier>` answer 307 to "
        "`/webclient/?show=project-<id>`.", "publishing")
    # OMERO.server-side settings
    omero_server_group: Annotated[str, Rule(checks.group_name)] = key(
        "omero_server", "Inventory group whose hosts are OMERO.servers: they get only the server-side settings below.",
        "omero_server")
    omero_server_venv: Annotated[str, Rule(checks.install_folder("/opt/omero/server/venv3"))] = key(
        "/opt/omero/server/venv3", "OMERO.server's virtualenv.", "omero_server")
    omero_server_omerodir: Annotated[str, Rule(checks.install_folder("/opt/omero/server/OMERO.server"))] = key(
        "/opt/omero/server/OMERO.server", "OMERO.server's OMERODIR.", "omero_server")
    omero_server_user: Annotated[str, Rule(checks.account("OMERO.server", "omero-server"))] = key(
        "omero-server", "User that owns OMERO.server.", "omero_server")
    omero_server_config: Annotated[Properties, Rule(checks.server_config)] = key(
        {}, "OMERO.server properties served to clients: `omero.client.ui.menu.dropdown.*`, "
        "`omero.client.ui.tree.orphans.name`, `omero.policy.binary_access`, ...", "omero_server")
    omero_server_config_append: Annotated[Mapping[str, tuple[str, ...]], Rule(checks.server_config_append)] = key(
        {}, "OMERO.server list properties and the items to ensure, e.g. `omero.client.scripts_to_ignore`.",
        "omero_server")
    omero_server_group_config: Annotated[Mapping[int, Properties], Rule(checks.group_config)] = key(
        {}, "Per-group settings, group id -> `{property: value}` (`omero obj map-set ExperimenterGroup:<id> config`).",
        "omero_server")
    omero_server_admin_user: Line = key("root", "OMERO admin that applies per-group settings.", "omero_server")
    omero_server_admin_password: OptionalLine = key(
        None, "That admin's password (secret); required with `omero_web_omero_server_group_config`.", "omero_server")
    # NGINX
    nginx_mode: Annotated[Literal["site", "location"], Rule(checks.choice("site", "location"))] = key(
        "site",
        "`site`: the walkthrough's server block from `omero web config nginx` in NGINX's site folder, the distro's "
        "default site disabled. `location`: its alternative, `omero web config nginx-location` (location blocks "
        "for a server block of your own, which includes `omero_web_nginx_location_file`); the default site and "
        "your server blocks are left alone.", "nginx")
    nginx_location_file: Annotated[str, Rule(checks.nginx_include)] = key(
        "/etc/nginx/omero-web-location.include",
        "With `omero_web_nginx_mode: location`: the file written (root's, outside the folders NGINX loads itself); "
        "put `include <this file>;` in your server block.", "nginx")
    nginx_port: Port = key(80, "Port NGINX listens on (`--http`).", "nginx")
    nginx_server_name: Annotated[str, Rule(checks.nginx_server_name)] = key(
        "localhost", "NGINX `server_name` (`--servername`).", "nginx")
    # More than one machine
    balancer_group: Annotated[str, Rule(checks.group_name)] = key(
        "omero_web_balancer", "Inventory group of the NGINX load balancers in front of every OMERO.web host of the "
        "inventory; HTTPS (`omero_web_https`) is terminated there. Empty group: one machine, as before.", "balancer")
    redis_group: Annotated[str, Rule(checks.group_name)] = key(
        "omero_web_redis", "Inventory group of the shared Redis host (one), installed from `omero_web_redis_url`: "
        "it requires the URL's password and listens on the address the URL names.", "balancer")
    backend_address: Annotated[Optional[str], Rule(checks.optional(checks.host_and_port))] = key(
        None, "Host data: where the other hosts of the tier reach this one, `host[:port]` (a node: the balancer's "
        "upstream, port default `omero_web_nginx_port`; a balancer: the address its nodes allow). Default: the "
        "host's inventory name.", "balancer")
    balancer_fail_timeout: Annotated[int, Rule(checks.int_range(1, 3600))] = key(
        10, "Seconds the balancer skips a node that failed (NGINX `max_fails=1 fail_timeout=`).", "balancer")
    # Service and checks
    service_manager: Annotated[ServiceManager, Rule(checks.choice(*SERVICE_MANAGERS))] = key(
        "auto", "`auto`: systemd unit when systemd is PID 1, else the init.d script.", "service")
    healthcheck_timeout: Annotated[int, Rule(checks.int_range(5, 3600))] = key(
        120, "Seconds the final health check waits for the login page through NGINX.", "healthcheck")
    troubleshoot_dir: OptionalLine = key(
        None,
        "Control-machine folder for `operations.troubleshoot.troubleshoot` (default: `./troubleshoot-<UTC timestamp>`).",
        "troubleshoot")

    @model_validator(mode="after")
    def _spanning_checks(self) -> "Settings":
        """The checks spanning several keys, once every value passed its own: all problems at once."""
        problems = cross_checks.problems(self)
        if problems:
            raise PydanticCustomError("cross_checks", "{text}", {"text": "\n".join(problems), "problems": tuple(problems)})
        return self

    @property
    def values(self) -> Mapping[str, Any]:
        """Attribute name -> value, read-only."""
        return MappingProxyType({name: getattr(self, name) for name in type(self).model_fields})

    def replace(self, **changes: Any) -> "Settings":
        """A copy with these attributes changed, unchecked: for settings derived from valid ones."""
        unknown = sorted(set(changes) - set(type(self).model_fields))
        if unknown:
            raise TypeError(f"Settings has no attribute(s) {', '.join(unknown)}")
        return self.model_copy(update=changes)

    # pyinfra prints facts' arguments (-v, --debug) with str(): never the data's values, secrets among them.
    def __repr_args__(self):
        return [(name, getattr(self, name)) for name in ("user", "omerodir", "venv")]

    def __repr__(self) -> str:
        return f"Settings({self.__repr_str__(', ')}, ...)"

    def __str__(self) -> str:
        return repr(self)

    def __hash__(self) -> int:
        return hash((self.user, self.omerodir, self.venv))

    # pydantic's own refusal would print the value assigned
    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}: Settings are frozen, use replace()")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}: Settings are frozen")


@dataclass(frozen=True)
class Key:
    """One inventory data key, as the ``Settings`` field ``attr`` defines it."""

    name: str
    default: Any
    check: Callable[[Any], Any]
    doc: str
    section: str

    @property
    def attr(self) -> str:
        return self.name[len(PREFIX):]


def _key(attr: str, field: Any) -> Key:
    (rule,) = [meta for meta in field.metadata if isinstance(meta, Rule)]
    return Key(PREFIX + attr, field.default, rule.check, field.description, field.json_schema_extra["section"])


KEYS: tuple[Key, ...] = tuple(_key(attr, field) for attr, field in Settings.model_fields.items())
KEYS_BY_NAME = {key.name: key for key in KEYS}


def shown(name: str, value: Any) -> str:
    """A data value as an error message shows it: a secret key's value masked whole, a mapping's
    secret properties masked, URL credentials and query secrets masked (``secrets``)."""
    if is_secret_name(name):
        return repr(MASK)
    if isinstance(value, Mapping):
        value = {k: MASK if isinstance(k, str) and is_secret_name(k) else v for k, v in value.items()}
    return mask_text(repr(value))


def _problems(error: pydantic.ValidationError, data: Mapping[str, Any]) -> list[str]:
    """The model's errors as ``<key> = <repr(value)>: <message>``: unknown keys, bad values, then the rest."""
    fields = list(Settings.model_fields)
    names = list(data)
    unknown, invalid, spanning = [], [], []
    for err in error.errors(include_url=False):
        attr = err["loc"][0] if err["loc"] else None
        if err["type"] == "extra_forbidden":
            name = PREFIX + attr
            close = difflib.get_close_matches(name, KEYS_BY_NAME, n=1)
            hint = f"did you mean {close[0]}?" if close else "see docs/configuration.md's data table"
            unknown.append((names.index(name), f"{name} = {shown(name, data[name])}: unknown key; {hint}"))
        elif attr is not None:
            name = PREFIX + attr
            raw = data.get(name, Settings.model_fields[attr].default)
            reason = err["ctx"]["reason"] if err["type"] == "invalid" else err["msg"]
            invalid.append((fields.index(attr), f"{name} = {shown(name, raw)}: {reason}"))
        else:
            spanning.extend(err.get("ctx", {}).get("problems") or [err["msg"]])
    return [problem for _, problem in sorted(unknown)] + [problem for _, problem in sorted(invalid)] + spanning


def validate(data: Mapping[str, Any], host: str = "?") -> Settings:
    """Check every ``omero_web_*`` key of ``data``; return Settings or raise ValidationError."""
    given = {name[len(PREFIX):]: value for name, value in data.items() if name.startswith(PREFIX)}
    try:
        return Settings.model_validate(given)
    except pydantic.ValidationError as error:
        problems = _problems(error, data)
    # raised outside the except clause: pydantic's error is not chained to it
    raise ValidationError(host, problems)


def markdown_table() -> str:
    """The data table of docs/configuration.md."""
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
