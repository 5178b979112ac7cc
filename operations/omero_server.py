"""
Walkthrough 4.8.7 to 4.8.10: settings that OMERO.server serves to its clients (group/user
dropdown labels, the orphaned container, scripts to ignore, download restrictions). They
live in the OMERO.server's configuration, not OMERO.web's, so this section runs only on the
hosts of the ``omero_web_omero_server_group`` inventory group, with that server's venv,
OMERODIR and user. It never installs, starts or restarts OMERO.server.

Rules (also in the README):
- ``omero_web_omero_server_config``: properties set as given (``None`` unsets), compared by
  hash, loaded from an owner-only staged file with ``omero config load``, as for OMERO.web.
- ``omero_web_omero_server_config_append``: OMERO.server's list properties are
  comma-separated strings (OMERO.web splits ``omero.client.scripts_to_ignore`` on ``,``),
  not the JSON lists ``omero config append`` writes; the items are merged into the current
  value, or into the server's own default when the property is unset, and set as one
  comma-separated value.
- A record in ``OMERODIR/etc/omeroweb-deploy-server-managed.json`` (names and items only)
  lets a property or item removed from the data be removed on the next run.
- ``omero_web_omero_server_group_config``: ``omero obj map-set ExperimenterGroup:<id> config``
  semantics, applied by a small script run with the server venv's Python that logs in as
  ``omero_web_omero_server_admin_user``; the password travels in a 0600 file that is deleted
  in the same command, never on a command line. The group settings are not read back (that
  needs a login): ``OMERODIR/etc/omeroweb-deploy-server-groups.json`` records a hash of what
  was applied per group, and the script runs only when the data differs from it.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from pyinfra import host, logger, state
from pyinfra.api import deploy, operation
from pyinfra.api.exceptions import PyinfraError

from model.omero_install import OmeroInstall, untrusted_failure
from model.secrecy import HiddenStdin, secret_names
from model.web_config import corrupted_record_failure, plan_changes, record_problem, serialise, sha256
from host.context import Context, current
from host.facts import JsonFile, OmeroConfig, wanted_secrets
from host.uploads import mkdirs_as, remove_as, write_as

TAGS = ("omero_server",)
ROLE = "omero_server"
SCRIPT_NAME = "omero_group_config.py"

# Run on the OMERO.server host by the server venv's Python, as the server user:
#   python omero_group_config.py REQUEST.json PASSWORD_FILE
# REQUEST: {"host", "port", "user", "groups": {id: {property: value or null}}}. Same
# semantics as `omero obj map-set ExperimenterGroup:<id> config -- NAME [VALUE]`: the first
# entry of that name gets the value (or one is added); no value removes every entry of it.
GROUP_SCRIPT = r'''
import json
import os
import sys

request_path, password_path = sys.argv[1], sys.argv[2]
try:
    with open(password_path) as handle:
        password = handle.read().rstrip("\n")
finally:
    if os.path.exists(password_path):
        os.remove(password_path)
with open(request_path) as handle:
    request = json.load(handle)

import omero  # noqa: E402  (the server venv's omero-py)
from omero.model import NamedValue  # noqa: E402

client = omero.client(host=request["host"], port=int(request["port"]))
try:
    session = client.createSession(request["user"], password)
    password = None
    query, update = session.getQueryService(), session.getUpdateService()
    for gid in sorted(request["groups"], key=int):
        try:
            group = query.get("ExperimenterGroup", int(gid), {"omero.group": "-1"})
        except omero.ServerError:
            sys.exit("No OMERO group with id %s (see `omero group list`)" % gid)
        config = [nv for nv in (group.getConfig() or []) if nv is not None]
        done = []
        for name, value in sorted(request["groups"][gid].items()):
            present = [nv for nv in config if nv.name == name]
            if value is None:
                if present:
                    config = [nv for nv in config if nv.name != name]
                    done.append("removed " + name)
            elif not present:
                config.append(NamedValue(name, value))
                done.append("set " + name)
            elif present[0].value != value:
                present[0].value = value
                done.append("set " + name)
        if done:
            group.setConfig(config)
            update.saveAndReturnObject(group)
        print("ExperimenterGroup:%s config: %s" % (gid, ", ".join(done) or "already as wanted"))
finally:
    client.closeSession()
'''


def server_record(server: OmeroInstall) -> str:
    """Which OMERO.server properties and list items the deploy manages (names only)."""
    return f"{server.omerodir}/etc/omeroweb-deploy-server-managed.json"


def groups_record(server: OmeroInstall) -> str:
    """The per-group settings the deploy applied (names and a hash of the values)."""
    return f"{server.omerodir}/etc/omeroweb-deploy-server-groups.json"


def split_list(value: str | None) -> list[str]:
    """An OMERO.server list property (comma-separated) as items."""
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def list_items(config_append: Mapping[str, Any], config: Mapping[str, Any] | None = None) -> dict[str, list[str]]:
    """
    The data's list items, checked (a deploy-time guard; the README asks validation to do the
    same): OMERO.server list values are comma-separated strings, and a property is either
    set whole (``omero_web_omero_server_config``) or has items merged into it, not both.
    """
    both = sorted(set(config or {}) & set(config_append))
    if both:
        raise PyinfraError(
            f"omero_web_omero_server_config and omero_web_omero_server_config_append both name {', '.join(both)}: "
            "set the whole value or list the items to ensure, not both"
        )
    result = {}
    for key, items in config_append.items():
        bad = [item for item in items if not isinstance(item, str) or "," in item or not item.strip()]
        if bad:
            raise PyinfraError(
                f"omero_web_omero_server_config_append[{key!r}]: items must be non-empty strings without commas "
                f"(OMERO.server list properties are comma-separated); got {', '.join(map(repr, bad))}"
            )
        result[key] = list(dict.fromkeys(items))
    return result


def plan_server_changes(
    current_config: Mapping[str, dict],
    defaults: Mapping[str, str],
    managed: Mapping[str, Any] | None,
    to_set: Mapping[str, str | None],
    to_merge: Mapping[str, list[str]],
) -> dict[str, Any]:
    """
    Pure diff for an OMERO.server: ``config.plan_changes`` for plain properties; list
    properties get their full comma-separated value computed here (current value, or the
    server's default when unset, plus the wanted items, minus the items this deploy added
    before and the data no longer has).
    """
    managed = managed or {"set": [], "append": {}}
    previous = managed.get("append", {})
    full = dict(to_set)
    for key in sorted(set(to_merge) | set(previous)):
        wanted = to_merge.get(key, [])
        base = split_list(current_config[key]["value"] if key in current_config else defaults.get(key))
        items = [item for item in base if item in wanted or item not in previous.get(key, [])]
        items += [item for item in wanted if item not in items]
        if key not in current_config and items == split_list(defaults.get(key)):
            continue  # unset and the default already says so
        full[key] = ",".join(items)
    changes = plan_changes(current_config, {"set": managed.get("set", []), "append": {}}, full, {})
    record = {
        "set": sorted(k for k, v in to_set.items() if v is not None),
        "append": {k: list(v) for k, v in sorted(to_merge.items())},
    }
    changes["record"] = record
    changes["record_changed"] = record != managed
    return changes


def plan_group_changes(desired: Mapping[str, Mapping[str, str | None]], record: Mapping[str, Any] | None) -> dict:
    """
    Pure: which groups the script must update (``{id: {property: value or None}}``) and the
    new record (``{id: {"sha256", "names"}}``). A group whose data hash matches the record is
    left alone; properties and groups dropped from the data are removed from the group.
    """
    record = record or {}
    apply: dict[str, dict[str, str | None]] = {}
    new_record = {}
    for gid, config in desired.items():
        digest = sha256(json.dumps(config, sort_keys=True))
        new_record[gid] = {"sha256": digest, "names": sorted(k for k, v in config.items() if v is not None)}
        if record.get(gid, {}).get("sha256") != digest:
            dropped = {name: None for name in record.get(gid, {}).get("names", []) if name not in config}
            apply[gid] = {**dropped, **config}
    for gid, previous in record.items():
        if gid not in desired and previous.get("names"):
            apply[gid] = {name: None for name in previous["names"]}
    return {"apply": apply, "record": new_record, "changed": bool(apply) or new_record != record}


def _ensure_staging(server: OmeroInstall) -> str:
    # OMERODIR is the OMERO.server user's: made and written as that user, never as root
    return mkdirs_as(server.user, "700", server.staging)


def _upload_owned(server: OmeroInstall, content: str, path: str):
    yield from write_as(server.user, content, path, "600")


@operation()
def server_config(server: OmeroInstall, to_set: dict, to_merge: dict, secrets: list[str] = ()):
    """
    Apply OMERO.server configuration idempotently (see the module docstring).

    + server: the OMERO.server install
    + to_set: property -> value as stored (None unsets)
    + to_merge: list property -> items to ensure in its comma-separated value
    + secrets: property names declared secret besides those the secret rule names (compared on the host)

    **Examples:**

    .. code:: python

        server_config(
            name="Apply OMERO.server configuration",
            server=OmeroInstall("/opt/omero/server/venv3", "/opt/omero/server/OMERO.server", "omero-server"),
            to_set={
                "omero.client.ui.menu.dropdown.leaders.label": "Owners",
                "omero.client.ui.menu.dropdown.colleagues.label": "Members",
            },
            to_merge={"omero.client.scripts_to_ignore": ["/my_scripts/script.py"]},
            secrets=[],
        )
    """
    secret = secret_names(to_set, secrets)
    # secrets are compared on the host: their wanted values travel on the command's standard input
    fact = host.get_fact(OmeroConfig, install=server, record=server_record(server), secret_keys=sorted(secrets),
                         clear_keys=sorted(set(to_merge)), _stdin=HiddenStdin(wanted_secrets(to_set, secret)),
                         _get_pty=False)
    if fact is None:
        if state.is_executing:
            yield (
                f"echo 'OMERO.server not found: {server.venv}/bin/omero does not exist on this host of the "
                "OMERO.server group (this deploy configures OMERO.server, it does not install it)' >&2; exit 1"
            )
            return
        fact = {"config": {}, "defaults": {}, "managed": None}
    if fact.get("untrusted"):
        yield untrusted_failure(server.venv, fact["untrusted"])
        return
    why = fact.get("managed_error") or record_problem(fact["managed"])
    if why:
        yield corrupted_record_failure(server_record(server), why, "OMERO.server")
        return
    changes = plan_server_changes(fact["config"], fact.get("defaults", {}), fact["managed"], to_set, to_merge)
    if not (changes["set"] or changes["unset"] or changes["record_changed"]):
        return
    yield _ensure_staging(server)
    commands, then = [], None
    if changes["set"]:
        staged = f"{server.staging}/server-config.properties"
        yield from _upload_owned(server, "".join(f"{k}={v}\n" for k, v in sorted(changes["set"].items())), staged)
        commands.append(["config", "load", "-q", staged])
        then = remove_as(server.user, staged)
    commands += [["config", "set", key] for key in changes["unset"]]
    if commands:
        yield server.omero_commands(commands, then=then)  # one omero process
    yield from _upload_owned(server, json.dumps(changes["record"], indent=1, sort_keys=True) + "\n",
                             server_record(server))
    if (changes["set"] or changes["unset"]) and state.is_executing:
        changed = ", ".join(sorted([*changes["set"], *changes["unset"]]))
        logger.warning(
            f"{host.name}: OMERO.server configuration changed ({changed}); "
            "OMERO.server reads it when it starts: restart it (e.g. `systemctl restart omero-server`) for the "
            "change to apply; OMERO.web users see omero.client.* values at their next login"
        )


@operation()
def server_group_config(server: OmeroInstall, groups: dict, port: int, admin_user: str, admin_password: str):
    """
    Apply per-group OMERO.server settings (``omero obj map-set ExperimenterGroup:<id> config``).

    + server: the OMERO.server install
    + groups: group id (str) -> {property: value as stored, or None to remove}
    + port: the OMERO.server port on this host
    + admin_user: the OMERO login that may change groups
    + admin_password: that login's password (uploaded owner-only, never on a command line)

    **Examples:**

    .. code:: python

        server_group_config(
            name="Apply OMERO.server per-group settings",
            server=OmeroInstall("/opt/omero/server/venv3", "/opt/omero/server/OMERO.server", "omero-server"),
            groups={"15": {"omero.policy.binary_access": "-read,+write,+image"}},
            port=4064,
            admin_user="root",
            admin_password="CHANGEME",
        )
    """
    record = groups_record(server)
    changes = plan_group_changes(groups, host.get_fact(JsonFile, path=record, user=server.user))
    if not changes["changed"]:
        return
    if changes["apply"]:
        script, request, password = (
            f"{server.staging}/{SCRIPT_NAME}", f"{server.staging}/group-config.json",
            f"{server.staging}/omero-admin.password",
        )
        body = {"host": "localhost", "port": port, "user": admin_user, "groups": changes["apply"]}
        # the venv checked before the password is staged (a refusal later would leave it there)
        yield server.trusted("true")
        yield _ensure_staging(server)
        # each through the private path (the password too), written as the server's user
        yield from _upload_owned(server, GROUP_SCRIPT, script)
        yield from _upload_owned(server, json.dumps(body, indent=1, sort_keys=True) + "\n", request)
        yield from _upload_owned(server, admin_password + "\n", password)
        yield (
            f"{server.python_cmd(script, request, password)}; "
            f"rc=$?; {remove_as(server.user, password, request)}; exit $rc"
        )
    yield from _upload_owned(server, json.dumps(changes["record"], indent=1, sort_keys=True) + "\n", record)


def desired_server_config(ctx: Context) -> tuple[dict, dict, dict]:
    """(properties to set as stored, list items to merge, per-group settings as stored) from the data."""
    s = ctx.settings
    to_set = {k: serialise(v) for k, v in s.omero_server_config.items()}
    groups = {
        str(gid): {k: serialise(v) for k, v in config.items()} for gid, config in s.omero_server_group_config.items()
    }
    return to_set, list_items(s.omero_server_config_append, s.omero_server_config), groups


@deploy("OMERO.server settings for OMERO clients")
def omero_server_settings(ctx: Context | None = None) -> list:
    """
    OMERO.server-side settings, on hosts of the OMERO.server group only; nothing at all on
    other hosts, or when the data sets nothing and no earlier run left anything to remove.
    """
    ctx = ctx or current()
    if ROLE not in ctx.roles or not ctx.selected(*TAGS):
        return []
    server, s = ctx.server, ctx.settings
    to_set, to_merge, groups = desired_server_config(ctx)
    applied = []
    if to_set or to_merge or host.get_fact(JsonFile, path=server_record(server), user=server.user):
        applied.append(server_config(name="Apply OMERO.server configuration", server=server, to_set=to_set,
                                     to_merge=to_merge, secrets=sorted(s.secret_config_keys)))
    record = host.get_fact(JsonFile, path=groups_record(server), user=server.user)
    if groups or record:
        if plan_group_changes(groups, record)["apply"] and not s.omero_server_admin_password:
            # Validation requires the password with group settings; removing those an earlier
            # run applied needs a login too.
            raise PyinfraError(
                f"{host.name}: removing the per-group settings recorded in {groups_record(server)} needs "
                "omero_web_omero_server_admin_password (the OMERO admin login for `omero obj map-set`)"
            )
        applied.append(server_group_config(name="Apply OMERO.server per-group settings", server=server, groups=groups,
                                           port=s.server_port, admin_user=s.omero_server_admin_user,
                                           admin_password=s.omero_server_admin_password or ""))
    return applied
