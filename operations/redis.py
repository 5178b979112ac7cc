"""
Walkthrough "Configuring OMERO.web", session engine: cache and sessions in Redis. The
distro's Redis server is installed, enabled and started when the URL points at this host
(``omero_web_redis_url`` on 127.0.0.1 / localhost); ``django-redis`` is installed in the
version that works with the installed Django (pip resolves it with omero-web pinned: the
walkthrough's ``<4.9`` pin is stale); ``omero.web.caches`` and ``omero.web.session_engine``
are set.

A Redis the deploy installs answers OMERO.web only: it holds every OMERO.web session
(pickled by django-redis), so an account that can talk to it can act as any signed-in user
and plant a value OMERO.web unpickles. It requires a password (``requirepass``), written in
``REDIS_AUTH_CONF`` (root:redis, 0640), which the distro's Redis configuration includes as its
last line: the URL's password when it has one, else one made on the host on the first run,
which never leaves it (the configuration section writes it into ``omero.web.caches`` on the
host, ``HOST_SECRET_TOKEN``). Redis restarts when either changes; its data stays (saved at
shutdown).

    pyinfra inventories/<site>.py operations.redis.redis
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from pyinfra import host
from pyinfra.api import FactBase, deploy, operation
from pyinfra.api.exceptions import PyinfraError
from pyinfra.operations import files, server

from model.checks import is_local
from model.features import CONFIG_TAGS, generated_password
from model.omero_install import ETC_DIR, HOST_SECRET_HEADER, REDIS_AUTH_CONF
from host.context import Context, current
from host.facts import ResolvedAddresses, q
from host.packages import install_packages_epel_first
from host.ownership import as_user
from host.service_manager import ensure_service, restart_command
from host.snapshot import fact_until_change
from host.uploads import install_staged, private_file, staged_path

TAGS = ("redis",)
#: The first line of a password file the deploy made on the host (never rewritten while it is there).
GENERATED = HOST_SECRET_HEADER
#: The first line of a password file with the data's password.
FROM_DATA = "# omeroweb-deploy: Redis password from omero_web_redis_url"
#: Bytes of randomness in a password made on the host (hex: twice as many characters).
PASSWORD_BYTES = 32


def redis_quote(value: str) -> str:
    """A value as a double-quoted string of Redis's configuration file (``sdssplitargs``)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def auth_conf_from_data(url: str) -> str:
    """The password file's content for a URL that has a password (redis-py unquotes it, so does this)."""
    return f"{FROM_DATA}\nrequirepass {redis_quote(unquote(urlsplit(url).password or ''))}\n"


def shared_conf(url: str, addresses: list[str]) -> str:
    """
    The shared Redis's settings (its password file): the URL's password and port, listening on
    the addresses the URL's host resolves to on the Redis host and on loopback, nowhere else.
    """
    listen = " ".join(dict.fromkeys([*addresses, "127.0.0.1"]))
    return (auth_conf_from_data(url) + f"port {urlsplit(url).port or 6379}\n" + f"bind {listen}\n"
            + "protected-mode yes\n")


class RedisAuthState(FactBase[dict[str, str | bool | None]]):
    """
    What the deploy's Redis password file and the Redis configuration that includes it are,
    without a word of the password: ``{"auth": "generated" | "other" | None (missing),
    "auth_owner": "user:group:mode", "included": bool}``.

    + auth: the deploy's password file (``requirepass``)
    + conf: the Redis configuration that must include it

    .. code:: python

        {
            "auth": "generated",
            "auth_owner": "root:redis:640",
            "included": True,
        }
    """

    default = staticmethod(lambda: {"auth": None, "auth_owner": None, "included": False})

    def command(self, auth: str, conf: str):
        return (
            f"if [ -f {q(auth)} ] && [ ! -L {q(auth)} ]; then "
            f"if [ \"$(head -n 1 {q(auth)})\" = {q(GENERATED)} ] && grep -q '^requirepass [0-9a-f]' {q(auth)}; "
            "then echo auth=generated; else echo auth=other; fi; "
            f"echo \"owner=$(stat -c %U:%G:%a {q(auth)})\"; fi; "
            f"grep -qxF {q(f'include {auth}')} {q(conf)} 2>/dev/null && echo included=yes; true"
        )

    def process(self, output) -> dict:
        found = self.default()
        for line in output:
            key, _, value = line.partition("=")
            if key == "auth" and value in ("generated", "other"):
                found["auth"] = value
            elif key == "owner":
                found["auth_owner"] = value
            elif key == "included":
                found["included"] = value == "yes"
        return found


@operation()
def generated_auth(auth: str, conf: str, group: str):
    """
    A Redis password made on the host, kept in ``auth`` (root:``group``, 0640) unless one made
    there already is: read from ``/dev/urandom`` into a shell variable and written with the
    shell's own ``printf``, so it never reaches a command line, the output or a world-readable file.

    + auth: the password file (``requirepass``)
    + conf: the Redis configuration that includes it
    + group: Redis's group (it reads the file)

    **Examples:**

    .. code:: python

        generated_auth(
            name="Redis password made on this host",
            auth="/etc/omeroweb-deploy/redis-auth.conf",
            conf="/etc/redis/redis.conf",
            group="redis",
        )
    """
    found = fact_until_change(RedisAuthState, auth=auth, conf=conf)
    if found["auth"] == "generated" and found["auth_owner"] == f"root:{group}:640":
        return
    staged = staged_path(auth)
    if found["auth"] == "generated":  # the same password, given back to root and Redis's group
        yield f"cp -p {q(auth)} {q(staged)} && {install_staged(auth, 'root', group, '640')}"
        return
    hex_length = 2 * PASSWORD_BYTES
    yield (f"umask 077 && pw=$(od -An -v -N{PASSWORD_BYTES} -tx1 /dev/urandom | tr -d ' \\n') && [ ${{#pw}} -eq {hex_length} ] && "
           f"printf '%s\\nrequirepass %s\\n' {q(GENERATED)} \"$pw\" > {q(staged)} && "
           + install_staged(auth, "root", group, "640"))


# Run as the account that may write Redis's configuration: argv = file, line to append.
_APPEND = 'cd / && printf "\\n%s\\n" "$2" >> "$1"'


@operation()
def included(conf: str, auth: str, account: str):
    """
    ``include AUTH`` at the end of the Redis configuration ``conf`` (its last word wins), unless
    there. Written by root only where root alone can change the file and its folder; elsewhere
    (Debian gives ``/etc/redis`` to Redis's account, 2770) by that account, never through a
    path it could redirect.

    + conf: Redis's own configuration file
    + auth: the file it must include
    + account: Redis's account

    **Examples:**

    .. code:: python

        included(
            name="/etc/redis/redis.conf includes /etc/omeroweb-deploy/redis-auth.conf",
            conf="/etc/redis/redis.conf",
            auth="/etc/omeroweb-deploy/redis-auth.conf",
            account="redis",
        )
    """
    if fact_until_change(RedisAuthState, auth=auth, conf=conf)["included"]:
        return
    line = f"include {auth}"
    folder = conf.rsplit("/", 1)[0] or "/"
    roots_alone = (f"[ ! -L {q(conf)} ] && [ \"$(stat -c %u {q(folder)}):$(stat -c %u {q(conf)})\" = 0:0 ] "
                   f"&& [ $(( 0$(stat -c %a {q(folder)}) & 022 )) -eq 0 ] && [ $(( 0$(stat -c %a {q(conf)}) & 022 )) -eq 0 ]")
    yield (f"if grep -qxF {q(line)} {q(conf)}; then :; elif {roots_alone}; then printf '\\n%s\\n' {q(line)} >> {q(conf)}; "
           f"else {as_user(account, _APPEND, conf, line)}; fi")


class RedisAnswersAnyone(FactBase[bool]):
    """
    Whether the Redis at 127.0.0.1:``port`` answers a client without a password (``PONG``):
    a run that stopped between giving it its password and restarting it leaves it so.

    + port: the local Redis's port (the URL's, 6379 when it names none)

    .. code:: python

        False
    """

    default = bool

    def command(self, port: int):
        return f"redis-cli -h 127.0.0.1 -p {int(port)} ping 2>/dev/null || true"

    def process(self, output) -> bool:
        return list(output)[:1] == ["PONG"]


def selected(ctx: Context) -> bool:
    """The section runs with the configuration section, which gives OMERO.web the password it
    makes (``omero_web_tags=config`` included), and is skipped with it: a Redis locked without
    OMERO.web told, or told without Redis locked, would leave OMERO.web without sessions."""
    return ctx.selected(*TAGS, also=("config",)) and ctx.selected(*CONFIG_TAGS)


def included_then_running(profile, url: str, changes: list, what: str) -> None:
    """Redis's configuration including the deploy's file, Redis enabled and running, and restarted
    when ``changes`` (or the include) changed or it still answers without a password: started
    first (the walkthrough's step; RHEL's package does not start it), since Redis reads its
    settings only when it starts. Both Redis sections end so."""
    include = included(name=f"{profile.redis_conf} includes {REDIS_AUTH_CONF}", conf=profile.redis_conf,
                       auth=REDIS_AUTH_CONF, account=profile.redis_user)
    ensure_service(profile, profile.redis_service)
    open_now = host.get_fact(RedisAnswersAnyone, port=urlsplit(url).port or 6379)
    server.shell(name=f"Restart {profile.redis_service} ({what})",
                 commands=[restart_command(profile.service_manager, profile.redis_service)],
                 _if=lambda: any(op.did_change() for op in (*changes, include)) or open_now)


@deploy("Redis for OMERO.web")
def redis(ctx: Context | None = None) -> None:
    """The local Redis server requiring its password, enabled at boot and running (its package
    comes with the prerequisites)."""
    ctx = ctx or current()
    settings, profile = ctx.settings, ctx.profile
    if not (settings.redis and is_local(settings.redis_url) and selected(ctx)):
        return
    group = profile.redis_user
    files.directory(name=f"Create {ETC_DIR}", path=ETC_DIR, user="root", group="root", mode="755")
    if generated_password(settings.redis_url):
        auth = generated_auth(name="Redis password made on this host", auth=REDIS_AUTH_CONF, conf=profile.redis_conf,
                              group=group)
    else:
        auth = private_file(name="Redis password from omero_web_redis_url", dest=REDIS_AUTH_CONF,
                            content=auth_conf_from_data(settings.redis_url), mode="640", group=group)
    included_then_running(profile, settings.redis_url, [auth], "its password")


@deploy("Shared Redis for OMERO.web")
def shared_redis(ctx: Context | None = None) -> None:
    """
    On the host of the ``omero_web_redis_group`` group: the distro's Redis server, requiring
    the password of ``omero_web_redis_url``, listening on the address that URL names (and on
    loopback) only, enabled at boot and running; restarted when its settings change. Every node
    of the tier keeps its sessions and cache there.
    """
    ctx = ctx or current()
    if "redis" not in ctx.roles or not ctx.selected(*TAGS, also=("config",)):
        return
    settings, profile = ctx.settings, ctx.profile
    url = settings.redis_url
    name = urlsplit(url).hostname or ""
    addresses = host.get_fact(ResolvedAddresses, names=[name]).get(name) or []
    if not addresses:
        raise PyinfraError(f"omeroweb-deploy: {host.name} cannot resolve {name!r}, the host omero_web_redis_url "
                           "names: the shared Redis listens on that address")
    installed = install_packages_epel_first(profile.package_manager, [profile.redis_package],
                                            settings.package_lock_timeout, profile.packages,
                                            name="Install the Redis server")
    files.directory(name=f"Create {ETC_DIR}", path=ETC_DIR, user="root", group="root", mode="755")
    auth = private_file(name="Shared Redis settings from omero_web_redis_url", dest=REDIS_AUTH_CONF,
                        content=shared_conf(url, addresses), mode="640", group=profile.redis_user)
    included_then_running(profile, url, [installed, auth], "its settings")
